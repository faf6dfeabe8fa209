"""The dask runner: one `torch.distributed` rank per dask worker (DESIGN decision 6, no MPI).

A HugeCTR script names its devices with `vvgpu` (one list of device ids per host). `ClusterSpec.from_vvgpu`
turns that into ranks, `start_cluster` starts the workers (`distributed.LocalCluster` on CPUs with one
single-threaded worker process per rank, `dask_cuda.LocalCUDACluster` with one worker per GPU, or the
workers of an existing scheduler for several machines) and `run_on_ranks` runs a function on every rank at
once: rank r runs on worker r, inside a process group (gloo on CPU, NCCL on CUDA) whose master is a free
port on the first worker's host.

    spec = ClusterSpec.from_vvgpu([[0, 1]], device="cpu")
    with start_cluster(spec) as cluster:
        losses = run_on_ranks(cluster, train, config)   # train(rank, world_size, config) on 2 ranks

Faults end the run quickly: `run_on_ranks` watches the rank tasks and the worker processes; when a rank
raises or its worker dies, the workers of ranks still running exit (which frees ranks blocked in a
collective), a local cluster is replaced by a fresh one, and a `RuntimeError` names the rank. Collectives
also carry a process-group timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

Device = Literal["cpu", "cuda"]

_POLL_INTERVAL_S = 0.1
_WORKER_CHECK_INTERVAL_S = 0.5
_RESTART_TIMEOUT_S = 20.0


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise ImportError(
            "Running on several ranks needs dask.distributed, which is not installed. "
            "Install it with `pip install ctrflow[dask]`."
        ) from error
    return distributed


@dataclass(slots=True, frozen=True)
class ClusterSpec:
    """Which ranks a run has: one tuple of device ids per host (HugeCTR's `vvgpu`).

    Args:
        hosts: device ids per host; ranks are numbered host by host, so host h's j-th device is rank
            `sum(len(hosts[i]) for i < h) + j` with local rank j.
        device: "cpu" (gloo, one single-threaded worker process per rank) or "cuda" (NCCL, one worker per GPU).
    """

    hosts: tuple[tuple[int, ...], ...]
    device: Device = "cpu"

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f'ClusterSpec: device must be "cpu" or "cuda", received {self.device!r}.')
        if not self.hosts or any(not host for host in self.hosts):
            raise ValueError(
                f"ClusterSpec: every host needs at least one device id, received vvgpu={self.as_vvgpu()}. "
                "Give e.g. [[0, 1]] for two ranks on this machine."
            )
        for index, host in enumerate(self.hosts):
            if len(set(host)) != len(host) or any(d < 0 for d in host):
                raise ValueError(
                    f"ClusterSpec: host {index} lists device ids {list(host)}; ids must be distinct and >= 0."
                )

    @classmethod
    def from_vvgpu(cls, vvgpu: Sequence[Sequence[int]], device: Device = "cpu") -> ClusterSpec:
        """`[[0, 1, 2, 3]]` → four ranks on this host; `[[0, 1], [0, 1]]` → two hosts of two ranks."""
        if isinstance(vvgpu, (str, bytes)) or not all(isinstance(h, Sequence) for h in vvgpu):
            raise TypeError(f"vvgpu must be a list of lists of device ids, e.g. [[0, 1]]; received {vvgpu!r}.")
        return cls(tuple(tuple(int(d) for d in host) for host in vvgpu), device)

    @property
    def world_size(self) -> int:
        return sum(len(host) for host in self.hosts)

    @property
    def num_hosts(self) -> int:
        return len(self.hosts)

    def as_vvgpu(self) -> list[list[int]]:
        return [list(host) for host in self.hosts]


@dataclass
class Cluster:
    """A started set of dask workers, one per rank. Close it (or use `with`) to stop what it started.

    Args:
        spec: the ranks this cluster serves.
        client: the dask client connected to the scheduler.
        local_cluster: the `LocalCluster` / `LocalCUDACluster` this object started, or None for an
            existing scheduler (closing then only closes the client).
        collective_timeout_s: process-group timeout of every collective in `run_on_ranks`.
        start_timeout_s: how long to wait for workers to come up.
    """

    spec: ClusterSpec
    client: Any
    local_cluster: Any = None
    collective_timeout_s: float = 300.0
    start_timeout_s: float = 120.0
    closed: bool = field(default=False, init=False)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.client.close()
        if self.local_cluster is not None:
            self.local_cluster.close()

    def replace_local_cluster(self) -> None:
        """Close the local cluster this object started and start a new one for the same spec."""
        if self.local_cluster is None:
            raise RuntimeError("replace_local_cluster: this cluster was not started here (existing scheduler).")
        distributed = _import_distributed()
        timeout = self.start_timeout_s
        self.client.close()
        self.local_cluster.close()
        self.local_cluster = _start_local_cluster(self.spec, distributed)
        self.client = distributed.Client(self.local_cluster, timeout=timeout)
        self.client.wait_for_workers(self.spec.world_size, timeout=timeout)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def rank_workers(self) -> list[tuple[str, int]]:
        """The worker address and local rank of every rank, in rank order."""
        self.client.wait_for_workers(self.spec.world_size, timeout=60)
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        by_host: dict[str, list[tuple[Any, str]]] = {}
        for address, worker in info.items():
            by_host.setdefault(worker["host"], []).append((worker.get("name", address), address))
        hosts = sorted(by_host)
        expected = [len(h) for h in self.spec.hosts]
        found = [len(by_host[h]) for h in hosts]
        if found != expected:
            per_host = dict(zip(hosts, found, strict=True))
            raise RuntimeError(
                f"The cluster has workers per host {per_host} but vvgpu={self.spec.as_vvgpu()} "
                f"needs {expected} (hosts in sorted address order). Start one worker per device on each host."
            )
        ranks: list[tuple[str, int]] = []
        for host in hosts:
            workers = sorted(by_host[host], key=_worker_sort_key)
            ranks.extend((address, local_rank) for local_rank, (_, address) in enumerate(workers))
        return ranks


def _worker_sort_key(entry: tuple[Any, str]) -> tuple[int, int, str]:
    name, address = entry
    if isinstance(name, int):
        return (0, name, address)
    return (1, 0, f"{name}|{address}")


def start_cluster(
    spec: ClusterSpec,
    scheduler_address: str | None = None,
    *,
    collective_timeout_s: float = 300.0,
    start_timeout_s: float = 120.0,
) -> Cluster:
    """Start (or connect to) one dask worker per rank of `spec`.

    Args:
        spec: the ranks; more than one host needs `scheduler_address`.
        scheduler_address: an existing scheduler (e.g. "tcp://10.0.0.1:8786") whose workers (one per device,
            `dask cuda worker` on GPU hosts) serve the ranks. None starts a local cluster.
        collective_timeout_s: process-group timeout of every collective in `run_on_ranks`.
        start_timeout_s: how long to wait for the workers to come up.
    """
    distributed = _import_distributed()
    if scheduler_address is not None:
        client = distributed.Client(scheduler_address, timeout=start_timeout_s)
        client.wait_for_workers(spec.world_size, timeout=start_timeout_s)
        return Cluster(spec, client, None, collective_timeout_s, start_timeout_s)
    if spec.num_hosts > 1:
        raise ValueError(
            f"vvgpu={spec.as_vvgpu()} spans {spec.num_hosts} hosts but no scheduler address was given. "
            "Start a dask scheduler and one worker per device on each host, then pass scheduler_address."
        )
    local_cluster = _start_local_cluster(spec, distributed)
    client = distributed.Client(local_cluster, timeout=start_timeout_s)
    client.wait_for_workers(spec.world_size, timeout=start_timeout_s)
    return Cluster(spec, client, local_cluster, collective_timeout_s, start_timeout_s)


def _start_local_cluster(spec: ClusterSpec, distributed: Any) -> Any:
    # no dashboard; the scheduler's HTTP server takes a free port instead of 8787 (no port-in-use warning)
    options = {
        "dashboard_address": None,
        "scheduler_kwargs": {"dashboard_address": ":0"},
        "silence_logs": logging.ERROR,
        "host": "127.0.0.1",
    }
    if spec.device == "cpu":
        return distributed.LocalCluster(n_workers=spec.world_size, threads_per_worker=1, processes=True, **options)
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError as error:
        raise ImportError(
            "A CUDA cluster needs dask-cuda, which is not installed. Install it with `pip install ctrflow[cuda]`."
        ) from error
    devices = ",".join(str(d) for d in spec.hosts[0])
    return LocalCUDACluster(CUDA_VISIBLE_DEVICES=devices, threads_per_worker=1, **options)


def run_on_ranks(cluster: Cluster, fn: Callable[..., Any], *args: Any) -> list[Any]:
    """Run `fn(rank, world_size, *args)` on every rank at once and return the results in rank order.

    Each rank runs in its own worker inside a `torch.distributed` process group (gloo on CPU, NCCL on CUDA)
    with `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT` set; the group is destroyed when
    `fn` returns. `fn` and `args` must be picklable (module-level functions; dask uses cloudpickle).

    Raises:
        RuntimeError: a rank raised or its worker died; the message names the rank. The ranks still running
            are stopped and a local cluster is replaced by a fresh one, so the cluster can be used again.
    """
    if cluster.closed:
        raise RuntimeError("run_on_ranks: the cluster is closed; start a new one with start_cluster(spec).")
    client = cluster.client
    workers = cluster.rank_workers()
    master_address, _ = workers[0]
    master_host = client.scheduler_info(n_workers=-1)["workers"][master_address]["host"]
    port = client.submit(reserve_free_port, workers=[master_address], pure=False).result()
    world_size = len(workers)
    backend = "nccl" if cluster.spec.device == "cuda" else "gloo"
    futures = [
        client.submit(
            rank_entry,
            fn,
            rank,
            world_size,
            local_rank,
            (master_host, port, backend, cluster.collective_timeout_s),
            args,
            workers=[address],
            allow_other_workers=False,
            pure=False,
            key=f"ctrflow-rank-{rank}-{port}-{time.monotonic_ns()}",
        )
        for rank, (address, local_rank) in enumerate(workers)
    ]
    failure = _watch_ranks(client, futures, [address for address, _ in workers])
    if failure is not None:
        _stop_ranks(cluster, futures, [address for address, _ in workers])
        raise failure
    return [future.result() for future in futures]


def _watch_ranks(client: Any, futures: list[Any], addresses: list[str]) -> RuntimeError | None:
    """Wait until every rank finished, or return the error of the first rank that failed or died."""
    last_check = time.monotonic()
    while True:
        statuses = [future.status for future in futures]
        failed = [rank for rank, status in enumerate(statuses) if status in ("error", "cancelled", "lost")]
        if failed:
            # A rank's collective fails as soon as a peer dies; name the dead worker's rank, the cause.
            time.sleep(_WORKER_CHECK_INTERVAL_S)
            return _dead_rank_error(client, statuses, addresses) or _rank_error(futures, failed[0])
        if all(status == "finished" for status in statuses):
            return None
        if time.monotonic() - last_check >= _WORKER_CHECK_INTERVAL_S:
            last_check = time.monotonic()
            dead = _dead_rank_error(client, statuses, addresses)
            if dead is not None:
                return dead
        time.sleep(_POLL_INTERVAL_S)


def _rank_error(futures: list[Any], rank: int) -> RuntimeError:
    future = futures[rank]
    if future.status != "error":
        return RuntimeError(f"Rank {rank} of {len(futures)}: its task was {future.status} by the dask scheduler.")
    error = future.exception()
    failure = RuntimeError(f"Rank {rank} of {len(futures)} failed: {type(error).__name__}: {error}")
    failure.__cause__ = error
    return failure


def _dead_rank_error(client: Any, statuses: list[str], addresses: list[str]) -> RuntimeError | None:
    alive = set(client.scheduler_info(n_workers=-1)["workers"])
    for rank, address in enumerate(addresses):
        if address not in alive and statuses[rank] != "finished":
            return RuntimeError(
                f"Rank {rank} of {len(addresses)}: its dask worker {address} died during the run "
                "(killed, crashed or out of memory). The other ranks were stopped; check that worker's log, "
                "then run again."
            )
    return None


def _stop_ranks(cluster: Cluster, futures: list[Any], addresses: list[str]) -> None:
    """Cancel the rank tasks and end the workers of ranks still running.

    A graceful restart waits for running tasks, and a rank blocked in a collective or in long Python work
    never returns, so those workers exit at once. A local cluster is then replaced by a fresh one (nanny
    restarts racing with the next run are avoided); an existing scheduler's nannies restart their workers.
    """
    client = cluster.client
    running = [a for a, f in zip(addresses, futures, strict=True) if f.status not in ("finished", "error")]
    client.cancel(futures, force=True)
    alive = [a for a in running if a in client.scheduler_info(n_workers=-1)["workers"]]
    if alive:
        client.run(_exit_worker_process, workers=alive, wait=False)
    if cluster.local_cluster is not None:
        cluster.replace_local_cluster()
        return
    deadline = time.monotonic() + _RESTART_TIMEOUT_S
    while time.monotonic() < deadline:
        workers = set(client.scheduler_info(n_workers=-1)["workers"])
        if not workers & set(running) and len(workers) >= cluster.spec.world_size:
            return
        time.sleep(_POLL_INTERVAL_S)
    logging.getLogger(__name__).warning(
        "After a failed run, the %d dask workers were not all back within %.0f s (workers without a nanny are "
        "not restarted); start them again before the next run.",
        cluster.spec.world_size,
        _RESTART_TIMEOUT_S,
    )


async def _exit_worker_process() -> None:
    """Runs in the worker's event loop (dask accepts `wait=False` only for coroutines)."""
    os._exit(1)


def reserve_free_port() -> int:
    """A TCP port that is free on this host now (the process-group master listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


_RANK_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def rank_entry(
    fn: Callable[..., Any],
    rank: int,
    world_size: int,
    local_rank: int,
    group: tuple[str, int, str, float],
    args: tuple[Any, ...],
) -> Any:
    """Runs inside worker `rank`: join the process group, run `fn(rank, world_size, *args)`, leave the group."""
    import torch
    import torch.distributed as dist

    master_host, port, backend, timeout_s = group
    saved = {name: os.environ.get(name) for name in _RANK_ENV}
    values = (rank, world_size, local_rank, master_host, port)
    os.environ.update({name: str(value) for name, value in zip(_RANK_ENV, values, strict=True)})
    try:
        if backend == "nccl":
            # dask-cuda puts each worker's own GPU first in CUDA_VISIBLE_DEVICES.
            torch.cuda.set_device(0)
        dist.init_process_group(
            backend, init_method="env://", rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
        )
        return fn(rank, world_size, *args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
