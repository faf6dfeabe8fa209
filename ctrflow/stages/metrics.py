"""The metrics stage: accumulates evaluation metrics over batches (semantics spec §6).

Metrics are reported in HugeCTR's fixed order AUC, AverageLoss, HitRate. With several loss heads the
AUC and HitRate see every head's predictions (flattened), and AverageLoss the reported total loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ctrflow.dense.metrics import AUC, AverageLoss, HitRate
from ctrflow.dense.types import Metric
from ctrflow.stages.loss import PREDICTIONS_KEY, REPORTED_LOSS_KEY
from ctrflow.stages.types import Environment, Stage

METRIC_ORDER = ("AUC", "AverageLoss", "HitRate")
_CLASSES: dict[str, type[Metric]] = {"AUC": AUC, "AverageLoss": AverageLoss, "HitRate": HitRate}


class MetricsStage(Stage):
    """Updates the chosen metrics from an evaluation batch.

    Args:
        names: metric names among AUC, AverageLoss, HitRate.
    """

    stage_name = "metrics"

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        unknown = [n for n in names if n not in _CLASSES]
        if unknown:
            raise ValueError(f"Unknown metric(s) {unknown}; valid: {', '.join(METRIC_ORDER)}.")
        self.names = [n for n in METRIC_ORDER if n in names]
        self.metrics = [_CLASSES[n]() for n in self.names]
        self.last_predictions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, env: Environment) -> None:
        heads = env[PREDICTIONS_KEY]
        self.last_predictions = heads
        if not heads:
            return
        prediction = torch.cat([p.reshape(-1) for p, _ in heads.values()])
        label = torch.cat([lab.reshape(-1).float() for _, lab in heads.values()])
        for metric in self.metrics:
            metric.update(prediction, label, float(env[REPORTED_LOSS_KEY]))

    def results(self) -> list[tuple[str, float]]:
        """Finalise and reset every metric; HugeCTR's `get_eval_metrics()`."""
        return [(name, float(metric.result())) for name, metric in zip(self.names, self.metrics, strict=True)]

    def get_config(self) -> dict[str, object]:
        return {"names": list(self.names)}
