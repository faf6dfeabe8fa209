"""Embedding layers in HugeCTR's graph JSON (formats spec §7.3, §7.5), with their optimizer and hybrid parameters.

An embedding layer object holds `bottom`, `top`, `type`, `sparse_embedding_hparam` and `optimizer` (always
written: the embedding's own optimizer or the model's). The optimizer is given as a plain dict: `optimizer_type`
("Adam" | "AdaGrad" | "MomentumSGD" | "Nesterov" | "SGD"), `update_type` ("Global" | "Local" | "LazyGlobal")
and the hyperparameters `beta1`, `beta2`, `epsilon`, `initial_accu_value`, `momentum_factor`, `atomic_update`
(missing ones take `CreateOptimizer`'s defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ctrflow.storage.graph_layers import widen

EMBEDDING_TYPES = (
    "DistributedSlotSparseEmbeddingHash",
    "LocalizedSlotSparseEmbeddingHash",
    "LocalizedSlotSparseEmbeddingOneHot",
    "HybridSparseEmbedding",
)
UPDATE_TYPES = ("Global", "Local", "LazyGlobal")
COMBINERS = ("sum", "mean")
# CreateOptimizer defaults (formats spec §7.3).
OPTIMIZER_DEFAULTS: dict[str, Any] = {
    "optimizer_type": "Adam", "update_type": "Global", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7,
    "initial_accu_value": 0.0, "momentum_factor": 0.0, "atomic_update": True,
}  # fmt: skip
# Optimizer type → (JSON hparam key, {JSON field: optimizer dict key}).
_OPTIMIZERS: dict[str, tuple[str, dict[str, str]]] = {
    "Adam": ("adam_hparam", {"beta1": "beta1", "beta2": "beta2", "epsilon": "epsilon"}),
    "AdaGrad": ("adagrad_hparam", {"initial_accu_value": "initial_accu_value", "epsilon": "epsilon"}),
    "MomentumSGD": ("momentum_sgd_hparam", {"momentum_factor": "momentum_factor"}),
    "Nesterov": ("nesterov_hparam", {"momentum_factor": "momentum_factor"}),
    "SGD": ("sgd_hparam", {"atomic_update": "atomic_update"}),
}
# Optimizer hyperparameters stored as C++ float (printed widened); atomic_update is a bool.
OPTIMIZER_FLOAT_FIELDS = ("beta1", "beta2", "epsilon", "initial_accu_value", "momentum_factor")
# CommunicationType enum names (Python) → JSON spelling.
COMMUNICATION_TYPES = {"IB_NVLink_Hier": "IB_NVLink_Hierarchical", "IB_NVLink": "IB_NVLink",
                       "NVLink_SingleNode": "NVLink_SingleNode"}  # fmt: skip
# HybridEmbeddingParam fields and the defaults v3.5's reader uses for missing ones.
HYBRID_DEFAULTS: dict[str, Any] = {
    "max_num_frequent_categories": 1, "max_num_infrequent_samples": -1, "p_dup_max": 0.01,
    "max_all_reduce_bandwidth": 1.3e11, "max_all_to_all_bandwidth": 1.9e11, "efficiency_bandwidth_ratio": 1.0,
    "communication_type": "IB_NVLink", "hybrid_embedding_type": "Distributed",
}  # fmt: skip


def optimizer_json(optimizer: Mapping[str, Any]) -> dict[str, Any]:
    """The `optimizer` object of an embedding layer (§7.3)."""
    unknown = set(optimizer) - set(OPTIMIZER_DEFAULTS)
    if unknown:
        known = ", ".join(OPTIMIZER_DEFAULTS)
        raise ValueError(f"Embedding optimizer: unknown keys {sorted(unknown)}; known keys: {known}.")
    o = {**OPTIMIZER_DEFAULTS, **optimizer}
    if o["optimizer_type"] not in _OPTIMIZERS:
        raise ValueError(
            f"Embedding optimizer: optimizer_type {o['optimizer_type']!r} is not one of {', '.join(_OPTIMIZERS)}."
        )
    if o["update_type"] not in UPDATE_TYPES:
        known = ", ".join(UPDATE_TYPES)
        raise ValueError(f"Embedding optimizer: update_type {o['update_type']!r} is not one of {known}.")
    hparam_key, fields = _OPTIMIZERS[o["optimizer_type"]]
    hparam = {json_key: bool(o[key]) if key == "atomic_update" else widen(o[key]) for json_key, key in fields.items()}
    return {"type": o["optimizer_type"], "update_type": o["update_type"], hparam_key: hparam}


def _hybrid_json(hybrid: Mapping[str, Any] | None) -> dict[str, Any]:
    if hybrid is None:
        raise ValueError("HybridSparseEmbedding needs hybrid_embedding_param (a dict of HybridEmbeddingParam fields).")
    unknown = set(hybrid) - set(HYBRID_DEFAULTS)
    if unknown:
        known = ", ".join(HYBRID_DEFAULTS)
        raise ValueError(f"hybrid_embedding_param: unknown keys {sorted(unknown)}; known keys: {known}.")
    h = {**HYBRID_DEFAULTS, **hybrid}
    if h["communication_type"] not in COMMUNICATION_TYPES:
        raise ValueError(
            f"hybrid_embedding_param: communication_type {h['communication_type']!r} is not one of "
            f"{', '.join(COMMUNICATION_TYPES)}."
        )
    result = {k: h[k] for k in HYBRID_DEFAULTS}
    result["communication_type"] = COMMUNICATION_TYPES[h["communication_type"]]
    for key in ("p_dup_max", "max_all_reduce_bandwidth", "max_all_to_all_bandwidth", "efficiency_bandwidth_ratio"):
        result[key] = float(h[key])  # C++ double: printed as given
    return result


def embedding_layer(
    embedding_type: str,
    bottom: str,
    top: str,
    workspace_size_per_gpu_in_mb: int,
    max_vocabulary_size_global: int,
    embedding_vec_size: int,
    combiner: str,
    slot_size_array: Sequence[int],
    optimizer: Mapping[str, Any],
    hybrid_embedding_param: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The graph-JSON object of one embedding layer (§7.3).

    `max_vocabulary_size_global` is the per-GPU capacity (formats spec §8) times the GPU count; `slot_size_array`
    is written only when non-empty; `hybrid_embedding_param` only for HybridSparseEmbedding.
    """
    if embedding_type not in EMBEDDING_TYPES:
        raise ValueError(f"Unknown embedding type {embedding_type!r}; expected one of {', '.join(EMBEDDING_TYPES)}.")
    if combiner not in COMBINERS:
        raise ValueError(f"Embedding {top!r}: combiner {combiner!r} is not 'sum' or 'mean'.")
    for name, value in (("workspace_size_per_gpu_in_mb", workspace_size_per_gpu_in_mb),
                        ("max_vocabulary_size_global", max_vocabulary_size_global),
                        ("embedding_vec_size", embedding_vec_size)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"Embedding {top!r}: {name} must be a non-negative int, received {value!r}.")
    hparam: dict[str, Any] = {
        "combiner": combiner,
        "embedding_vec_size": embedding_vec_size,
        "max_vocabulary_size_global": max_vocabulary_size_global,
        "workspace_size_per_gpu_in_mb": workspace_size_per_gpu_in_mb,
    }
    if len(slot_size_array):
        hparam["slot_size_array"] = [int(s) for s in slot_size_array]
    if embedding_type == "HybridSparseEmbedding":
        hparam.update(_hybrid_json(hybrid_embedding_param))
    return {
        "bottom": bottom,
        "optimizer": optimizer_json(optimizer),
        "sparse_embedding_hparam": hparam,
        "top": top,
        "type": embedding_type,
    }


