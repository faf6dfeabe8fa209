"""`SampleBlock`: parsed samples in NumPy form, the unit every format parser produces.

Parsers (Norm, Raw, Parquet) turn bytes or columns into blocks of whole samples; readers cut and join blocks
into batches of exactly `batch_size` rows and turn them into the `Batch` contract with `to_batch`, which
also zero-pads a short last batch and splits the slots of the file into the dataset's sparse inputs.

Blocks whose samples all have the same nnz per slot (one-hot Raw and Parquet data, fixed-length Norm data)
carry `lengths` as a read-only row broadcast (`np.broadcast_to(pattern, (rows, slots))`, row stride 0).
Cutting, joining and CSR building then need no per-row work: key ranges are multiples of the pattern's sum
and batches of one shape share one cached offsets tensor.

The large arrays a batch hands out come from `pooled_empty`, i.e. Arrow's memory pool, which reuses freed
memory. glibc malloc returns freed blocks of a few MB to the OS and faults them in again page by page on the
next batch (measured: about 70,000 minor page faults per epoch of 1M one-hot Parquet samples, a third of the
reader's CPU time).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from ctrflow.readers.types import Batch, DataSpec, SparseBatch


@dataclass(slots=True)
class SampleBlock:
    """Consecutive samples of one source.

    Args:
        label_dense: float32 `[n, label_dim + dense_dim]`, labels first (any memory order).
        lengths: int64 `[n, total_slots]`, keys per (sample, slot); a row broadcast when every sample has
            the same nnz per slot.
        keys: int64 `[lengths.sum()]`, sample-major then slot-major.
    """

    label_dense: np.ndarray
    lengths: np.ndarray
    keys: np.ndarray
    _row_offsets: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        return int(self.label_dense.shape[0])

    @staticmethod
    def empty(width: int, num_slots: int) -> SampleBlock:
        return SampleBlock(np.zeros((0, width), np.float32), np.zeros((0, num_slots), np.int64), np.zeros(0, np.int64))

    def take(self, start: int, stop: int) -> SampleBlock:
        """Rows `[start, stop)` (views where possible)."""
        if start == 0 and stop >= self.num_rows:
            return self
        stop = min(stop, self.num_rows)
        pattern = fixed_pattern(self.lengths)
        if pattern is not None:  # every row holds the same number of keys
            per_row = int(pattern.sum())
            key_start, key_stop = start * per_row, stop * per_row
        else:
            if self._row_offsets is None:
                self._row_offsets = np.zeros(self.num_rows + 1, np.int64)
                np.cumsum(self.lengths.sum(axis=1), out=self._row_offsets[1:])
            key_start, key_stop = int(self._row_offsets[start]), int(self._row_offsets[stop])
        return SampleBlock(self.label_dense[start:stop], self.lengths[start:stop], self.keys[key_start:key_stop])

    @staticmethod
    def concat(blocks: Sequence[SampleBlock]) -> SampleBlock:
        if len(blocks) == 1:
            return blocks[0]
        patterns = [fixed_pattern(b.lengths) for b in blocks]
        first = patterns[0]
        if first is not None and all(p is not None and np.array_equal(p, first) for p in patterns):
            lengths = np.broadcast_to(first, (sum(b.num_rows for b in blocks), first.size))
        else:
            lengths = np.concatenate([b.lengths for b in blocks])
        return SampleBlock(
            np.concatenate([b.label_dense for b in blocks]), lengths, np.concatenate([b.keys for b in blocks])
        )

    def to_batch(self, spec: DataSpec, batch_size: int) -> Batch:
        """The `Batch` of these rows, zero-padded to `batch_size` rows (padding has empty slots)."""
        label = _contiguous(self.label_dense[:, : spec.label_dim])
        dense = _contiguous(self.label_dense[:, spec.label_dim :])
        return assemble_batch(spec, label, dense, self.lengths, self.keys, batch_size)


def assemble_batch(
    spec: DataSpec, label: np.ndarray, dense: np.ndarray, lengths: np.ndarray, keys: np.ndarray, batch_size: int
) -> Batch:
    """The `Batch` of contiguous float32 `label` and `dense` rows plus CSR parts, zero-padded to `batch_size`."""
    size = int(label.shape[0])
    pad = batch_size - size
    if pad > 0:
        label = np.concatenate([label, np.zeros((pad, label.shape[1]), np.float32)])
        dense = np.concatenate([dense, np.zeros((pad, dense.shape[1]), np.float32)])
        lengths = np.concatenate([lengths, np.zeros((pad, lengths.shape[1]), np.int64)])
    return Batch(torch.from_numpy(label), torch.from_numpy(dense), _split_inputs(spec, lengths, keys), size)


_POOLED_BYTES = 1 << 16  # smaller arrays come from glibc's bins, which keep their memory


def pooled_empty(shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array; from Arrow's memory pool when large (see the module docstring)."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    if count * dtype.itemsize < _POOLED_BYTES:
        return np.empty(shape, dtype)
    return np.frombuffer(pa.allocate_buffer(count * dtype.itemsize), dtype, count).reshape(shape)


def _contiguous(values: np.ndarray) -> np.ndarray:
    if values.flags.c_contiguous:
        return values
    out = pooled_empty(values.shape, values.dtype)
    np.copyto(out, values)
    return out


def fixed_pattern(lengths: np.ndarray) -> np.ndarray | None:
    """The nnz per slot shared by every row when `lengths` is a row broadcast, else None."""
    if lengths.ndim == 2 and lengths.shape[0] > 0 and lengths.strides[0] == 0:
        return np.asarray(lengths[0])
    return None


def _split_inputs(spec: DataSpec, lengths: np.ndarray, keys: np.ndarray) -> dict[str, SparseBatch]:
    """CSR per sparse input; the file's slots belong to the inputs in order (formats spec §1.3)."""
    sparse: dict[str, SparseBatch] = {}
    if len(spec.sparse) == 1:
        only = spec.sparse[0]
        sparse[only.name] = SparseBatch(torch.from_numpy(keys), _offsets(lengths), only.num_slots)
        return sparse
    num_rows, total_slots = lengths.shape
    pattern = fixed_pattern(lengths)
    if pattern is not None:  # each input's keys are a column range of the [rows, keys per row] matrix
        key_columns = np.concatenate([[0], np.cumsum(pattern)])
        key_matrix = keys.reshape(num_rows, -1)
    else:
        slot_of_key = np.repeat(np.tile(np.arange(total_slots), num_rows), lengths.reshape(-1))
    first = 0
    for sparse_input in spec.sparse:
        last = first + sparse_input.num_slots
        if pattern is not None:
            input_keys = np.ascontiguousarray(key_matrix[:, key_columns[first] : key_columns[last]]).reshape(-1)
        else:
            input_keys = np.ascontiguousarray(keys[(slot_of_key >= first) & (slot_of_key < last)])
        sparse[sparse_input.name] = SparseBatch(
            torch.from_numpy(input_keys), _offsets(lengths[:, first:last]), sparse_input.num_slots
        )
        first = last
    return sparse


