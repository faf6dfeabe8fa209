"""`GraphedDense`: the dense and loss stages of a CUDA training step replayed as CUDA graphs.

HugeCTR's `Solver.use_cuda_graph` (on by default). A DLRM step launches a few hundred kernels; issued one by
one from Python, launching them costs about as long as running them, so the step's speed depends on the
host CPU. The embedding stage stays eager, since its unique-key counts change every step. The dense layers
and the losses see the same shapes on every full batch, so their forward and backward are captured once per
input signature (`torch.cuda.make_graphed_callables`) and replayed; gradients flow into the embeddings and
the dense weights as in the eager step, and the dense optimizer runs eagerly after backward.

What the capture fixes: the shapes, dtypes and `requires_grad` of the environment's tensors, its plain values
(the valid-row count), the autocast state and the weights' storage. A change to any of them captures anew;
weights must be updated in place (optimizers and ctrflow's loaders do). The warm-up of a capture runs the
stages three times on the first batch without touching the weights (dropout draws and batch-norm running
statistics see those runs). A model whose dense part cannot be captured (a layer that reads a value back to
the host, say) runs eagerly from then on, with the reason logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, cast

import torch
from torch import nn

from ctrflow.stages.loss import OBJECTIVE_KEY, REPORTED_LOSS_KEY
from ctrflow.stages.types import Environment, Stage

log = logging.getLogger("ctrflow")

_PLAIN = (bool, int, float, str)
_WARMUP_RUNS = 3


class _DenseAndLoss(nn.Module):
    """The dense and loss stages as a function of the environment's tensors (what a graph can capture)."""

    def __init__(self, dense: Stage, loss: Stage, names: tuple[str, ...], constants: dict[str, Any]) -> None:
        super().__init__()
        self.dense, self.loss = dense, loss
        self.names, self.constants = names, constants

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        env: Environment = dict(self.constants)
        env.update(zip(self.names, tensors, strict=True))
        self.dense(env)
        self.loss(env)
        return env[OBJECTIVE_KEY], torch.as_tensor(env[REPORTED_LOSS_KEY], device=tensors[0].device)


class GraphedDense:
    """Runs `dense` then `loss` on an environment through CUDA graphs, one per input signature.

    Args:
        dense: the dense stage.
        loss: the loss stage.
        parameters: returns the weights the stages train (their storage is part of the signature).
    """

    def __init__(self, dense: Stage, loss: Stage, parameters: Callable[[], list[nn.Parameter]]) -> None:
        self.dense, self.loss, self.parameters = dense, loss, parameters
        self._graphs: dict[Hashable, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {}
        self._weights: list[nn.Parameter] | None = None
        self.disabled_reason: str | None = None

    def __call__(self, env: Environment) -> bool:
        """Write the objective and the reported loss into `env`; False (nothing done) when it must run eagerly."""
        if self.disabled_reason is not None:
            return False
        names = tuple(name for name, value in env.items() if isinstance(value, torch.Tensor))
        constants = {name: value for name, value in env.items() if isinstance(value, _PLAIN)}
        tensors = [env[name] for name in names]
        key = self._signature(names, tensors, constants)
        graphed = self._graphs.get(key)
        if graphed is None:
            graphed = self._capture(names, tensors, constants)
            if graphed is None:
                return False
            self._graphs[key] = graphed
        objective, reported = graphed(*tensors)
        env[OBJECTIVE_KEY] = objective
        env[REPORTED_LOSS_KEY] = (
            reported.detach().clone()
        )  # the graph's output buffer is overwritten by the next replay
        return True

    def _signature(self, names: tuple[str, ...], tensors: list[torch.Tensor], constants: dict[str, Any]) -> Hashable:
        if self._weights is None:
            self._weights = self.parameters()
        return (
            names,
            tuple((t.shape, t.dtype, t.device, t.requires_grad) for t in tensors),
            tuple(sorted(constants.items())),
            torch.is_autocast_enabled("cuda"),
            torch.get_autocast_dtype("cuda"),
            tuple(weight.data_ptr() for weight in self._weights),
        )

    def _capture(
        self, names: tuple[str, ...], tensors: list[torch.Tensor], constants: dict[str, Any]
    ) -> Callable[..., tuple[torch.Tensor, torch.Tensor]] | None:
        module = _DenseAndLoss(self.dense, self.loss, names, constants)
        samples = tuple(t.detach().clone().requires_grad_(t.requires_grad) for t in tensors)
        autocast = torch.is_autocast_enabled("cuda")
        try:
            # autocast's cast cache would hand graph-owned casts to later steps: capture without it
            with torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), enabled=autocast, cache_enabled=False):
                graphed = torch.cuda.make_graphed_callables(
                    module, samples, num_warmup_iters=_WARMUP_RUNS, allow_unused_input=True
                )
        except RuntimeError as error:  # e.g. a layer synchronises with the host, which a capture forbids
            self.disabled_reason = f"{type(error).__name__}: {str(error).splitlines()[0]}"
            log.warning(
                "CUDA graph of the dense stages failed; they run eagerly from now on (%s).", self.disabled_reason
            )
            return None
        log.info("Captured the dense and loss stages as a CUDA graph (%d inputs, %s).", len(names), constants)
        return cast(Callable[..., tuple[torch.Tensor, torch.Tensor]], graphed)