def _parse_optimizer(j: Any, where: str) -> dict[str, Any]:
    if not isinstance(j, Mapping) or j.get("type") not in _OPTIMIZERS:
        raise ValueError(f"{where}: optimizer type must be one of {', '.join(_OPTIMIZERS)}, received {j!r:.100}.")
    update_type = j.get("update_type", "Global")
    if update_type not in UPDATE_TYPES:
        raise ValueError(f"{where}: optimizer update_type {update_type!r} is not one of {', '.join(UPDATE_TYPES)}.")
    hparam_key, fields = _OPTIMIZERS[j["type"]]
    hparam = j.get(hparam_key)
    if not isinstance(hparam, Mapping):
        raise ValueError(f"{where}: a {j['type']} optimizer needs the object {hparam_key!r}.")
    result: dict[str, Any] = {"optimizer_type": j["type"], "update_type": update_type}
    for json_key, key in fields.items():
        if json_key not in hparam:
            raise ValueError(f"{where}: {hparam_key} lacks {json_key!r}.")
        result[key] = bool(hparam[json_key]) if key == "atomic_update" else float(hparam[json_key])
    return result


def _parse_hybrid(hparam: Mapping[str, Any], where: str) -> dict[str, Any]:
    result = {key: hparam.get(key, default) for key, default in HYBRID_DEFAULTS.items()}
    names = {v: k for k, v in COMMUNICATION_TYPES.items()}
    if result["communication_type"] not in names:
        raise ValueError(f"{where}: unknown communication_type {result['communication_type']!r}.")
    result["communication_type"] = names[result["communication_type"]]
    return result


def parse_embedding_layer(layer: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`SparseEmbedding` kwargs of one embedding-layer object (§7.5).

    Returns `embedding_type`, `workspace_size_per_gpu_in_mb` (0 when absent), `embedding_vec_size`, `combiner`,
    `sparse_embedding_name`, `bottom_name`, `slot_size_array` ([] when absent), `optimizer` (dict as accepted by
    `embedding_layer`, or None when absent: the model's optimizer applies) and `hybrid_embedding_param`
    (dict for HybridSparseEmbedding, else None). `max_vocabulary_size_global` is ignored, as in v3.5.
    """
    where = f"{where} ({layer.get('type')})"
    hparam = layer.get("sparse_embedding_hparam")
    if not isinstance(hparam, Mapping):
        raise ValueError(f"{where}: missing object 'sparse_embedding_hparam'.")
    for key in ("bottom", "top"):
        if not isinstance(layer.get(key), str):
            raise ValueError(f"{where}: {key!r} must be a tensor name, received {layer.get(key)!r}.")
    vec_size = hparam.get("embedding_vec_size")
    if isinstance(vec_size, bool) or not isinstance(vec_size, int):
        raise ValueError(f"{where}: embedding_vec_size must be an integer, received {vec_size!r}.")
    combiner = hparam.get("combiner")
    if combiner not in COMBINERS:
        raise ValueError(f"{where}: combiner must be 'sum' or 'mean', received {combiner!r}.")
    return {
        "embedding_type": layer["type"],
        "workspace_size_per_gpu_in_mb": int(hparam.get("workspace_size_per_gpu_in_mb", 0)),
        "embedding_vec_size": vec_size,
        "combiner": combiner,
        "sparse_embedding_name": layer["top"],
        "bottom_name": layer["bottom"],
        "slot_size_array": [int(s) for s in hparam.get("slot_size_array", [])],
        "optimizer": _parse_optimizer(layer["optimizer"], where) if "optimizer" in layer else None,
        "hybrid_embedding_param": _parse_hybrid(hparam, where) if layer["type"] == "HybridSparseEmbedding" else None,
    }
