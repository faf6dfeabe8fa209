"""Layers of DIN's attention unit (semantics spec §1.4): Scale, Softmax, PReLU_Dice.

All three use the true gradient (autograd): v3.5's Softmax backward drops the Σ q·dy term, its Scale
backward keeps only the first replica's gradient, and its PReLU_Dice backward keeps only the diagonal
of the Jacobian (ignoring that the batch mean and variance depend on every row). Softmax subtracts the
row maximum, so large logits do not overflow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ctrflow.dense.argument_validation import require_float, require_int, require_rank
from ctrflow.dense.types import Layer, Shape


class Scale(Layer):
    """Repeat every element `factor` times on a 2-D bottom `[B, W]`.

    `axis=0` repeats each element consecutively within its row (`[B, W·factor]`); `axis=1` repeats each
    row consecutively (`[B·factor, W]`).

    Args:
        axis: 0 or 1, as above.
        factor: repeat count (cast to int, as v3.5 does), >= 1.
    """

    layer_type = "Scale"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", axis: int = 1, factor: float = 1.0) -> None:
        super().__init__(input_shapes, name=name, axis=axis, factor=factor)
        batch, width = require_rank(self, 0, (2,))
        self.axis = require_int(self, "axis", axis, 0)
        if self.axis > 1:
            raise self.fail(f"axis={axis} is not 0 or 1", "Pass axis=0 (repeat elements) or axis=1 (repeat rows).")
        self.repeats = int(require_float(self, "factor", factor))
        if self.repeats < 1:
            raise self.fail(f"factor={factor} gives {self.repeats} repeats", "Pass factor >= 1.")
        shape = (batch, width * self.repeats) if self.axis == 0 else (batch * self.repeats, width)
        self.output_shapes = [shape]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.repeat_interleave(x, self.repeats, dim=1 - self.axis)


class Softmax(Layer):
    """Softmax over the last dimension of a 2-D or 3-D bottom.

    v3.5 documents 2-D only; HugeCTR's DIN sample feeds it `[B, 1, T]` attention scores, so 3-D is accepted
    (docs/compatibility.md).
    """

    layer_type = "Softmax"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        self.output_shapes = [require_rank(self, 0, (2, 3))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1)


class PReLU_Dice(Layer):  # HugeCTR's layer name
    """Dice activation on a 2-D bottom `[B, H]`, with batch statistics per column (also at evaluation).

    `p = σ((x − E)/sqrt(Var + eps))`, `y = p·x + (1 − p)·α·x`, where E and Var (biased) are the column
    mean and variance over the current batch. α is fixed: the layer has no trainable parameters.

    Args:
        elu_alpha: α.
        eps: added to the variance.
    """

    layer_type = "PReLU_Dice"

    def __init__(
        self, input_shapes: Sequence[Shape], *, name: str = "", elu_alpha: float = 1.0, eps: float = 1e-5
    ) -> None:
        super().__init__(input_shapes, name=name, elu_alpha=elu_alpha, eps=eps)
        self.output_shapes = [require_rank(self, 0, (2,))]
        self.alpha = require_float(self, "elu_alpha", elu_alpha)
        self.eps = require_float(self, "eps", eps)
        if self.eps <= 0.0:
            raise self.fail(f"eps={eps} is not positive", "Pass a small positive eps such as 1e-5.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=0, keepdim=True)
        var = (x * x).mean(dim=0, keepdim=True) - mean * mean
        p = torch.sigmoid((x - mean) * torch.rsqrt(var + self.eps))
        return p * x + (1.0 - p) * self.alpha * x
