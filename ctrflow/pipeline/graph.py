"""The named-tensor graph behind `Model.add` and the native DSL.

Nodes are added in order: first the input (label, dense and sparse inputs), then embeddings, then dense
layers and losses. Each `add_*` checks names and infers shapes at once, by building the layer from the
shapes of its bottoms, so a wiring mistake is reported where it was made. `finalize()` runs the
whole-graph checks of `compile()` and inserts HugeCTR's automatic Slice layers for tensors that feed
several layers (formats spec §7.4).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ctrflow.dense.types import Layer, LayerError, Loss
from ctrflow.embedding.types import EmbeddingConfig
from ctrflow.pipeline.registry import LAYERS
from ctrflow.pipeline.types import GraphError, Node, Shape, TensorInfo, TensorKind
from ctrflow.readers.types import DataSpec, SparseInputSpec

EMBEDDING_TYPE_NAMES = {
    "distributed": "DistributedSlotSparseEmbeddingHash",
    "localized": "LocalizedSlotSparseEmbeddingHash",
    "one_hot": "LocalizedSlotSparseEmbeddingOneHot",
    "hybrid": "HybridSparseEmbedding",
}
MULTI_LABEL_NAME = "combined_multi_label"


class Graph:
    """An ordered graph of named tensors.

    Args:
        batch_size: the nominal per-rank batch used for shape inference (the first dimension of every
            shape); layers work for any batch size at run time.
    """

    def __init__(self, batch_size: int = 1) -> None:
        if batch_size < 1:
            raise GraphError(f"batch_size must be at least 1, received {batch_size}.")
        self.batch_size = batch_size
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.data_spec: DataSpec | None = None
        self.label_names: tuple[str, ...] = ()
        self.label_dims: tuple[int, ...] = ()
        self.dense_name = ""
        self.finalized = False

    # ----------------------------------------------------------------------------------------- add
    def add_input(
        self,
        label_names: Sequence[str],
        label_dims: Sequence[int],
        dense_name: str,
        dense_dim: int,
        sparse: Sequence[SparseInputSpec],
    ) -> None:
        """Add the data input; it must come first and only once."""
        if self.nodes:
            raise GraphError(
                "Input: the input must be added first and only once; the graph already has "
                f"{len(self.nodes)} node(s) ({self.nodes[0].type_name} first). Add the Input before any other layer."
            )
        if len(label_names) != len(label_dims) or not label_names:
            raise GraphError(
                f"Input: give one label dim per label name, received names {list(label_names)} and dims "
                f"{list(label_dims)}."
            )
        if any(d < 1 for d in label_dims):
            raise GraphError(f"Input: each label dimension must be at least 1, received {list(label_dims)}.")
        if dense_dim < 0:
            raise GraphError(f"Input: dense_dim must be >= 0, received {dense_dim}.")
        node = Node("input", "Data", (), ())
        self.nodes.append(node)
        b = self.batch_size
        tops: list[str] = []
        for name, dim in zip(label_names, label_dims, strict=True):
            self._define(name, "label", (b, dim), "Input", 0)
            tops.append(name)
        self._define(dense_name, "dense", (b, dense_dim), "Input", 0)
        tops.append(dense_name)
        for spec in sparse:
            self._define(spec.name, "sparse", (b, spec.num_slots), "Input", 0)
            tops.append(spec.name)
        node.tops = tuple(tops)
        self.label_names, self.label_dims, self.dense_name = tuple(label_names), tuple(label_dims), dense_name
        self.data_spec = DataSpec(sum(label_dims), dense_dim, tuple(sparse))

    def add_embedding(self, config: EmbeddingConfig) -> None:
        """Add a sparse embedding reading one sparse input; its output is `[batch, slots, vec]`."""
        type_name = EMBEDDING_TYPE_NAMES[config.kind]
        where = f'{type_name} "{config.name}"'
        self._require_input(where)
        bottom = self.tensors.get(config.bottom)
        if bottom is None or bottom.kind != "sparse":
            sparse_names = [t.name for t in self.tensors.values() if t.kind == "sparse"]
            what = "is not defined" if bottom is None else f"is a {bottom.kind} tensor, not a sparse input"
            raise GraphError(
                f'{where}: bottom "{config.bottom}" {what}; sparse inputs: {", ".join(sparse_names) or "none"}. '
                "An embedding must read a sparse input declared in the Input's data_reader_sparse_param_array."
            )
        if self.nodes[-1].kind == "layer":
            raise GraphError(f"{where}: embeddings must be added before dense layers. Move this add() up.")
        if config.num_slots != bottom.shape[1]:
            raise GraphError(
                f"{where}: num_slots {config.num_slots} does not match the {bottom.shape[1]} slots of "
                f'"{config.bottom}".'
            )
        shape = (self.batch_size, config.num_slots, config.embedding_vec_size)
        self._define(config.name, "embedding", shape, where, len(self.nodes))
        self.nodes.append(Node("embedding", type_name, (config.bottom,), (config.name,), {"config": config}))

    def add_layer(self, layer_type: str, bottoms: Sequence[str], tops: Sequence[str], params: dict[str, Any]) -> Node:
        """Add a dense layer or loss; builds it from its bottoms' shapes (shape inference and checks)."""
        name = tops[0] if tops else layer_type
        where = f'{layer_type} "{name}"'
        self._require_input(where)
        cls = LAYERS.get(layer_type)
        shapes = [self._bottom_shape(where, b) for b in bottoms]
        for top in tops:
            if top in self.tensors:
                raise GraphError(
                    f'{where}: top "{top}" already exists (made by {self._producer_name(self.tensors[top])}). '
                    "Give every top tensor a new name."
                )
        if len(set(tops)) != len(tops):
            raise GraphError(f"{where}: top names repeat {list(tops)}; give each top a distinct name.")
        module = build_layer(cls, shapes, params, name)
        is_loss = isinstance(module, Loss)
        out_shapes = module.output_shapes if not is_loss else [()] * len(tops)
        if not is_loss and len(out_shapes) != len(tops) and not (len(out_shapes) == 1 and len(tops) > 1):
            raise GraphError(
                f"{where}: this layer makes {len(out_shapes)} top tensor(s), received {len(tops)} top names. "
                f"Give {len(out_shapes)} name(s) in top_names."
            )
        kind: TensorKind = "loss" if is_loss else "tensor"
        for i, top in enumerate(tops):
            shape = out_shapes[min(i, len(out_shapes) - 1)] if out_shapes else ()
            self._define(top, kind, tuple(shape), where, len(self.nodes))
        node = Node("layer", layer_type, tuple(bottoms), tuple(tops), dict(params), module=module)
        self.nodes.append(node)
        return node

    # ------------------------------------------------------------------------------------ finalize
    def finalize(self) -> list[Node]:
        """Whole-graph checks of compile() and auto-slice insertion; idempotent."""
        if self.finalized:
            return self.nodes
        if not self.nodes or self.nodes[0].kind != "input":
            raise GraphError("compile(): the model has no Input. Add hugectr.Input(...) first.")
        if len(self.nodes) < 3:
            raise GraphError(
                f"compile(): the model should include the input and at least two layers, it has "
                f"{len(self.nodes) - 1} layer(s). Add embeddings, dense layers and a loss."
            )
        if not any(isinstance(n.module, Loss) for n in self.nodes):
            raise GraphError(
                "compile(): the model has no loss layer. Add a loss, e.g. DenseLayer(layer_type="
                'Layer_t.BinaryCrossEntropyLoss, bottom_names=["<logit>", "<label>"], top_names=["loss"]).'
            )
        self._insert_auto_slices()
        self.finalized = True
        return self.nodes

    def _insert_auto_slices(self) -> None:
        consumers: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            if node.kind == "layer":
                for bottom in node.bottoms:
                    consumers.setdefault(bottom, []).append(i)
        inserts: list[tuple[int, Node]] = []
        for tensor, users in consumers.items():
            info = self.tensors[tensor]
            # formats spec §7.4: a 2-D tensor read by k > 1 layers gets a Slice with k full-width copies.
            # Labels are read, not branched, and 3-D tensors branch without a copy (v3.5 cannot branch them).
            if len(users) < 2 or info.kind == "label" or len(info.shape) != 2:
                continue
            copies = tuple(f"{tensor}_slice{i}" for i in range(len(users)))
            width = info.shape[1]
            params = {"ranges": [(0, width)] * len(users)}
            module = build_layer(LAYERS.get("Slice"), [info.shape], params, copies[0])
            inserts.append((users[0], Node("layer", "Slice", (tensor,), copies, params, auto=True, module=module)))
            for copy_index, user in enumerate(users):
                node = self.nodes[user]
                position = node.bottoms.index(tensor)
                node.bottoms = (*node.bottoms[:position], copies[copy_index], *node.bottoms[position + 1 :])
                self.tensors[copies[copy_index]] = TensorInfo(copies[copy_index], "tensor", info.shape, -1)
        for position, node in sorted(inserts, key=lambda item: item[0], reverse=True):
            self.nodes.insert(position, node)
        for index, node in enumerate(self.nodes):
            for top in node.tops:
                self.tensors[top].producer = index

    # ------------------------------------------------------------------------------------- queries
    @property
    def embeddings(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == "embedding"]

    @property
    def layers(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == "layer"]

    @property
    def losses(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n.module, Loss)]

    def dense_modules(self) -> list[Layer]:
        """Dense layers (losses included) in graph order: the order of HugeCTR's dense files."""
        return [n.module for n in self.layers if isinstance(n.module, Layer)]

    # ------------------------------------------------------------------------------------- helpers
    def _define(self, name: str, kind: TensorKind, shape: Shape, where: str, producer: int) -> None:
        if not name:
            raise GraphError(f"{where}: tensor names must be non-empty strings.")
        if name in self.tensors:
            raise GraphError(f'{where}: top "{name}" already exists. Give every tensor a new name.')
        self.tensors[name] = TensorInfo(name, kind, shape, producer)

    def _producer_name(self, info: TensorInfo) -> str:
        if 0 < info.producer < len(self.nodes):
            node = self.nodes[info.producer]
            return f'{node.type_name} "{node.display_name}"'
        return "Input"

    def _require_input(self, where: str) -> None:
        if not self.nodes or self.nodes[0].kind != "input":
            raise GraphError(f"{where}: the model has no Input yet. Add hugectr.Input(...) before any other layer.")

    def _bottom_shape(self, where: str, bottom: str) -> Shape:
        info = self.tensors.get(bottom)
        if info is None:
            defined = ", ".join(t.name for t in self.tensors.values() if t.kind not in ("sparse", "loss"))
            raise GraphError(
                f'{where}: bottom "{bottom}" is not defined; defined tensors: {defined}. '
                f'Add the layer that produces "{bottom}" before "{where.split(chr(34))[1]}".'
            )
        if info.kind == "sparse":
            raise GraphError(
                f'{where}: bottom "{bottom}" is a sparse input; dense layers read embeddings, not keys. '
                f'Add a SparseEmbedding with bottom_name="{bottom}" and use its output.'
            )
        if info.kind == "loss":
            raise GraphError(f'{where}: bottom "{bottom}" is a loss, which no layer can read.')
        return info.shape


def build_layer(cls: type, input_shapes: Sequence[Shape], params: dict[str, Any], name: str) -> Layer:
    """Build a layer class from shapes and the subset of `params` its constructor takes."""
    accepted = _accepted_params(cls)
    kwargs = params if accepted is None else {k: v for k, v in params.items() if k in accepted}
    try:
        module = cls(list(input_shapes), name=name, **kwargs)
    except LayerError as error:
        raise GraphError(str(error)) from None
    if not isinstance(module, Layer):
        raise GraphError(f'Layer "{name}": {cls.__qualname__} is not a ctrflow.dense.types.Layer.')
    return module


def _accepted_params(cls: type) -> set[str] | None:
    """Keyword arguments a layer's constructor names; None when it takes **kwargs (pass everything)."""
    signature = inspect.signature(cls)
    names: set[str] = set()
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name != "name":
            names.add(parameter.name)
    return names
