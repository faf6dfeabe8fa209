"""The Norm reader: file list → header-checked files → batches (formats spec §1).

Flow: `read_file_list` names the files; each of `num_workers` workers reads files w, w+W, w+2W, ... (modulo
the file count in repeat mode), parses them in chunks with `NormRecordParser` and cuts its samples into
batches of exactly `batch_size` rows (a batch may span two of its files). Global batch k comes from worker
k mod W. Repeat mode never yields a short batch; epoch mode ends each worker with a short, zero-padded
batch. Workers are threads (NumPy releases the GIL in the bulk copies); with one worker no thread is used.

Corrupt Sum records (checksum mismatch) are skipped, logged with file and record index, and counted in
`NormReader.corrupt_records`; `ReaderOptions(strict=True)` turns them into ValueError.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator, Sequence

import fsspec

from ctrflow.readers.file_list import read_file_list
from ctrflow.readers.norm_format import check_header_matches, header_size, parse_header
from ctrflow.readers.norm_parse import NormRecordParser
from ctrflow.readers.sample_block import BatchCutter, SampleBlock
from ctrflow.readers.types import Batch, DataSpec, Reader, ReaderOptions
from ctrflow.readers.worker_threads import round_robin

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 8 << 20


class NormReader(Reader):
    """Reads a Norm dataset named by a file list.

    Args:
        source: a file list path (or URL), or several, read one after another.
        spec: what a sample holds; `spec.total_slots` must equal every file's `slot_num`.
        options: batch size, key type, check type, repeat, workers, strict.
        allow_nonfinite: accept NaN/inf in label and dense (by default they raise ValueError).
        chunk_bytes: bytes read from a file at a time.
        max_nnz_per_sample: the most keys a sample may hold; defaults to `spec.max_nnz`.
    """

    def __init__(
        self,
        source: str | Sequence[str],
        spec: DataSpec,
        options: ReaderOptions,
        *,
        allow_nonfinite: bool = False,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        max_nnz_per_sample: int | None = None,
    ) -> None:
        self.spec, self.options = spec, options
        self.allow_nonfinite = allow_nonfinite
        self.chunk_bytes = max(int(chunk_bytes), 1024)
        self.max_nnz = spec.max_nnz if max_nnz_per_sample is None else max_nnz_per_sample
        self._lock = threading.Lock()
        self._corrupt = 0
        self._source: str = ""
        self._files: list[str] = []
        self.set_source(source)

    @property
    def source(self) -> str:
        return self._source

    @property
    def files(self) -> list[str]:
        """The data files of the current source, in file-list order."""
        return list(self._files)

    @property
    def corrupt_records(self) -> int:
        """Sum records skipped so far because their checksum failed."""
        return self._corrupt

    def set_source(self, source: str | Sequence[str] = "") -> None:
        if source == "" or (not isinstance(source, str) and len(source) == 0):
            return  # "" restarts: every iteration starts from the beginning anyway
        lists = [source] if isinstance(source, str) else list(source)
        files: list[str] = []
        for file_list in lists:
            files.extend(read_file_list(file_list))
        self._source, self._files = lists[0] if len(lists) == 1 else ",".join(lists), files

    def __iter__(self) -> Iterator[Batch]:
        workers = min(self.options.num_workers, len(self._files))
        if workers < self.options.num_workers:
            logger.warning(
                "Norm source %r has %d files but num_workers=%d; using %d workers (HugeCTR needs at least "
                "as many files as workers).",
                self._source,
                len(self._files),
                self.options.num_workers,
                workers,
            )
        producers = [functools.partial(self._worker_batches, w, workers) for w in range(workers)]
        yield from round_robin(producers)

    def iter_file(self, path: str) -> Iterator[SampleBlock]:
        """Every sample of one file, as blocks, after checking its header."""
        check = self.options.check
        with open_data_file(path) as handle:
            header = parse_header(handle.read(header_size(check)), path, check)
            check_header_matches(header, path, self.spec)
            parser = NormRecordParser(
                path,
                self.spec.label_dim + self.spec.dense_dim,
                self.spec.total_slots,
                self.options.key_type,
                check,
                self.max_nnz,
                self._on_corrupt,
                self.allow_nonfinite,
            )
            yield from self._iter_records(handle, parser, header.number_of_records, path)

    def _iter_records(self, handle, parser: NormRecordParser, total: int, path: str) -> Iterator[SampleBlock]:
        record, offset, buf, chunk_bytes = 0, header_size(self.options.check), b"", self.chunk_bytes
        at_eof = False
        while record < total:
            if not at_eof:
                chunk = handle.read(chunk_bytes)
                at_eof = len(chunk) == 0
                buf = buf + chunk if buf else chunk
            result = parser.parse(buf, record, total - record, offset)
            if result.consumed_records == 0:
                if at_eof:
                    raise ValueError(
                        f"Norm file {path!r} is truncated: the header announces {total} records but the data "
                        f"ends at byte {offset + len(buf)}, inside record {record} (which starts at byte "
                        f"{offset}). Regenerate or re-copy the file. {_width_hint()}"
                    )
                chunk_bytes *= 2  # a record larger than the chunk
                continue
            record += result.consumed_records
            offset += result.consumed_bytes
            buf = buf[result.consumed_bytes :]
            if result.block.num_rows:
                yield result.block
        trailing = len(buf) + len(handle.read(1 << 16))
        if trailing:
            raise ValueError(
                f"Norm file {path!r}: bytes remain at byte offset {offset} after the {total} records the header "
                f"announces. The header's number_of_records is wrong or the file is corrupt. {_width_hint()}"
            )

    def _worker_batches(self, worker: int, workers: int) -> Iterator[Batch]:
        files, batch_size = self._files, self.options.batch_size
        cutter = BatchCutter(batch_size, self.spec.label_dim + self.spec.dense_dim, self.spec.total_slots)
        turn, rows_seen = 0, 0
        while True:
            index = worker + turn * workers
            if self.options.repeat:
                if turn >= len(files) and rows_seen == 0:
                    raise ValueError(
                        f"Norm source {self._source!r}: worker {worker} read {turn} files without a single "
                        "sample, so repeat mode would never yield a batch. Add data or use fewer workers."
                    )
                index %= len(files)
            elif index >= len(files):
                break
            for block in self.iter_file(files[index]):
                rows_seen += block.num_rows
                for full in cutter.add(block):
                    yield full.to_batch(self.spec, batch_size)
            turn += 1
        tail = cutter.flush()
        if tail is not None:
            yield tail.to_batch(self.spec, batch_size)

    def _on_corrupt(self, record: int, offset: int, message: str) -> None:
        if self.options.strict:
            raise ValueError(f"{message}. The record is corrupt; regenerate the file (strict=True stops here).")
        logger.error("%s; record skipped.", message)
        with self._lock:
            self._corrupt += 1


def open_data_file(path: str):
    """Open a Norm data file for binary reading; a missing file is a ValueError naming it."""
    try:
        return fsspec.open(path, "rb").open()
    except FileNotFoundError:
        raise ValueError(
            f"Norm data file {path!r} (named by the file list) does not exist. Fix the path in the file list; "
            "relative paths resolve against the current directory."
        ) from None
    except (IsADirectoryError, PermissionError) as error:
        raise ValueError(f"Norm data file {path!r} cannot be opened ({error}).") from None


def _width_hint() -> str:
    return "If the file is intact, check that i64_input_key (key_type) and check_type match how it was written."
