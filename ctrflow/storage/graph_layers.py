"""Dense layers in HugeCTR's graph JSON (formats spec §7.4, §7.5): `DenseLayer` kwargs ↔ JSON objects.

A dense layer is described by its v3.5 `DenseLayer` kwargs, enum values given by name (`weight_init_type:
"XavierUniform"`, `regularizer_type: "L2"`, `pos_type: "Head"`, `act_type: "Relu"`). `dense_layer_json` builds
the object `graph_to_json` writes; `parse_dense_layer` turns such an object back into kwargs. Fields that
v3.5 stores as C++ `float` are written widened to double (`widen`), as nlohmann prints them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

# Layer_t names with a single-precision / mixed-precision implementation (semantics spec §1.1): the keys of
# LAYER_TYPE_TO_STRING and LAYER_TYPE_TO_STRING_MP. A type missing from the map in use is written as "".
_BOTH = (
    "BatchNorm", "BinaryCrossEntropyLoss", "Reshape", "Concat", "Dropout", "ELU", "InnerProduct", "Interaction",
    "ReLU", "Softmax", "Sigmoid", "Slice", "WeightMultiply", "FmOrder2", "Add", "ReduceSum", "MultiCross", "Cast",
    "ElementwiseMultiply",
)  # fmt: skip
FP32_LAYER_TYPES = frozenset((
    *_BOTH, "CrossEntropyLoss", "MultiCrossEntropyLoss", "GRU", "MatrixMultiply", "Scale", "FusedReshapeConcat",
    "FusedReshapeConcatGeneral", "PReLU_Dice", "ReduceMean", "Sub", "Gather",
))  # fmt: skip
MP_LAYER_TYPES = frozenset([*_BOTH, "FusedInnerProduct"])
LAYER_TYPES = frozenset(FP32_LAYER_TYPES | MP_LAYER_TYPES | {"ReLUHalf"})

INITIALIZERS = ("Default", "Uniform", "XavierNorm", "XavierUniform", "Zero")
REGULARIZERS = ("L1", "L2")
# FcPosition_t / Activation_t names (Python) → JSON spelling ("Non" is written "None").
POSITIONS = {"Head": "Head", "Body": "Body", "Tail": "Tail", "Isolated": "Isolated", "Non": "None"}
ACTIVATIONS = {"Relu": "Relu", "Non": "None"}

# DenseLayer kwargs and their v3.5 defaults (semantics spec §1.2).
DENSE_LAYER_DEFAULTS: dict[str, Any] = {
    "factor": 1.0, "eps": 1e-5, "gamma_init_type": "Default", "beta_init_type": "Default", "dropout_rate": 0.5,
    "elu_alpha": 1.0, "num_output": 1, "weight_init_type": "Default", "bias_init_type": "Default",
    "num_layers": 0, "leading_dim": 1, "time_step": 0, "batchsize": 1, "SeqLength": 1, "vector_size": 1,
    "selected": False, "selected_slots": [], "ranges": [], "indices": [], "weight_dims": [], "out_dim": 0,
    "axis": 1, "target_weight_vec": [], "use_regularizer": False, "regularizer_type": "L1", "lambda": 0.0,
    "pos_type": "Non", "act_type": "Relu",
}  # fmt: skip
_ENUMS: dict[str, Sequence[str]] = {
    "gamma_init_type": INITIALIZERS, "beta_init_type": INITIALIZERS, "weight_init_type": INITIALIZERS,
    "bias_init_type": INITIALIZERS, "regularizer_type": REGULARIZERS, "pos_type": tuple(POSITIONS),
    "act_type": tuple(ACTIVATIONS),
}  # fmt: skip
# DenseLayer fields stored as C++ float, printed widened to double.
FLOAT_FIELDS = ("factor", "eps", "dropout_rate", "elu_alpha", "target_weight_vec", "lambda")


def widen(value: float) -> float:
    """The double that a C++ `float` holding `value` prints as (e.g. 1e-5 → 9.999999747378752e-06)."""
    return float(np.float32(value))


def _check_value(layer: str, key: str, value: Any) -> Any:
    default = DENSE_LAYER_DEFAULTS[key]
    if key in _ENUMS:
        if key in ("pos_type", "act_type") and value == "None":
            value = "Non"  # the JSON spelling is accepted as well
        if value not in _ENUMS[key]:
            raise ValueError(f"{layer}: {key}={value!r} is not one of {', '.join(_ENUMS[key])}.")
        return value
    if isinstance(default, bool):
        ok = isinstance(value, (bool, np.bool_))
    elif isinstance(default, int):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (list, tuple)) and all(_list_item_ok(key, item) for item in value)
    if not ok:
        raise TypeError(f"{layer}: {key} expects {type(default).__name__}, received {type(value).__name__} {value!r}.")
    return value


def _list_item_ok(key: str, item: Any) -> bool:
    if key == "ranges":
        return isinstance(item, (list, tuple)) and len(item) == 2 and all(_is_int(v) for v in item)
    if key == "target_weight_vec":
        return _is_int(item) or isinstance(item, (float, np.floating))
    return _is_int(item)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _merged(layer_type: str, params: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(DENSE_LAYER_DEFAULTS)
    for key, value in params.items():
        if key not in DENSE_LAYER_DEFAULTS:
            raise ValueError(
                f"{layer_type} layer: unknown DenseLayer argument {key!r}. Known arguments: "
                f"{', '.join(DENSE_LAYER_DEFAULTS)}."
            )
        merged[key] = _check_value(f"{layer_type} layer", key, value)
    return merged


def _inits(p: Mapping[str, Any], **names: str) -> dict[str, Any]:
    # Initializers are written only when not Default (formats spec §7.4).
    return {json_key: p[kwarg] for json_key, kwarg in names.items() if p[kwarg] != "Default"}


def _regularizer(p: Mapping[str, Any]) -> dict[str, Any]:
    if not p["use_regularizer"]:
        return {}
    return {"regularizer": p["regularizer_type"], "lambda": widen(p["lambda"])}


def _fc_param(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"num_output": int(p["num_output"]), **_inits(p, weight_init="weight_init_type", bias_init="bias_init_type")}


def _build_reshape(p: Mapping[str, Any]) -> dict[str, Any]:
    if p["selected"]:
        return {"selected": [int(s) for s in p["selected_slots"]]}
    return {"leading_dim": int(p["leading_dim"]), "time_step": int(p["time_step"])}


def _build_multi_cross_entropy(p: Mapping[str, Any]) -> dict[str, Any]:
    extra = {"target_weight": [widen(w) for w in p["target_weight_vec"]]} if p["target_weight_vec"] else {}
    return {**extra, **_regularizer(p)}


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "BatchNorm": lambda p: {"bn_param": {"factor": widen(p["factor"]), "eps": widen(p["eps"]),
                                         **_inits(p, gamma_init="gamma_init_type", beta_init="beta_init_type")}},
    "Dropout": lambda p: {"rate": widen(p["dropout_rate"])},
    "ELU": lambda p: {"elu_param": {"alpha": widen(p["elu_alpha"])}},
    "InnerProduct": lambda p: {"fc_param": _fc_param(p)},
    "FusedInnerProduct": lambda p: {"fc_param": _fc_param(p), "position": POSITIONS[p["pos_type"]],
                                    "activation": ACTIVATIONS[p["act_type"]]},
    "MultiCross": lambda p: {"mc_param": {"num_layers": int(p["num_layers"]),
                                          **_inits(p, weight_init="weight_init_type", bias_init="bias_init_type")}},
    "Reshape": _build_reshape,
    "Slice": lambda p: {"ranges": [[int(a), int(b)] for a, b in p["ranges"]]},
    "WeightMultiply": lambda p: {"weight_dims": [int(d) for d in p["weight_dims"]],
                                 **_inits(p, weight_init="weight_init_type")},
    "FmOrder2": lambda p: {"out_dim": int(p["out_dim"])},
    "ReduceSum": lambda p: {"axis": int(p["axis"])},
    "ReduceMean": lambda p: {"axis": int(p["axis"])},
    "Gather": lambda p: {"indices": [int(i) for i in p["indices"]]},
    "GRU": lambda p: {"gru_param": {"num_output": int(p["num_output"]), "batchsize": int(p["batchsize"]),
                                    "SeqLength": int(p["SeqLength"]), "vector_size": int(p["vector_size"]),
                                    **_inits(p, weight_init="weight_init_type", bias_init="bias_init_type")}},
    "PReLU_Dice": lambda p: {"prelu_dice_param": {"alpha": widen(p["elu_alpha"]), "eps": widen(p["eps"])}},
    "Scale": lambda p: {"scale_param": {"axis": int(p["axis"]), "factor": widen(p["factor"])}},
    "MultiCrossEntropyLoss": _build_multi_cross_entropy,
    "BinaryCrossEntropyLoss": _regularizer,
    "CrossEntropyLoss": _regularizer,
}  # fmt: skip


def _names(value: Sequence[str], what: str, layer_type: str) -> str | list[str]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value) or not value:
        raise TypeError(f"{layer_type} layer: {what} must be a non-empty list of tensor names, received {value!r}.")
    return value[0] if len(value) == 1 else list(value)


def dense_layer_json(
    layer_type: str,
    bottom_names: Sequence[str],
    top_names: Sequence[str],
    params: Mapping[str, Any] | None = None,
    mixed_precision: bool = False,
) -> dict[str, Any]:
    """The graph-JSON object of one dense layer, as v3.5's `graph_to_json` writes it (§7.4).

    `params` holds `DenseLayer` kwargs other than the three positional ones (missing ones take v3.5 defaults).
    Under `mixed_precision` a type without a mixed-precision implementation is written with `"type": ""`, and
    without it FusedInnerProduct is, exactly as v3.5 does.
    """
    if layer_type not in LAYER_TYPES:
        raise ValueError(f"Unknown dense layer type {layer_type!r}; expected one of {', '.join(sorted(LAYER_TYPES))}.")
    p = _merged(layer_type, params or {})
    names = MP_LAYER_TYPES if mixed_precision else FP32_LAYER_TYPES
    layer: dict[str, Any] = {
        "type": layer_type if layer_type in names else "",
        "bottom": _names(bottom_names, "bottom_names", layer_type),
        "top": _names(top_names, "top_names", layer_type),
    }
    layer.update(_BUILDERS.get(layer_type, lambda _: {})(p))
    return layer


# ---- reading -------------------------------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise ValueError(f"{where}: missing key {key!r}.")
    value = obj[key]
    is_bool = isinstance(value, bool)
    if (kind is int and is_bool) or not isinstance(value, kind):
        raise ValueError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, received {value!r}.")
    return value


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = _get(obj, key, where, (int, float))
    if isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{where}: {key!r} must be a number, received {value!r}.")
    return float(value)


def _read_inits(obj: Mapping[str, Any], where: str, **names: str) -> dict[str, str]:
    result = {}
    for json_key, kwarg in names.items():
        value = obj.get(json_key, "Default")
        if json_key in obj and value not in INITIALIZERS[1:]:
            raise ValueError(f"{where}: no such initializer {value!r}; expected one of {', '.join(INITIALIZERS[1:])}.")
        result[kwarg] = value
    return result


def _parse_fc(j: Mapping[str, Any], w: str) -> dict[str, Any]:
    fc = _get(j, "fc_param", w, dict)
    return {"num_output": _get(fc, "num_output", w + " fc_param", int),
            **_read_inits(fc, w + " fc_param", weight_init="weight_init_type", bias_init="bias_init_type")}  # fmt: skip


def _parse_fused(j: Mapping[str, Any], w: str) -> dict[str, Any]:
    position = {v: k for k, v in POSITIONS.items()}.get(j.get("position", "None"))
    activation = {v: k for k, v in ACTIVATIONS.items()}.get(j.get("activation", "Relu"))
    if position is None or activation is None:
        raise ValueError(f"{w}: unknown position {j.get('position')!r} or activation {j.get('activation')!r}.")
    return {**_parse_fc(j, w), "pos_type": position, "act_type": activation}


def _parse_reshape(j: Mapping[str, Any], w: str) -> dict[str, Any]:
    if "selected" in j:
        return {"selected": True, "selected_slots": [int(s) for s in _get(j, "selected", w, list)]}
    time_step = _get(j, "time_step", w, int) if "time_step" in j else 0
    return {"selected": False, "leading_dim": _get(j, "leading_dim", w, int), "time_step": time_step}


def _parse_loss(j: Mapping[str, Any], w: str) -> dict[str, Any]:
    if "regularizer" not in j:
        return {"use_regularizer": False}
    regularizer = j["regularizer"]
    if regularizer not in REGULARIZERS:
        raise ValueError(f"{w}: regularizer must be 'L1' or 'L2', received {regularizer!r}.")
    return {"use_regularizer": True, "regularizer_type": regularizer, "lambda": _number(j, "lambda", w)}


def _parse_prelu_dice(j: Mapping[str, Any], w: str) -> dict[str, Any]:
    hparam = _get(j, "prelu_dice_param", w, dict)
    # v3.5 writes "alpha" but reads "elu_alpha"; ctrflow reads both (formats spec §7.5).
    key = "alpha" if "alpha" in hparam else "elu_alpha"
    return {"elu_alpha": _number(hparam, key, w), "eps": _number(hparam, "eps", w)}


def _parse_gru(j: Mapping[str, Any], w: str) -> dict[str, Any]:
    g = _get(j, "gru_param", w, dict)
    fields = {k: _get(g, k, w + " gru_param", int) for k in ("num_output", "batchsize", "SeqLength", "vector_size")}
    return {**fields, **_read_inits(g, w, weight_init="weight_init_type", bias_init="bias_init_type")}


_PARSERS: dict[str, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    "BatchNorm": lambda j, w: {"factor": _number(_get(j, "bn_param", w, dict), "factor", w),
                               "eps": _number(j["bn_param"], "eps", w),
                               **_read_inits(j["bn_param"], w, gamma_init="gamma_init_type",
                                             beta_init="beta_init_type")},
    "Dropout": lambda j, w: {"dropout_rate": _number(j, "rate", w) if "rate" in j else 0.5},
    "ELU": lambda j, w: {"elu_alpha": _number(_get(j, "elu_param", w, dict), "alpha", w)},
    "InnerProduct": _parse_fc,
    "FusedInnerProduct": _parse_fused,
    "MultiCross": lambda j, w: {"num_layers": _get(_get(j, "mc_param", w, dict), "num_layers", w, int),
                                **_read_inits(j["mc_param"], w, weight_init="weight_init_type",
                                              bias_init="bias_init_type")},
    "Reshape": _parse_reshape,
    "Slice": lambda j, w: {"ranges": [(int(a), int(b)) for a, b in _get(j, "ranges", w, list)]},
    "WeightMultiply": lambda j, w: {"weight_dims": [int(d) for d in _get(j, "weight_dims", w, list)],
                                    **_read_inits(j, w, weight_init="weight_init_type")},
    "FmOrder2": lambda j, w: {"out_dim": _get(j, "out_dim", w, int)},
    "ReduceSum": lambda j, w: {"axis": _get(j, "axis", w, int)},
    "ReduceMean": lambda j, w: {"axis": _get(j, "axis", w, int)},
    "Gather": lambda j, w: {"indices": [int(i) for i in _get(j, "indices", w, list)]},
    "GRU": _parse_gru,
    "PReLU_Dice": _parse_prelu_dice,
    "Scale": lambda j, w: {"axis": int(_number(_get(j, "scale_param", w, dict), "axis", w)),
                           "factor": _number(j["scale_param"], "factor", w)},
    # A missing target_weight reads as [] (v3.5 requires the key, yet omits it on write when empty).
    "MultiCrossEntropyLoss": lambda j, w: {"target_weight_vec": [float(v) for v in j.get("target_weight", [])],
                                           **_parse_loss(j, w)},
    "BinaryCrossEntropyLoss": _parse_loss,
    "CrossEntropyLoss": _parse_loss,
}  # fmt: skip


def _read_names(j: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = j.get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"{where}: {key!r} must be a tensor name or a list of names, received {value!r}.")


def parse_dense_layer(layer: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`DenseLayer` kwargs (enum values by name) of one dense-layer JSON object (§7.5)."""
    layer_type = layer.get("type") if isinstance(layer, Mapping) else None
    if layer_type == "":
        raise ValueError(
            f'{where}: "type" is "" — v3.5 writes that for a layer type without a mixed-precision (or '
            "single-precision) implementation; the file cannot be loaded. Replace it with the layer's type name."
        )
    if layer_type not in LAYER_TYPES:
        known = ", ".join(sorted(LAYER_TYPES))
        raise ValueError(f"{where}: no such layer type {layer_type!r}; expected one of {known}.")
    where = f"{where} ({layer_type})"
    kwargs: dict[str, Any] = {
        "layer_type": layer_type,
        "bottom_names": _read_names(layer, "bottom", where),
        "top_names": _read_names(layer, "top", where),
    }
    kwargs.update(_PARSERS.get(layer_type, lambda j, w: {})(layer, where))
    return kwargs
