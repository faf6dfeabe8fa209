"""Factorization-machine layers (semantics spec §1.4): FmOrder2 and WeightMultiply.

FmOrder2 is the second-order FM term over `S` vectors of width `V` laid out as `[B, S·V]`;
WeightMultiply scales each of `S` scalar inputs by a learned `V`-vector (DeepFM's dense features).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctrflow.dense import initializers
from ctrflow.dense.argument_validation import require_initializer, require_int, require_int_list, require_rank
from ctrflow.dense.types import Layer, Shape


class FmOrder2(Layer):
    """`y[b, v] = ½·((Σ_s x[b, s, v])² − Σ_s x[b, s, v]²)` on a 2-D bottom `[B, S·out_dim]`.

    Args:
        out_dim: the vector width V; the bottom width must be a multiple of it.
    """

    layer_type = "FmOrder2"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", out_dim: int = 0) -> None:
        super().__init__(input_shapes, name=name, out_dim=out_dim)
        batch, width = require_rank(self, 0, (2,))
        self.out_dim = require_int(self, "out_dim", out_dim, 1)
        if width % self.out_dim:
            raise self.fail(
                f"bottom width {width} is not a multiple of out_dim={out_dim}",
                "Set out_dim to the embedding vector size of the concatenated slots.",
            )
        self.output_shapes = [(batch, self.out_dim)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vectors = x.reshape(x.shape[0], -1, self.out_dim)
        summed = vectors.sum(dim=1)
        return 0.5 * (summed * summed - (vectors * vectors).sum(dim=1))


class WeightMultiply(Layer):
    """`y[b, s·V + v] = x[b, s]·W[s, v]` on a 2-D bottom `[B, S]`; top `[B, S·V]`.

    Args:
        weight_dims: `[S, V]`, the weight shape; S must equal the bottom width.
        weight_init_type: initializer of W.
    """

    layer_type = "WeightMultiply"

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        weight_dims: Sequence[int] = (),
        weight_init_type: str = "Default",
    ) -> None:
        dims = list(weight_dims) if isinstance(weight_dims, (list, tuple)) else weight_dims
        super().__init__(input_shapes, name=name, weight_dims=dims, weight_init_type=weight_init_type)
        batch, width = require_rank(self, 0, (2,))
        dims = require_int_list(self, "weight_dims", dims)
        if len(dims) != 2 or min(dims) < 1 or dims[0] != width:
            raise self.fail(
                f"weight_dims={dims} does not fit a bottom of shape {list(self.input_shapes[0])}",
                f"Pass weight_dims=[{width}, vec_size]: the first entry must equal the bottom width.",
            )
        self.num_slots, self.vec_size = dims
        self.weight_init_type = require_initializer(self, "weight_init_type", weight_init_type)
        self.weight = nn.Parameter(torch.empty(self.num_slots, self.vec_size))
        self.output_shapes = [(batch, self.num_slots * self.vec_size)]
        self.reset_parameters(torch.Generator().manual_seed(0))

    def reset_parameters(self, generator: torch.Generator) -> None:
        initializers.weight_multiply_(self.weight, self.weight_init_type, self.num_slots, self.vec_size, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(2) * self.weight).reshape(x.shape[0], -1)
