"""`hugectr.Model`: the v3.5 training API, translated onto ctrflow's graph, planner and runner.

`add()` records Input, SparseEmbedding, DenseLayer and GroupDenseLayer on a `Graph` (names and shapes
are checked at once); `compile()` plans the stages and the optimizers; `fit()` runs HugeCTR's training
loop with its log lines; the low-level API (`train`, `eval`, `set_learning_rate`, ...) exposes each step.
Files (snapshots, `load_*`, graph JSON) are handled in `model_files.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from ctrflow.dense.lr_schedule import LearningRateScheduler
from ctrflow.dense.types import Loss
from ctrflow.embedding.communication import allreduce_gradients
from ctrflow.hugectr import model_files
from ctrflow.hugectr.argument_validation import Argument, any_value, bind_arguments, integer, string
from ctrflow.hugectr.data_readers import READER_KINDS, DataReader32, DataReader64, FacadeReader, IDataReader
from ctrflow.hugectr.enums import Error_t
from ctrflow.hugectr.fit_loop import FitLoop
from ctrflow.hugectr.replicas import CURRENT_RANK, ReplicaSet
from ctrflow.hugectr.translation import (
    dense_layer_fields,
    embedding_config,
    group_layer_fields,
    input_fields,
    plain,
)
from ctrflow.pipeline.graph import Graph
from ctrflow.pipeline.hctr_log import HctrLog
from ctrflow.pipeline.planner import Network, Planner
from ctrflow.pipeline.runners import LocalRunner
from ctrflow.pipeline.summary import summary_text
from ctrflow.pipeline.types import GraphError
from ctrflow.readers.types import Batch, ReaderOptions

log = logging.getLogger("ctrflow")

__all__ = [
    "DataReader32",
    "DataReader64",
    "EmbeddingTrainingCache",
    "IDataReader",
    "LearningRateScheduler",
    "Model",
    "ModelPerfExt",
]

_FIT = (
    Argument("num_epochs", integer(0), 0),
    Argument("max_iter", integer(0), 2000),
    Argument("display", integer(), 200),
    Argument("eval_interval", integer(), 1000),
    Argument("snapshot", integer(), 10000),
    Argument("snapshot_prefix", string(), ""),
)
_SCHEDULE = (
    Argument("base_lr", any_value()),
    Argument("warmup_steps", integer(), 1),
    Argument("decay_start", integer(), 0),
    Argument("decay_steps", integer(), 1),
    Argument("decay_power", any_value(), 2.0),
    Argument("end_lr", any_value(), 0.0),
)


F = TypeVar("F", bound=Callable[..., Any])


def on_ranks(method: F) -> F:
    """On a multi-rank driver, run the method on every rank's replica and return rank 0's result."""

    @functools.wraps(method)
    def wrapper(self: Model, *args: Any, **kwargs: Any) -> Any:
        if self.replicas is not None:
            return self.replicas.call((method.__name__,), args, kwargs)
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class RemoteReader(IDataReader):
    """The driver's handle on the replicas' reader (`get_data_reader_train()` of a multi-rank model)."""

    def __init__(self, replicas: ReplicaSet, getter: str) -> None:
        self._replicas, self._getter = replicas, getter

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in _READER_METHODS:
            raise AttributeError(name)
        return lambda *args, **kwargs: self._replicas.call((self._getter, name), args, kwargs)


_READER_METHODS = {
    "set_source",
    "is_started",
    "ready_to_collect",
    "is_eof",
    "read_a_batch_to_device",
    "read_a_batch_to_device_delay_release",
}


class EmbeddingTrainingCache:
    """The embedding training cache (ETC) of v3.5 — not built in ctrflow yet."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "The embedding training cache (CreateETC / EmbeddingTrainingCache.update) is not built in ctrflow yet. "
            "Train without etc_params; tables that outgrow one device can be sharded over ranks with vvgpu."
        )


