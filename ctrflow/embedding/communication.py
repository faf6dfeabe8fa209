"""Collectives of the model-parallel embed stage and the data-parallel dense network (DESIGN decision 5).

Everything goes over `torch.distributed` (gloo on CPU, NCCL on CUDA), in the default process group unless
a `group` is given. With no process group, or a group of one rank, every function is the identity.

* `all_to_all` sends rows of variable count to every rank (`all_to_all_single` with split sizes); it is an
  autograd function, so vectors sent forward bring their gradients back in the backward pass.
* `exchange_split_sizes` tells every rank how many rows it will receive from each peer.
* `all_gather_variable` collects tensors of different row counts (dumps of shards of different sizes).
* `allreduce_gradients` averages dense gradients over ranks. HugeCTR's loss is a mean over the *global*
  batch (semantics spec §0). When every rank's loss is the mean over its own B/R samples, the global mean's
  gradient is the sum of the per-rank gradients divided by R: `allreduce_gradients` sums, then divides by R.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist

ProcessGroup = Any  # torch.distributed.ProcessGroup, or None for the default group


def is_distributed(group: ProcessGroup = None) -> bool:
    """True when a process group of more than one rank is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def rank_and_world_size(group: ProcessGroup = None) -> tuple[int, int]:
    """(rank, world size) of this process in `group`; (0, 1) without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def exchange_split_sizes(send_sizes: Sequence[int], device: torch.device, group: ProcessGroup = None) -> list[int]:
    """Given how many rows this rank sends to each rank, return how many it receives from each rank."""
    if not is_distributed(group):
        return list(send_sizes)
    world_size = dist.get_world_size(group)
    if len(send_sizes) != world_size:
        raise ValueError(
            f"exchange_split_sizes: received {len(send_sizes)} split sizes but the process group has "
            f"{world_size} ranks; give one size per rank."
        )
    send = torch.tensor(list(send_sizes), dtype=torch.int64, device=device)
    receive = torch.empty_like(send)
    dist.all_to_all_single(receive, send, group=group)
    return [int(n) for n in receive.tolist()]


def all_to_all_rows(
    tensor: torch.Tensor, send_splits: Sequence[int], recv_splits: Sequence[int], group: ProcessGroup = None
) -> torch.Tensor:
    """Send `tensor[rows of block j]` to rank j; return the blocks received, in rank order (no autograd)."""
    if not is_distributed(group):
        return tensor.clone()
    if sum(send_splits) != tensor.shape[0]:
        raise ValueError(
            f"all_to_all_rows: the send splits {list(send_splits)} add up to {sum(send_splits)} rows but the "
            f"tensor has {tensor.shape[0]}; the splits must cover every row."
        )
    output = tensor.new_empty((sum(recv_splits), *tensor.shape[1:]))
    dist.all_to_all_single(output, tensor.contiguous(), list(recv_splits), list(send_splits), group=group)
    return output


class _AllToAll(torch.autograd.Function):
    """Rows go forward with (send, recv) splits; their gradients come back with the splits swapped."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, tensor: torch.Tensor, send_splits: list[int], recv_splits: list[int], group: ProcessGroup
    ) -> torch.Tensor:
        ctx.send_splits, ctx.recv_splits, ctx.group = send_splits, recv_splits, group
        return all_to_all_rows(tensor, send_splits, recv_splits, group)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:  # type: ignore[override]
        grad = all_to_all_rows(grad_output.contiguous(), ctx.recv_splits, ctx.send_splits, ctx.group)
        return grad, None, None, None


def all_to_all(
    tensor: torch.Tensor, send_splits: Sequence[int], recv_splits: Sequence[int], group: ProcessGroup = None
) -> torch.Tensor:
    """Differentiable variable-split all-to-all over dim 0 (see `all_to_all_rows`).

    Every rank must call it, and later run the backward pass through its output exactly once, together.
    """
    return _AllToAll.apply(tensor, list(send_splits), list(recv_splits), group)


def all_gather_variable(tensor: torch.Tensor, group: ProcessGroup = None) -> list[torch.Tensor]:
    """Every rank's `tensor` (row counts may differ, trailing shape and dtype must agree), in rank order."""
    if not is_distributed(group):
        return [tensor.clone()]
    world_size = dist.get_world_size(group)
    count = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device)
    counts = [torch.empty_like(count) for _ in range(world_size)]
    dist.all_gather(counts, count, group=group)
    sizes = [int(c.item()) for c in counts]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded.contiguous(), group=group)
    return [block[:size] for block, size in zip(gathered, sizes, strict=True)]


def allreduce_gradients(
    params: Iterable[torch.nn.Parameter], *, average: bool = True, group: ProcessGroup = None
) -> None:
    """Sum the gradients of `params` over ranks in place, then divide by the world size when `average`.

    Use `average=True` when each rank's loss is the mean over its local B/R samples (the result is the
    gradient of the mean over the global batch, as HugeCTR's); `average=False` when each rank's loss is
    already divided by the global batch size. Parameters without a gradient on this rank take part with
    zeros (and get a zero gradient), so ranks never disagree on what is reduced.
    """
    trainable = [p for p in params if p.requires_grad]
    if not is_distributed(group) or not trainable:
        return
    world_size = dist.get_world_size(group)
    for p in trainable:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    by_type: dict[tuple[torch.dtype, torch.device], list[torch.nn.Parameter]] = {}
    for p in trainable:
        by_type.setdefault((p.dtype, p.device), []).append(p)
    for group_params in by_type.values():
        grads = [p.grad for p in group_params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        if average:
            flat.div_(world_size)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
