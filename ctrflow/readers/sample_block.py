"""`SampleBlock`: parsed samples in NumPy form, the unit every format parser produces.

Parsers (Norm, Raw, Parquet) turn bytes or columns into blocks of whole samples; readers cut and join blocks
into batches of exactly `batch_size` rows and turn them into the `Batch` contract with `to_batch`, which
also zero-pads a short last batch and splits the slots of the file into the dataset's sparse inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ctrflow.readers.types import Batch, DataSpec, SparseBatch


@dataclass(slots=True)
class SampleBlock:
    """Consecutive samples of one source.

    Args:
        label_dense: float32 `[n, label_dim + dense_dim]`, labels first.
        lengths: int64 `[n, total_slots]`, keys per (sample, slot).
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
        if self._row_offsets is None:
            self._row_offsets = np.zeros(self.num_rows + 1, np.int64)
            np.cumsum(self.lengths.sum(axis=1), out=self._row_offsets[1:])
        stop = min(stop, self.num_rows)
        key_start, key_stop = int(self._row_offsets[start]), int(self._row_offsets[stop])
        return SampleBlock(self.label_dense[start:stop], self.lengths[start:stop], self.keys[key_start:key_stop])

    @staticmethod
    def concat(blocks: Sequence[SampleBlock]) -> SampleBlock:
        if len(blocks) == 1:
            return blocks[0]
        return SampleBlock(
            np.concatenate([b.label_dense for b in blocks]),
            np.concatenate([b.lengths for b in blocks]),
            np.concatenate([b.keys for b in blocks]),
        )

    def to_batch(self, spec: DataSpec, batch_size: int) -> Batch:
        """The `Batch` of these rows, zero-padded to `batch_size` rows (padding has empty slots)."""
        size = self.num_rows
        pad = batch_size - size
        label_dense, lengths = self.label_dense, self.lengths
        if pad > 0:
            label_dense = np.concatenate([label_dense, np.zeros((pad, label_dense.shape[1]), np.float32)])
            lengths = np.concatenate([lengths, np.zeros((pad, lengths.shape[1]), np.int64)])
        label = torch.from_numpy(np.ascontiguousarray(label_dense[:, : spec.label_dim]))
        dense = torch.from_numpy(np.ascontiguousarray(label_dense[:, spec.label_dim :]))
        return Batch(label, dense, _split_inputs(spec, lengths, self.keys), size)


def _split_inputs(spec: DataSpec, lengths: np.ndarray, keys: np.ndarray) -> dict[str, SparseBatch]:
    """CSR per sparse input; the file's slots belong to the inputs in order (formats spec §1.3)."""
    sparse: dict[str, SparseBatch] = {}
    if len(spec.sparse) == 1:
        only = spec.sparse[0]
        sparse[only.name] = SparseBatch(torch.from_numpy(keys), _offsets(lengths), only.num_slots)
        return sparse
    num_rows, total_slots = lengths.shape
    slot_of_key = np.repeat(np.tile(np.arange(total_slots), num_rows), lengths.reshape(-1))
    first = 0
    for sparse_input in spec.sparse:
        last = first + sparse_input.num_slots
        mask = (slot_of_key >= first) & (slot_of_key < last)
        input_keys = np.ascontiguousarray(keys[mask])
        sparse[sparse_input.name] = SparseBatch(
            torch.from_numpy(input_keys), _offsets(lengths[:, first:last]), sparse_input.num_slots
        )
        first = last
    return sparse


def _offsets(lengths: np.ndarray) -> torch.Tensor:
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths.reshape(-1), out=offsets[1:])
    return torch.from_numpy(offsets)


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
