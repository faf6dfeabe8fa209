"""HugeCTR's graph JSON (formats spec §7): exact text, builders from neutral descriptions, and the parser.

`graph_to_json` in v3.5 writes `{"layers": [Data, embeddings…, dense…], "model_name": …}` with nlohmann's
`std::setw(2)` printer; `dumps` reproduces that text byte for byte. The builders (`data_layer`,
`embedding_layer`, `dense_layer`, `graph`) take plain values and return the dicts to dump; `parse_graph`
reads such a file back into a `GraphDescription` in `Input` / `SparseEmbedding` / `DenseLayer` terms.

Fields that v3.5 keeps as C++ `float` are printed widened to double (`widen`): DenseLayer factor, eps,
dropout_rate, elu_alpha, target_weight_vec, lambda (see `graph_layers.FLOAT_FIELDS`) and the embedding
optimizer's beta1, beta2, epsilon, initial_accu_value, momentum_factor (`OPTIMIZER_FLOAT_FIELDS`). The hybrid
embedding parameters p_dup_max, max_all_reduce_bandwidth, max_all_to_all_bandwidth and
efficiency_bandwidth_ratio are C++ doubles and are printed as given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctrflow.storage.graph_embeddings import (
    EMBEDDING_TYPES,
    OPTIMIZER_FLOAT_FIELDS,
    embedding_layer,
    parse_embedding_layer,
)
from ctrflow.storage.graph_layers import FLOAT_FIELDS, dense_layer_json, parse_dense_layer, widen

__all__ = [
    "EMBEDDING_TYPES",
    "FLOAT_FIELDS",
    "OPTIMIZER_FLOAT_FIELDS",
    "GraphDescription",
    "data_layer",
    "dense_layer",
    "dumps",
    "embedding_layer",
    "graph",
    "parse_graph",
    "widen",
]

dense_layer = dense_layer_json


def _float_text(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return "null"  # nlohmann writes non-finite numbers as null
    text = repr(value)
    if 1e15 <= abs(value) < 1e16:
        # Python prints these in fixed notation; nlohmann switches to an exponent past 15 integer digits.
        digits = text.lstrip("-").replace(".", "").rstrip("0") or "0"
        mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
        text = ("-" if value < 0 else "") + f"{mantissa}e+15"
    return text


def _dump(value: Any, indent: str, out: list[str]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        out.append("{\n")
        for index, key in enumerate(sorted(value)):
            if not isinstance(key, str):
                raise TypeError(f"Graph JSON object keys must be strings, received {key!r}.")
            out.append(f"{inner}{json.dumps(key, ensure_ascii=False)}: ")
            _dump(value[key], inner, out)
            out.append(",\n" if index < len(value) - 1 else "\n")
        out.append(indent + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        out.append("[\n")
        for index, item in enumerate(value):
            out.append(inner)
            _dump(item, inner, out)
            out.append(",\n" if index < len(value) - 1 else "\n")
        out.append(indent + "]")
    else:
        out.append(_scalar(value))


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()  # NumPy scalars
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float_text(value)
    raise TypeError(
        f"Cannot write {type(value).__name__} {value!r} to graph JSON; use dict, list, str, int, float or bool."
    )


def dumps(graph_dict: Mapping[str, Any]) -> str:
    """The text nlohmann's `file << std::setw(2) << json` writes for `graph_dict` (no trailing newline)."""
    out: list[str] = []
    _dump(graph_dict, "", out)
    return "".join(out)


