"""The Raw reader: one memory-mapped binary file of fixed-size one-hot records (formats spec §2).

A record is `label[label_dim] ‖ dense[dense_dim]` (float32 when `float_label_dense`, else int32) followed by
one int32 key per slot; no header, no framing. With int32 label/dense the label is read as float(v) and the
dense as ln(v + 1) in float32, as HugeCTR does. Batches are consecutive record ranges; training readers
shuffle the order of batches once (`shuffle_batches`, seeded). The last, partial batch is emitted short
(zero-padded, `Batch.size < batch_size`) in epoch and in repeat mode alike, as in HugeCTR. A batch is read
straight from the memory map into its label, dense and key arrays; the checks (finite label/dense,
`slot_size_array` keys) run on a batch's first read only. With `num_workers` > 1, worker threads build
batches ahead in turn (the order stays the same). A loader feeding a GPU takes `device_batches()` instead:
the same batches as checked, undecoded records, which the GPU splits (`raw_records`).
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from ctrflow.readers.raw_records import RawRecords
from ctrflow.readers.sample_block import assemble_batch, pooled_empty
from ctrflow.readers.types import Batch, DataSpec, Reader, ReaderOptions
from ctrflow.readers.worker_threads import round_robin

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RawReader(Reader):
    """Reads a Raw dataset file.

    Args:
        source: the data file (a path or URL; local files are memory-mapped).
        spec: what a sample holds; every slot holds exactly one key.
        options: batch size, `num_samples` (0 = infer from the file size), `float_label_dense`,
            `slot_size_array` (keys of slot s must lie in [0, slot_size_array[s])), shuffle, seed, repeat,
            `num_workers` (threads building batches in turn).
        allow_nonfinite: accept NaN/inf label/dense values (ln(v+1) of v <= -1) instead of raising.
    """

    def __init__(
        self, source: str | Sequence[str], spec: DataSpec, options: ReaderOptions, *, allow_nonfinite: bool = False
    ) -> None:
        if options.key_type != "i32":
            raise ValueError(
                f'Raw reader: key_type="{options.key_type}" received, but Raw files hold int32 keys only '
                '(HugeCTR v3.5: "Raw: only I32 is allowed"). Set i64_input_key=False (key_type="i32").'
            )
        self.spec, self.options, self.allow_nonfinite = spec, options, allow_nonfinite
        self.record_bytes = 4 * (spec.label_dim + spec.dense_dim + spec.total_slots)
        self._slot_sizes = self._check_slot_sizes(options.slot_size_array, spec)
        self._source = ""
        self._records: np.ndarray = np.zeros(0)
        self._order: np.ndarray = np.zeros(0, np.int64)
        self._checked: np.ndarray = np.zeros(0, bool)  # per batch: its records passed the checks
        self.set_source(source)

    @property
    def source(self) -> str:
        return self._source

    @property
    def num_samples(self) -> int:
        return int(self._records.shape[0])

    def set_source(self, source: str | Sequence[str] = "") -> None:
        if source == "" or (not isinstance(source, str) and len(source) == 0):
            return
        path = source if isinstance(source, str) else source[0]
        if not isinstance(source, str) and len(source) > 1:
            raise ValueError(f"Raw reader: received {len(source)} sources {list(source)}; Raw reads one data file.")
        self._records = self._map(path)
        self._source = path
        batches = -(-self.num_samples // self.options.batch_size)
        order = np.arange(batches, dtype=np.int64)
        if self.options.shuffle_batches:  # formats spec §2: the order of batches, shuffled once
            order = np.random.default_rng(self.options.seed).permutation(batches)
        self._order = order
        self._checked = np.zeros(batches, bool)

    def __iter__(self) -> Iterator[Batch]:
        yield from self._in_order(self._batch)

    def device_batches(self) -> Iterator[RawRecords]:
        """Checked, undecoded records per batch, in the same order; the device decodes them (`raw_records`)."""
        yield from self._in_order(self._undecoded)

    def _in_order(self, build: Callable[[int], T]) -> Iterator[T]:
        if self.num_samples == 0:
            return
        workers = max(1, self.options.num_workers)
        yield from round_robin([functools.partial(self._built_by, w, workers, build) for w in range(workers)])

    def _built_by(self, worker: int, workers: int, build: Callable[[int], T]) -> Iterator[T]:
        """Worker w builds positions w, w + W, ... of the batch sequence, so the round robin keeps its order."""
        order = self._order.tolist()
        for position in itertools.count(worker, workers):
            if position >= len(order) and not self.options.repeat:
                return
            yield build(order[position % len(order)])

    def _undecoded(self, index: int) -> RawRecords:
        size = self.options.batch_size
        records = self._checked_records(index)
        words = records.view("<i4").reshape(len(records), -1)
        return RawRecords(words, self.spec, float_label_dense=self.options.float_label_dense, batch_size=size)

    def _batch(self, index: int) -> Batch:
        size = self.options.batch_size
        records = self._checked_records(index)
        label, dense = self._label_dense(records["ld"])
        keys = _converted(records["keys"].view("<u4"), np.int64)  # formats spec §2: uint32 bit pattern kept
        lengths = np.broadcast_to(np.int64(1), keys.shape)  # one-hot: one key per slot
        return assemble_batch(self.spec, label, dense, lengths, keys.reshape(-1), size)

    def _checked_records(self, index: int) -> np.ndarray:
        """The records of batch `index`, checked on its first read only (a batch's records never change)."""
        size = self.options.batch_size
        first = index * size
        records = self._records[first : first + size]
        if not self._checked[index]:
            if not self.allow_nonfinite and not self._finite_words(records["ld"]):
                self._raise_nonfinite(records["ld"], first)
            if self._slot_sizes is not None:
                self._check_keys(records["keys"].view("<u4"), self._slot_sizes, first)
            self._checked[index] = True
        return records

    def _label_dense(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous float32 label and dense of `values` (records' label ‖ dense, int32 or float32)."""
        label_dim = self.spec.label_dim
        label = _converted(values[:, :label_dim], np.float32)
        dense = _converted(values[:, label_dim:], np.float32)
        if not self.options.float_label_dense:
            with np.errstate(divide="ignore", invalid="ignore"):  # float32 ln(v + 1), in place
                np.add(dense, np.float32(1.0), out=dense)
                np.log(dense, out=dense)
        return label, dense

    def _finite_words(self, values: np.ndarray) -> bool:
        """Whether records' label ‖ dense words decode to finite floats, without decoding them."""
        if self.options.float_label_dense:
            return bool(np.isfinite(values.view("<f4")).all())
        return not bool((values[:, self.spec.label_dim :] <= -1).any())  # ln(v + 1) is finite for v > -1

    def _raise_nonfinite(self, values: np.ndarray, first: int) -> None:
        """Raise the ValueError naming the first record and value of `values` that decodes to NaN/inf."""
        out = np.concatenate(self._label_dense(values), axis=1)
        row, column = (int(v) for v in np.argwhere(~np.isfinite(out))[0])
        raise ValueError(
            f"Raw file {self._source!r}: record {first + row} (byte offset {(first + row) * self.record_bytes}) "
            f"has label/dense float {column} = {out[row, column]} (stored value {values[row, column]}; int32 dense "
            "values become ln(v+1), so v <= -1 is invalid). Clean the dataset or pass allow_nonfinite=True."
        )

    def _check_keys(self, keys: np.ndarray, slot_sizes: np.ndarray, first: int) -> None:
        outside = keys >= slot_sizes
        if outside.any():
            row, slot = (int(v) for v in np.argwhere(outside)[0])
            offset = (first + row) * self.record_bytes + 4 * (self.spec.label_dim + self.spec.dense_dim + slot)
            raise ValueError(
                f"Raw file {self._source!r}: record {first + row}, slot {slot} (byte offset {offset}) holds key "
                f"{int(keys[row, slot])}, outside [0, {int(slot_sizes[slot])}) given by slot_size_array. "
                "Raw keys are per-slot indices; fix slot_size_array or the data."
            )

    def _map(self, path: str) -> np.ndarray:
        fs, local = fsspec.core.url_to_fs(path)
        try:
            size = int(fs.size(local))
        except FileNotFoundError:
            raise ValueError(f"Raw data file {path!r} does not exist; pass the path of the .bin data file.") from None
        count = self._check_size(path, size)
        width = self.spec.label_dim + self.spec.dense_dim
        layout = np.dtype(
            [
                ("ld", "<i4" if not self.options.float_label_dense else "<f4", (width,)),
                ("keys", "<i4", (self.spec.total_slots,)),
            ]
        )
        if count == 0:
            return np.zeros(0, layout)
        if isinstance(fs, LocalFileSystem):
            return np.memmap(local, dtype=layout, mode="r", shape=(count,))
        with fs.open(local, "rb") as handle:
            return np.frombuffer(handle.read(), dtype=layout, count=count)

    def _check_size(self, path: str, size: int) -> int:
        expected = self.options.num_samples
        if expected == 0:
            if size % self.record_bytes:
                raise ValueError(
                    f"Raw file {path!r}: {size} bytes is not a whole number of {self.record_bytes}-byte records "
                    f"(label_dim + dense_dim + slots = {self.record_bytes // 4} 4-byte values). Check label_dim, "
                    "dense_dim and the slot count, or the file is truncated."
                )
            logger.info(
                "Raw file %r: num_samples not given, using %d from the file size.", path, size // self.record_bytes
            )
            return size // self.record_bytes
        if size != expected * self.record_bytes:
            raise ValueError(
                f"Raw file {path!r}: {size} bytes, but num_samples={expected} records of {self.record_bytes} bytes "
                f"need {expected * self.record_bytes} (file holds {size / self.record_bytes:.2f} records). Set "
                "num_samples to the file's sample count, or fix label_dim, dense_dim or the slot count."
            )
        return expected

    @staticmethod
    def _check_slot_sizes(slot_size_array: tuple[int, ...], spec: DataSpec) -> np.ndarray | None:
        if not slot_size_array:
            return None
        if len(slot_size_array) != spec.total_slots:
            raise ValueError(
                f"Raw reader: slot_size_array has {len(slot_size_array)} entries but the dataset has "
                f"{spec.total_slots} slots; give one cardinality per slot."
            )
        return np.asarray(slot_size_array, np.int64)


def _converted(values: np.ndarray, dtype: type) -> np.ndarray:
    """`values.astype(dtype)`, C-contiguous, in pooled memory (`sample_block.pooled_empty`)."""
    out = pooled_empty(values.shape, dtype)
    np.copyto(out, values, casting="same_kind")
    return out
