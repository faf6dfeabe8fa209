"""Reductions along one axis (semantics spec §1.4): ReduceSum and ReduceMean.

The bottom is 1-D to 3-D; the top keeps the rank with `dim[axis] = 1`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ctrflow.dense.argument_validation import require_int, require_rank
from ctrflow.dense.types import Layer, Shape


class ReduceSum(Layer):
    """Sum over `axis` (batch dimension included in the count), keeping the dimension as 1.

    Args:
        axis: the dimension to reduce, `0 <= axis < rank`.
    """

    layer_type = "ReduceSum"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", axis: int = 1) -> None:
        super().__init__(input_shapes, name=name, axis=axis)
        shape = require_rank(self, 0, (1, 2, 3))
        self.axis = require_int(self, "axis", axis, 0)
        if self.axis >= len(shape):
            raise self.fail(
                f"axis={axis} overflows a {len(shape)}-D bottom of shape {list(shape)}",
                f"Pass 0 <= axis < {len(shape)}.",
            )
        self.output_shapes = [tuple(1 if d == self.axis else n for d, n in enumerate(shape))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=self.axis, keepdim=True)


class ReduceMean(ReduceSum):
    """Mean over `axis`, keeping the dimension as 1."""

    layer_type = "ReduceMean"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.axis, keepdim=True)
