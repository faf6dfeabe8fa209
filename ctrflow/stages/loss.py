"""The loss stage: every loss of the model, loss weights and the regulariser.

The training objective is Σ wᵢ·lossᵢ + r, where lossᵢ is the mean loss of head i over the valid rows,
wᵢ its label weight (Input's `label_weights` or `compile(loss_names, loss_weights)`) and r the
regularisation term of the first loss in label-name order (semantics spec §2.4-2.5). ctrflow applies the
weights to the gradients; v3.5 applies them only to the reported loss (docs/compatibility.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ctrflow.dense.regularizers import regularization_term
from ctrflow.dense.types import Loss
from ctrflow.stages.inputs import VALID_ROWS_KEY
from ctrflow.stages.types import Environment, Stage

OBJECTIVE_KEY = "__objective__"
REPORTED_LOSS_KEY = "__reported_loss__"
PREDICTIONS_KEY = "__predictions__"


@dataclass(slots=True)
class LossHead:
    """One loss layer and how it is wired and weighted."""

    prediction: str
    label: str
    top: str
    weight: float = 1.0
    regularizer: str | None = None  # "L1" | "L2" | None
    lam: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)


class LossStage(Stage):
    """Computes the objective (for backward), the reported loss and, in evaluation, the predictions.

    Args:
        losses: the loss layers.
        heads: wiring and weights of each, same order.
        weights: a callable returning the dense weights the regulariser covers (all of them).
    """

    stage_name = "loss"

    def __init__(self, losses: Sequence[Loss], heads: Sequence[LossHead]) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)
        self._losses: list[Loss] = list(losses)  # typed view of self.losses
        self.heads = list(heads)
        self.regularized: list[nn.Parameter] = []
        self._takes_valid_rows = [_accepts(loss, "num_valid") for loss in losses]
        ordered = sorted(range(len(self.heads)), key=lambda i: self.heads[i].label)
        self._first = ordered[0] if ordered else 0

    def forward(self, env: Environment) -> None:
        valid = int(env[VALID_ROWS_KEY])
        rterm = self._regularization(env)
        objective: torch.Tensor | float = 0.0
        reported: torch.Tensor | float = 0.0
        predictions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for index, (loss, head) in enumerate(zip(self._losses, self.heads, strict=True)):
            prediction = env[head.prediction].float()
            label = env[head.label]
            if self._takes_valid_rows[index]:
                value = loss(prediction, label, num_valid=valid)
            else:
                value = loss(prediction[:valid], label[:valid])
            objective = objective + head.weight * value
            reported = reported + head.weight * value.detach() + rterm.detach()  # stays on the device
            if not self.training:
                predictions[head.label] = (loss.predict(prediction[:valid].detach()), label[:valid])
        env[OBJECTIVE_KEY] = objective + rterm
        env[REPORTED_LOSS_KEY] = reported
        env[PREDICTIONS_KEY] = predictions

    def _regularization(self, env: Environment) -> torch.Tensor:
        head = self.heads[self._first]
        if head.regularizer is None or head.lam == 0.0 or not self.regularized:
            return torch.zeros((), device=env[head.prediction].device)
        batch_rows = int(env[head.prediction].shape[0])
        return regularization_term(self.regularized, head.regularizer, head.lam, batch_rows)

    def set_regularized(self, parameters: Iterator[nn.Parameter]) -> None:
        """Give the dense weights the regulariser covers (semantics spec §2.4: all of them)."""
        self.regularized = list(parameters)

    def set_weights(self, weights: dict[str, float]) -> None:
        """Set label weights by label name (`compile(loss_names, loss_weights)`)."""
        known = {h.label for h in self.heads}
        for name in weights:
            if name not in known:
                raise ValueError(
                    f"compile(): label name not found: {name}; losses are keyed by label names {sorted(known)}."
                )
        for head in self.heads:
            head.weight = float(weights.get(head.label, head.weight))


def _accepts(module: nn.Module, argument: str) -> bool:
    return argument in inspect.signature(module.forward).parameters
