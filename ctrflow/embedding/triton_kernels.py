"""Triton kernels of the embedding engine for CUDA tensors (imported lazily: triton is an extra).

* `find_rows`: the key index lookup, one probing loop per key in registers.
* `pooled_sum`: a program sums the rows of a tile of output segments (several segments × a column block,
  so that many row reads are in flight per program).
* `segment_sum`: a program sums the output gradient over the occurrences of a tile of distinct rows (the
  deduplicated backward). A row with more than `CHUNK_SIZE` occurrences (a hot key of a power-law batch)
  is first summed by one program per chunk of `CHUNK_SIZE` occurrences into a float32 buffer of partial
  sums (`_chunk_sum_kernel`); its row program then adds its chunks' partials instead of its occurrences,
  so no program walks more than max(`CHUNK_SIZE`, number of chunks) items. No atomics: the result is
  deterministic, and rows with at most `CHUNK_SIZE` occurrences are summed exactly as without chunks.
* `fused_update`: the same segment sum followed in registers by the sparse optimizer update of that row
  (SGD, AdaGrad; MomentumSGD, Nesterov and Adam with Update_t.Local), so the summed gradient is never
  written to memory.
* `fused_global_update`: Update_t.Global of Adam, MomentumSGD and Nesterov: the touched rows get the
  fused update above (their Global formulas equal the Local ones), then one whole-table pass applies the
  zero-gradient step to every other row, so each row is read and written once per step.
  LazyGlobal uses `segment_sum` plus the torch reference update.

`optimizers.py` and `pooled_lookup.py`'s torch paths are the reference these kernels are tested against.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ctrflow.embedding.optimizers import adam_step_size
from ctrflow.embedding.pooled_lookup import CapturedGradient
from ctrflow.embedding.types import SparseOptimizerConfig

_OPT_CODES = {"none": 0, "sgd": 1, "adagrad": 2, "momentum_sgd": 3, "nesterov": 4, "adam": 5}
_MAX_BLOCK = 256
CHUNK_SIZE = 64  # occurrences one program sums; rows with more are split into chunks (see the module docstring)


@triton.jit
def _find_rows_kernel(keys_ptr, buckets_ptr, out_ptr, n, golden, shift, mask, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    active = offsets < n
    key = tl.load(keys_ptr + offsets, mask=active, other=0)
    # the same Fibonacci hash as KeyIndex._home: wrapping multiply, arithmetic shift, then the bucket mask
    position = ((key * golden) >> shift) & mask
    rows = tl.full([BLOCK], -1, dtype=tl.int64)
    while tl.max(active.to(tl.int32), axis=0) > 0:
        bucket_key = tl.load(buckets_ptr + 2 * position, mask=active, other=0)
        bucket_row = tl.load(buckets_ptr + 2 * position + 1, mask=active, other=-1)
        occupied = active & (bucket_row >= 0)
        rows = tl.where(occupied & (bucket_key == key), bucket_row, rows)
        active = occupied & (bucket_key != key)
        position = (position + 1) & mask
    tl.store(out_ptr + offsets, rows, mask=offsets < n)


def find_rows(keys: torch.Tensor, buckets: torch.Tensor, golden: int, shift: int) -> torch.Tensor:
    """KeyIndex.find with one probing loop per key in registers (no round trips to the host)."""
    rows = torch.empty_like(keys)
    block = 256
    grid = (triton.cdiv(keys.numel(), block),)
    _find_rows_kernel[grid](keys, buckets, rows, keys.numel(), golden, shift, buckets.shape[0] - 1, BLOCK=block)
    return rows


def _tiles(vec: int) -> tuple[int, int]:
    """(segments or rows per program, columns per program): about 2048 floats a tile."""
    block_v = min(triton.next_power_of_2(vec), _MAX_BLOCK)
    return max(1, min(64, 2048 // block_v)), block_v


@triton.jit
def _pooled_sum_kernel(
    rows_ptr,
    offsets_ptr,
    weights_ptr,
    out_ptr,
    num_segments,
    last_key,
    vec,
    BLOCK_S: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    segments = tl.program_id(0).to(tl.int64) * BLOCK_S + tl.arange(0, BLOCK_S)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    in_range = segments < num_segments
    in_row = cols < vec
    start = tl.load(offsets_ptr + segments, mask=in_range, other=0)
    length = tl.load(offsets_ptr + segments + 1, mask=in_range, other=0) - start
    acc = tl.zeros([BLOCK_S, BLOCK_V], dtype=tl.float32)
    for j in range(0, tl.max(length, axis=0)):
        # clamped index instead of a masked load: Triton 3.6 miscompiles the masked form for some tiles
        row = tl.load(rows_ptr + tl.minimum(start + j, last_key))
        present = ((j < length) & (row >= 0))[:, None] & in_row[None, :]  # row -1 (unseen at eval) adds nothing
        acc += tl.load(weights_ptr + row[:, None] * vec + cols[None, :], mask=present, other=0.0)
    out = acc.to(out_ptr.dtype.element_ty)  # float32 sums rounded once (to a half dtype for autocast consumers)
    tl.store(out_ptr + segments[:, None] * vec + cols[None, :], out, mask=in_range[:, None] & in_row[None, :])


def pooled_sum(
    weights: torch.Tensor, rows: torch.Tensor, offsets: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    num_segments, vec = offsets.numel() - 1, weights.shape[1]
    out = torch.empty(num_segments, vec, dtype=dtype or torch.float32, device=weights.device)
    if num_segments == 0:
        return out
    block_s, block_v = _tiles(vec)
    grid = (triton.cdiv(num_segments, block_s), triton.cdiv(vec, block_v))
    last_key = max(rows.numel() - 1, 0)
    _pooled_sum_kernel[grid](rows, offsets, weights, out, num_segments, last_key, vec, BLOCK_S=block_s, BLOCK_V=block_v)
    return out


@triton.jit
def _chunk_sum_kernel(
    chunk_rows_ptr,
    chunk_start_ptr,
    occ_offsets_ptr,
    occ_segments_ptr,
    grad_ptr,
    partials_ptr,
    num_rows,
    last_occurrence,
    vec,
    chunk_size,
    BLOCK_O: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    chunk = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    in_row = cols < vec
    index = tl.load(chunk_rows_ptr + chunk)
    real = index < num_rows  # the grid is an upper bound: programs past the last chunk do nothing
    index = tl.minimum(index, num_rows - 1)
    begin = tl.load(occ_offsets_ptr + index) + (chunk - tl.load(chunk_start_ptr + index)) * chunk_size
    length = tl.where(real, tl.minimum(tl.load(occ_offsets_ptr + index + 1) - begin, chunk_size), 0)
    acc = tl.zeros([BLOCK_O, BLOCK_V], dtype=tl.float32)
    for j in range(0, length, BLOCK_O):  # BLOCK_O independent occurrences in flight per iteration
        occurrence = j + tl.arange(0, BLOCK_O)
        segment = tl.load(occ_segments_ptr + tl.minimum(begin + occurrence, last_occurrence))  # see _pooled_sum_kernel
        taken = (occurrence < length)[:, None] & in_row[None, :]
        grad = tl.load(grad_ptr + segment[:, None] * vec + cols[None, :], mask=taken, other=0.0)
        acc += grad.to(tl.float32)
    # a real chunk has length > 0; a vector mask, as Triton 3.6's interpreter rejects `scalar & vector`
    tl.store(partials_ptr + chunk * vec + cols, tl.sum(acc, axis=0), mask=in_row & (tl.zeros_like(cols) < length))


@triton.jit
def _segment_update_kernel(
    rows_ptr,
    occ_offsets_ptr,
    occ_segments_ptr,
    grad_ptr,
    chunk_start_ptr,
    partials_ptr,
    weights_ptr,
    state0_ptr,
    state1_ptr,
    summed_ptr,
    num_rows,
    last_occurrence,
    vec,
    grad_scale,
    lr,
    beta1,
    beta2,
    epsilon,
    factor,
    step_size,
    OPT: tl.constexpr,
    HAS_CHUNKS: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    index = tl.program_id(0).to(tl.int64) * BLOCK_S + tl.arange(0, BLOCK_S)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    in_range = index < num_rows
    tile = in_range[:, None] & (cols < vec)[None, :]
    start = tl.load(occ_offsets_ptr + index, mask=in_range, other=0)
    count = tl.load(occ_offsets_ptr + index + 1, mask=in_range, other=0) - start
    items = count
    if HAS_CHUNKS:  # a row split into chunks adds its chunks' partial sums instead of its occurrences
        first_chunk = tl.load(chunk_start_ptr + index, mask=in_range, other=0)
        num_chunks = tl.load(chunk_start_ptr + index + 1, mask=in_range, other=0) - first_chunk
        chunked = num_chunks > 0
        items = tl.where(chunked, num_chunks, count)
    acc = tl.zeros([BLOCK_S, BLOCK_V], dtype=tl.float32)
    for j in range(0, tl.max(items, axis=0)):
        taken = j < items
        segment = tl.load(occ_segments_ptr + tl.minimum(start + j, last_occurrence))  # see _pooled_sum_kernel
        # a half gradient is widened as it is loaded: the same float32 values as widening it beforehand
        if HAS_CHUNKS:
            grad = tl.load(
                grad_ptr + segment[:, None] * vec + cols[None, :], mask=(taken & ~chunked)[:, None] & tile, other=0.0
            )
            where_partial = (first_chunk + j)[:, None] * vec + cols[None, :]
            partial = tl.load(partials_ptr + where_partial, mask=(taken & chunked)[:, None] & tile, other=0.0)
            acc += tl.where(chunked[:, None], partial, grad.to(tl.float32))
        else:
            grad = tl.load(grad_ptr + segment[:, None] * vec + cols[None, :], mask=taken[:, None] & tile, other=0.0)
            acc += grad.to(tl.float32)
    g = acc * grad_scale
    if OPT == 0:
        tl.store(summed_ptr + index[:, None] * vec + cols[None, :], g, mask=tile)
    else:
        row = tl.load(rows_ptr + index, mask=in_range, other=-1)
        tile = tile & (row >= 0)[:, None]  # row -1: padding of a fixed-size capture, or a key unseen at eval
        where = row[:, None] * vec + cols[None, :]
        w = tl.load(weights_ptr + where, mask=tile, other=0.0)
        if OPT == 1:  # SGD
            w = w - lr * g
        elif OPT == 2:  # AdaGrad: acc += g²; w −= lr·g/(sqrt(acc)+ε)
            a = tl.load(state0_ptr + where, mask=tile, other=0.0) + g * g
            tl.store(state0_ptr + where, a, mask=tile)
            w = w - lr * g / (tl.sqrt_rn(a) + epsilon)
        elif OPT == 3:  # MomentumSGD local: mom = f·mom − lr·g; w += mom
            m = factor * tl.load(state0_ptr + where, mask=tile, other=0.0) - lr * g
            tl.store(state0_ptr + where, m, mask=tile)
            w = w + m
        elif OPT == 4:  # Nesterov local: a' = μa − lr·g; w += −μa + (1+μ)a'
            old = tl.load(state0_ptr + where, mask=tile, other=0.0)
            new = factor * old - lr * g
            tl.store(state0_ptr + where, new, mask=tile)
            w = w - factor * old + (1.0 + factor) * new
        else:  # Adam local
            m = beta1 * tl.load(state0_ptr + where, mask=tile, other=0.0) + (1.0 - beta1) * g
            v = beta2 * tl.load(state1_ptr + where, mask=tile, other=0.0) + (1.0 - beta2) * g * g
            tl.store(state0_ptr + where, m, mask=tile)
            tl.store(state1_ptr + where, v, mask=tile)
            w = w - step_size * m / (tl.sqrt_rn(v) + epsilon)
        tl.store(weights_ptr + where, w, mask=tile)


def _chunk_partials(
    captured: CapturedGradient, block_v: int, chunk_size: int | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(first chunk of every row `[U + 1]`, partial sums `[chunks, V]`) of the rows of more than
    `chunk_size` occurrences, or None where no row has that many. Sized without reading the device."""
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(
            f"chunk_size is {chunk_size}; expected a positive number of occurrences per program, or None to sum "
            f"each row in one program. Pass CHUNK_SIZE ({CHUNK_SIZE}) or leave it out."
        )
    num_occurrences, num_rows = captured.occurrence_segments.numel(), captured.rows.numel()
    if chunk_size is None or num_occurrences <= chunk_size:
        return None
    offsets, vec = captured.occurrence_offsets, captured.grad_output.shape[1]
    counts = offsets[1:] - offsets[:-1]
    num_chunks = torch.where(counts > chunk_size, (counts + chunk_size - 1) // chunk_size, 0)
    chunk_start = torch.zeros_like(offsets)
    torch.cumsum(num_chunks, 0, out=chunk_start[1:])
    # at most n // (chunk_size + 1) rows are chunked, each into at most count / chunk_size + 1 chunks
    bound = num_occurrences // chunk_size + num_occurrences // (chunk_size + 1)
    chunk_ids = torch.arange(bound, device=offsets.device)
    chunk_rows = torch.searchsorted(chunk_start[1:], chunk_ids, right=True)  # num_rows past the last chunk
    partials = torch.empty(bound, vec, dtype=torch.float32, device=offsets.device)
    block_o = max(1, min(2048 // block_v, triton.next_power_of_2(chunk_size)))
    _chunk_sum_kernel[(bound, triton.cdiv(vec, block_v))](
        chunk_rows,
        chunk_start,
        offsets,
        captured.occurrence_segments,
        captured.grad_output,
        partials,
        num_rows,
        num_occurrences - 1,
        vec,
        chunk_size,
        BLOCK_O=block_o,
        BLOCK_V=block_v,
    )
    return chunk_start, partials


def _launch(
    captured: CapturedGradient,
    weights: torch.Tensor,
    states: list[torch.Tensor],
    summed: torch.Tensor,
    opt: int,
    grad_scale: float,
    lr: float = 0.0,
    config: SparseOptimizerConfig | None = None,
    step_size: float = 0.0,
    chunk_size: int | None = CHUNK_SIZE,
) -> None:
    num_rows, vec = captured.rows.numel(), captured.grad_output.shape[1]
    if num_rows == 0:
        return
    block_s, block_v = _tiles(vec)
    chunks = _chunk_partials(captured, block_v, chunk_size)
    chunk_start, partials = chunks if chunks is not None else (captured.occurrence_offsets, summed)  # unread
    state0 = states[0] if states else weights
    state1 = states[1] if len(states) > 1 else weights
    cfg = config or SparseOptimizerConfig()
    _segment_update_kernel[(triton.cdiv(num_rows, block_s), triton.cdiv(vec, block_v))](
        captured.rows,
        captured.occurrence_offsets,
        captured.occurrence_segments,
        captured.grad_output,
        chunk_start,
        partials,
        weights,
        state0,
        state1,
        summed,
        num_rows,
        max(captured.occurrence_segments.numel() - 1, 0),
        vec,
        float(grad_scale),
        float(lr),
        float(cfg.beta1),
        float(cfg.beta2),
        float(cfg.epsilon),
        float(cfg.momentum_factor),
        float(step_size),
        OPT=opt,
        HAS_CHUNKS=chunks is not None,
        BLOCK_S=block_s,
        BLOCK_V=block_v,
    )


def segment_sum(captured: CapturedGradient, *, chunk_size: int | None = CHUNK_SIZE) -> torch.Tensor:
    """Σ of the output gradient over the occurrences of each captured row, float32 `[U, V]`.

    `chunk_size=None` sums every row in one program, whatever its number of occurrences (the path before
    chunking, kept to compare against).
    """
    vec = captured.grad_output.shape[1]
    summed = torch.empty(captured.rows.numel(), vec, dtype=torch.float32, device=captured.grad_output.device)
    _launch(captured, summed, [], summed, _OPT_CODES["none"], 1.0, chunk_size=chunk_size)
    return summed


def fused_update(
    config: SparseOptimizerConfig,
    weights: torch.Tensor,
    states: list[torch.Tensor],
    captured: CapturedGradient,
    lr: float,
    grad_scale: float,
    step: int,
    *,
    chunk_size: int | None = CHUNK_SIZE,
) -> None:
    """Segment-sum + optimizer update of every captured row, in place (SGD, AdaGrad, local updates).

    `chunk_size` as in `segment_sum`: each row is still updated once, from its whole summed gradient.
    """
    step_size = adam_step_size(config, lr, step) if config.kind == "adam" else 0.0
    _launch(captured, weights, states, weights, _OPT_CODES[config.kind], grad_scale, lr, config, step_size, chunk_size)


@triton.jit
def _untouched_rows_kernel(
    touched_ptr,
    weights_ptr,
    state0_ptr,
    state1_ptr,
    num_rows,
    vec,
    beta1,
    beta2,
    epsilon,
    factor,
    step_size,
    OPT: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_V: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_S + tl.arange(0, BLOCK_S)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    in_range = rows < num_rows
    untouched = tl.load(touched_ptr + rows, mask=in_range, other=1) == 0
    tile = (in_range & untouched)[:, None] & (cols < vec)[None, :]
    where = rows[:, None] * vec + cols[None, :]
    w = tl.load(weights_ptr + where, mask=tile, other=0.0)
    if OPT == 3:  # MomentumSGD, g = 0: mom = f·mom; w += mom
        m = factor * tl.load(state0_ptr + where, mask=tile, other=0.0)
        tl.store(state0_ptr + where, m, mask=tile)
        w = w + m
    elif OPT == 4:  # Nesterov, g = 0: a' = μa; w += μ·a'
        a = factor * tl.load(state0_ptr + where, mask=tile, other=0.0)
        tl.store(state0_ptr + where, a, mask=tile)
        w = w + factor * a
    else:  # Adam, g = 0: m = β1·m; v = β2·v; w −= α_t·m/(sqrt(v)+ε)
        m = beta1 * tl.load(state0_ptr + where, mask=tile, other=0.0)
        v = beta2 * tl.load(state1_ptr + where, mask=tile, other=0.0)
        tl.store(state0_ptr + where, m, mask=tile)
        tl.store(state1_ptr + where, v, mask=tile)
        w = w - step_size * m / (tl.sqrt_rn(v) + epsilon)
    tl.store(weights_ptr + where, w, mask=tile)


def fused_global_update(
    config: SparseOptimizerConfig,
    weights: torch.Tensor,
    states: list[torch.Tensor],
    captured: CapturedGradient,
    lr: float,
    grad_scale: float,
    step: int,
    *,
    chunk_size: int | None = CHUNK_SIZE,
) -> None:
    """Update_t.Global of Adam / MomentumSGD / Nesterov: touched rows fused, then one pass over the rest."""
    fused_update(config, weights, states, captured, lr, grad_scale, step, chunk_size=chunk_size)
    untouched_update(config, weights, states, captured.rows, lr, step)


def untouched_update(
    config: SparseOptimizerConfig,
    weights: torch.Tensor,
    states: list[torch.Tensor],
    touched_rows: torch.Tensor,
    lr: float,
    step: int,
) -> None:
    """The zero-gradient step of Update_t.Global on every row not in `touched_rows` (-1 entries ignored).

    It does not read this step's gradients, so it may run beside the rest of the step on another stream
    (see `SparseEmbedding.announce_step`); the touched rows are left to `fused_update`.
    """
    num_rows, vec = weights.shape
    if num_rows == 0:
        return
    # one extra entry takes the -1 rows of a fixed-size capture (the kernel reads the first num_rows)
    touched = torch.zeros(num_rows + 1, dtype=torch.int8, device=weights.device)
    touched[torch.where(touched_rows >= 0, touched_rows, num_rows)] = 1
    step_size = adam_step_size(config, lr, step) if config.kind == "adam" else 0.0
    block_s, block_v = _tiles(vec)
    _untouched_rows_kernel[(triton.cdiv(num_rows, block_s), triton.cdiv(vec, block_v))](
        touched,
        weights,
        states[0],
        states[1] if len(states) > 1 else states[0],
        num_rows,
        vec,
        float(config.beta1),
        float(config.beta2),
        float(config.epsilon),
        float(config.momentum_factor),
        float(step_size),
        OPT=_OPT_CODES[config.kind],
        BLOCK_S=block_s,
        BLOCK_V=block_v,
    )
