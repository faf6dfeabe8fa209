"""HugeCTR's learning-rate schedule: linear warm-up, constant, polynomial decay (semantics spec §5).

The model calls `get_next()` before every training step and hands the result to every optimizer,
dense and sparse. Steps are 1-based: the first call returns the rate of step 1.
"""

from __future__ import annotations

from typing import Any


class LearningRateScheduler:
    """Warm-up / decay schedule of HugeCTR's `Solver`.

    For step s (incremented by each `get_next()`):

    * `s <= warmup_steps`: `s·base_lr/warmup_steps`;
    * `decay_start == 0` or `s <= decay_start`: `base_lr`;
    * `s <= decay_start + decay_steps`: `max(base_lr·((decay_start + decay_steps − s)/decay_steps)^decay_power,
      end_lr)`;
    * afterwards: `end_lr`.

    Args:
        base_lr: the peak learning rate, >= 0.
        warmup_steps: steps of linear warm-up, >= 1 (1 means none).
        decay_start: last step before the decay; 0 disables decay.
        decay_steps: length of the decay, >= 1.
        decay_power: exponent of the polynomial decay, >= 1.
        end_lr: floor and final rate, >= 0.
    """

    def __init__(
        self,
        base_lr: float,
        warmup_steps: int = 1,
        decay_start: int = 0,
        decay_steps: int = 1,
        decay_power: float = 2.0,
        end_lr: float = 0.0,
    ) -> None:
        self.reset(base_lr, warmup_steps, decay_start, decay_steps, decay_power, end_lr)

    def reset(
        self,
        base_lr: float,
        warmup_steps: int = 1,
        decay_start: int = 0,
        decay_steps: int = 1,
        decay_power: float = 2.0,
        end_lr: float = 0.0,
    ) -> None:
        """Replace the parameters and restart at step 0 (HugeCTR's `reset_learning_rate_scheduler`)."""
        _check(base_lr, warmup_steps, decay_start, decay_steps, decay_power, end_lr)
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.decay_start = int(decay_start)
        self.decay_steps = int(decay_steps)
        self.decay_power = float(decay_power)
        self.end_lr = float(end_lr)
        self.step = 0

    def get_next(self) -> float:
        """Advance one step and return its learning rate."""
        self.step += 1
        return self.rate_at(self.step)

    def rate_at(self, step: int) -> float:
        """The learning rate of 1-based `step`, without advancing."""
        if step <= self.warmup_steps:
            return step * self.base_lr / self.warmup_steps
        if self.decay_start == 0 or step <= self.decay_start:
            return self.base_lr
        if step <= self.decay_start + self.decay_steps:
            remaining = (self.decay_start + self.decay_steps - step) / self.decay_steps
            return max(self.base_lr * remaining**self.decay_power, self.end_lr)
        return self.end_lr

    def state_dict(self) -> dict[str, Any]:
        """Parameters and the current step."""
        return {
            "base_lr": self.base_lr,
            "warmup_steps": self.warmup_steps,
            "decay_start": self.decay_start,
            "decay_steps": self.decay_steps,
            "decay_power": self.decay_power,
            "end_lr": self.end_lr,
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        params = {k: v for k, v in state.items() if k != "step"}
        self.reset(**params)
        self.step = int(state.get("step", 0))


def _check(
    base_lr: float, warmup_steps: int, decay_start: int, decay_steps: int, decay_power: float, end_lr: float
) -> None:
    problems = []
    if base_lr < 0:
        problems.append(f"base_lr={base_lr} (must be >= 0)")
    if warmup_steps < 1:
        problems.append(f"warmup_steps={warmup_steps} (must be >= 1)")
    if decay_start < 0:
        problems.append(f"decay_start={decay_start} (must be >= 0; 0 disables decay)")
    if decay_steps < 1:
        problems.append(f"decay_steps={decay_steps} (must be >= 1)")
    if decay_power < 1.0:
        problems.append(f"decay_power={decay_power} (must be >= 1.0)")
    if end_lr < 0:
        problems.append(f"end_lr={end_lr} (must be >= 0)")
    if problems:
        raise ValueError(f"LearningRateScheduler: invalid {', '.join(problems)}. Fix the Solver's lr settings.")
