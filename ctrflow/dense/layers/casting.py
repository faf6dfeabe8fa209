"""Precision conversion: Cast (semantics spec §1.4).

v3.5's Cast converts float→half in mixed precision and half→float in single precision, and passes no
gradient back. ctrflow decides from the input: float32 becomes float16, any 16-bit float (float16,
bfloat16) becomes float32; the gradient flows through, cast back to the input's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ctrflow.dense.types import Layer, Shape


class Cast(Layer):
    """Cast float32 ↔ 16-bit float; the top keeps the bottom's shape."""

    layer_type = "Cast"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        self.output_shapes = [self.input_shapes[0]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return x.to(torch.float16)
        if x.dtype in (torch.float16, torch.bfloat16):
            return x.to(torch.float32)
        raise self.fail(
            f"received a {x.dtype} tensor, expected float32, float16 or bfloat16",
            "Feed Cast a floating-point activation.",
        )
