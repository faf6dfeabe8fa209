"""The facade's data readers: `DataReader32` / `DataReader64` of the low-level API, over ctrflow readers.

A `FacadeReader` owns one ctrflow `Reader` and the prefetching `Loader` that moves its batches to the
device; the model pulls batches with `next_batch()`. `set_source("")` restarts the current source.
Where the network's dense tensor is wider than the records' dense values (RawAsync with
`Alignment_t.Auto`), the reader appends zero columns to every batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ctrflow.readers import Loader, make_reader
from ctrflow.readers.types import Batch, DataSpec, ReaderKind, ReaderOptions

# RawAsync (v3.5's io_uring reader of Raw files for MLPerf DLRM) reads the same files as Raw
READER_KINDS: dict[str, ReaderKind] = {"Norm": "norm", "Raw": "raw", "Parquet": "parquet", "RawAsync": "raw"}


class IDataReader:
    """Base of the facade's readers (v3.5 `IDataReader`)."""


class FacadeReader(IDataReader):
    """One split's reader (training or evaluation).

    Args:
        kind: "norm", "raw" or "parquet".
        source: file list (Norm, Parquet) or data file (Raw).
        spec: what a sample holds.
        options: batch size, key type, check type, repeat, workers, ...
        device: where batches go.
        rank, world_size: this rank keeps its contiguous share of every global batch.
        cache_batches: keep the first `cache_batches` batches on the device and replay them instead of
            reading the files again (`DataReaderParams.cache_eval_data` for the evaluation reader).
        dense_width: the width of the dense tensor the batches leave with; the records hold `spec.dense_dim`
            values and the columns past them are zeros (v3.5 RawAsync's `Alignment_t.Auto`). None: `spec.dense_dim`.
    """

    def __init__(
        self,
        kind: ReaderKind,
        source: str,
        spec: DataSpec,
        options: ReaderOptions,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
        cache_batches: int = 0,
        dense_width: int | None = None,
    ):
        self.kind, self._source, self.spec, self.options, self.device = kind, source, spec, options, device
        self.rank, self.world_size = rank, world_size
        self.dense_width = spec.dense_dim if dense_width is None else dense_width
        if self.dense_width < spec.dense_dim:
            raise ValueError(
                f"{type(self).__name__}: dense_width {self.dense_width} is narrower than the {spec.dense_dim} dense "
                "values of each record; pass a dense_width of at least spec.dense_dim (or None)."
            )
        self.cache_batches = cache_batches
        self._cache: list[Batch] = []
        self._cache_full = False  # all batches to cache are in (the cap reached or the source ended)
        self._replayed = 0
        self.last_batch: Batch | None = None  # the batch of the last read_a_batch_to_device()
        self._loader: Loader | None = None
        self._iterator: Iterator[Batch] | None = None
        self._eof = False

    def start(self) -> None:
        """Open the source and start prefetching."""
        self.close()
        reader = make_reader(self.kind, self._source, self.spec, self.options)
        self._loader = Loader(reader, self.device)
        self._iterator = iter(self._loader)
        self._eof = False

    def next_batch(self) -> Batch | None:
        """The next batch on the device, or None at the end of an epoch-mode source."""
        if self._cache_full:
            return self._replay()
        batch = self._read()
        if self.cache_batches:
            if batch is not None:
                self._cache.append(batch)
            if batch is None or len(self._cache) >= self.cache_batches:
                self._cache_full = True
                self._replayed = len(self._cache)  # the next call starts the replay
                self.close()  # the files are not read again
        return batch

    def _replay(self) -> Batch | None:
        """Cached batches in order; at the end, wrap (repeat mode) or report the end once (epoch mode)."""
        if self._replayed >= len(self._cache):
            self._replayed = 0
            if not self.options.repeat:
                self._eof = True
                return None
        batch = self._cache[self._replayed]
        self._replayed += 1
        return batch

    def _read(self) -> Batch | None:
        if self._iterator is None:
            self.start()
        iterator = self._iterator
        if iterator is None:
            raise RuntimeError(f"{self!r}: the reader did not start; call set_source() first.")
        try:
            batch = next(iterator)
        except StopIteration:
            self._eof = True
            return None
        batch = self._pad_dense(batch)
        if self.world_size == 1:
            return batch
        # formats spec §1.4: every rank reads the global batch and keeps its contiguous share
        share = self.options.batch_size // self.world_size
        return batch.rows(self.rank * share, (self.rank + 1) * share)

    def _pad_dense(self, batch: Batch) -> Batch:
        """Zero columns after the records' dense values, up to `dense_width` (v3.5's AsyncReader zero-fills them)."""
        missing = self.dense_width - batch.dense.shape[1]
        if missing == 0:
            return batch
        return dataclasses.replace(batch, dense=F.pad(batch.dense, (0, missing)))

    def close(self) -> None:
        if self._loader is not None:
            self._loader.close()
        self._loader, self._iterator = None, None

    # ------------------------------------------------------------------- the v3.5 low-level API
    def set_source(self, file_name: str = "") -> None:
        """Point at a new source; "" restarts the current one from its beginning."""
        if not isinstance(file_name, str):
            raise TypeError(f"set_source(file_name): expected a str, received {type(file_name).__name__}.")
        if file_name and file_name != self._source:
            self._source = file_name
            self._cache, self._cache_full = [], False
        self._replayed = 0
        self._eof = False
        if not self._cache_full:
            self._cache = []
            self.start()

    def is_started(self) -> bool:
        return self._iterator is not None or self._cache_full

    def ready_to_collect(self) -> bool:
        return self._iterator is not None and not self._eof

    def is_eof(self) -> bool:
        """True once the current source is exhausted (documented in v3.5, though not bound there)."""
        return self._eof

    def read_a_batch_to_device(self) -> int:
        """Read one batch and return its number of valid rows (0 at the end of the source)."""
        batch = self.next_batch()
        self.last_batch = batch
        return 0 if batch is None else batch.size

    def read_a_batch_to_device_delay_release(self) -> int:
        return self.read_a_batch_to_device()

    @property
    def source(self) -> str:
        return self._source

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, source={self._source!r})"


class DataReader32(FacadeReader):
    """Reader of uint32-key datasets (`i64_input_key=False`)."""


class DataReader64(FacadeReader):
    """Reader of int64-key datasets (`i64_input_key=True`)."""
