"""Loss layers (semantics spec §2.1–2.3): BinaryCrossEntropyLoss, CrossEntropyLoss, MultiCrossEntropyLoss.

A loss takes `[prediction, label]` and returns the mean loss over the valid rows of the batch (the
first `num_valid` rows; padded rows of a short last batch are excluded). Gradients are those of that
mean; loss scaling, loss weights and the regulariser are applied by the model. `predict` turns the
prediction into what metrics and inference report. The `DenseLayer` regulariser settings
(`use_regularizer`, `regularizer_type`, `lambda`) are not loss kwargs: the model reads them and adds
`ctrflow.dense.regularizers.regularization_term` to the objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ctrflow.dense.argument_validation import require_rank
from ctrflow.dense.types import Loss, Shape


class _ValidRowsLoss(Loss):
    """Shared part of the three losses: bottom checks and valid-row handling."""

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", **params: Any) -> None:
        super().__init__(input_shapes, name=name, **params)
        self.batch, self.width = require_rank(self, 0, (2,))
        require_rank(self, 1, (2,))
        self.output_shapes = [()]

    def _valid_rows(self, prediction: torch.Tensor, num_valid: int | None) -> int:
        rows = prediction.shape[0]
        if num_valid is None:
            return rows
        if isinstance(num_valid, bool) or not isinstance(num_valid, int) or not 0 <= num_valid <= rows:
            raise self.fail(
                f"num_valid={num_valid!r} for a batch of {rows} rows", f"Pass an int in [0, {rows}] or None."
            )
        return num_valid

    def _check_label(self, expected: Shape) -> None:
        label = self.input_shapes[1]
        if label != expected:
            raise self.fail(
                f"label bottom has shape {list(label)}, expected {list(expected)}",
                "Pass the label tensor of this task as the second bottom.",
            )


class BinaryCrossEntropyLoss(_ValidRowsLoss):
    """Sigmoid + binary cross-entropy on logits `[B, 1]`, labels `[B, 1]` in [0, 1] (soft labels allowed)."""

    layer_type = "BinaryCrossEntropyLoss"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        if self.width != 1:
            raise self.fail(
                f"prediction has width {self.width}; the feature dimension of BCE loss input should be 1",
                "End the network with InnerProduct(num_output=1).",
            )
        self._check_label((self.batch, 1))

    def forward(self, prediction: torch.Tensor, label: torch.Tensor, num_valid: int | None = None) -> torch.Tensor:
        n = self._valid_rows(prediction, num_valid)
        logits, labels = prediction[:n].float(), label[:n].float()
        total = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
        return total / max(n, 1)

    def predict(self, prediction: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(prediction.float())


class CrossEntropyLoss(_ValidRowsLoss):
    """Two-class softmax cross-entropy: logits `[B, 2]`, label `[B, 1]` (class 0 iff label < 0.5)."""

    layer_type = "CrossEntropyLoss"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        if self.width != 2:
            raise self.fail(
                f"prediction has width {self.width}; the feature dimension of CE loss input should be 2",
                "End the network with InnerProduct(num_output=2).",
            )
        self._check_label((self.batch, 1))

    def forward(self, prediction: torch.Tensor, label: torch.Tensor, num_valid: int | None = None) -> torch.Tensor:
        n = self._valid_rows(prediction, num_valid)
        classes = (label[:n, 0] >= 0.5).long()
        total = F.cross_entropy(prediction[:n].float(), classes, reduction="sum")
        return total / max(n, 1)

    def predict(self, prediction: torch.Tensor) -> torch.Tensor:
        return torch.softmax(prediction.float(), dim=1)


class MultiCrossEntropyLoss(_ValidRowsLoss):
    """Per-column weighted binary cross-entropy on logits `[B, L]` and labels `[B, L]`.

    A label below −0.5 masks its element (no loss, no gradient), but the mean still divides by B·L.

    Args:
        target_weight_vec: L weights, one per column.
    """

    layer_type = "MultiCrossEntropyLoss"
    target_weight: torch.Tensor

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        target_weight_vec: Sequence[float] = (),
    ) -> None:
        weights = [float(w) for w in target_weight_vec] if isinstance(target_weight_vec, (list, tuple)) else None
        super().__init__(
            input_shapes,
            name=name,
            target_weight_vec=weights if weights is not None else target_weight_vec,
        )
        if weights is None or len(weights) != self.width:
            raise self.fail(
                f"target_weight_vec={self.params['target_weight_vec']!r} does not have one weight per "
                f"prediction column ({self.width})",
                f"Pass target_weight_vec as a list of {self.width} floats.",
            )
        self._check_label((self.batch, self.width))
        self.register_buffer("target_weight", torch.tensor(weights, dtype=torch.float32), persistent=False)

    def forward(self, prediction: torch.Tensor, label: torch.Tensor, num_valid: int | None = None) -> torch.Tensor:
        n = self._valid_rows(prediction, num_valid)
        logits, labels = prediction[:n].float(), label[:n].float()
        per_element = F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * self.target_weight
        kept = torch.where(labels < -0.5, torch.zeros_like(per_element), per_element)
        return kept.sum() / max(n * self.width, 1)

    def predict(self, prediction: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(prediction.float())
