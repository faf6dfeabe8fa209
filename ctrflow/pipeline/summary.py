"""`Model.summary()` in HugeCTR's format (semantics spec §7.4)."""

from __future__ import annotations

from ctrflow.pipeline.graph import MULTI_LABEL_NAME, Graph
from ctrflow.pipeline.hctr_log import banner
from ctrflow.pipeline.types import Shape

RULE_WIDTH = 114


def shape_text(shape: Shape) -> str:
    """`(None, d1, d2, ...)`: the batch dimension always prints as None; scalars print empty."""
    if not shape:
        return ""
    return "(" + ", ".join(["None", *(str(d) for d in shape[1:])]) + ")"


def summary_text(graph: Graph) -> tuple[str, str]:
    """The banner line and the table (whose first line carries the log prefix)."""
    label = graph.label_names[0] if len(graph.label_names) == 1 else MULTI_LABEL_NAME
    label_shape = (graph.batch_size, sum(graph.label_dims))
    dense_shape = graph.tensors[graph.dense_name].shape
    sparse_names = ",".join(t.name for t in graph.tensors.values() if t.kind == "sparse")
    lines = [
        f"{'label':<40}{'Dense':<30}{'Sparse':<30}",
        f"{label:<40}{graph.dense_name:<30} {sparse_names:<30}",
        f"{shape_text(label_shape):<40}{shape_text(dense_shape):<40}",
        "—" * RULE_WIDTH,
        f"{'Layer Type':<40}{'Input Name':<30}{'Output Name':<30}{'Output Shape':<30}",
        "—" * RULE_WIDTH,
    ]
    for node in graph.nodes:
        if node.kind == "input":
            continue
        rows = max(len(node.bottoms), len(node.tops))
        for row in range(rows):
            kind = node.type_name if row == 0 else ""
            bottom = node.bottoms[row] if row < len(node.bottoms) else ""
            top = node.tops[row] if row < len(node.tops) else ""
            shape = shape_text(graph.tensors[top].shape) if top and graph.tensors[top].kind != "loss" else ""
            lines.append(f"{kind:<40}{bottom:<30}{top:<30}{shape:<30}")
        lines.append("-" * RULE_WIDTH)
    return banner("Model Summary"), "\n".join(lines)
