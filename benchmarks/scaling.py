"""CPU samples/s of one embedding + MLP training step on 1 and on 2 ranks (dask workers, gloo).

ctrflow: `DistributedSparseEmbedding` (model-parallel, keys all-to-all) + an MLP whose gradients are
averaged with `allreduce_gradients`. Plain PyTorch counterpart: `nn.EmbeddingBag(sparse=True)` over the same
keys (taken modulo its row count) + the same MLP, data-parallel under `DistributedDataParallel`.
Both run on the same `LocalCluster` workers (one single-threaded process per rank), through `run_on_ranks`.

    python benchmarks/scaling.py [--batch 4096] [--steps 20] [--slots 26] [--dim 16]

Samples/s = global batch × timed steps / the slowest rank's time. On a machine with 2 cores each rank has
one core; other processes on the machine make the figures noisy: repeat a run before quoting it.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from ctrflow.embedding.communication import allreduce_gradients
from ctrflow.embedding.distributed import DistributedSparseEmbedding, local_slice
from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig
from ctrflow.pipeline.cluster import ClusterSpec, run_on_ranks, start_cluster
from ctrflow.readers.types import SparseBatch

VOCABULARY = 200_000
WARMUP_STEPS = 3


def make_batches(batch: int, slots: int, count: int = 4) -> list[tuple[SparseBatch, torch.Tensor, torch.Tensor]]:
    """Global batches: one key per slot drawn from a power law over VOCABULARY keys, labels, dense features."""
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        ranks = (torch.rand(batch * slots, generator=gen) ** 3 * VOCABULARY).long()
        keys = ranks * 7919 % VOCABULARY + VOCABULARY * (torch.arange(batch * slots) % slots)
        sparse = SparseBatch(keys, torch.arange(batch * slots + 1), slots)
        batches.append((sparse, torch.randint(0, 2, (batch, 1), generator=gen).float(), torch.randn(batch, 13)))
    return batches


def make_mlp(slots: int, dim: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(slots * dim + 13, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 1))


def timed(step, steps: int) -> float:
    for _ in range(WARMUP_STEPS):
        step()
    torch.distributed.barrier() if torch.distributed.is_initialized() else None
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def ctrflow_rank(rank: int, world_size: int, batch: int, slots: int, dim: int, steps: int) -> float:
    optimizer = SparseOptimizerConfig(kind="sgd")
    config = EmbeddingConfig(
        "emb", "data1", "distributed", slots, dim, workspace_size_per_gpu_in_mb=256, optimizer=optimizer
    )
    embedding = DistributedSparseEmbedding(config)
    mlp = make_mlp(slots, dim)
    sgd = torch.optim.SGD(mlp.parameters(), lr=0.01)
    data = [
        (local_slice(s, rank, world_size), y.chunk(world_size)[rank], d.chunk(world_size)[rank])
        for s, y, d in make_batches(batch, slots)
    ]
    counter = [0]

    def step() -> None:
        sparse, labels, dense = data[counter[0] % len(data)]
        counter[0] += 1
        features = torch.cat([embedding(sparse).flatten(1), dense], 1)
        F.binary_cross_entropy_with_logits(mlp(features), labels).backward()
        allreduce_gradients(mlp.parameters())
        embedding.step(0.01)
        sgd.step()
        sgd.zero_grad()

    return timed(step, steps)


class PlainModel(nn.Module):
    def __init__(self, slots: int, dim: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.EmbeddingBag(VOCABULARY, dim, mode="sum", sparse=True)
        self.mlp = make_mlp(slots, dim)
        self.slots = slots

    def forward(self, keys: torch.Tensor, offsets: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        pooled = self.embedding(keys % VOCABULARY, offsets[:-1]).view(dense.shape[0], -1)
        return self.mlp(torch.cat([pooled, dense], 1))


def plain_rank(rank: int, world_size: int, batch: int, slots: int, dim: int, steps: int) -> float:
    model: nn.Module = PlainModel(slots, dim)
    if world_size > 1:
        model = nn.parallel.DistributedDataParallel(model)
    sgd = torch.optim.SGD(model.parameters(), lr=0.01)
    data = [
        (local_slice(s, rank, world_size), y.chunk(world_size)[rank], d.chunk(world_size)[rank])
        for s, y, d in make_batches(batch, slots)
    ]
    counter = [0]

    def step() -> None:
        sparse, labels, dense = data[counter[0] % len(data)]
        counter[0] += 1
        F.binary_cross_entropy_with_logits(model(sparse.keys, sparse.offsets, dense), labels).backward()
        sgd.step()
        sgd.zero_grad()

    return timed(step, steps)


def measure(world_size: int, args: argparse.Namespace) -> tuple[float, float]:
    spec = ClusterSpec.from_vvgpu([list(range(world_size))])
    with start_cluster(spec) as cluster:
        shape = (args.batch, args.slots, args.dim, args.steps)
        ours = max(run_on_ranks(cluster, ctrflow_rank, *shape))
        theirs = max(run_on_ranks(cluster, plain_rank, *shape))
    samples = args.batch * args.steps
    return samples / ours, samples / theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096, help="global batch size")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--slots", type=int, default=26)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args()
    rows = {ranks: measure(ranks, args) for ranks in (1, 2)}
    print(f"embedding+MLP training step, CPU, global batch {args.batch}, {args.slots} slots x {args.dim}, SGD")
    print(
        f"{'ranks':>5} | {'ctrflow samples/s':>17} | {'plain torch samples/s':>21} | {'ratio':>5} | {'ctrflow 2/1':>11}"
    )
    for ranks, (ours, theirs) in rows.items():
        speedup = ours / rows[1][0]
        print(f"{ranks:>5} | {ours:>17,.0f} | {theirs:>21,.0f} | {ours / theirs:>5.2f} | {speedup:>11.2f}")


if __name__ == "__main__":
    main()