def _offsets(lengths: np.ndarray) -> torch.Tensor:
    pattern = fixed_pattern(lengths)
    if pattern is not None:
        return _fixed_offsets(tuple(pattern.tolist()), int(lengths.shape[0]))
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths.reshape(-1), out=offsets[1:])
    return torch.from_numpy(offsets)


@functools.lru_cache(maxsize=16)
def _fixed_offsets(pattern: tuple[int, ...], num_rows: int) -> torch.Tensor:
    """CSR offsets of `num_rows` rows that all hold `pattern` keys per slot (an arange for one-hot data).

    They depend on nothing but the shape, so every batch of that shape shares one tensor (batches are
    read-only): writing them afresh cost a sixth of a one-hot Parquet epoch.
    """
    offsets = torch.zeros(num_rows * len(pattern) + 1, dtype=torch.int64)
    torch.cumsum(torch.tensor(pattern, dtype=torch.int64).repeat(num_rows), 0, out=offsets[1:])
    return offsets


def interleave_slot_runs(lengths: np.ndarray, per_slot: list[np.ndarray]) -> np.ndarray:
    """Keys given per slot (each slot's keys row after row) → sample-major, slot-major order, no sorting."""
    rows, num_slots = lengths.shape
    if rows and (lengths == lengths[0]).all():  # fixed nnz per slot: a plain column stack
        columns = [np.asarray(keys, np.int64).reshape(rows, -1) for keys in per_slot]
        return np.concatenate(columns, axis=1).reshape(-1) if columns else np.zeros(0, np.int64)
    out_offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths.reshape(-1), out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), np.int64)
    for slot, keys in enumerate(per_slot):
        slot_lengths = lengths[:, slot]
        run_starts = np.repeat(np.cumsum(slot_lengths) - slot_lengths, slot_lengths)
        targets = np.repeat(out_offsets[np.arange(rows) * num_slots + slot], slot_lengths)
        out[targets + np.arange(keys.size) - run_starts] = keys
    return out


class BatchCutter:
    """Accumulates blocks and cuts them into batches of exactly `batch_size` rows (batches may span blocks)."""

    def __init__(self, batch_size: int, width: int, num_slots: int) -> None:
        self.batch_size = batch_size
        self._width = width
        self._num_slots = num_slots
        self._pending: list[SampleBlock] = []
        self._pending_rows = 0

    @property
    def rows_missing(self) -> int:
        """Rows the pending batch still needs (`batch_size` when nothing is pending)."""
        return self.batch_size - self._pending_rows

    def add(self, block: SampleBlock) -> list[SampleBlock]:
        """Add rows; return the full batches now complete (each exactly `batch_size` rows)."""
        out: list[SampleBlock] = []
        start = 0
        while start < block.num_rows:
            take = min(self.batch_size - self._pending_rows, block.num_rows - start)
            self._pending.append(block.take(start, start + take))
            self._pending_rows += take
            start += take
            if self._pending_rows == self.batch_size:
                out.append(SampleBlock.concat(self._pending))
                self._pending, self._pending_rows = [], 0
        return out

    def flush(self) -> SampleBlock | None:
        """The rows left over (fewer than `batch_size`), or None when there are none."""
        if self._pending_rows == 0:
            return None
        block = SampleBlock.concat(self._pending)
        self._pending, self._pending_rows = [], 0
        return block
