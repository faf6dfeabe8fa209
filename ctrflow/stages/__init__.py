"""Built-in stages of the training dataflow (see `ctrflow.stages.types`)."""

from ctrflow.stages.dense import DenseStage, Wiring
from ctrflow.stages.embed import EmbedStage
from ctrflow.stages.inputs import InputStage
from ctrflow.stages.loss import LossHead, LossStage
from ctrflow.stages.metrics import MetricsStage
from ctrflow.stages.types import Environment, Stage

STAGES: dict[str, type[Stage]] = {
    cls.stage_name: cls for cls in (InputStage, EmbedStage, DenseStage, LossStage, MetricsStage)
}

__all__ = [
    "STAGES",
    "DenseStage",
    "EmbedStage",
    "Environment",
    "InputStage",
    "LossHead",
    "LossStage",
    "MetricsStage",
    "Stage",
    "Wiring",
]
