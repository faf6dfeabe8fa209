"""Evaluation metrics (semantics spec §6): exact AUC, AverageLoss, HitRate.

Metrics accumulate over evaluation batches and are finalised (and reset) by `result()`, as HugeCTR's
`get_eval_metrics()` does. `update` takes an optional `num_valid`: only the first `num_valid` rows of a
(padded) batch count. `METRICS` maps HugeCTR's `MetricsType` names to the classes.
"""

from __future__ import annotations

import numpy as np
import torch

from ctrflow.dense.types import Metric


def roc_auc(prediction: np.ndarray | torch.Tensor, label: np.ndarray | torch.Tensor) -> float:
    """Exact area under the ROC curve; ties count as diagonal segments (equals scikit-learn's).

    Labels are used as floats (a soft label contributes fractionally), as HugeCTR does. Returns NaN when
    all labels belong to one class.
    """
    pred = _as_float64(prediction)
    lab = _as_float64(label)
    if pred.shape != lab.shape:
        raise ValueError(f"roc_auc: prediction has {pred.size} values but label has {lab.size}; pass matching arrays.")
    order = np.argsort(-pred, kind="stable")
    pred, lab = pred[order], lab[order]
    # cumulative true/false positives at each distinct threshold (the last member of every tie group)
    last_of_group = np.r_[np.nonzero(np.diff(pred))[0], pred.size - 1]
    tps = np.cumsum(lab)[last_of_group]
    fps = np.cumsum(1.0 - lab)[last_of_group]
    positives, negatives = tps[-1] if tps.size else 0.0, fps[-1] if fps.size else 0.0
    if positives <= 0 or negatives <= 0:
        return float("nan")
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))


def _as_float64(values: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _prefix(
    prediction: torch.Tensor | np.ndarray, label: torch.Tensor | np.ndarray, num_valid: int | None, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """The first `num_valid` (default: all rows) flattened values of both, cut to the shorter (v3.5's rule)."""
    rows = len(prediction)
    if num_valid is not None and not 0 <= num_valid <= rows:
        raise ValueError(f"{metric}: num_valid={num_valid} for a batch of {rows} rows; pass 0..{rows} or None.")
    count = rows if num_valid is None else num_valid
    pred, lab = _as_float64(prediction)[:count], _as_float64(label)[:count]
    count = min(pred.size, lab.size)
    return pred[:count], lab[:count]


class AUC(Metric):
    """Exact ROC AUC over every valid sample since the last `result()` (ties as diagonal segments).

    As in v3.5, prediction and label are flattened and their first `num_valid` values are used (one per
    valid row; cut to the shorter of the two), so a multi-column prediction (CrossEntropyLoss,
    MultiCrossEntropyLoss) is read as an interleaved prefix.
    """

    name = "AUC"

    def __init__(self) -> None:
        self._predictions: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def update(
        self, prediction: torch.Tensor, label: torch.Tensor, loss: float = 0.0, num_valid: int | None = None
    ) -> None:
        pred, lab = _prefix(prediction, label, num_valid, self.name)
        self._predictions.append(pred)
        self._labels.append(lab)

    def result(self) -> float:
        if not self._predictions:
            return float("nan")
        value = roc_auc(np.concatenate(self._predictions), np.concatenate(self._labels))
        self._predictions, self._labels = [], []
        return value


class AverageLoss(Metric):
    """Mean of the per-batch loss values passed to `update` since the last `result()`."""

    name = "AverageLoss"

    def __init__(self) -> None:
        self._total = 0.0
        self._batches = 0

    def update(
        self, prediction: torch.Tensor, label: torch.Tensor, loss: float = 0.0, num_valid: int | None = None
    ) -> None:
        if num_valid == 0:
            return
        self._total += float(loss)
        self._batches += 1

    def result(self) -> float:
        value = self._total / self._batches if self._batches else float("nan")
        self._total, self._batches = 0.0, 0
        return value


class HitRate(Metric):
    """Among valid samples with prediction > 0.8, the fraction whose label is exactly 1 (NaN when none)."""

    name = "HitRate"
    threshold = 0.8

    def __init__(self) -> None:
        self._hits = 0
        self._checked = 0

    def update(
        self, prediction: torch.Tensor, label: torch.Tensor, loss: float = 0.0, num_valid: int | None = None
    ) -> None:
        pred, lab = _prefix(prediction, label, num_valid, self.name)
        # compare in float32, the precision of the predictions, so a prediction of exactly 0.8 is not counted
        confident = pred.astype(np.float32) > np.float32(self.threshold)
        self._checked += int(confident.sum())
        self._hits += int((confident & (lab == 1.0)).sum())

    def result(self) -> float:
        value = self._hits / self._checked if self._checked else float("nan")
        self._hits, self._checked = 0, 0
        return value


METRICS: dict[str, type[Metric]] = {cls.name: cls for cls in (AUC, AverageLoss, HitRate)}
