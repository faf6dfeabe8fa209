"""The Parquet reader: a file list of `.parquet` files plus their `_metadata.json` (formats spec §3).

`_metadata.json` (in each data file's folder) maps columns by position: `labels` and `conts` (float32) give
label and dense in ascending index order; `cats` give the slots in ascending index order, each a scalar
integer column of the key width (one key per sample) or a list column of it (multi-hot). `slot_size_array`
adds per-slot offsets (exclusive prefix sums, by global slot) in the key type's arithmetic. `num_rows` is
looked up in `file_stats` by basename; a file missing there is read to its real row count, with a warning.
Files are read row group by row group, in file-list order, wrapping in repeat mode. While one row group is
cut into batches, a worker thread already decodes the next (`_read_ahead`).

Two engines decode (`parquet_cudf.choose_engine`): pyarrow, the default, which converts each column to NumPy
once per row group and writes each batch straight into arrays of its own (`parquet_columns`); and cudf, used
when a GPU, cudf and a probe read all work (or when forced), which hands batches whose tensors are on the GPU
(`parquet_cudf`). Both check columns on the file footer with pyarrow and give equal batches.
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
from collections.abc import Generator, Iterator, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import fsspec
import numpy as np
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from ctrflow.readers.file_list import file_type, read_file_list
from ctrflow.readers.parquet_columns import RowGroupColumns, check_column_types, is_list_type
from ctrflow.readers.parquet_cudf import DeviceCutter, DeviceRowGroup, choose_engine, read_row_groups
from ctrflow.readers.sample_block import BatchCutter, SampleBlock
from ctrflow.readers.types import Batch, DataSpec, Reader, ReaderOptions

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class ParquetMetadata:
    """What `_metadata.json` says: column positions and rows per file (by basename)."""

    path: str
    labels: tuple[int, ...]
    conts: tuple[int, ...]
    cats: tuple[int, ...]
    num_rows: dict[str, int]


def metadata_path(data_file: str) -> str:
    """Where HugeCTR looks for the metadata of `data_file`: `dirname(data_file)/_metadata.json`."""
    folder = data_file.rsplit("/", 1)[0] if "/" in data_file else "."
    return f"{folder}/_metadata.json"


def load_metadata(path: str) -> ParquetMetadata:
    """Parse a `_metadata.json`; only `index` of each column entry is used, as in HugeCTR."""
    try:
        with fsspec.open(path, "r", encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise ValueError(
            f"Parquet metadata {path!r} does not exist. HugeCTR reads `_metadata.json` from the folder of the "
            "data files; write one (NVTabular and the data generator do) next to them."
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"Parquet metadata {path!r} is not valid JSON ({error}).") from None
    columns = {}
    for group in ("labels", "conts", "cats"):
        entries = document.get(group)
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("index"), int) for e in entries
        ):
            raise ValueError(
                f'Parquet metadata {path!r}: "{group}" must be a list of {{"col_name": ..., "index": int}} '
                f"objects, found {str(entries)[:80]}."
            )
        columns[group] = tuple(sorted(e["index"] for e in entries))
    stats = document.get("file_stats", [])
    num_rows = {
        posixpath.basename(str(s.get("file_name", ""))): int(s.get("num_rows", 0)) for s in stats if isinstance(s, dict)
    }
    return ParquetMetadata(path, columns["labels"], columns["conts"], columns["cats"], num_rows)


class ParquetReader(Reader):
    """Reads a Parquet dataset named by a file list.

    Args:
        source: a file list path (or URL) whose files end in `.parquet`, or several lists read in turn.
        spec: label/dense widths and sparse inputs; their slot count must equal the number of `cats`.
        options: batch size, key type, repeat, `slot_size_array` (per-slot key offsets).
        allow_nonfinite: accept NaN/inf in label and dense columns.
        engine: "pyarrow", "cudf" or "auto" (cudf when a GPU, `import cudf` and a probe read work, else pyarrow,
            with the reason logged at INFO); None reads `$CTRFLOW_PARQUET_ENGINE`, default "auto". The chosen
            engine is in `self.engine`. With cudf, batches are on the GPU.
    """

    def __init__(
        self, source: str | Sequence[str], spec: DataSpec, options: ReaderOptions, *, allow_nonfinite: bool = False,
        engine: str | None = None,
    ) -> None:  # fmt: skip
        self.spec, self.options, self.allow_nonfinite = spec, options, allow_nonfinite
        self.engine = choose_engine(engine)
        self._offsets = _slot_offsets(options.slot_size_array, spec.total_slots, options.key_type)
        self._metadata: dict[str, ParquetMetadata] = {}
        self._source, self._files = "", list[str]()
        self.set_source(source)

    @property
    def source(self) -> str:
        return self._source

    def set_source(self, source: str | Sequence[str] = "") -> None:
        if source == "" or (not isinstance(source, str) and len(source) == 0):
            return
        lists = [source] if isinstance(source, str) else list(source)
        files: list[str] = []
        for file_list in lists:
            files.extend(read_file_list(file_list))
        if file_type(files) != "parquet":
            raise ValueError(
                f"Parquet source {lists[0]!r}: the first listed file {files[0]!r} does not end in '.parquet'; "
                "the Parquet reader needs a list of .parquet files (use the Norm reader for .data files)."
            )
        self._source, self._files = ",".join(lists), files

    def __iter__(self) -> Iterator[Batch]:
        batch_size = self.options.batch_size
        cutter: Any = (  # the same methods: add, flush, rows_missing
            DeviceCutter(batch_size)
            if self.engine == "cudf"
            else BatchCutter(batch_size, self.spec.label_dim + self.spec.dense_dim, self.spec.total_slots)
        )
        while True:
            rows = 0
            groups = _read_ahead(self._row_groups(self._files, self.engine))
            try:
                for group in groups:
                    rows += group.num_rows
                    start = 0
                    while start < group.num_rows:  # blocks end at batch boundaries: each batch gets fresh arrays
                        stop = min(group.num_rows, start + cutter.rows_missing)
                        for full in cutter.add(group.block(start, stop)):
                            yield full.to_batch(self.spec, batch_size)
                        start = stop
            finally:
                groups.close()
            if not self.options.repeat:
                break
            if rows == 0:
                raise ValueError(f"Parquet source {self._source!r} holds no rows; repeat mode would never yield.")
        tail = cutter.flush()
        if tail is not None:
            yield tail.to_batch(self.spec, batch_size)

    def iter_file(self, path: str) -> Iterator[SampleBlock]:
        """Every sample of one file, row group by row group (read with pyarrow, as NumPy)."""
        for group in self._row_groups([path], "pyarrow"):
            yield cast(RowGroupColumns, group).block(0, group.num_rows)

    def _row_groups(self, files: Sequence[str], engine: str) -> Generator[RowGroupColumns | DeviceRowGroup, None, None]:
        """The non-empty row groups of `files` in order, checked, as NumPy columns (pyarrow) or tensors (cudf)."""
        key_type = self.options.key_type
        for path in files:
            metadata = self._metadata_for(path)
            self._check_counts(metadata)
            with _open(path) as parquet:
                schema = parquet.schema_arrow
                check_column_types(schema, metadata, path, key_type)
                self._num_rows(metadata, path, parquet.metadata.num_rows)
                names = [schema.field(i).name for i in (*metadata.labels, *metadata.conts, *metadata.cats)]
                width = len(metadata.labels) + len(metadata.conts)
                if engine == "cudf":
                    multi_hot = [is_list_type(schema.field(i).type) for i in metadata.cats]
                    yield from read_row_groups(
                        path, parquet.num_row_groups, names, width, multi_hot, key_type, self._offsets,
                        allow_nonfinite=self.allow_nonfinite,
                    )  # fmt: skip
                    continue
                for group in range(parquet.num_row_groups):
                    table = parquet.read_row_group(group, columns=sorted(set(names)))
                    if table.num_rows:
                        yield RowGroupColumns.of(
                            table, names, width, path, key_type, self._offsets, allow_nonfinite=self.allow_nonfinite
                        )

    def _metadata_for(self, path: str) -> ParquetMetadata:
        location = metadata_path(path)
        if location not in self._metadata:
            self._metadata[location] = load_metadata(location)
        return self._metadata[location]

    def _check_counts(self, metadata: ParquetMetadata) -> None:
        found = (len(metadata.labels), len(metadata.conts), len(metadata.cats))
        wanted = (self.spec.label_dim, self.spec.dense_dim, self.spec.total_slots)
        if found != wanted:
            raise ValueError(
                f"Parquet metadata {metadata.path!r} lists {found[0]} labels, {found[1]} conts and {found[2]} cats, "
                f"but the Input has label_dim={wanted[0]}, dense_dim={wanted[1]} and {wanted[2]} slots. Make them "
                "agree (edit _metadata.json to select columns, or change the Input)."
            )

    @staticmethod
    def _num_rows(metadata: ParquetMetadata, path: str, real: int) -> int:
        listed = metadata.num_rows.get(posixpath.basename(path))
        if listed is None:
            logger.warning(
                "Parquet file %r has no num_rows entry in %r; reading its %d rows (HugeCTR v3.5 would use 0).",
                path,
                metadata.path,
                real,
            )
            return real
        if listed != real:
            raise ValueError(
                f"Parquet file {path!r}: {metadata.path!r} says num_rows={listed} but the file holds {real} rows. "
                "Fix file_stats in _metadata.json."
            )
        return listed


def _slot_offsets(slot_size_array: tuple[int, ...], total_slots: int, key_type: str) -> np.ndarray | None:
    """Exclusive prefix sums of slot_size_array per global slot, zero-padded (formats spec §3)."""
    if not slot_size_array:
        return None
    sizes = np.zeros(max(total_slots, len(slot_size_array)), np.int64)
    sizes[: len(slot_size_array)] = slot_size_array
    offsets = (np.cumsum(sizes) - sizes)[:total_slots]
    if key_type == "i32" and offsets.size and offsets.max() > np.iinfo(np.uint32).max:
        raise ValueError(
            f"slot_size_array sums to {int(sizes.sum())}, so the offset {int(offsets.max())} does not fit i32 keys. "
            "Use i64_input_key=True or smaller cardinalities."
        )
    return offsets


@contextlib.contextmanager
def _open(path: str) -> Iterator[pq.ParquetFile]:
    """The Parquet file at `path`; local files are memory-mapped by Arrow, with no Python file in the read path."""
    fs, location = fsspec.core.url_to_fs(path)
    with contextlib.ExitStack() as stack:
        try:
            if isinstance(fs, LocalFileSystem):  # mapped: the decoder reads the page cache, no copy in between
                parquet = stack.enter_context(pq.ParquetFile(location, memory_map=True))
            else:
                parquet = stack.enter_context(
                    pq.ParquetFile(stack.enter_context(fs.open(location, "rb")), pre_buffer=True)
                )
        except FileNotFoundError:
            raise ValueError(
                f"Parquet data file {path!r} (named by the file list) does not exist; fix the file list."
            ) from None
        yield parquet


def _read_ahead(items: Generator[T, None, None]) -> Generator[T, None, None]:
    """The items of `items`, each next one produced in a worker thread while the caller uses the current one.

    Parquet decoding (Arrow) and the NumPy work on the previous row group then overlap; both release the GIL.
    Items, and errors, arrive in the same order as from `items` itself. Closing this generator waits for the
    item in flight, then closes `items`.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="ctrflow-parquet") as pool:
        pending = pool.submit(_next_item, items)
        try:
            while (item := pending.result()) is not None:
                pending = pool.submit(_next_item, items)
                yield item[0]
        finally:
            pending.cancel()
            futures.wait([pending])
            items.close()


def _next_item(items: Iterator[T]) -> tuple[T] | None:
    """(next item,) or None at the end."""
    for item in items:
        return (item,)
    return None
