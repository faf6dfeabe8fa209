"""The cross network of DCN: MultiCross (semantics spec §1.4).

With x₀ the input `[B, D]`, each of the `num_layers` layers computes
`x_l = x₀ ⊙ (x_{l−1}·w_l) + x_{l−1} + b_l` (the dot product is one scalar per row). Weights are
registered interleaved `w0, b0, w1, b1, …`, each `[D]`, which is the dense-file order (formats spec §5.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctrflow.dense import initializers
from ctrflow.dense.argument_validation import require_initializer, require_int, require_rank
from ctrflow.dense.types import Layer, Shape


class MultiCross(Layer):
    """Stack of `num_layers` cross layers on a 2-D bottom; the top has the bottom's shape.

    Args:
        num_layers: number of cross layers, >= 1.
        weight_init_type: initializer of every w_l (all but "Zero" mean VS-Uniform(D, D)).
        bias_init_type: accepted for compatibility; biases always start at 0 as in v3.5.
    """

    layer_type = "MultiCross"

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        num_layers: int = 0,
        weight_init_type: str = "Default",
        bias_init_type: str = "Default",
    ) -> None:
        super().__init__(
            input_shapes,
            name=name,
            num_layers=num_layers,
            weight_init_type=weight_init_type,
            bias_init_type=bias_init_type,
        )
        shape = require_rank(self, 0, (2,))
        if isinstance(num_layers, int) and not isinstance(num_layers, bool) and num_layers < 1:
            raise self.fail(f"num_layers={num_layers} is < 1", "Pass num_layers >= 1 (the number of cross layers).")
        self.num_layers = require_int(self, "num_layers", num_layers, 1)
        self.weight_init_type = require_initializer(self, "weight_init_type", weight_init_type)
        self.bias_init_type = require_initializer(self, "bias_init_type", bias_init_type)
        self.dim = shape[1]
        for index in range(self.num_layers):
            # attribute order is registration order: w0, b0, w1, b1, ... as in the dense file
            self.register_parameter(f"weight{index}", nn.Parameter(torch.empty(self.dim)))
            self.register_parameter(f"bias{index}", nn.Parameter(torch.empty(self.dim)))
        self.output_shapes = [shape]
        self.reset_parameters(torch.Generator().manual_seed(0))

    def cross_weights(self) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """`(w_l, b_l)` for every layer, in order."""
        return [(getattr(self, f"weight{i}"), getattr(self, f"bias{i}")) for i in range(self.num_layers)]

    def reset_parameters(self, generator: torch.Generator) -> None:
        for weight, bias in self.cross_weights():
            initializers.multi_cross_weight_(weight, self.weight_init_type, self.dim, generator)
            initializers.multi_cross_bias_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = x
        for weight, bias in self.cross_weights():
            h = (x * weight).sum(dim=1, keepdim=True)
            x = x0 * h + x + bias
        return x
