"""Embedding lookup and lookup+update throughput: ctrflow vs torch.nn.EmbeddingBag(sparse=True).

One table, the same keys for both, printed as one table with ratios. ctrflow's lookup includes the
key -> row hash lookup (EmbeddingBag gets row ids directly); "pooled kernel" times ctrflow's pooled sum
alone on precomputed rows. The update cases backpropagate a fixed output gradient (no loss computation).
Bytes counted are the essential ones: every key's row read plus the output written (lookup); plus the
output gradient read and every distinct row (and its optimizer states) read and written once (update).
On CUDA the device copy bandwidth (read + write) is measured in the same run.

    python benchmarks/embedding.py --device cpu
    python benchmarks/embedding.py --device cuda --optimizer adam
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from ctrflow.embedding import EmbeddingConfig, SparseEmbedding, SparseOptimizerConfig
from ctrflow.embedding.pooled_lookup import lookup_rows, pooled_sum
from ctrflow.readers.types import SparseBatch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--rows", type=int, default=None, help="vocabulary (table rows)")
    parser.add_argument("--vec", type=int, default=None, help="embedding_vec_size")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--slots", type=int, default=26)
    parser.add_argument("--nnz", type=int, default=1, help="keys per slot")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument(
        "--update-type", choices=["local", "global"], default="local", help="global also rewrites every row each step"
    )
    parser.add_argument("--power-law", type=float, default=0.0, help="alpha > 0 draws keys ~ u^(1+alpha)")
    parser.add_argument("--iters", type=int, default=None)
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.rows = args.rows or (1 << 22 if cuda else 200_000)
    args.vec = args.vec or (128 if cuda else 64)
    args.batch = args.batch or (65_536 if cuda else 2048)
    args.iters = args.iters or (20 if cuda else 5)
    return args


def make_keys(args: argparse.Namespace, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(args.batch * args.slots * args.nnz, generator=generator, dtype=torch.float64)
    if args.power_law > 0:
        u = u ** (1.0 + args.power_law)
    return (u * args.rows).long().clamp(max=args.rows - 1)


def timed(fn: Callable[[], object], iters: int, device: str) -> float:
    """Seconds per call after two warm-up calls."""
    for _ in range(2):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def copy_bandwidth(device: str) -> float:
    """Device-to-device copy, bytes read + written per second."""
    src = torch.empty(1 << 28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    seconds = timed(lambda: dst.copy_(src), 10, device)
    return 2 * src.numel() * 4 / seconds


def build(args: argparse.Namespace, device: str):
    optimizer = SparseOptimizerConfig(args.optimizer, args.update_type)
    copies = 1 + optimizer.state_copies
    workspace = -(-args.rows * args.vec * 4 * copies // (1 << 20)) + 1
    config = EmbeddingConfig(
        "bench", "data", "distributed", args.slots, args.vec, workspace_size_per_gpu_in_mb=workspace,
        optimizer=optimizer,
    )  # fmt: skip
    ours = SparseEmbedding(config, device=device, generator=torch.Generator().manual_seed(0))
    initial = torch.rand(args.rows, args.vec, generator=torch.Generator().manual_seed(1)) * 0.1 - 0.05
    ours.load(torch.arange(args.rows), initial)
    theirs = nn.EmbeddingBag(args.rows, args.vec, mode="sum", sparse=True).to(device)
    with torch.no_grad():
        theirs.weight.copy_(initial)
    if args.optimizer == "sgd":
        torch_optimizer: torch.optim.Optimizer = torch.optim.SGD(theirs.parameters(), lr=0.01)
    else:
        torch_optimizer = torch.optim.SparseAdam(theirs.parameters(), lr=0.01, eps=1e-7)
    return ours, theirs, torch_optimizer


def measure(args: argparse.Namespace) -> list[tuple[str, float, float, float]]:
    device = args.device
    ours, theirs, torch_optimizer = build(args, device)
    keys = make_keys(args, torch.Generator().manual_seed(2)).to(device)
    offsets = torch.arange(0, keys.numel() + 1, args.nnz, device=device)
    batch = SparseBatch(keys, offsets, args.slots)
    upstream = torch.randn(args.batch, args.slots, args.vec, device=device)
    distinct = int(torch.unique(keys).numel())
    states = 2 if args.optimizer == "adam" else 0
    out_bytes = args.batch * args.slots * args.vec * 4
    lookup_bytes = keys.numel() * args.vec * 4 + out_bytes
    updated_rows = args.rows if args.update_type == "global" else distinct
    update_bytes = lookup_bytes + out_bytes + updated_rows * args.vec * 4 * 2 * (1 + states)
    rows = lookup_rows(ours.shard, keys, insert=False)

    def ours_train() -> None:
        ours(batch).backward(upstream)
        ours.step(0.01)

    def theirs_train() -> None:
        torch_optimizer.zero_grad()
        theirs(keys, offsets[:-1]).view_as(upstream).backward(upstream)
        torch_optimizer.step()

    with torch.no_grad():
        cases = [
            ("lookup ctrflow (hash + pool)", timed(lambda: ours(batch), args.iters, device), lookup_bytes),
            (
                "lookup ctrflow pooled kernel",
                timed(lambda: pooled_sum(ours.shard.weights, rows, offsets), args.iters, device),
                lookup_bytes,
            ),
            ("lookup torch EmbeddingBag", timed(lambda: theirs(keys, offsets[:-1]), args.iters, device), lookup_bytes),
        ]
    cases.append(("lookup+update ctrflow", timed(ours_train, args.iters, device), update_bytes))
    cases.append(
        (
            f"lookup+update torch ({type(torch_optimizer).__name__})",
            timed(theirs_train, args.iters, device),
            update_bytes,
        )
    )
    return [(name, seconds, keys.numel() / seconds, nbytes / seconds / 1e9) for name, seconds, nbytes in cases]


def main() -> None:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA device; run with --device cpu.")
    print(
        f"device={args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}) rows={args.rows} "
        f"vec={args.vec} batch={args.batch} slots={args.slots} nnz={args.nnz} optimizer={args.optimizer} "
        f"update_type={args.update_type} "
        f"power_law={args.power_law} threads={torch.get_num_threads()}"
    )
    results = measure(args)
    copy = copy_bandwidth(args.device) / 1e9 if args.device == "cuda" else None
    baseline = {"lookup": results[2][1], "lookup+update": results[4][1]}
    header = f"{'case':44} {'ms':>9} {'Mrows/s':>9} {'GB/s':>8} {'vs torch':>9}"
    print(header + (f" {'% copy bw':>10}" if copy else ""))
    for name, seconds, rows_per_s, gbps in results:
        ratio = baseline[name.split(" ")[0]] / seconds
        line = f"{name:44} {seconds * 1e3:9.3f} {rows_per_s / 1e6:9.2f} {gbps:8.2f} {ratio:8.2f}x"
        print(line + (f" {100 * gbps / copy:9.1f}%" if copy else ""))
    if copy:
        print(f"device copy bandwidth (read + write): {copy:.1f} GB/s")


if __name__ == "__main__":
    main()
