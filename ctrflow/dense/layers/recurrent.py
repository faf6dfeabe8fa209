"""A single-layer, unidirectional GRU: GRU (semantics spec §1.4, formats spec §5.2).

v3.5 runs cuDNN's GRU with one bias set (`CUDNN_RNN_SINGLE_INP_BIAS`) and a zero initial state, on
the bottom read as sequence-major `[T, N, C]`; its backward pass does not work. ctrflow computes the
same recurrence in plain torch, so autograd trains it:

    r = σ(W_r x + b_r + R_r h)      z = σ(W_z x + b_z + R_z h)
    n = tanh(W_n x + b_n + r ⊙ (R_n h))      h' = (1 − z) ⊙ n + z ⊙ h

Parameters, in registration (= dense-file) order: `weight_ih` `[3H, C]` (rows W_r, W_z, W_n),
`weight_hh` `[3H, H]` (R_r, R_z, R_n), `bias` `[3H]` (b_r, b_z, b_n), then `hx` `[batchsize·H]`, v3.5's
stored initial hidden state, kept only so the file has v3.5's size: it is unused (the initial state is
zero) and has no gradient. The matrix packing of v3.5's file is cuDNN-opaque, so GRU weights do not
move between v3.5 and ctrflow files (docs/compatibility.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctrflow.dense import initializers
from ctrflow.dense.argument_validation import require_initializer, require_int, require_rank
from ctrflow.dense.types import Layer, Shape


class GRU(Layer):
    """GRU over a `[SeqLength·batchsize, vector_size]` bottom read as `[T, N, C]`; top `[T·N, num_output]`.

    At run time N is taken from the real bottom (rows / SeqLength), so any batch size works.

    Args:
        num_output: hidden size H.
        batchsize: nominal N.
        SeqLength: sequence length T.
        vector_size: input width C.
        weight_init_type: initializer of the weight matrices.
        bias_init_type: initializer of the biases.
    """

    layer_type = "GRU"

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        num_output: int = 1,
        batchsize: int = 1,
        SeqLength: int = 1,  # HugeCTR's kwarg name
        vector_size: int = 1,
        weight_init_type: str = "Default",
        bias_init_type: str = "Default",
    ) -> None:
        super().__init__(
            input_shapes,
            name=name,
            num_output=num_output,
            batchsize=batchsize,
            SeqLength=SeqLength,
            vector_size=vector_size,
            weight_init_type=weight_init_type,
            bias_init_type=bias_init_type,
        )
        self.hidden_size = require_int(self, "num_output", num_output, 1)
        self.batch_size = require_int(self, "batchsize", batchsize, 1)
        self.seq_length = require_int(self, "SeqLength", SeqLength, 1)
        self.vector_size = require_int(self, "vector_size", vector_size, 1)
        self.weight_init_type = require_initializer(self, "weight_init_type", weight_init_type)
        self.bias_init_type = require_initializer(self, "bias_init_type", bias_init_type)
        self._check_bottom()
        hidden = self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden, self.vector_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden, hidden))
        self.bias = nn.Parameter(torch.empty(3 * hidden))
        self.hx = nn.Parameter(torch.zeros(self.batch_size * hidden), requires_grad=False)
        self.output_shapes = [(self.input_shapes[0][0], hidden)]
        self.reset_parameters(torch.Generator().manual_seed(0))

    def _check_bottom(self) -> None:
        rows, width = require_rank(self, 0, (2,))
        if width != self.vector_size or rows != self.batch_size * self.seq_length:
            raise self.fail(
                f"bottom has shape {[rows, width]}, expected [SeqLength*batchsize, vector_size] = "
                f"[{self.seq_length * self.batch_size}, {self.vector_size}]",
                "Reshape the bottom to [SeqLength*batchsize, vector_size] or fix batchsize/SeqLength/vector_size.",
            )

    def reset_parameters(self, generator: torch.Generator) -> None:
        for weight in (self.weight_ih, self.weight_hh):
            initializers.recurrent_(weight, self.weight_init_type, self.hidden_size, generator)
        initializers.recurrent_(self.bias, self.bias_init_type, self.hidden_size, generator)
        with torch.no_grad():
            self.hx.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.reshape(self.seq_length, -1, self.vector_size)
        gates_x = torch.matmul(steps, self.weight_ih.t()) + self.bias  # [T, N, 3H]
        hidden = gates_x.new_zeros((steps.shape[1], self.hidden_size))
        outputs = []
        for gx in gates_x.unbind(0):
            hidden = self._step(gx, hidden)
            outputs.append(hidden)
        return torch.stack(outputs).reshape(-1, self.hidden_size)

    def _step(self, gates_x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        gates_h = torch.matmul(hidden, self.weight_hh.t())
        x_r, x_z, x_n = gates_x.chunk(3, dim=1)
        h_r, h_z, h_n = gates_h.chunk(3, dim=1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return (1.0 - update) * candidate + update * hidden
