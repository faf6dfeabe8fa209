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


def pooled_sum(weights: torch.Tensor, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Sum of the rows of each CSR segment, float32 `[num_segments, V]`; row -1 adds nothing."""
    num_segments, vec = offsets.numel() - 1, weights.shape[1]
    if use_triton(weights):
        from ctrflow.embedding import triton_kernels

        return triton_kernels.pooled_sum(weights, rows, offsets)
    if rows.numel() == 0 or weights.shape[0] == 0:
        return weights.new_zeros(num_segments, vec)
    valid = rows >= 0
    weight_of_key = None if bool(valid.all()) else valid.to(weights.dtype)
    return F.embedding_bag(
        rows.clamp(min=0),
        weights,
        offsets,
        mode="sum",
        include_last_offset=True,
        per_sample_weights=weight_of_key,
    )


@dataclass(slots=True)
class CapturedGradient:
    """The output gradient of one forward, grouped by distinct row.

    Args:
        rows: distinct rows, ascending, int64 `[U]`.
        occurrence_offsets: int64 `[U + 1]`, CSR of `occurrence_segments` per distinct row.
        occurrence_segments: int64 `[n]`, the output segment of every occurrence, grouped by row.
        grad_output: float32 `[num_segments, V]`, gradient of the pooled sums.
    """

    rows: torch.Tensor
    occurrence_offsets: torch.Tensor
    occurrence_segments: torch.Tensor
    grad_output: torch.Tensor


def capture_gradient(
    rows: torch.Tensor, offsets: torch.Tensor, grad_output: torch.Tensor, num_table_rows: int | None = None
) -> CapturedGradient:
    """Deduplicate the rows of one forward and keep the gradient of its pooled output.

    Half-precision gradients are widened to float32 (float64 stays, for references). `num_table_rows`
    below 2^31 lets the sort run on int32 rows, about twice as fast on CUDA.
    """
    num_segments = offsets.numel() - 1
    lengths = offsets[1:] - offsets[:-1]
    segments = torch.repeat_interleave(
        torch.arange(num_segments, device=rows.device), lengths, output_size=rows.numel()
    )
    valid = rows >= 0
    valid_rows = rows[valid]
    if num_table_rows is not None and num_table_rows < 2**31:
        valid_rows = valid_rows.to(torch.int32)
    sorted_rows, order = torch.sort(valid_rows, stable=True)
    distinct, counts = torch.unique_consecutive(sorted_rows, return_counts=True)
    distinct = distinct.to(torch.int64)
    occurrence_offsets = torch.zeros(distinct.numel() + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=occurrence_offsets[1:])
    widened = grad_output.to(torch.promote_types(grad_output.dtype, torch.float32)).contiguous()
    return CapturedGradient(distinct, occurrence_offsets, segments[valid][order], widened)


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


def apply_captured(shard: EmbeddingShard, captured: list[CapturedGradient], lr: float, grad_scale: float) -> None:
    """One optimizer step of `shard` from the gradients captured since the last step."""
    optimizer = shard.config.optimizer
    fusable = optimizer.kind in _FUSED_KINDS or (
        optimizer.kind in _FUSED_LOCAL_KINDS and optimizer.update_type == "local"
    )
    fusable_global = optimizer.kind in _FUSED_LOCAL_KINDS and optimizer.update_type == "global"
    if len(captured) == 1 and (fusable or fusable_global) and use_triton(shard.weights):
        from ctrflow.embedding import triton_kernels

        shard.step_count += 1
        update = triton_kernels.fused_global_update if fusable_global else triton_kernels.fused_update
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
