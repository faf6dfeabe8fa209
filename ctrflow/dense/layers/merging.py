"""Layers that combine several bottoms (semantics spec §1.4): Add, Sub, ElementwiseMultiply,
MatrixMultiply.

ElementwiseMultiply back-propagates the true product gradient (v3.5 divides the product by each
factor and so returns 0 wherever the product is 0).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import ClassVar

import torch

from ctrflow.dense.argument_validation import require_rank, require_same_shapes
from ctrflow.dense.types import Layer, Shape


class _SameShapeMerge(Layer):
    """Base of the element-wise merges: two or more bottoms of one shape, a top of that shape."""

    min_inputs = 2
    max_inputs: ClassVar[int | None] = None

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        self.output_shapes = [require_same_shapes(self)]


class Add(_SameShapeMerge):
    """`y = Σ xᵢ` over two or more bottoms of one shape."""

    layer_type = "Add"

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return functools.reduce(operator.add, inputs)


class Sub(_SameShapeMerge):
    """`y = x₀ − x₁` for two bottoms of one shape."""

    layer_type = "Sub"
    max_inputs = 2

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return x0 - x1


class ElementwiseMultiply(_SameShapeMerge):
    """`y = Π xᵢ` over two or more bottoms of one shape."""

    layer_type = "ElementwiseMultiply"

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return functools.reduce(operator.mul, inputs)


class MatrixMultiply(Layer):
    """Matrix product of two bottoms: `[m, n]·[n, k] → [m, k]`, or batched `[b, m, n]·[b, n, k] → [b, m, k]`."""

    layer_type = "MatrixMultiply"
    min_inputs = 2
    max_inputs = 2

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        left = require_rank(self, 0, (2, 3))
        right = require_rank(self, 1, (2, 3))
        if len(left) != len(right):
            raise self.fail(
                f"bottoms have shapes {list(left)} and {list(right)}; both must be 2-D or both 3-D",
                "Reshape one bottom so the ranks match.",
            )
        if left[-1] != right[-2] or left[:-2] != right[:-2]:
            raise self.fail(
                f"cannot multiply {list(left)} by {list(right)}: the inner dimensions (and batch, for 3-D) must match",
                "Check the bottom order and shapes.",
            )
        self.output_shapes = [(*left[:-1], right[-1])]

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x0, x1)
