"""Checks shared by the built-in dense layers: input ranks, equal shapes, integer and choice arguments.

Each check raises the layer's own `LayerError` (through `Layer.fail`), so messages always read
`<Type> "<name>": <what was received>. <how to fix it>`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctrflow.dense import initializers
from ctrflow.dense.types import Layer, Shape


def require_rank(layer: Layer, index: int, ranks: Sequence[int]) -> Shape:
    """Return bottom `index`'s shape if its rank is one of `ranks`."""
    shape = layer.input_shapes[index]
    if len(shape) not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise layer.fail(
            f"bottom {index} has shape {list(shape)} ({len(shape)}-D), expected a {want} tensor",
            "Reshape the bottom tensor first (Reshape layer) or pick another bottom.",
        )
    return shape


def require_same_shapes(layer: Layer) -> Shape:
    """Return the common shape of all bottoms, or raise naming the first mismatch."""
    first = layer.input_shapes[0]
    for index, shape in enumerate(layer.input_shapes[1:], start=1):
        if shape != first:
            raise layer.fail(
                f"bottom {index} has shape {list(shape)} but bottom 0 has {list(first)}; all bottoms must match",
                "Reshape or slice the bottoms to one shape.",
            )
    return first


def require_int(layer: Layer, kwarg: str, value: object, minimum: int) -> int:
    """Return `value` as an int if it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise layer.fail(f"{kwarg}={value!r} is not an integer", f"Pass {kwarg} as an int >= {minimum}.")
    if value < minimum:
        raise layer.fail(f"{kwarg}={value} is too small", f"Pass {kwarg} >= {minimum}.")
    return value


def require_float(layer: Layer, kwarg: str, value: object) -> float:
    """Return `value` as a float if it is a real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise layer.fail(f"{kwarg}={value!r} is not a number", f"Pass {kwarg} as a float.")
    return float(value)


def require_choice(layer: Layer, kwarg: str, value: object, choices: Sequence[str]) -> str:
    """Return `value` if it is one of the enum names in `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise layer.fail(
            f"{kwarg}={value!r} is not valid; expected one of {', '.join(choices)}",
            f"Pass {kwarg} as one of those names (a string).",
        )
    return value


def require_initializer(layer: Layer, kwarg: str, value: object) -> str:
    """Return `value` if it names an `Initializer_t`."""
    return require_choice(layer, kwarg, value, initializers.INITIALIZER_TYPES)


def require_int_list(layer: Layer, kwarg: str, value: object) -> list[int]:
    """Return `value` as a list of ints (tuples accepted)."""
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise layer.fail(f"{kwarg}={value!r} is not a list of integers", f"Pass {kwarg} as a list of ints.")
    return [int(v) for v in value]
