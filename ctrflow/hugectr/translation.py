"""Translation of v3.5 facade objects onto the graph: Input, SparseEmbedding, DenseLayer, GroupDenseLayer.

Enum values become their names (`Initializer_t.XavierUniform` → "XavierUniform"), which is what the
dense layers and the graph JSON use.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import Any

from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig
from ctrflow.pipeline.graph import Graph
from ctrflow.readers.types import SparseInputSpec

log = logging.getLogger("ctrflow")

EMBEDDING_KINDS = {
    "DistributedSlotSparseEmbeddingHash": "distributed",
    "LocalizedSlotSparseEmbeddingHash": "localized",
    "LocalizedSlotSparseEmbeddingOneHot": "one_hot",
    "HybridSparseEmbedding": "hybrid",
}
# DenseLayer kwargs that are structure, not layer hyper-parameters
_STRUCTURE = {"layer_type", "bottom_names", "top_names"}


def plain(value: Any) -> Any:
    """Facade values as plain Python: enums → names, tuples → lists (recursively)."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def input_fields(inp: Any) -> tuple[list[str], list[int], list[float], str, int, list[SparseInputSpec]]:
    """(label names, label dims, label weights, dense name, dense dim, sparse inputs) of an `Input`."""
    kw = inp.kwargs
    if "label_dims" in kw:
        names, dims = list(kw["label_names"]), list(kw["label_dims"])
    else:
        names, dims = [kw["label_name"]], [kw["label_dim"]]
    weights = list(kw.get("label_weights") or [1.0] * len(names))
    sparse = [
        SparseInputSpec(
            name=p.top_name,
            num_slots=int(p.slot_num),
            nnz_per_slot=tuple(int(n) for n in p.nnz_per_slot),
            is_fixed_length=bool(p.is_fixed_length),
        )
        for p in kw["data_reader_sparse_param_array"]
    ]
    return names, dims, weights, kw["dense_name"], int(kw["dense_dim"]), sparse


def sparse_optimizer(opt_params: Any) -> SparseOptimizerConfig:
    config: SparseOptimizerConfig = opt_params.to_sparse_optimizer_config()
    return config


def embedding_config(embedding: Any, model_optimizer: Any, graph: Graph) -> EmbeddingConfig:
    """The `EmbeddingConfig` of a facade `SparseEmbedding`; its slot count comes from its bottom input."""
    kw = embedding.kwargs
    type_name = plain(kw["embedding_type"])
    kind = EMBEDDING_KINDS[type_name]
    bottom = kw["bottom_name"]
    info = graph.tensors.get(bottom)
    num_slots = info.shape[1] if info is not None and info.kind == "sparse" else 1
    if kind == "hybrid":
        log.warning(
            'Embedding "%s": HybridSparseEmbedding runs as LocalizedSlotSparseEmbeddingOneHot in ctrflow '
            "(same results, no frequent/infrequent split).",
            kw["sparse_embedding_name"],
        )
    optimizer = kw.get("optimizer") or model_optimizer
    return EmbeddingConfig(
        name=kw["sparse_embedding_name"],
        bottom=bottom,
        kind=kind,  # type: ignore[arg-type]
        num_slots=int(num_slots),
        embedding_vec_size=int(kw["embedding_vec_size"]),
        combiner=kw["combiner"],
        workspace_size_per_gpu_in_mb=int(kw["workspace_size_per_gpu_in_mb"]),
        slot_size_array=tuple(int(s) for s in kw.get("slot_size_array") or ()),
        optimizer=sparse_optimizer(optimizer),
    )


def dense_layer_fields(layer: Any) -> tuple[str, list[str], list[str], dict[str, Any]]:
    """(layer type name, bottoms, tops, hyper-parameters by v3.5 keyword) of a facade `DenseLayer`."""
    kw = layer.kwargs
    params = {k: plain(v) for k, v in kw.items() if k not in _STRUCTURE}
    return plain(kw["layer_type"]), list(kw["bottom_names"]), list(kw["top_names"]), params


def group_layer_fields(group: Any) -> list[tuple[str, list[str], list[str], dict[str, Any]]]:
    """A `GroupDenseLayer(GroupFusedInnerProduct)` as its FusedInnerProduct Head, Body..., Tail layers."""
    kw = group.kwargs
    tops: Sequence[str] = kw["top_name_list"]
    outputs: Sequence[int] = kw["num_outputs"]
    bottoms = list(kw["bottom_name_list"])
    layers = []
    for index, (top, num_output) in enumerate(zip(tops, outputs, strict=True)):
        position = "Head" if index == 0 else ("Tail" if index == len(tops) - 1 else "Body")
        activation = plain(kw["last_act_type"]) if position == "Tail" else "Relu"
        params = {"num_output": int(num_output), "pos_type": position, "act_type": activation}
        layers.append(("FusedInnerProduct", bottoms, [top], params))
        bottoms = [top]
    return layers


# facade keywords whose values are enums, and the enum each takes
_ENUM_KEYWORDS = {
    "layer_type": "Layer_t",
    "gamma_init_type": "Initializer_t",
    "beta_init_type": "Initializer_t",
    "weight_init_type": "Initializer_t",
    "bias_init_type": "Initializer_t",
    "regularizer_type": "Regularizer_t",
    "pos_type": "FcPosition_t",
    "act_type": "Activation_t",
    "optimizer_type": "Optimizer_t",
    "update_type": "Update_t",
    "embedding_type": "Embedding_t",
}


def from_names(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `plain` for facade keywords: enum names back to enum members (graph JSON → facade)."""
    from ctrflow.hugectr import enums

    result = dict(kwargs)
    for key, enum_name in _ENUM_KEYWORDS.items():
        value = result.get(key)
        if isinstance(value, str):
            enum_type = getattr(enums, enum_name)
            try:
                result[key] = enum_type[value]
            except KeyError:
                valid = ", ".join(m.name for m in enum_type)
                raise ValueError(f"{key}: unknown {enum_name} value {value!r}; valid: {valid}.") from None
    return result
