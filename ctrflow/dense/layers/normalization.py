"""Batch normalisation: BatchNorm (semantics spec §1.4, formats spec §5.3).

Training normalises each feature with the batch mean and biased variance, then updates the running
statistics cuDNN-style: `r = (1 − factor)·r + factor·stat`, with the unbiased variance for the running
variance. Evaluation (`layer.eval()`) normalises with the running statistics — v3.5 instead uses a
separate, never-written buffer. Running statistics are buffers (`running_mean`, `running_var`),
not parameters: the dense file holds only γ then β; the `.ntp.json` file holds the running statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ctrflow.dense import initializers
from ctrflow.dense.argument_validation import require_float, require_initializer, require_rank
from ctrflow.dense.types import Layer, Shape


class BatchNorm(Layer):
    """Per-feature batch normalisation of a 2-D bottom `[B, N]`; `y = γ·(x − μ)/sqrt(σ² + eps) + β`.

    Args:
        factor: running-average factor in (0, 1]; the default 1.0 keeps only the last batch's statistics.
        eps: added to the variance.
        gamma_init_type: initializer of γ ("Zero" gives 0, every other type 1).
        beta_init_type: initializer of β (always 0).
    """

    layer_type = "BatchNorm"
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        factor: float = 1.0,
        eps: float = 1e-5,
        gamma_init_type: str = "Default",
        beta_init_type: str = "Default",
    ) -> None:
        super().__init__(
            input_shapes,
            name=name,
            factor=factor,
            eps=eps,
            gamma_init_type=gamma_init_type,
            beta_init_type=beta_init_type,
        )
        batch, features = require_rank(self, 0, (2,))
        self.factor = require_float(self, "factor", factor)
        self.eps = require_float(self, "eps", eps)
        if not 0.0 <= self.factor <= 1.0:
            raise self.fail(f"factor={factor} is outside [0, 1]", "Pass the running-average factor in [0, 1].")
        if self.eps <= 0.0:
            raise self.fail(f"eps={eps} is not positive", "Pass a small positive eps such as 1e-5.")
        self.gamma_init_type = require_initializer(self, "gamma_init_type", gamma_init_type)
        self.beta_init_type = require_initializer(self, "beta_init_type", beta_init_type)
        self.gamma = nn.Parameter(torch.empty(features))
        self.beta = nn.Parameter(torch.empty(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))
        self.output_shapes = [(batch, features)]
        self.reset_parameters(torch.Generator().manual_seed(0))

    def reset_parameters(self, generator: torch.Generator) -> None:
        initializers.batch_norm_gamma_(self.gamma, self.gamma_init_type)
        initializers.batch_norm_beta_(self.beta)
        self.running_mean.zero_()
        self.running_var.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:
            raise self.fail(
                f"training batch has {x.shape[0]} row(s); batch statistics need at least 2",
                "Train with a batch size of 2 or more.",
            )
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.gamma,
            self.beta,
            training=self.training,
            momentum=self.factor,
            eps=self.eps,
        )
