"""The per-shard work of an embedding step: key → row lookup, pooled sum, gradient capture, update.

These functions are separable from pooling across ranks (`sharding.py`): a rank runs them on its own
`ShardRequest`, and the exchange of keys and pooled vectors happens around them.

Forward: `lookup_rows` maps every key occurrence to a row (inserting unseen keys while training), then
`pooled_sum` sums the rows of each output segment. Backward: `capture_gradient` sorts the occurrences by
row (deduplication) and keeps the output gradient; `apply_captured` segment-sums it per distinct row and
runs the sparse optimizer. The table gradient is never dense.

On CPU (and wherever Triton is missing) these are plain torch ops and the reference. On CUDA with Triton
the pooled sum and the segment-sum + optimizer update run as Triton kernels (`triton_kernels.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ctrflow.embedding.kernel_choice import use_triton
from ctrflow.embedding.shard import EmbeddingShard
from ctrflow.embedding.types import SparseOptimizerConfig

_FUSED_KINDS = ("sgd", "adagrad")  # identical for every update type
_FUSED_LOCAL_KINDS = ("momentum_sgd", "nesterov", "adam")


def lookup_rows(
    shard: EmbeddingShard, keys: torch.Tensor, insert: bool, key_slots: torch.Tensor | None = None
) -> torch.Tensor:
    """Row of every key occurrence (duplicates allowed); -1 for keys absent and not inserted.

    New keys of one batch are inserted in ascending key order; a localized key records the smallest slot
    it appeared in (`key_slots`, one per occurrence).
    """
    rows = shard.find_or_insert(keys, insert=False)
    if not insert or shard.is_one_hot:
        return rows
    missing = rows < 0
    if not bool(missing.any()):
        return rows
    new_keys, inverse = torch.unique(keys[missing], return_inverse=True)
    new_slots = None
    if key_slots is not None:
        new_slots = torch.full_like(new_keys, torch.iinfo(torch.int64).max)
        new_slots.scatter_reduce_(0, inverse, key_slots[missing], reduce="amin")
    new_rows = shard.find_or_insert(new_keys, insert=True, slot_ids=new_slots)
    rows[missing] = new_rows[inverse]
    return rows


def pooled_sum(
    weights: torch.Tensor,
    rows: torch.Tensor,
    offsets: torch.Tensor,
    *,
    dtype: torch.dtype | None = None,
    rows_all_present: bool = False,
) -> torch.Tensor:
    """Sum of the rows of each CSR segment `[num_segments, V]`; row -1 adds nothing.

    The sums accumulate in the table's dtype (float32; float64 for references) and are rounded once to
    `dtype` when given (a half dtype spares an autocast consumer its cast copy). `rows_all_present=True`
    promises that no row is -1 (one-hot training), which spares the torch path a check that waits for
    the device.
    """
    num_segments, vec = offsets.numel() - 1, weights.shape[1]
    if use_triton(weights):
        from ctrflow.embedding import triton_kernels

        return triton_kernels.pooled_sum(weights, rows, offsets, dtype=dtype)
    if rows.numel() == 0 or weights.shape[0] == 0:
        return weights.new_zeros(num_segments, vec, dtype=dtype or weights.dtype)
    weight_of_key = None
    if not rows_all_present:
        valid = rows >= 0
        weight_of_key = None if bool(valid.all()) else valid.to(weights.dtype)
    pooled = F.embedding_bag(
        rows.clamp(min=0) if weight_of_key is not None else rows,
        weights,
        offsets,
        mode="sum",
        include_last_offset=True,
        per_sample_weights=weight_of_key,
    )
    return pooled if dtype is None else pooled.to(dtype)


@dataclass(slots=True)
class CapturedGradient:
    """The output gradient of one forward, grouped by distinct row.

    A fixed-size capture (`capture_gradient(..., fixed_size=True)`) has one entry per occurrence: its
    first U entries are the distinct rows and the rest are padding, row -1 with an empty occurrence
    range; a -1 row (a key unseen at eval) is kept as a group of its own. Every consumer skips rows -1.

    Args:
        rows: distinct rows, ascending, int64 `[U]` (fixed size: `[n]`, padded with -1).
        occurrence_offsets: int64 `[U + 1]` (fixed size: `[n + 1]`), CSR of `occurrence_segments` per row.
        occurrence_segments: int64 `[n]`, the output segment of every occurrence, grouped by row.
        grad_output: `[num_segments, V]`, gradient of the pooled sums: float32 (float64 for references),
            or the half dtype it arrived in where the Triton kernels read it (they widen as they load).
    """

    rows: torch.Tensor
    occurrence_offsets: torch.Tensor
    occurrence_segments: torch.Tensor
    grad_output: torch.Tensor


def capture_gradient(
    rows: torch.Tensor,
    offsets: torch.Tensor,
    grad_output: torch.Tensor,
    num_table_rows: int | None = None,
    *,
    fixed_size: bool = False,
) -> CapturedGradient:
    """Deduplicate the rows of one forward and keep the gradient of its pooled output.

    Half-precision gradients are widened to float32 unless the Triton kernels will read them (float64
    stays, for references). `num_table_rows` below 2^31 lets the sort run on int32 rows, about twice as
    fast on CUDA. `fixed_size=True` gives the padded capture described in `CapturedGradient`, whose sizes
    do not depend on the data, so that nothing waits for the device; the updates it leads to are the same.
    """
    num_segments = offsets.numel() - 1
    lengths = offsets[1:] - offsets[:-1]
    segments = torch.repeat_interleave(
        torch.arange(num_segments, device=rows.device), lengths, output_size=rows.numel()
    )
    if not use_triton(grad_output) or grad_output.dtype not in (torch.float16, torch.bfloat16):
        grad_output = grad_output.to(torch.promote_types(grad_output.dtype, torch.float32))
    grad_output = grad_output.contiguous()
    narrow = num_table_rows is not None and num_table_rows < 2**31
    if fixed_size:
        return _fixed_size_capture(rows, segments, grad_output, narrow)
    valid = rows >= 0
    valid_rows = rows[valid]
    if narrow:
        valid_rows = valid_rows.to(torch.int32)
    sorted_rows, order = torch.sort(valid_rows, stable=True)
    distinct, counts = torch.unique_consecutive(sorted_rows, return_counts=True)
    distinct = distinct.to(torch.int64)
    occurrence_offsets = torch.zeros(distinct.numel() + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=occurrence_offsets[1:])
    return CapturedGradient(distinct, occurrence_offsets, segments[valid][order], grad_output)


def _fixed_size_capture(
    rows: torch.Tensor, segments: torch.Tensor, grad_output: torch.Tensor, narrow: bool
) -> CapturedGradient:
    """`capture_gradient` without data-dependent sizes: groups found by flags and prefix sums."""
    n, device = rows.numel(), rows.device
    if n == 0:
        empty_offsets = torch.zeros(1, dtype=torch.int64, device=device)
        return CapturedGradient(rows.new_empty(0), empty_offsets, segments, grad_output)
    sorted_rows, order = torch.sort(rows.to(torch.int32) if narrow else rows, stable=True)
    sorted_rows = sorted_rows.to(torch.int64)
    starts_group = torch.ones(n, dtype=torch.bool, device=device)
    torch.ne(sorted_rows[1:], sorted_rows[:-1], out=starts_group[1:])
    group = torch.cumsum(starts_group, 0) - 1
    # the first occurrence of each group writes its position to entry `group`; the other occurrences write
    # to a scratch entry of their own past n + 1, so no entry is written twice (no atomics, no hot address).
    # Entries from the number of groups to n keep n: empty ranges.
    positions = torch.arange(n, device=device)
    scratch = torch.full((2 * n + 1,), n, dtype=torch.int64, device=device)
    scratch.scatter_(0, torch.where(starts_group, group, positions + n + 1), positions)
    occurrence_offsets = scratch[: n + 1]
    starts = occurrence_offsets[:-1]
    distinct = torch.where(starts < n, sorted_rows.index_select(0, starts.clamp(max=n - 1)), -1)
    return CapturedGradient(distinct, occurrence_offsets, segments.index_select(0, order), grad_output)


def summed_gradients(captured: CapturedGradient) -> torch.Tensor:
    """Σ of the output gradient over the occurrences of each distinct row, float32 `[U, V]`."""
    if use_triton(captured.grad_output):
        from ctrflow.embedding import triton_kernels

        return triton_kernels.segment_sum(captured)
    vec = captured.grad_output.shape[1]
    if captured.rows.numel() == 0:
        return captured.grad_output.new_zeros(0, vec)
    # a segment sum of gathered rows is exactly what embedding_bag computes, without materialising [n, V]
    return F.embedding_bag(
        captured.occurrence_segments,
        captured.grad_output,
        captured.occurrence_offsets,
        mode="sum",
        include_last_offset=True,
    )


def splits_global_update(shard: EmbeddingShard) -> bool:
    """Whether the Triton kernels update `shard` as touched rows + a separate pass over the untouched rows
    (Update_t.Global of Adam, MomentumSGD and Nesterov on CUDA); `start_untouched_update` may then run early."""
    return _global_of_fused_kind(shard.config.optimizer) and use_triton(shard.weights)


def _global_of_fused_kind(optimizer: SparseOptimizerConfig) -> bool:
    return optimizer.kind in _FUSED_LOCAL_KINDS and optimizer.update_type == "global"


def start_untouched_update(shard: EmbeddingShard, touched_rows: torch.Tensor, lr: float) -> None:
    """The untouched-row pass of the coming step (its step count is `shard.step_count + 1`), on the current
    stream; `apply_captured(..., untouched_done=True)` then updates only the touched rows."""
    from ctrflow.embedding import triton_kernels

    config, step = shard.config.optimizer, shard.step_count + 1
    triton_kernels.untouched_update(config, shard.weights, shard.states, touched_rows, lr, step)


def apply_captured(
    shard: EmbeddingShard,
    captured: list[CapturedGradient],
    lr: float,
    grad_scale: float,
    *,
    untouched_done: bool = False,
) -> None:
    """One optimizer step of `shard` from the gradients captured since the last step.

    `untouched_done`: `start_untouched_update` already ran this step's pass over the untouched rows.
    """
    optimizer = shard.config.optimizer
    fusable = optimizer.kind in _FUSED_KINDS or (
        optimizer.kind in _FUSED_LOCAL_KINDS and optimizer.update_type == "local"
    )
    fusable_global = _global_of_fused_kind(optimizer)
    if untouched_done and not (len(captured) == 1 and splits_global_update(shard)):
        raise RuntimeError(
            f'Embedding "{shard.config.name}": the untouched rows were updated at the forward, but the step '
            f"has {len(captured)} captured backward passes; announce a step only before its single forward."
        )
    if len(captured) == 1 and (fusable or fusable_global) and use_triton(shard.weights):
        from ctrflow.embedding import triton_kernels

        shard.step_count += 1
        whole = fusable_global and not untouched_done
        update = triton_kernels.fused_global_update if whole else triton_kernels.fused_update
        update(optimizer, shard.weights, shard.states, captured[0], lr, grad_scale, shard.step_count)
        return
    rows, grads = merged_gradients(captured, shard.config.embedding_vec_size, shard.device)
    shard.apply_gradients(rows, grads * grad_scale, lr)


def merged_gradients(
    captured: list[CapturedGradient], vec: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows and summed gradients over several captures (e.g. gradient accumulation)."""
    if not captured:
        return torch.empty(0, dtype=torch.int64, device=device), torch.empty(0, vec, device=device)
    if len(captured) == 1:
        return captured[0].rows, summed_gradients(captured[0])
    rows = torch.cat([c.rows for c in captured])
    grads = torch.cat([summed_gradients(c) for c in captured])
    distinct, inverse = torch.unique(rows, return_inverse=True)
    return distinct, grads.new_zeros(distinct.numel(), vec).index_add_(0, inverse, grads)
