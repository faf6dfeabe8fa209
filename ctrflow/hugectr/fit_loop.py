"""`Model.fit`: HugeCTR's training loop and its log lines (semantics spec §7.5).

Non-epoch mode (`repeat_dataset=True`) runs `max_iter` steps; epoch mode runs `num_epochs` passes over
the training source. Both advance the LR schedule before every step, log the loss every `display`
steps, evaluate every `eval_interval` steps (stopping early once AUC passes its threshold) and snapshot
every `snapshot` steps. A progress bar is drawn on the terminal when stderr is one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ctrflow.hugectr.translation import plain
from ctrflow.pipeline.hctr_log import cpp_number
from ctrflow.pipeline.progress import Progress
from ctrflow.pipeline.runners import LocalRunner

if TYPE_CHECKING:
    from ctrflow.hugectr.model import Model


class FitLoop:
    """One call of `Model.fit`."""

    def __init__(
        self,
        model: Model,
        runner: LocalRunner,
        *,
        num_epochs: int,
        max_iter: int,
        display: int,
        eval_interval: int,
        snapshot: int,
        snapshot_prefix: str,
    ) -> None:
        self.model, self.runner = model, runner
        self.num_epochs, self.max_iter, self.display = num_epochs, max_iter, display
        self.eval_interval, self.snapshot, self.snapshot_prefix = eval_interval, snapshot, snapshot_prefix
        self.log = model.log
        self.auc_threshold = _auc_threshold(model.solver.metrics_spec)

    def run(self) -> None:
        self._header()
        if self.model.solver.repeat_dataset:
            self._run_iterations()
        else:
            self._run_epochs()

    # ------------------------------------------------------------------------------------ modes
    def _run_iterations(self) -> None:
        model = self.model
        model.start_data_reading()
        start = interval_start = time.perf_counter()
        progress = Progress(self.max_iter, "train")
        for iteration in range(self.max_iter):
            model.set_learning_rate(model.scheduler.get_next())
            model.train()
            progress.update(iteration + 1)
            interval_start = self._after_step(iteration, interval_start)
            if self._evaluate_if_due(iteration, start, f"{iteration} / {self.max_iter} iterations"):
                progress.close()
                return
            self._snapshot_if_due(iteration)
        progress.close()
        elapsed = time.perf_counter() - start
        self.log.info(f"Finish {self.max_iter} iterations with batchsize: {model.solver.batchsize} in {elapsed:.2f}s.")

    def _run_epochs(self) -> None:
        model = self.model
        train, evaluation = model._readers()
        evaluation.start()
        iteration = 0
        start = interval_start = time.perf_counter()
        for epoch in range(self.num_epochs):
            self.log.info("-" * 35 + f"Epoch {epoch}" + "-" * 35)
            train.set_source(model.reader_params.source[0])
            progress = Progress(None, f"epoch {epoch}")
            while True:
                model.set_learning_rate(model.scheduler.get_next())
                trained = model.train()
                progress.update(iteration + 1)
                interval_start = self._after_step(iteration, interval_start)
                where = f"{epoch} / {self.num_epochs} epochs {iteration} global iterations"
                if self._evaluate_if_due(iteration, start, where):
                    progress.close()
                    return
                self._snapshot_if_due(iteration)
                iteration += 1
                if not trained:
                    break
            progress.close()
        elapsed = time.perf_counter() - start
        self.log.info(
            f"Finish {self.num_epochs} epochs {iteration} global iterations with batchsize "
            f"{model.solver.batchsize} in {elapsed:.2f}s."
        )

    # ------------------------------------------------------------------------------ each step
    def _after_step(self, iteration: int, interval_start: float) -> float:
        if self.display > 0 and iteration % self.display == 0 and iteration != 0:
            now = time.perf_counter()
            self.log.info(
                f"Iter: {iteration} Time({self.display} iters): {now - interval_start:g}s "
                f"Loss: {cpp_number(self.runner.last_loss)} lr:{cpp_number(self.runner.sparse_lr)}"
            )
            return now
        return interval_start

    def _evaluate_if_due(self, iteration: int, start: float, where: str) -> bool:
        """Evaluate when due; True when AUC passed its threshold (early stop)."""
        if not (self.eval_interval > 0 and iteration % self.eval_interval == 0 and iteration != 0):
            return False
        model = self.model
        eval_start = time.perf_counter()
        batches = int(model.solver.max_eval_batches)
        for _ in range(batches):
            if not model.eval():
                model._readers()[1].set_source("")
                break
        results = model.get_eval_metrics()
        for name, value in results:
            self.log.info(f"Evaluation, {name}: {cpp_number(value)}")
        auc = dict(results).get("AUC")
        if auc is not None and auc > self.auc_threshold:
            elapsed = time.perf_counter() - start
            batch = model.solver.batchsize
            self.log.info(
                f"Hit target accuracy AUC {self.auc_threshold:f} at {where} with batchsize {batch} in "
                f"{elapsed:.2f}s. Average speed {iteration * batch / elapsed:f} records/s."
            )
            return True
        self.log.info(f"Eval Time for {batches} iters: {time.perf_counter() - eval_start:g}s")
        return False

    def _snapshot_if_due(self, iteration: int) -> None:
        if self.snapshot > 0 and iteration % self.snapshot == 0 and iteration != 0:
            self.model.save_params_to_files(self.snapshot_prefix, iteration)

    def _header(self) -> None:
        model, solver, log = self.model, self.model.solver, self.log
        log.banner("Model Fit")
        if solver.repeat_dataset:
            log.info(f"Use non-epoch mode with number of iterations: {self.max_iter}")
        else:
            log.info(f"Use epoch mode with number of epochs: {self.num_epochs}")
        log.info(f"Training batchsize: {solver.batchsize}, evaluation batchsize: {solver.batchsize_eval}")
        log.info(f"Evaluation interval: {self.eval_interval}, snapshot interval: {self.snapshot}")
        log.info(f"Dense network trainable: {not self.runner.dense_frozen}")
        for name in sorted(n.tops[0] for n in model.graph.embeddings):
            log.info(f"Sparse embedding {name} trainable: {name not in model.frozen_embeddings}")
        log.info(
            f"Use mixed precision: {bool(solver.use_mixed_precision)}, scaler: {float(solver.scaler):f}, "
            f"use cuda graph: {bool(solver.use_cuda_graph)}"
        )
        schedule = model.scheduler
        log.info(f"lr: {schedule.base_lr:f}, warmup_steps: {schedule.warmup_steps}, end_lr: {schedule.end_lr:f}")
        log.info(
            f"decay_start: {schedule.decay_start}, decay_steps: {schedule.decay_steps}, "
            f"decay_power: {schedule.decay_power:f}"
        )
        log.info(f"Training source file: {model.reader_params.source[0]}")
        log.info(f"Evaluation source file: {model.reader_params.eval_source}")


def _auc_threshold(metrics_spec: Any) -> float:
    for metric, threshold in dict(metrics_spec).items():
        if plain(metric) == "AUC":
            return float(threshold)
    return float("inf")
