"""`make_reader`: the one place that maps a dataset kind to its reader class.

The pipeline's read stage and the `hugectr` facade call `make_reader(kind, source, spec, options)` with
HugeCTR's `DataReaderParams` translated into `ReaderOptions`; what comes back iterates CPU `Batch`es
(wrap it in `Loader` to prefetch and place them on a device).
"""

from __future__ import annotations

from ctrflow.readers.norm import NormReader
from ctrflow.readers.parquet import ParquetReader
from ctrflow.readers.raw import RawReader
from ctrflow.readers.types import DataSpec, Reader, ReaderKind, ReaderOptions

_READERS: dict[str, type[Reader]] = {"norm": NormReader, "raw": RawReader, "parquet": ParquetReader}


def make_reader(kind: ReaderKind, source: str, spec: DataSpec, options: ReaderOptions) -> Reader:
    """Build the reader of `kind` ("norm", "raw" or "parquet") for `source`.

    `source` is a file list for Norm and Parquet, the data file for Raw; any path may be an fsspec URL.
    """
    if not isinstance(spec, DataSpec):
        raise TypeError(f"make_reader: spec must be a DataSpec, received {type(spec).__name__}.")
    if not isinstance(options, ReaderOptions):
        raise TypeError(f"make_reader: options must be ReaderOptions, received {type(options).__name__}.")
    reader_class = _READERS.get(kind)
    if reader_class is None:
        raise ValueError(
            f'make_reader: unknown reader kind {kind!r}; expected "norm", "raw" or "parquet" '
            "(HugeCTR's DataReaderType_t.Norm, .Raw, .Parquet)."
        )
    return reader_class(source, spec, options)  # type: ignore[call-arg]