class Model:
    """A HugeCTR model: `Model(solver, reader_params, opt_params, etc_params=None)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = bind_arguments(
            "Model",
            (
                Argument("solver", any_value()),
                Argument("reader_params", any_value()),
                Argument("opt_params", any_value()),
                Argument("etc_params", any_value(), None),
            ),
            args,
            kwargs,
            aliases={"etc": "etc_params"},
        )
        self.solver, self.reader_params, self.opt_params = (
            values["solver"],
            values["reader_params"],
            values["opt_params"],
        )
        if values["etc_params"] is not None:
            EmbeddingTrainingCache().update()
        reader = self.reader_params
        if not reader.source or not reader.eval_source:
            raise ValueError(
                "The data source for training and evaluation should be specified: DataReaderParams received "
                f"source={reader.source!r}, eval_source={reader.eval_source!r}."
            )
        self.world_size = sum(len(host) for host in self.solver.vvgpu)
        context = CURRENT_RANK.get()
        self.rank = context.rank if context is not None else 0
        if context is not None and context.world_size != self.world_size:
            raise RuntimeError(
                f"rank {self.rank}: vvgpu has {self.world_size} GPUs but {context.world_size} ranks run."
            )
        # a multi-rank script's Model is a driver; its replicas (one per rank) do the work
        self.replicas = ReplicaSet(self.solver.vvgpu) if self.world_size > 1 and context is None else None
        self._construction = (self.solver, self.reader_params, self.opt_params)
        self._added: list[Any] = []
        if self.solver.batchsize % self.world_size or self.solver.batchsize_eval % self.world_size:
            raise ValueError(
                f"batchsize {self.solver.batchsize} and batchsize_eval {self.solver.batchsize_eval} must be divisible "
                f"by the {self.world_size} GPUs of vvgpu={self.solver.vvgpu}."
            )
        self.log = HctrLog(rank=self.rank, enabled=context is None)
        self.seed = context.seed if context is not None else int(self.solver.seed)
        self.seed = self.seed or random.SystemRandom().randrange(1, 2**31)
        self.graph = Graph(batch_size=self.solver.batchsize // self.world_size)
        self.label_weights: dict[str, float] = {}
        self.network: Network | None = None
        self.runner: LocalRunner | None = None
        self.scheduler = self._new_scheduler(
            self.solver.lr,
            self.solver.warmup_steps,
            self.solver.decay_start,
            self.solver.decay_steps,
            self.solver.decay_power,
            self.solver.end_lr,
        )
        self.frozen_embeddings: set[str] = set()
        self.train_reader: FacadeReader | None = None
        self.eval_reader: FacadeReader | None = None
        self.last_eval: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        # key order of each loaded sparse model, to route optimizer states saved by another rank count
        self.loaded_keys: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._start_time = time.perf_counter()
        self.log.raw("HugeCTR Version: 3.5")
        self.log.banner("Model Init")
        if self.solver.model_name:
            self.log.info(f"Initialize model: {self.solver.model_name}")
        else:
            self.log.warning("The model name is not specified when creating the solver.")
        self.log.info(f"Global seed is {self.seed}")
        self.device = self._pick_device()
        self.log.info(f"Device: {self.device} (ctrflow {'CUDA' if self.device.type == 'cuda' else 'CPU'} run)")

    # ------------------------------------------------------------------------------ construction
    def add(self, layer: Any) -> None:
        """Add an Input, SparseEmbedding, DenseLayer or GroupDenseLayer (in that order)."""
        if self.network is not None:
            raise GraphError("add(): the model is already compiled; add every layer before compile().")
        kind = type(layer).__name__
        self._added.append(layer)
        if kind == "Input":
            names, dims, weights, dense_name, dense_dim, sparse = input_fields(layer)
            width = self._network_dense_dim(dense_dim)
            self.graph.add_input(names, dims, dense_name, width, sparse)
            if width != dense_dim and self.graph.data_spec is not None:
                # the records (and the graph JSON's Input) keep dense_dim; only the network's tensor is wider
                self.graph.data_spec = dataclasses.replace(self.graph.data_spec, dense_dim=dense_dim)
            self.label_weights.update(zip(names, weights, strict=True))
        elif kind == "SparseEmbedding":
            self.graph.add_embedding(embedding_config(layer, self.opt_params, self.graph))
        elif kind == "DenseLayer":
            self.graph.add_layer(*dense_layer_fields(layer))
        elif kind == "GroupDenseLayer":
            for fields in group_layer_fields(layer):
                self.graph.add_layer(*fields)
        else:
            raise TypeError(
                f"Model.add(): expected hugectr.Input, SparseEmbedding, DenseLayer or GroupDenseLayer, received {kind}."
            )

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Plan the stages and optimizers; `compile(loss_names, loss_weights)` sets loss weights."""
        values = bind_arguments(
            "Model.compile",
            (Argument("loss_names", any_value(), None), Argument("loss_weights", any_value(), None)),
            args,
            kwargs,
        )
        names, weights = values["loss_names"], values["loss_weights"]
        if names is not None or weights is not None:
            names, weights = list(names or []), list(weights or [])
            if len(names) != len(weights):
                raise ValueError(
                    f"compile(): Must have the same number of label names and weights, received {len(names)} "
                    f"names and {len(weights)} weights."
                )
            for name in names:
                if name not in self.graph.label_names:
                    raise ValueError(
                        f"compile(): Label name not found: {name}; labels: {list(self.graph.label_names)}."
                    )
            self.label_weights.update(zip(names, (float(w) for w in weights), strict=True))
        self.graph.finalize()
        self.log.banner("Model Compile")
        if self.replicas is not None:
            self.log.info(
                f"Starting {self.world_size} ranks ({self.replicas.spec.device}) for vvgpu={self.solver.vvgpu}"
            )
            self.replicas.build(self.seed, self._construction, self._added, (names, weights))
            return
        metrics = [plain(m) for m in self.solver.metrics_spec]
        # HugeCTR seeds every generator from the global seed: Dropout masks come from torch's generator
        torch.manual_seed(self.seed)
        planner = Planner(device=str(self.device))
        self.network = planner.plan(
            self.graph,
            seed=self.seed,
            metrics=metrics,
            label_weights=self.label_weights,
            rank=self.rank,
            world_size=self.world_size,
        )
        self.runner = LocalRunner(
            self.network,
            model_files.dense_optimizer(self.opt_params, self.network.dense_parameters()),
            mixed_precision=bool(self.solver.use_mixed_precision),
            scaler=float(self.solver.scaler),
            allreduce=allreduce_gradients if self.world_size > 1 else None,
            cuda_graph=bool(self.solver.use_cuda_graph),
        )
        self.log.enabled = self.rank == 0
        if self.solver.enable_tf32_compute and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
        self._check_losses_have_labels()

    def summary(self) -> None:
        self.graph.finalize()
        self.log.info("Graph analysis to resolve tensor dependency")
        title, table = summary_text(self.graph)
        self.log.raw(title)
        self.log.info(table)

    # -------------------------------------------------------------------------------- training
    @on_ranks
    def fit(self, *args: Any, **kwargs: Any) -> None:
        """HugeCTR's training loop (semantics spec §7.5): non-epoch or epoch mode with its log lines."""
        values = bind_arguments("Model.fit", _FIT, args, kwargs)
        runner = self._require_compiled("start the training process")
        repeat = bool(self.solver.repeat_dataset)
        if repeat and values["max_iter"] <= 0:
            raise ValueError(f"fit(): Require max_iter>0 under non-epoch mode, received max_iter={values['max_iter']}.")
        if not repeat and values["num_epochs"] <= 0:
            raise ValueError(
                f"fit(): Require num_epochs>0 under epoch mode, received num_epochs={values['num_epochs']}."
            )
        FitLoop(self, runner, **values).run()

    @on_ranks
    def start_data_reading(self) -> None:
        """Start the training and evaluation readers (non-epoch mode)."""
        self._readers()
        for reader in (self.train_reader, self.eval_reader):
            if reader is not None and not reader.is_started():
                reader.start()

    @on_ranks
    def set_learning_rate(self, lr: float) -> Any:
        runner = self._require_compiled("set the learning rate")
        runner.set_learning_rate(float(lr))
        tables = runner.network.embed.embeddings
        for name, table in tables.items():
            table.frozen = name in self.frozen_embeddings
        return Error_t.Success

    @on_ranks
    def train(self, is_first_batch: bool = True) -> bool:
        """One training step; False when an epoch-mode source is exhausted (nothing trained)."""
        runner = self._require_compiled("train")
        reader = self._readers()[0]
        if not reader.is_started():
            raise RuntimeError("Start the data reader first before calling Model::train(): call start_data_reading().")
        while True:
            batch = reader.next_batch()
            if batch is None:
                return False
            if batch.size == self.solver.batchsize // self.world_size:
                break
            self.log.info(f"train drop incomplete batch. batchsize:{batch.size}")
        runner.train_step(batch)
        return True

    @on_ranks
    def eval(self, is_first_batch: bool = True) -> bool:
        """One evaluation batch into the metrics; False at the end of the evaluation source."""
        runner = self._require_compiled("evaluate")
        reader = self._readers()[1]
        if not reader.is_started():
            reader.start()
        batch = reader.next_batch()
        if batch is None or batch.size == 0:
            return False
        self._eval_batch(runner, batch)
        return True

    def _eval_batch(self, runner: LocalRunner, batch: Batch) -> None:
        runner.eval_step(batch)
        self.last_eval = runner.network.metrics.last_predictions

    @on_ranks
    def get_current_loss(self) -> float:
        return self._require_compiled("read the loss").last_loss

    @on_ranks
    def get_eval_metrics(self) -> list[tuple[str, float]]:
        return self._require_compiled("read metrics").metrics()

    def get_learning_rate_scheduler(self) -> LearningRateScheduler:
        return self.scheduler

    def reset_learning_rate_scheduler(self, *args: Any, **kwargs: Any) -> None:
        values = bind_arguments("Model.reset_learning_rate_scheduler", _SCHEDULE, args, kwargs)
        self.scheduler = self._new_scheduler(*values.values())
        if self.replicas is not None:
            self.replicas.call(("reset_learning_rate_scheduler",), args, kwargs)

    def get_data_reader_train(self) -> IDataReader:
        if self.replicas is not None:
            return RemoteReader(self.replicas, "get_data_reader_train")
        return self._readers()[0]

    def get_data_reader_eval(self) -> IDataReader:
        if self.replicas is not None:
            return RemoteReader(self.replicas, "get_data_reader_eval")
        return self._readers()[1]

    @on_ranks
    def set_source(self, *args: Any, **kwargs: Any) -> None:
        """Epoch mode: `set_source(source, eval_source)` (the ETC form is not built)."""
        if "keyset" in kwargs or len(args) == 3:
            EmbeddingTrainingCache().update()
        if self.solver.repeat_dataset:
            raise RuntimeError("The set source method can only be used under the epoch mode (repeat_dataset=False).")
        values = bind_arguments(
            "Model.set_source", (Argument("source", any_value()), Argument("eval_source", string())), args, kwargs
        )
        source = values["source"][0] if isinstance(values["source"], list) else values["source"]
        train, evaluation = self._readers()
        train.set_source(str(source))
        evaluation.set_source(values["eval_source"])

    # ----------------------------------------------------------------------------- freeze/unfreeze
    @on_ranks
    def freeze_dense(self) -> None:
        self._require_compiled("freeze").dense_frozen = True

    @on_ranks
    def unfreeze_dense(self) -> None:
        self._require_compiled("unfreeze").dense_frozen = False

    @on_ranks
    def freeze_embedding(self, embedding_name: str | None = None) -> None:
        self.frozen_embeddings |= set(self._embedding_names(embedding_name))
        self._apply_freeze()

    @on_ranks
    def unfreeze_embedding(self, embedding_name: str | None = None) -> None:
        self.frozen_embeddings -= set(self._embedding_names(embedding_name))
        self._apply_freeze()

    def _embedding_names(self, name: str | None) -> list[str]:
        names = [n.tops[0] for n in self.graph.embeddings]
        if name is None:
            return names
        if name not in names:
            raise ValueError(f"No such embedding name: {name}; embeddings: {', '.join(names)}.")
        return [name]

    def _apply_freeze(self) -> None:
        if self.network is not None:
            for name, table in self.network.embed.embeddings.items():
                table.frozen = name in self.frozen_embeddings

    # ------------------------------------------------------------------------------------ files
    @on_ranks
    def save_params_to_files(self, prefix: str, iter: int = 0) -> None:
        model_files.save_params(self, prefix, int(iter))

    @on_ranks
    def load_dense_weights(self, dense_model_file: str) -> None:
        model_files.load_dense_weights(self, dense_model_file)

    @on_ranks
    def load_dense_optimizer_states(self, dense_opt_states_file: str) -> None:
        model_files.load_dense_optimizer_states(self, dense_opt_states_file)

    @on_ranks
    def load_sparse_weights(self, sparse_embedding_files: list[str] | dict[str, str]) -> None:
        model_files.load_sparse_weights(self, sparse_embedding_files)

    @on_ranks
    def load_sparse_optimizer_states(self, sparse_opt_states_files: list[str] | dict[str, str]) -> None:
        model_files.load_sparse_optimizer_states(self, sparse_opt_states_files)

    def graph_to_json(self, graph_config_file: str) -> None:
        model_files.graph_to_json(self, graph_config_file)

    def construct_from_json(self, graph_config_file: str, include_dense_network: bool) -> None:
        model_files.construct_from_json(self, graph_config_file, bool(include_dense_network))

    @on_ranks
    def export_predictions(self, output_prediction_file_name: str, output_label_file_name: str) -> None:
        model_files.export_predictions(self, output_prediction_file_name, output_label_file_name)

    # ----------------------------------------------------------------------------- not built yet
    def get_embedding_training_cache(self) -> EmbeddingTrainingCache:
        return EmbeddingTrainingCache()

    def get_incremental_model(self) -> Any:
        raise NotImplementedError(
            "get_incremental_model() needs the embedding training cache, which ctrflow does not build yet; "
            "save_params_to_files() writes the full sparse model."
        )

    def dump_incremental_model_2kafka(self) -> None:
        raise NotImplementedError(
            "dump_incremental_model_2kafka() needs the embedding training cache and a Kafka producer, "
            "which ctrflow does not build yet."
        )

    # --------------------------------------------------------------------------------- helpers
    def _new_scheduler(self, base_lr: Any, warmup: Any, start: Any, steps: Any, power: Any, end: Any) -> Any:
        return LearningRateScheduler(float(base_lr), int(warmup), int(start), int(steps), float(power), float(end))

    def _require_compiled(self, action: str) -> LocalRunner:
        if self.runner is None:
            raise RuntimeError(f"Cannot {action} before calling Model.compile().")
        return self.runner

    def _pick_device(self) -> torch.device:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if CURRENT_RANK.get() is not None:
            return torch.device("cuda:0")  # each rank's worker sees its own GPU first
        return torch.device(f"cuda:{self.solver.vvgpu[0][0]}")

    def _readers(self) -> tuple[FacadeReader, FacadeReader]:
        if self.train_reader is None or self.eval_reader is None:
            self.train_reader, self.eval_reader = self._make_readers()
        return self.train_reader, self.eval_reader

    def _make_readers(self) -> tuple[FacadeReader, FacadeReader]:
        spec = self.graph.data_spec
        if spec is None:
            raise GraphError("The model has no Input yet: add hugectr.Input(...) before reading data.")
        reader = self.reader_params
        kind = READER_KINDS.get(plain(reader.data_reader_type))
        if kind is None:
            raise NotImplementedError(
                f"DataReaderType_t.{plain(reader.data_reader_type)} is not built in ctrflow; use Norm, Raw or Parquet."
            )
        shuffle = kind == "raw"  # formats spec §2: the training batch order of Raw data is shuffled
        if plain(reader.data_reader_type) == "RawAsync":
            shuffle = bool(reader.async_param.shuffle)  # its I/O settings do not apply to ctrflow's Raw reader
        cls = DataReader64 if self.solver.i64_input_key else DataReader32
        common = {
            "key_type": "i64" if self.solver.i64_input_key else "i32",
            "check": "sum" if plain(reader.check_type) == "Sum" else "none",
            "num_workers": int(reader.num_workers),
            "slot_size_array": tuple(int(s) for s in reader.slot_size_array),
            "float_label_dense": bool(reader.float_label_dense),
            "seed": self.seed,
        }
        repeat = bool(self.solver.repeat_dataset)
        train_options = ReaderOptions(
            batch_size=self.solver.batchsize,
            repeat=repeat,
            num_samples=int(reader.num_samples),
            shuffle_batches=shuffle,
            **common,  # type: ignore[arg-type]
        )
        eval_options = ReaderOptions(
            batch_size=self.solver.batchsize_eval,
            repeat=repeat,
            num_samples=int(reader.eval_num_samples),
            **common,  # type: ignore[arg-type]
        )
        shared = {"rank": self.rank, "world_size": self.world_size, "dense_width": self._graph_dense_width()}
        train = cls(kind, reader.source[0], spec, train_options, self.device, **shared)
        cache = {"cache_batches": int(reader.cache_eval_data)}
        evaluation = cls(kind, reader.eval_source, spec, eval_options, self.device, **shared, **cache)
        return train, evaluation

    def _network_dense_dim(self, dense_dim: int) -> int:
        """The dense width the network sees: v3.5's RawAsync reader with `AsyncParam(aligned_type=Alignment_t.Auto)`
        pads it to a multiple of 8 with zero columns; every other reader keeps `dense_dim`."""
        reader = self.reader_params
        if plain(reader.data_reader_type) == "RawAsync" and plain(reader.async_param.aligned_type) == "Auto":
            return (dense_dim + 7) // 8 * 8
        return dense_dim

    def _graph_dense_width(self) -> int:
        """The width of the Input's dense tensor in the graph, which the readers pad their batches to."""
        return int(self.graph.tensors[self.graph.dense_name].shape[1])

    def _check_losses_have_labels(self) -> None:
        keyed = {n.bottoms[1] for n in self.graph.nodes if isinstance(n.module, Loss)}
        missing = [name for name in self.graph.label_names if name not in keyed]
        if len(self.graph.label_names) > 1 and missing:
            raise GraphError(
                f"compile(): Label weight names and losses do not match: labels {missing} have no loss. "
                "Add one loss per label, keyed by the label name (its second bottom)."
            )


class ModelPerfExt(Model):
    """v3.5's MLPerf variant of `Model`; in ctrflow it is the same model."""
