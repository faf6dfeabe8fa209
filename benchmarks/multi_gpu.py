"""Training-step throughput on 1 and several ranks of one host: strong and weak scaling, all-to-all time.

Each rank builds the DLRM shape of `train_step.py` with its share of the embeddings
(`DistributedSparseEmbedding`, slots or keys routed to their owner rank) and all-reduced dense gradients,
and trains on batches already on its device. Strong scaling keeps the global batch; weak scaling keeps
the per-rank batch. The all-to-all share is the time of the collective kernels in a profiled step.

    python benchmarks/multi_gpu.py --ranks 1 2 [--batch 65536] [--rows 1000000] [--device cuda]
    python benchmarks/multi_gpu.py --quick          # tiny CPU shapes on gloo, as the tests run it
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_step import Shape, build_graph, make_batches

from ctrflow.dense.optimizers import SGD
from ctrflow.embedding.communication import allreduce_gradients
from ctrflow.pipeline.cluster import ClusterSpec, run_on_ranks, start_cluster
from ctrflow.pipeline.planner import Planner
from ctrflow.pipeline.runners import LocalRunner


def rank_throughput(rank: int, world_size: int, shape: dict[str, Any], device: str, steps: int) -> dict[str, float]:
    """Runs on every rank: build, warm up, time `steps` steps, profile 2 more; this rank's figures."""
    local = Shape(**shape)
    where = torch.device("cuda:0" if device == "cuda" else "cpu")
    network = Planner(device=str(where)).plan(build_graph(local, "sgd"), seed=1, rank=rank, world_size=world_size)
    dense = SGD(network.dense_parameters(), lr=0.01)
    runner = LocalRunner(network, dense, mixed_precision=device == "cuda", scaler=1.0,
                         allreduce=allreduce_gradients if world_size > 1 else None,
                         autocast_dtype=torch.bfloat16)  # fmt: skip
    runner.set_learning_rate(0.01)
    batches = make_batches(local, 4, where, seed=1 + rank)
    for batch in batches[:2]:
        runner.train_step(batch)
    _synchronize(where)
    start = time.perf_counter()
    for step in range(steps):
        runner.train_step(batches[step % len(batches)])
    _synchronize(where)
    elapsed = time.perf_counter() - start
    collective_ms = _collective_ms(runner, batches, where)
    return {"seconds_per_step": elapsed / steps, "collective_ms_per_step": collective_ms}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _collective_ms(runner: LocalRunner, batches: list[Any], device: torch.device) -> float:
    """Milliseconds per step in collective kernels (NCCL on CUDA, gloo calls on the CPU)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profile:
        for batch in batches[:2]:
            runner.train_step(batch)
        _synchronize(device)
    total_us = 0.0
    for event in profile.key_averages():
        name = event.key.lower()
        if device.type == "cuda" and "nccl" in name and "kernel" in name:
            total_us += event.device_time_total
        elif device.type != "cuda" and name.startswith("gloo:"):
            total_us += event.cpu_time_total
    return total_us / 2 / 1000


def measure(ranks: int, shape: Shape, device: str, steps: int) -> dict[str, float]:
    cluster = start_cluster(ClusterSpec.from_vvgpu([list(range(ranks))], device))  # type: ignore[arg-type]
    try:
        results = run_on_ranks(cluster, rank_throughput, dataclasses.asdict(shape), device, steps)
    finally:
        cluster.close()
    seconds = max(r["seconds_per_step"] for r in results)
    return {
        "samples_per_s": shape.batch * ranks / seconds,
        "ms_per_step": seconds * 1000,
        "collective_ms": max(r["collective_ms_per_step"] for r in results),
    }


def main(argv: list[str] | None = None) -> list[tuple[str, int, int, dict[str, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=65536, help="global batch for strong scaling")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tables", type=int, default=26)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny CPU shapes (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.rows, args.tables, args.dim, args.steps, args.device = 256, 1000, 4, 8, 3, "cpu"
    rows = []
    base = Shape("dlrm", args.batch, args.rows, args.tables, args.dim)
    if args.quick:
        base = dataclasses.replace(base, bottom=(16,), top=(16,))
    for ranks in args.ranks:
        for mode, local_batch in (("strong", args.batch // ranks), ("weak", args.batch)):
            if ranks == 1 and mode == "weak":
                continue
            figures = measure(ranks, dataclasses.replace(base, batch=local_batch), args.device, args.steps)
            rows.append((mode if ranks > 1 else "baseline", ranks, local_batch * ranks, figures))
    one = next(f["samples_per_s"] for m, r, _b, f in rows if r == 1) if 1 in args.ranks else float("nan")
    print(f"{'scaling':<9}{'ranks':>6}{'global batch':>14}{'samples/s':>14}{'ms/step':>10}{'all-to-all ms':>15}"
          f"{'vs 1 rank':>11}")  # fmt: skip
    for mode, ranks, global_batch, f in rows:
        print(f"{mode:<9}{ranks:>6}{global_batch:>14,}{f['samples_per_s']:>14,.0f}{f['ms_per_step']:>10.2f}"
              f"{f['collective_ms']:>15.2f}{f['samples_per_s'] / one:>10.2f}x")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
