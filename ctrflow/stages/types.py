"""The stage contract: one step of the training dataflow.

A training step runs the stages in order over an environment, a dict from tensor name to value that
the first stage fills from a `Batch` and each later stage reads and extends:

    inputs ──► embed ──► dense ──► loss ──► metrics (evaluation only)

A stage is a `torch.nn.Module`, so its weights and buffers live in `state_dict()`, plus a config round
trip (`get_config()` / `from_config()`), which is how stages are described and rebuilt.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from torch import nn

Environment = dict[str, Any]


class Stage(nn.Module, abc.ABC):
    """Base class of every stage.

    Subclasses set `stage_name` (the registry name) and implement `forward(env)`, which reads the
    values it needs from `env` and writes what it produces back into it.
    """

    stage_name: ClassVar[str] = ""

    @abc.abstractmethod
    def forward(self, env: Environment) -> None: ...

    def get_config(self) -> dict[str, Any]:
        """The arguments that rebuild this stage (JSON-serialisable)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Stage:
        return cls(**config)
