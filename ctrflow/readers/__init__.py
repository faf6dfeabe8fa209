"""The data side of ctrflow: HugeCTR's Norm, Raw and Parquet datasets in, `Batch`es out.

`make_reader(kind, source, spec, options)` builds a reader; `Loader` prefetches its batches onto a device;
`generate(GeneratorConfig(...))` writes synthetic datasets in HugeCTR's layout; `read_file_list`,
`read_keyset` and friends handle the small text and binary side files. The contracts (`Batch`,
`DataSpec`, `ReaderOptions`, `Reader`) live in `ctrflow.readers.types`.
"""

from ctrflow.readers.factory import make_reader
from ctrflow.readers.file_list import read_file_list, write_file_list
from ctrflow.readers.generator import GenerationReport, GeneratorConfig, generate
from ctrflow.readers.keyset import read_keyset, write_keyset
from ctrflow.readers.loader import Loader
from ctrflow.readers.norm import NormReader
from ctrflow.readers.parquet import ParquetReader
from ctrflow.readers.raw import RawReader
from ctrflow.readers.types import (
    Batch,
    CheckType,
    DataSpec,
    KeyType,
    Reader,
    ReaderKind,
    ReaderOptions,
    SparseBatch,
    SparseInputSpec,
)

__all__ = [
    "Batch",
    "CheckType",
    "DataSpec",
    "GenerationReport",
    "GeneratorConfig",
    "KeyType",
    "Loader",
    "NormReader",
    "ParquetReader",
    "RawReader",
    "Reader",
    "ReaderKind",
    "ReaderOptions",
    "SparseBatch",
    "SparseInputSpec",
    "generate",
    "make_reader",
    "read_file_list",
    "read_keyset",
    "write_file_list",
    "write_keyset",
]