def data_layer(
    label_names: Sequence[str] | str,
    label_dims: Sequence[int] | int,
    dense_name: str,
    dense_dim: int,
    sparse: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The Data layer object (§7.2). Only the alphabetically first label is written, as v3.5 does.

    Each entry of `sparse` has `top`, `nnz_per_slot` (list, or an int meaning that many per slot),
    `is_fixed_length` and `slot_num`.
    """
    names = [label_names] if isinstance(label_names, str) else list(label_names)
    dims = [label_dims] if isinstance(label_dims, int) else list(label_dims)
    if not names or len(names) != len(dims):
        raise ValueError(f"Data layer: received {len(names)} label names for {len(dims)} label dims; pass one each.")
    label_name, label_dim = min(zip(names, dims, strict=True))
    sparse_list = []
    for index, entry in enumerate(sparse):
        missing = {"top", "nnz_per_slot", "is_fixed_length", "slot_num"} - set(entry)
        if missing:
            raise ValueError(f"Data layer: sparse input {index} lacks {sorted(missing)}.")
        nnz = entry["nnz_per_slot"]
        nnz_list = [int(nnz)] * int(entry["slot_num"]) if isinstance(nnz, int) else [int(n) for n in nnz]
        sparse_list.append({
            "is_fixed_length": bool(entry["is_fixed_length"]), "nnz_per_slot": nnz_list,
            "slot_num": int(entry["slot_num"]), "top": str(entry["top"]), "type": "DistributedSlot",
        })  # fmt: skip
    return {
        "dense": {"dense_dim": int(dense_dim), "top": dense_name},
        "label": {"label_dim": int(label_dim), "top": label_name},
        "sparse": sparse_list,
        "type": "Data",
    }


def graph(layers: Sequence[Mapping[str, Any]], model_name: str = "") -> dict[str, Any]:
    """The top-level object: `layers`, and `model_name` only when non-empty (§7.1)."""
    result: dict[str, Any] = {"layers": list(layers)}
    if model_name:
        result["model_name"] = model_name
    return result


@dataclass(slots=True)
class GraphDescription:
    """A graph JSON file in HugeCTR Python-API terms.

    Args:
        model_name: `""` when the file has none.
        label_name, label_dim, dense_name, dense_dim: the `Input` fields (one label: v3.5 writes only one).
        sparse_inputs: `DataReaderSparseParam` fields per sparse input: `sparse_name`, `nnz_per_slot` (list),
            `is_fixed_length`, `slot_num`.
        embeddings: `SparseEmbedding` kwargs per embedding (see `graph_embeddings.parse_embedding_layer`).
        dense_layers: `DenseLayer` kwargs per dense layer, enum values by name.
    """

    model_name: str
    label_name: str
    label_dim: int
    dense_name: str
    dense_dim: int
    sparse_inputs: list[dict[str, Any]] = field(default_factory=list)
    embeddings: list[dict[str, Any]] = field(default_factory=list)
    dense_layers: list[dict[str, Any]] = field(default_factory=list)


def _parse_sparse_input(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, Mapping) or {"top", "slot_num", "nnz_per_slot", "is_fixed_length"} - set(entry):
        raise ValueError(f"{where}: expected top, slot_num, nnz_per_slot and is_fixed_length, received {entry!r}.")
    slot_num, nnz = entry["slot_num"], entry["nnz_per_slot"]
    if not isinstance(slot_num, int) or isinstance(slot_num, bool):
        raise ValueError(f"{where}: slot_num must be an integer, received {slot_num!r}.")
    if isinstance(nnz, int) and not isinstance(nnz, bool):
        nnz = [nnz] * slot_num  # an int means the same nnz for every slot
    if not isinstance(nnz, list) or not all(isinstance(n, int) for n in nnz):
        raise ValueError(f"{where}: nnz_per_slot must be an integer or a list of integers, received {nnz!r}.")
    return {"sparse_name": entry["top"], "nnz_per_slot": list(nnz), "is_fixed_length": bool(entry["is_fixed_length"]),
            "slot_num": slot_num}  # fmt: skip


def _parse_data(layer: Any) -> dict[str, Any]:
    where = "graph JSON layers[0]"
    if not isinstance(layer, Mapping) or layer.get("type") != "Data":
        raise ValueError(f'{where}: the first layer must have "type": "Data", received {layer!r:.120}.')
    label, dense = layer.get("label"), layer.get("dense")
    if not isinstance(label, Mapping) or not isinstance(dense, Mapping):
        raise ValueError(f'{where}: the Data layer needs "label" {{top, label_dim}} and "dense" {{top, dense_dim}}.')
    try:
        fields = {"label_name": label["top"], "label_dim": int(label["label_dim"]),
                  "dense_name": dense["top"], "dense_dim": int(dense["dense_dim"])}  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{where}: Data layer label/dense are incomplete: {error!r}.") from error
    sparse = layer.get("sparse", [])
    fields["sparse_inputs"] = [_parse_sparse_input(e, f"{where} sparse[{i}]") for i, e in enumerate(sparse)]
    return fields


def parse_graph(text: str) -> GraphDescription:
    """Read graph JSON text as `construct_from_json` does (§7.5): Data, then embeddings, then dense layers.

    Differences from v3.5: PReLU_Dice reads `alpha` (what v3.5 writes) or `elu_alpha` (what v3.5 reads), and a
    MultiCrossEntropyLoss without `target_weight` reads as an empty list.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"Graph JSON is not valid JSON: {error}.") from error
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(layers, list) or not layers:
        raise ValueError('Graph JSON must be an object with a non-empty "layers" list (Data layer first).')
    description = GraphDescription(model_name=str(document.get("model_name", "")), **_parse_data(layers[0]))
    index = 1
    while index < len(layers) and isinstance(layers[index], Mapping) and layers[index].get("type") in EMBEDDING_TYPES:
        description.embeddings.append(parse_embedding_layer(layers[index], f"graph JSON layers[{index}]"))
        index += 1
    for position in range(index, len(layers)):
        layer = layers[position]
        if not isinstance(layer, Mapping):
            raise ValueError(f"graph JSON layers[{position}]: expected an object, received {layer!r}.")
        description.dense_layers.append(parse_dense_layer(layer, f"graph JSON layers[{position}]"))
    return description
