"""The local runner: one training or evaluation step of a planned `Network` on one rank.

A training step runs the stages, scales the objective by the static loss scaler, back-propagates,
unscales and applies the dense optimizer, then the sparse optimizers of the embeddings (semantics spec
§4). Mixed precision is autocast: fp16 on CUDA; on the CPU, which has no fast fp16, bf16 with a notice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
import torch.distributed as dist

from ctrflow.dense.optimizers import DenseOptimizer
from ctrflow.embedding import communication
from ctrflow.pipeline.graphed_dense import GraphedDense
from ctrflow.pipeline.planner import Network
from ctrflow.readers.types import Batch
from ctrflow.stages.inputs import BATCH_KEY
from ctrflow.stages.loss import OBJECTIVE_KEY, PREDICTIONS_KEY, REPORTED_LOSS_KEY
from ctrflow.stages.types import Environment

log = logging.getLogger("ctrflow")


class LossDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class LocalRunner:
    """Trains and evaluates a network on one rank.

    Args:
        network: the planned stages.
        dense_optimizer: a `torch.optim.Optimizer` over `network.dense_parameters()` (or None when the
            model has no dense weights).
        mixed_precision: run the forward pass under autocast.
        scaler: static loss scaling factor (semantics spec §4.4); gradients are divided by it again.
        allreduce: called on the dense parameters after backward when the run has several ranks.
        autocast_dtype: the mixed-precision dtype; fp16 on CUDA and bf16 on the CPU by default (bf16 on CUDA
            needs no loss scaling and is usually as fast).
        cuda_graph: on CUDA, replay the dense and loss stages of full training batches as CUDA graphs
            (HugeCTR's `use_cuda_graph`; see `graphed_dense`). Ignored on the CPU, and where a table's
            Global update runs a whole-table pass beside each step, which bounds the step instead.
    """

    def __init__(
        self,
        network: Network,
        dense_optimizer: DenseOptimizer | None,
        *,
        mixed_precision: bool = False,
        scaler: float = 1.0,
        allreduce: object | None = None,
        autocast_dtype: torch.dtype | None = None,
        cuda_graph: bool = False,
    ) -> None:
        self.network = network
        self.dense_optimizer = dense_optimizer
        self.mixed_precision = mixed_precision
        self.scaler = float(scaler)
        self.allreduce = allreduce
        self.device = next((p.device for p in network.parameters()), torch.device("cpu"))
        self.dense_lr = 0.0
        self.sparse_lr = 0.0
        self.dense_frozen = False
        self._last_loss: torch.Tensor | float = float("nan")
        self._stream: torch.cuda.Stream | None = None
        # a step bound by a whole-table pass gains nothing from graphs and pays their input copy (NOTES.md)
        graphs_pay = self.device.type == "cuda" and not network.embed.overlaps_whole_table_pass()
        self.graphed_dense = (
            GraphedDense(network.dense, network.loss, network.dense_parameters) if cuda_graph and graphs_pay else None
        )
        default_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.autocast_dtype = autocast_dtype or default_dtype
        if mixed_precision and self.device.type != "cuda" and self.autocast_dtype == torch.float16:
            self.autocast_dtype = torch.bfloat16
        if mixed_precision and self.device.type != "cuda":
            log.warning("Mixed precision on %s runs in bf16: fp16 autocast needs CUDA.", self.device)

    # ------------------------------------------------------------------------------------ control
    def set_learning_rate(self, lr: float) -> None:
        """HugeCTR's `set_learning_rate`: one rate for the dense optimizer and every embedding."""
        self.dense_lr = 0.0 if self.dense_frozen else float(lr)
        self.sparse_lr = float(lr)
        if self.dense_optimizer is not None:
            for group in self.dense_optimizer.param_groups:
                group["lr"] = self.dense_lr

    # -------------------------------------------------------------------------------------- steps
    def train_step(self, batch: Batch) -> None:
        """One step on `batch` (already on the device); `last_loss` reads its reported loss.

        On CUDA the step runs on a high-priority stream, ordered after the caller's stream and before its
        later work: background passes that overlap the step on ordinary streams (an embedding's
        whole-table update, see `SparseEmbedding.announce_step`) then take only the SMs the step leaves idle.
        """
        with self._priority_stream():
            self._train_step(batch)

    @contextmanager
    def _priority_stream(self) -> Iterator[None]:
        if self.device.type != "cuda":
            yield
            return
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device, priority=-100)  # clamped to the highest priority
        caller = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(caller)
        with torch.cuda.stream(self._stream):
            yield
        caller.wait_stream(self._stream)

    def _train_step(self, batch: Batch) -> None:
        network = self.network
        if not network.training:  # walking every module each step costs launch time on CUDA
            network.train()
        env: Environment = {BATCH_KEY: batch}
        network.embed.announce_step(self.sparse_lr)  # lets whole-table updates overlap the step
        with self._autocast():
            network.inputs(env)
            network.embed(env)
            full = batch.size == batch.batch_size  # short batches run eagerly
            if not (self.graphed_dense is not None and full and self.graphed_dense(env)):
                network.dense(env)
                network.loss(env)
        objective = env[OBJECTIVE_KEY]
        (objective * self.scaler).backward()
        if self.allreduce is not None:
            self.allreduce(network.dense_parameters())  # type: ignore[operator]
        if self.dense_optimizer is not None and not self.dense_frozen:
            if self.scaler != 1.0:
                for parameter in network.dense_parameters():
                    if parameter.grad is not None:
                        parameter.grad.div_(self.scaler)
            self.dense_optimizer.step()
        if self.dense_optimizer is not None:
            self.dense_optimizer.zero_grad(set_to_none=True)
        network.embed.step(self.sparse_lr, grad_scale=1.0 / self.scaler)
        # the loss stays on the device: reading it every step would stall the GPU (see last_loss)
        self._last_loss = env[REPORTED_LOSS_KEY]

    @property
    def last_loss(self) -> float:
        """The last training step's reported loss; raises LossDivergedError when it is NaN or infinite.

        With several ranks it is the mean over ranks (HugeCTR's Σ_gpu loss / G); every rank must read it.
        """
        loss = torch.as_tensor(self._last_loss, dtype=torch.float32, device=self.device)
        if communication.is_distributed():
            loss = loss.clone()
            dist.all_reduce(loss)
            loss /= dist.get_world_size()
        value = float(loss)
        if not math.isfinite(value):
            raise LossDivergedError(
                f"Train Runtime error: Loss cannot converge (loss is {value}). Lower the learning rate, "
                "check the data for NaN/inf, or use a larger epsilon with mixed precision."
            )
        return value

    @torch.no_grad()
    def eval_step(self, batch: Batch) -> None:
        """Forward an evaluation batch and feed the metrics."""
        network = self.network
        if network.training:
            network.eval()
        env: Environment = {BATCH_KEY: batch}
        with self._autocast():
            network(env)
        if communication.is_distributed():
            _gather_predictions(env)
        network.metrics(env)

    @torch.no_grad()
    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Post-activation predictions of every loss head for the valid rows, by label name."""
        network = self.network
        if network.training:
            network.eval()
        env: Environment = {BATCH_KEY: batch}
        with self._autocast():
            network(env)
        return {name: prediction.float() for name, (prediction, _label) in env[PREDICTIONS_KEY].items()}

    def metrics(self) -> list[tuple[str, float]]:
        return self.network.metrics.results()

    def _autocast(self) -> AbstractContextManager[object]:
        if not self.mixed_precision:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def _gather_predictions(env: Environment) -> None:
    """Every rank's predictions and labels, and the mean loss, so metrics cover the global batch."""
    heads = env[PREDICTIONS_KEY]
    gathered = {}
    for name, (prediction, label) in heads.items():
        predictions = communication.all_gather_variable(prediction.float().contiguous())
        labels = communication.all_gather_variable(label.float().contiguous())
        gathered[name] = (torch.cat(predictions), torch.cat(labels))
    env[PREDICTIONS_KEY] = gathered
    loss = torch.as_tensor(env[REPORTED_LOSS_KEY], dtype=torch.float32, device=next(iter(heads.values()))[0].device)
    dist.all_reduce(loss)
    env[REPORTED_LOSS_KEY] = loss / dist.get_world_size()


def flatten_parameters(parameters: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """All dense weights as one float32 vector, in order (the layout of HugeCTR's dense file)."""
    if not parameters:
        return torch.zeros(0)
    return torch.cat([p.detach().float().reshape(-1).cpu() for p in parameters])
