"""Fully connected layers: InnerProduct and FusedInnerProduct (semantics spec §1.4).

Both compute `y = x·W + b` with W stored `[in, out]` (the transpose of `torch.nn.Linear.weight`) and b
`[out]`, registered in that order so the parameters are the dense-file layout (formats spec §5.2).
FusedInnerProduct adds a ReLU (unless `act_type="Non"`) and keeps v3.5's DLRM tensor counts for
`pos_type` (also accepting a one-tensor short form); unlike v3.5 it also runs in float32, and under
autocast like every layer here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ctrflow.dense import initializers
from ctrflow.dense.argument_validation import require_choice, require_initializer, require_int, require_rank
from ctrflow.dense.types import Layer, Shape

POSITION_TYPES = ("Non", "Head", "Body", "Tail", "Isolated")
ACTIVATION_TYPES = ("Relu", "Non")

# semantics spec §1.4: (allowed bottom counts, allowed top counts) per FcPosition_t; v3.5 has Head 1|2 -> 4,
# Body 4 -> 4, Tail 4 -> 1. The one-tensor links (Body/Tail reading 1 bottom, Head/Body giving 1 top) are
# ctrflow's short form: the extra tensors carry nothing that the next layer reads.
_TENSOR_COUNTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "Non": ((1,), (1,)),
    "Isolated": ((1,), (1,)),
    "Head": ((1, 2), (1, 4)),
    "Body": ((1, 4), (1, 4)),
    "Tail": ((1, 4), (1,)),
}


class _FullyConnected(Layer):
    """Weights, shapes and initialisation shared by InnerProduct and FusedInnerProduct."""

    weight: nn.Parameter
    bias: nn.Parameter

    def _build(self) -> None:
        self.num_output = require_int(self, "num_output", self.params["num_output"], 1)
        self.weight_init_type = require_initializer(self, "weight_init_type", self.params["weight_init_type"])
        self.bias_init_type = require_initializer(self, "bias_init_type", self.params["bias_init_type"])
        batch, in_dim = require_rank(self, 0, (2,))
        self.in_dim = in_dim
        self.weight = nn.Parameter(torch.empty(in_dim, self.num_output))
        self.bias = nn.Parameter(torch.empty(self.num_output))
        self.output_shapes = self._output_shapes(batch)
        self.reset_parameters(torch.Generator().manual_seed(0))

    def _output_shapes(self, batch: int) -> list[Shape]:
        return [(batch, self.num_output)]

    def reset_parameters(self, generator: torch.Generator) -> None:
        initializers.fully_connected_weight_(
            self.weight, self.weight_init_type, self.in_dim, self.num_output, generator
        )
        initializers.fully_connected_bias_(self.bias, self.bias_init_type, self.num_output, generator)


class InnerProduct(_FullyConnected):
    """Fully connected layer `y = x·W + b` on a 2-D input `[B, K]`, output `[B, num_output]`.

    Args:
        num_output: output width.
        weight_init_type: initializer of W (`Initializer_t` name).
        bias_init_type: initializer of b.
    """

    layer_type = "InnerProduct"

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        num_output: int = 1,
        weight_init_type: str = "Default",
        bias_init_type: str = "Default",
    ) -> None:
        super().__init__(
            input_shapes,
            name=name,
            num_output=num_output,
            weight_init_type=weight_init_type,
            bias_init_type=bias_init_type,
        )
        self._build()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x, self.weight)


class FusedInnerProduct(_FullyConnected):
    """`y = ReLU(x·W + b)` with HugeCTR's DLRM position rules.

    `pos_type` "Non" and "Isolated" take 1 bottom and give 1 top. As in v3.5, "Head" takes 1 bottom (or 2,
    the second being Interaction's gradient alias, which is ignored) and gives 4 tops `(out, mask, dRelu,
    db)`; "Body" takes those 4 and gives 4; "Tail" takes 4 and gives 1. Only the first bottom is read.
    The extra tops are `mask = (out > 0)`, `dRelu` = out (an alias) and `db` = zeros `[1, n]`, all
    without gradient: they exist so v3.5 graphs wire up unchanged. ctrflow also accepts the short form:
    Body and Tail reading only `out`, and Head and Body giving only `out` (`num_tops=1`, the default).

    Args:
        num_output, weight_init_type, bias_init_type: as InnerProduct.
        pos_type: "Non", "Head", "Body", "Tail" or "Isolated".
        act_type: "Relu", or "Non" (no activation; only for `pos_type="Tail"`).
        num_tops: 1, or 4 for Head and Body (the length of `top_names`; not a `DenseLayer` kwarg).
    """

    layer_type = "FusedInnerProduct"
    max_inputs = 4

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        num_output: int = 1,
        weight_init_type: str = "Default",
        bias_init_type: str = "Default",
        pos_type: str = "Non",
        act_type: str = "Relu",
        num_tops: int = 1,
    ) -> None:
        super().__init__(
            input_shapes,
            name=name,
            num_output=num_output,
            weight_init_type=weight_init_type,
            bias_init_type=bias_init_type,
            pos_type=pos_type,
            act_type=act_type,
            num_tops=num_tops,
        )
        self._build()

    def _output_shapes(self, batch: int) -> list[Shape]:
        self.pos_type = require_choice(self, "pos_type", self.params["pos_type"], POSITION_TYPES)
        self.act_type = require_choice(self, "act_type", self.params["act_type"], ACTIVATION_TYPES)
        if self.act_type == "Non" and self.pos_type != "Tail":
            raise self.fail(
                f'act_type="Non" with pos_type="{self.pos_type}": the layer without activation function must '
                "be the last layer in MLP",
                'Use act_type="Relu", or pos_type="Tail" for the last layer of the MLP.',
            )
        bottoms, tops = _TENSOR_COUNTS[self.pos_type]
        num_tops = self.params["num_tops"]
        for what, count, allowed in (("bottom", len(self.input_shapes), bottoms), ("top", num_tops, tops)):
            if count not in allowed or isinstance(count, bool):
                raise self.fail(
                    f'pos_type="{self.pos_type}" received {count!r} {what}(s), expected '
                    f"{' or '.join(map(str, allowed))}; the position and dimension of bottom and top layer aren't "
                    "compatible",
                    "Head takes 1 (or 2 after a two-top Interaction) and gives 1 or 4; Body takes 1 or 4 and gives "
                    "1 or 4; Tail takes 1 or 4 and gives 1; Non and Isolated take 1 and give 1.",
                )
        if self.pos_type == "Head" and len(self.input_shapes) == 2 and self.input_shapes[1] != self.input_shapes[0]:
            raise self.fail(
                f"the second bottom has shape {list(self.input_shapes[1])}, but it must alias the first "
                f"({list(self.input_shapes[0])})",
                "Pass the two tops of one Interaction layer.",
            )
        n = self.num_output
        return [(batch, n), (batch, n), (batch, n), (1, n)] if num_tops == 4 else [(batch, n)]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        y = torch.addmm(self.bias, inputs[0], self.weight)
        if self.act_type == "Relu":
            y = torch.relu(y)
        if len(self.output_shapes) == 1:
            return y
        mask = (y > 0).to(y.dtype)
        db = torch.zeros((1, self.num_output), dtype=y.dtype, device=y.device)
        return y, mask, y.detach(), db
