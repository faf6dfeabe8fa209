"""The native Python DSL: symbolic tensors and callable layers over the same graph as the facade.

    import ctrflow as cf

    x = cf.Input(label=("label", 1), dense=("dense", 13), sparse={"data1": cf.Sparse(slots=26, nnz=1)})
    emb = cf.Embedding(x["data1"], dim=16, combiner="sum", kind="distributed", workspace_mb=64)
    h = cf.layers.Concat()([cf.layers.Reshape(416)(emb), x["dense"]])
    logit = cf.layers.InnerProduct(1)(cf.layers.ReLU()(cf.layers.InnerProduct(256)(h)))
    model = cf.Model(x, cf.losses.BinaryCrossEntropyLoss()(logit, x["label"]), optimizer=cf.optim.Adam(lr=1e-3))
    model.fit(cf.data.Norm("data/file_list.txt", eval_source="data/file_list_test.txt"), max_iter=1000)

Layers are looked up by their HugeCTR name in the registry, so third-party layers work the same way. A
layer's first positional argument is its first hyper-parameter (`InnerProduct(1024)` → `num_output`).
`hugectr.Model` records the same graph by tensor names; both run on the planner and the local runner.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig
from ctrflow.pipeline.graph import Graph
from ctrflow.pipeline.planner import Planner
from ctrflow.pipeline.registry import LAYERS
from ctrflow.pipeline.runners import LocalRunner
from ctrflow.readers import Loader, make_reader
from ctrflow.readers.types import ReaderKind, ReaderOptions, SparseInputSpec


@dataclass(frozen=True, slots=True)
class Tensor:
    """A symbolic tensor: a name in a graph."""

    graph: Graph
    name: str

    @property
    def shape(self) -> tuple[int, ...]:
        return self.graph.tensors[self.name].shape


@dataclass(frozen=True, slots=True)
class Sparse:
    """A sparse input: `slots` slots of at most `nnz` keys each."""

    slots: int
    nnz: int | Sequence[int] = 1
    fixed_length: bool = False


class Input:
    """The data a model reads; index it by name to get its symbolic tensors."""

    def __init__(self, label: tuple[str, int], dense: tuple[str, int], sparse: dict[str, Sparse], batch_size: int = 1):
        self.graph = Graph(batch_size)
        specs = [
            SparseInputSpec(
                name, s.slots, tuple(s.nnz) if isinstance(s.nnz, Sequence) else (s.nnz,) * s.slots, s.fixed_length
            )
            for name, s in sparse.items()
        ]
        self.graph.add_input([label[0]], [label[1]], dense[0], dense[1], specs)

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.graph.tensors:
            raise KeyError(f"Input has no tensor {name!r}; it has {', '.join(self.graph.tensors)}.")
        return Tensor(self.graph, name)


_counter = itertools.count(1)


def Embedding(
    keys: Tensor, dim: int, *, combiner: str = "sum", kind: str = "distributed", workspace_mb: int = 64,
    slot_size_array: Sequence[int] = (), optimizer: SparseOptimizerConfig | None = None, name: str | None = None,
) -> Tensor:  # fmt: skip
    """A sparse embedding of the sparse input `keys`: `[batch, slots, dim]`."""
    name = name or f"embedding{next(_counter)}"
    config = EmbeddingConfig(name, keys.name, kind, keys.shape[1], dim, combiner,  # type: ignore[arg-type]
                             workspace_mb, tuple(slot_size_array), optimizer or SparseOptimizerConfig())  # fmt: skip
    keys.graph.add_embedding(config)
    return Tensor(keys.graph, name)


class LayerCall:
    """A configured layer waiting for its inputs: `cf.layers.InnerProduct(256)(x)`."""

    def __init__(self, layer_type: str, *args: Any, name: str | None = None, **params: Any) -> None:
        cls = LAYERS.get(layer_type)
        positional = [p.name for p in inspect.signature(cls).parameters.values()
                      if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "name"]  # fmt: skip
        if len(args) > len(positional):
            raise TypeError(f"{layer_type} takes at most {len(positional)} hyper-parameters ({', '.join(positional)}).")
        params.update(zip(positional, args, strict=False))
        self.layer_type, self.params, self.name = layer_type, params, name

    def __call__(self, *inputs: Tensor | Sequence[Tensor]) -> Any:
        tensors: list[Tensor] = []
        for item in inputs:
            tensors.extend([item] if isinstance(item, Tensor) else item)
        if not tensors:
            raise TypeError(f"{self.layer_type}: call it on at least one tensor.")
        graph = tensors[0].graph
        base = self.name or f"{self.layer_type.lower()}{next(_counter)}"
        node = graph.add_layer(self.layer_type, [t.name for t in tensors], [base], self.params)
        outputs = [Tensor(graph, top) for top in node.tops]
        return outputs[0] if len(outputs) == 1 else outputs


class _LayerNamespace:
    """`cf.layers.<HugeCTR layer name>(...)` for every registered layer; `cf.losses` alike."""

    def __getattr__(self, layer_type: str) -> Any:
        if layer_type.startswith("_"):
            raise AttributeError(layer_type)
        LAYERS.get(layer_type)  # raises with suggestions when unknown
        return lambda *args, **params: LayerCall(layer_type, *args, **params)


layers = _LayerNamespace()
losses = _LayerNamespace()


@dataclass(slots=True)
class Data:
    """A dataset: format, training source and evaluation source, read with `ReaderOptions`."""

    kind: ReaderKind
    source: str
    eval_source: str = ""
    options: dict[str, Any] = field(default_factory=dict)


class data:
    @staticmethod
    def Norm(source: str, eval_source: str = "", **options: Any) -> Data:
        return Data("norm", source, eval_source, options)

    @staticmethod
    def Raw(source: str, eval_source: str = "", **options: Any) -> Data:
        return Data("raw", source, eval_source, options)

    @staticmethod
    def Parquet(source: str, eval_source: str = "", **options: Any) -> Data:
        return Data("parquet", source, eval_source, options)


class optim:
    @staticmethod
    def Adam(lr: float = 0.001, **hyper: Any) -> tuple[str, float, dict[str, Any]]:
        return ("Adam", lr, hyper)

    @staticmethod
    def SGD(lr: float = 0.01, **hyper: Any) -> tuple[str, float, dict[str, Any]]:
        return ("SGD", lr, hyper)


class Model:
    """A model from its input and its loss tensor(s); `fit` trains it and returns the evaluation history."""

    def __init__(self, inputs: Input, loss: Tensor | Sequence[Tensor], optimizer: tuple[str, float, dict[str, Any]],
                 *, seed: int = 1, device: str | None = None) -> None:  # fmt: skip
        from ctrflow.dense import optimizers as dense_optimizers

        self.graph = inputs.graph
        self.network = Planner(device=device).plan(self.graph, seed=seed)
        kind, self.lr, hyper = optimizer
        parameters = self.network.dense_parameters()
        dense = getattr(dense_optimizers, kind)(parameters, lr=self.lr, **hyper) if parameters else None
        self.runner = LocalRunner(self.network, dense)

    def fit(self, dataset: Data, *, batch_size: int = 1024, max_iter: int = 1000, eval_interval: int = 0,
            eval_batches: int = 16) -> list[tuple[int, float]]:  # fmt: skip
        """Train for `max_iter` steps; evaluate AUC every `eval_interval` steps (and at the end)."""
        spec = self.graph.data_spec
        if spec is None:
            raise ValueError("The model has no Input.")
        options = ReaderOptions(batch_size=batch_size, **dataset.options)
        train = Loader(make_reader(dataset.kind, dataset.source, spec, options), self.runner.device)
        history: list[tuple[int, float]] = []
        self.runner.set_learning_rate(self.lr)
        try:
            for step, batch in zip(range(1, max_iter + 1), train, strict=False):
                self.runner.train_step(batch)
                if dataset.eval_source and ((eval_interval and step % eval_interval == 0) or step == max_iter):
                    history.append((step, self.evaluate(dataset, batch_size, eval_batches)))
        finally:
            train.close()
        return history

    @torch.no_grad()
    def evaluate(self, dataset: Data, batch_size: int = 1024, batches: int = 16) -> float:
        spec = self.graph.data_spec
        if spec is None:
            raise ValueError("The model has no Input.")
        options = ReaderOptions(batch_size=batch_size, **{**dataset.options, "repeat": False})
        loader = Loader(make_reader(dataset.kind, dataset.eval_source, spec, options), self.runner.device)
        try:
            for _, batch in zip(range(batches), loader, strict=False):
                self.runner.eval_step(batch)
        finally:
            loader.close()
        return dict(self.runner.metrics())["AUC"]
