"""Multi-rank runs of the facade: one model replica per rank on a dask cluster (DESIGN decision 6).

A HugeCTR script runs unchanged with `vvgpu=[[0, 1]]`: the `Model` in the script becomes a driver. It
checks and records every `add()` locally (so `summary()` and `graph_to_json()` need no cluster) and, at
`compile()`, starts one dask worker per rank and builds a replica of the model on each, inside a
`torch.distributed` group. Every later call (`fit`, `train`, `eval`, `save_params_to_files`, `load_*`,
the data readers' `set_source`, ...) runs on all ranks at once and returns rank 0's answer.

A replica is an ordinary `Model` that knows its rank: its embeddings are `DistributedSparseEmbedding`
(keys routed to their owner rank), its dense gradients are all-reduced, each rank reads the global batch
and keeps its own rows (formats spec §1.4), and evaluation gathers the predictions of all ranks so that
metrics are exact over the global batch.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import itertools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ctrflow.pipeline.cluster import Cluster, ClusterSpec, run_on_ranks, start_cluster


@dataclass(frozen=True, slots=True)
class RankContext:
    """The rank a replica runs as, the world size, and the driver's resolved seed."""

    rank: int
    world_size: int
    seed: int


CURRENT_RANK: contextvars.ContextVar[RankContext | None] = contextvars.ContextVar("ctrflow_rank", default=None)
_REPLICAS: dict[int, Any] = {}  # in each worker process: model id -> replica
_ids = itertools.count(1)


class ReplicaSet:
    """The replicas of one driver model, on the ranks of one cluster."""

    def __init__(self, vvgpu: list[list[int]]) -> None:
        device: Literal["cpu", "cuda"] = "cuda" if torch.cuda.is_available() else "cpu"
        self.spec = ClusterSpec.from_vvgpu(vvgpu, device)
        self.cluster: Cluster | None = None
        self.model_id = next(_ids) + os.getpid() * 1000

    def build(self, seed: int, construction: tuple[Any, ...], added: list[Any], compile_args: tuple[Any, ...]) -> None:
        """Start the cluster and build and compile the replicas."""
        with _main_not_reimported():
            if self.cluster is None:
                self.cluster = start_cluster(self.spec)
                atexit.register(self.close)
            run_on_ranks(self.cluster, _build_replica, self.model_id, seed, construction, added, compile_args)

    def call(self, path: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run `replica.<path>(*args, **kwargs)` on every rank; rank 0's result."""
        if self.cluster is None:
            raise RuntimeError(f"Cannot call {'.'.join(path)} before calling Model.compile().")
        with _main_not_reimported():  # a failed run restarts the workers
            return run_on_ranks(self.cluster, _call_replica, self.model_id, path, args, kwargs)[0]

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start worker processes without re-running the user's script in them.

    Spawned processes import the parent's `__main__` module; HugeCTR scripts have no
    `if __name__ == "__main__":` guard, so every worker would run the whole script again. Replicas need
    nothing from `__main__` (they run ctrflow functions on ctrflow objects), so while workers start, the
    main module does not say where it came from.
    """
    main = sys.modules.get("__main__")
    namespace: dict[str, Any] = main.__dict__ if main is not None else {}
    saved: dict[str, Any] = {name: namespace[name] for name in ("__file__", "__spec__") if name in namespace}
    try:
        namespace.pop("__file__", None)
        if "__spec__" in namespace:
            namespace["__spec__"] = None
        yield
    finally:
        namespace.update(saved)


def _build_replica(
    rank: int,
    world_size: int,
    model_id: int,
    seed: int,
    construction: tuple[Any, ...],
    added: list[Any],
    compile_args: tuple[Any, ...],
) -> None:
    from ctrflow.hugectr.model import Model

    token = CURRENT_RANK.set(RankContext(rank, world_size, seed))
    try:
        replica = Model(*construction)
        for layer in added:
            replica.add(layer)
        replica.compile(*compile_args)
    finally:
        CURRENT_RANK.reset(token)
    _REPLICAS[model_id] = replica


def _call_replica(
    rank: int, world_size: int, model_id: int, path: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    target: Any = _REPLICAS[model_id]
    for getter in path[:-1]:  # e.g. ("get_data_reader_train", "set_source")
        target = getattr(target, getter)()
    result = getattr(target, path[-1])(*args, **kwargs)
    return _portable(result)


def _portable(value: Any) -> Any:
    """Results travel back to the driver: tensors move to the CPU, facade objects stay behind."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_portable(v) for v in value)
    if isinstance(value, (int, float, str, bool, type(None))) or hasattr(value, "dtype"):
        return value
    return None
