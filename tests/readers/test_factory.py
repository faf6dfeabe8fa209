from __future__ import annotations

import pytest
from norm_bytes import norm_file

from ctrflow.readers import DataSpec, NormReader, ReaderOptions, SparseInputSpec, make_reader

SPEC = DataSpec(1, 2, (SparseInputSpec("data", 2, (1, 1)),))


def test_norm_kind_builds_a_norm_reader_that_reads(write_norm):
    source = write_norm([norm_file([([1.0, 2.0, 3.0], [[4], [5]])], 1, 2, 2)])
    reader = make_reader("norm", source, SPEC, ReaderOptions(batch_size=1, repeat=False))
    assert isinstance(reader, NormReader) and reader.source == source
    (batch,) = list(reader)
    assert batch.sparse["data"].keys.tolist() == [4, 5]


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown reader kind 'csv'; expected \"norm\", \"raw\" or \"parquet\""):
        make_reader("csv", "x", SPEC, ReaderOptions(batch_size=1))  # type: ignore[arg-type]


def test_options_of_the_wrong_type_are_rejected():
    with pytest.raises(TypeError, match="options must be ReaderOptions, received dict"):
        make_reader("norm", "x", SPEC, {"batch_size": 1})  # type: ignore[arg-type]
