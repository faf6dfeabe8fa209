"""Element-wise activations and dropout: ReLU, ReLUHalf, Sigmoid, ELU, Dropout (semantics spec §1.4).

All keep the shape of their single bottom. ReLU's gradient passes where the input is > 0 and ELU's
where it is >= 0, as in v3.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ctrflow.dense.argument_validation import require_float
from ctrflow.dense.types import Layer, Shape


class _ElementWise(Layer):
    """A layer whose single top has the shape of its bottom."""

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", **params: object) -> None:
        super().__init__(input_shapes, name=name, **params)
        self.output_shapes = [self.input_shapes[0]]


class ReLU(_ElementWise):
    """`y = max(x, 0)`."""

    layer_type = "ReLU"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


class ReLUHalf(ReLU):
    """v3.5 exposes `Layer_t.ReLUHalf` but cannot build it; ctrflow runs it as ReLU in any precision."""

    layer_type = "ReLUHalf"


class Sigmoid(_ElementWise):
    """`y = 1 / (1 + exp(-x))`."""

    layer_type = "Sigmoid"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class ELU(_ElementWise):
    """`y = x` for x >= 0, else `elu_alpha·(exp(x) − 1)`.

    Args:
        elu_alpha: the negative saturation value α.
    """

    layer_type = "ELU"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", elu_alpha: float = 1.0) -> None:
        super().__init__(input_shapes, name=name, elu_alpha=elu_alpha)
        self.elu_alpha = require_float(self, "elu_alpha", elu_alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # clamp before expm1 so the unused branch cannot overflow into a NaN gradient
        negative = self.elu_alpha * torch.expm1(torch.clamp(x, max=0.0))
        return torch.where(x >= 0, x, negative)


class Dropout(_ElementWise):
    """Zero each element with probability `dropout_rate` in training and scale the rest by 1/(1 − rate).

    Evaluation (`layer.eval()`) is the identity. The mask comes from torch's global generator.

    Args:
        dropout_rate: probability of zeroing, 0 < rate < 1.
    """

    layer_type = "Dropout"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", dropout_rate: float = 0.5) -> None:
        super().__init__(input_shapes, name=name, dropout_rate=dropout_rate)
        self.dropout_rate = require_float(self, "dropout_rate", dropout_rate)
        if not 0.0 < self.dropout_rate < 1.0:
            raise self.fail(
                f"dropout_rate={dropout_rate} is outside (0, 1); it is the probability of zeroing an element",
                "Pass 0 < dropout_rate < 1, or remove the layer for no dropout.",
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, p=self.dropout_rate, training=self.training)
