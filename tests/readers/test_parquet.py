from __future__ import annotations

import json
import logging
import re
import sys
import types

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from ctrflow.readers import Batch, DataSpec, ParquetReader, ReaderOptions, SparseInputSpec
from ctrflow.readers.parquet_cudf import ENGINE_VARIABLE, forget_engine_choice

SPEC = DataSpec(1, 1, (SparseInputSpec("data", 2, (1, 3)),))


def write_dataset(tmp_path, tables, metadata=None, stats=True):
    paths = []
    for index, table in enumerate(tables):
        path = tmp_path / f"part_{index}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    document = metadata or {
        "labels": [{"col_name": "label", "index": 0}],
        "conts": [{"col_name": "I1", "index": 1}],
        "cats": [{"col_name": "C1", "index": 2}, {"col_name": "C2", "index": 3}],
    }
    if stats:
        document["file_stats"] = [
            {"file_name": f"part_{i}.parquet", "num_rows": t.num_rows} for i, t in enumerate(tables)
        ]
    (tmp_path / "_metadata.json").write_text(json.dumps(document))
    file_list = tmp_path / "_file_list.txt"
    file_list.write_text(f"{len(paths)}\n" + "".join(p + "\n" for p in paths))
    return str(file_list)


def table(rows: int, start: int = 0, key_type=None):
    key_type = key_type or pa.int64()
    return pa.table(
        {
            "label": pa.array([float(i % 2) for i in range(start, start + rows)], pa.float32()),
            "I1": pa.array([i + 0.5 for i in range(start, start + rows)], pa.float32()),
            "C1": pa.array(list(range(start, start + rows)), key_type),
            "C2": pa.array([[i, i + 1][: 1 + i % 2] for i in range(start, start + rows)], pa.list_(key_type)),
        }
    )


def options(**kwargs):
    return ReaderOptions(**{"batch_size": 4, "key_type": "i64", "repeat": False, **kwargs})


def test_scalar_and_list_columns_become_csr_in_sample_then_slot_order(tmp_path):
    source = write_dataset(tmp_path, [table(3)])
    (batch,) = list(ParquetReader(source, SPEC, options()))
    assert batch.size == 3
    assert batch.label[:3, 0].tolist() == [0.0, 1.0, 0.0]
    assert batch.dense[:3, 0].tolist() == [0.5, 1.5, 2.5]
    sparse = batch.sparse["data"]
    assert sparse.lengths()[:3].tolist() == [[1, 1], [1, 2], [1, 1]]
    assert sparse.keys.tolist() == [0, 0, 1, 1, 2, 2, 2]


def test_slot_size_array_adds_exclusive_prefix_sums(tmp_path):
    source = write_dataset(tmp_path, [table(2)])
    (batch,) = list(ParquetReader(source, SPEC, options(slot_size_array=(100, 50))))
    assert batch.sparse["data"].keys.tolist() == [0, 100, 1, 101, 102]


def test_i32_offsets_wrap_in_uint32_arithmetic(tmp_path):
    source = write_dataset(tmp_path, [table(1, start=0xFFFFFFFF - 5, key_type=pa.uint32())])
    (batch,) = list(ParquetReader(source, SPEC, options(key_type="i32", slot_size_array=(10, 1))))
    assert batch.sparse["data"].keys.tolist() == [0xFFFFFFFF - 5, (0xFFFFFFFF - 5 + 10) % 2**32]


def test_columns_are_mapped_by_ascending_index_not_by_name(tmp_path):
    metadata = {
        "labels": [{"col_name": "whatever", "index": 1}],
        "conts": [{"col_name": "x", "index": 0}],
        "cats": [{"col_name": "b", "index": 3}, {"col_name": "a", "index": 2}],
    }
    source = write_dataset(tmp_path, [table(1, start=1)], metadata)
    (batch,) = list(ParquetReader(source, SPEC, options()))
    assert batch.label[0, 0].item() == 1.5 and batch.dense[0, 0].item() == 1.0
    assert batch.sparse["data"].keys.tolist() == [1, 1, 2]


def test_batches_span_files_and_the_epoch_ends_with_a_padded_short_batch(tmp_path):
    source = write_dataset(tmp_path, [table(3), table(3, start=3)])
    batches = list(ParquetReader(source, SPEC, options()))
    assert [b.size for b in batches] == [4, 2]
    assert batches[0].dense[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert batches[1].dense[2:].abs().sum() == 0


def test_repeat_mode_wraps_around_the_file_list(tmp_path):
    source = write_dataset(tmp_path, [table(3)])
    iterator = iter(ParquetReader(source, SPEC, options(repeat=True, batch_size=2)))
    assert [next(iterator).dense[:, 0].tolist() for _ in range(3)] == [[0.5, 1.5], [2.5, 0.5], [1.5, 2.5]]


def test_missing_num_rows_uses_the_real_count_and_warns(tmp_path, caplog):
    source = write_dataset(tmp_path, [table(3)], stats=False)
    with caplog.at_level(logging.WARNING):
        (batch,) = list(ParquetReader(source, SPEC, options()))
    assert batch.size == 3
    assert "no num_rows entry" in caplog.text


def test_num_rows_disagreeing_with_the_file_is_reported(tmp_path):
    source = write_dataset(tmp_path, [table(3)])
    document = json.loads((tmp_path / "_metadata.json").read_text())
    document["file_stats"][0]["num_rows"] = 7
    (tmp_path / "_metadata.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="says num_rows=7 but the file holds 3 rows"):
        list(ParquetReader(source, SPEC, options()))


def test_float64_label_column_is_a_type_error_naming_the_column(tmp_path):
    bad = table(2).set_column(0, "label", pa.array([0.0, 1.0], pa.float64()))
    source = write_dataset(tmp_path, [bad])
    with pytest.raises(ValueError, match=r"label/cont column 0 \('label'\) has type double; HugeCTR needs float32"):
        list(ParquetReader(source, SPEC, options()))


def test_int64_cats_read_with_i32_keys_suggest_the_key_type(tmp_path):
    source = write_dataset(tmp_path, [table(2)])
    with pytest.raises(ValueError, match=r"cat column 2 \('C1'\) has type int64.*key_type=\"i64\""):
        list(ParquetReader(source, SPEC, options(key_type="i32")))


def test_metadata_column_counts_must_match_the_input(tmp_path):
    source = write_dataset(tmp_path, [table(2)])
    spec = DataSpec(1, 2, (SparseInputSpec("data", 2, (1, 1)),))
    with pytest.raises(
        ValueError, match="lists 1 labels, 1 conts and 2 cats, but the Input has label_dim=1, dense_dim=2"
    ):
        list(ParquetReader(source, spec, options()))


def test_missing_metadata_is_reported(tmp_path):
    source = write_dataset(tmp_path, [table(2)])
    (tmp_path / "_metadata.json").unlink()
    with pytest.raises(ValueError, match=r"_metadata\.json' does not exist"):
        list(ParquetReader(source, SPEC, options()))


def test_file_list_of_non_parquet_files_is_rejected(tmp_path):
    file_list = tmp_path / "list.txt"
    file_list.write_text("1\nx.data\n")
    with pytest.raises(ValueError, match=r"does not end in '\.parquet'"):
        ParquetReader(str(file_list), SPEC, options())


def test_nulls_in_a_cat_column_are_rejected(tmp_path):
    bad = table(2).set_column(2, "C1", pa.array([1, None], pa.int64()))
    source = write_dataset(tmp_path, [bad])
    with pytest.raises(ValueError, match=r"cat column 'C1' has 1 nulls"):
        list(ParquetReader(source, SPEC, options()))


def one_hot_table(rows: int, start: int = 0):
    return pa.table(
        {
            "label": pa.array([float(i % 2) for i in range(start, start + rows)], pa.float32()),
            "I1": pa.array([i + 0.5 for i in range(start, start + rows)], pa.float32()),
            "C1": pa.array(list(range(start, start + rows)), pa.uint32()),
            "C2": pa.array([10 * i for i in range(start, start + rows)], pa.uint32()),
        }
    )


def test_one_hot_batches_cut_across_row_groups_and_files_keep_row_order(tmp_path):
    paths = []
    for index, (rows, start) in enumerate([(7, 0), (5, 7)]):
        path = tmp_path / f"part_{index}.parquet"
        pq.write_table(one_hot_table(rows, start), path, row_group_size=3)
        paths.append(path)
    source = write_dataset(tmp_path, [], stats=False)
    (tmp_path / "_file_list.txt").write_text(f"{len(paths)}\n" + "".join(f"{p}\n" for p in paths))
    spec = DataSpec(1, 1, (SparseInputSpec("data", 2, (1, 1)),))
    batches = list(ParquetReader(source, spec, options(key_type="i32", slot_size_array=(100, 0))))
    assert [b.size for b in batches] == [4, 4, 4]
    assert [v for b in batches for v in b.dense[:, 0].tolist()] == [i + 0.5 for i in range(12)]
    assert [k for b in batches for k in b.sparse["data"].keys.tolist()] == [
        key for i in range(12) for key in (i, 100 + 10 * i)
    ]
    assert all(b.sparse["data"].offsets.tolist() == list(range(9)) for b in batches)


def test_stopping_early_ends_the_read_ahead_thread(tmp_path):
    import threading

    source = write_dataset(tmp_path, [table(3), table(3, start=3), table(3, start=6)])
    batches = iter(ParquetReader(source, SPEC, options(repeat=True, batch_size=2)))
    next(batches)
    batches.close()
    assert not any(t.name.startswith("ctrflow-parquet") and t.is_alive() for t in threading.enumerate())


# The cudf engine, checked against a stand-in: a fake `cudf` module on pyarrow that hands back CPU tensors.


class FakeListMethods:
    def __init__(self, array):
        self._array = array

    def len(self):
        return FakeSeries(pc.list_value_length(self._array).cast(pa.int32()))

    @property
    def leaves(self):
        return FakeSeries(self._array.flatten())


class FakeSeries:
    def __init__(self, array):
        self._array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array

    @property
    def null_count(self):
        return self._array.null_count

    @property
    def list(self):
        return FakeListMethods(self._array)

    def astype(self, dtype):  # C casts, as libcudf's: int32 -1 becomes int64 -1, uint64 wraps into int64
        return FakeSeries(pc.cast(self._array, pa.from_numpy_dtype(np.dtype(dtype)), safe=False))

    def to_dlpack(self):
        return self._array.to_numpy(zero_copy_only=False).copy().__dlpack__()


class FakeFrame:
    def __init__(self, table):
        self._table = table

    def __len__(self):
        return self._table.num_rows

    def __getitem__(self, name):
        return FakeSeries(self._table.column(name))


def fake_cudf(read=None):
    module = types.ModuleType("cudf")

    def read_parquet(source, columns=None, row_groups=None):
        parquet = pq.ParquetFile(source)
        groups = range(parquet.num_row_groups) if row_groups is None else row_groups
        return FakeFrame(parquet.read_row_groups(groups, columns=columns))

    module.read_parquet = read or read_parquet
    return module


@pytest.fixture
def gpu(monkeypatch):
    """A visible "GPU" and the stand-in cudf; the engine choice is made afresh in each test."""
    monkeypatch.delenv(ENGINE_VARIABLE, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "cudf", fake_cudf())
    forget_engine_choice()
    yield monkeypatch
    forget_engine_choice()


def assert_same_batches(found, expected):
    assert len(found) == len(expected) > 0
    for ours, reference in zip(found, expected, strict=True):
        assert ours.size == reference.size
        for name in ("label", "dense"):
            a, b = getattr(ours, name), getattr(reference, name)
            assert a.dtype == b.dtype == torch.float32 and a.is_contiguous()
            assert torch.equal(a, b)
        assert list(ours.sparse) == list(reference.sparse)
        for name, part in ours.sparse.items():
            other = reference.sparse[name]
            assert part.num_slots == other.num_slots
            assert part.keys.dtype == part.offsets.dtype == torch.int64
            assert torch.equal(part.keys, other.keys) and torch.equal(part.offsets, other.offsets)


def both_engines(source, spec, reader_options, **kwargs):
    cudf = ParquetReader(source, spec, reader_options, engine="cudf", **kwargs)
    arrow = ParquetReader(source, spec, reader_options, engine="pyarrow", **kwargs)
    assert (cudf.engine, arrow.engine) == ("cudf", "pyarrow")
    return list(cudf), list(arrow)


def test_cudf_one_hot_batches_equal_pyarrow_across_row_groups_files_and_offset_wrap(gpu, tmp_path):
    paths = []
    for index, (rows, start) in enumerate([(7, 0), (6, 7)]):
        path = tmp_path / f"part_{index}.parquet"
        near_max = pa.array([0xFFFFFFFF - i for i in range(start, start + rows)], pa.uint32())
        pq.write_table(one_hot_table(rows, start).set_column(3, "C2", near_max), path, row_group_size=3)
        paths.append(path)
    source = write_dataset(tmp_path, [], stats=False)
    (tmp_path / "_file_list.txt").write_text(f"{len(paths)}\n" + "".join(f"{p}\n" for p in paths))
    spec = DataSpec(1, 1, (SparseInputSpec("data", 2, (1, 1)),))
    found, expected = both_engines(source, spec, options(key_type="i32", slot_size_array=(100, 7)))
    assert [b.size for b in found] == [4, 4, 4, 1]
    assert_same_batches(found, expected)


def test_cudf_multi_hot_batches_equal_pyarrow_with_two_sparse_inputs(gpu, tmp_path):
    source = write_dataset(tmp_path, [table(5), table(4, start=5)])
    spec = DataSpec(1, 1, (SparseInputSpec("one", 1, (1,)), SparseInputSpec("two", 1, (3,))))
    for batch_size in (2, 4, 16):
        found, expected = both_engines(source, spec, options(batch_size=batch_size, slot_size_array=(10, 5)))
        assert_same_batches(found, expected)


def test_cudf_reads_signed_i32_keys_as_uint32_bit_patterns_like_pyarrow(gpu, tmp_path):
    source = write_dataset(tmp_path, [table(3, start=-2, key_type=pa.int32())])
    found, expected = both_engines(source, SPEC, options(key_type="i32", slot_size_array=(3, 1)))
    assert found[0].sparse["data"].keys[:2].tolist() == [0xFFFFFFFE, 1]  # -2, then -2 + 3 in uint32
    assert_same_batches(found, expected)


def test_cudf_repeat_mode_wraps_like_pyarrow(gpu, tmp_path):
    source = write_dataset(tmp_path, [table(3)])
    cudf = iter(ParquetReader(source, SPEC, options(repeat=True, batch_size=2), engine="cudf"))
    arrow = iter(ParquetReader(source, SPEC, options(repeat=True, batch_size=2), engine="pyarrow"))
    assert_same_batches([next(cudf) for _ in range(4)], [next(arrow) for _ in range(4)])


def test_cudf_reports_the_same_column_errors_as_pyarrow(gpu, tmp_path):
    bad_type = table(2).set_column(0, "label", pa.array([0.0, 1.0], pa.float64()))
    nulls = table(2).set_column(2, "C1", pa.array([1, None], pa.int64()))
    nonfinite = table(2).set_column(1, "I1", pa.array([0.5, float("inf")], pa.float32()))
    for index, bad in enumerate([bad_type, nulls, nonfinite]):
        folder = tmp_path / str(index)
        folder.mkdir()
        source = write_dataset(folder, [bad])
        messages = []
        for engine in ("cudf", "pyarrow"):
            with pytest.raises(ValueError) as error:
                list(ParquetReader(source, SPEC, options(), engine=engine))
            messages.append(str(error.value))
        assert messages[0] == messages[1]


def test_auto_engine_uses_cudf_when_gpu_import_and_probe_work(gpu, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="ctrflow.readers.parquet_cudf"):
        assert ParquetReader(write_dataset(tmp_path, [table(2)]), SPEC, options()).engine == "cudf"
    assert "decoding with cudf" in caplog.text


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda mp: mp.setattr(torch.cuda, "is_available", lambda: False), r"no CUDA GPU is available"),
        (lambda mp: mp.setitem(sys.modules, "cudf", None), r"`import cudf` failed \(ModuleNotFoundError"),
        (
            lambda mp: mp.setitem(sys.modules, "cudf", fake_cudf(read=failing_read)),
            r"probe table \(RuntimeError: no kernel image is available",
        ),
        (
            lambda mp: mp.setitem(sys.modules, "cudf", fake_cudf(read=wrong_read)),
            r"probe table \(ValueError: read .*, expected",
        ),
    ],
    ids=["no-gpu", "no-cudf", "probe-raises", "probe-wrong-values"],
)
def test_auto_engine_falls_back_to_pyarrow_and_logs_why_once(gpu, tmp_path, caplog, setup, reason):
    setup(gpu)
    source = write_dataset(tmp_path, [table(3)])
    with caplog.at_level(logging.INFO, logger="ctrflow.readers.parquet_cudf"):
        readers = [ParquetReader(source, SPEC, options()) for _ in range(3)]
    assert [r.engine for r in readers] == ["pyarrow"] * 3
    fallbacks = [r.getMessage() for r in caplog.records if "decoding with pyarrow, not cudf" in r.getMessage()]
    assert len(fallbacks) == 1 and all(r.levelno == logging.INFO for r in caplog.records)
    assert re.search(reason, fallbacks[0])
    (batch,) = list(readers[0])
    assert batch.size == 3


def failing_read(source, columns=None, row_groups=None):
    raise RuntimeError("no kernel image is available for execution on the device")


def wrong_read(source, columns=None, row_groups=None):
    frame = fake_cudf().read_parquet(source, columns, row_groups)
    return FakeFrame(frame._table.set_column(0, "dense", pa.array([0.0, 0.0], pa.float32())))


def test_forcing_cudf_where_it_cannot_work_raises_with_the_reason(gpu, tmp_path):
    gpu.setitem(sys.modules, "cudf", None)
    source = write_dataset(tmp_path, [table(2)])
    with pytest.raises(RuntimeError, match=r'engine="cudf" was asked for, but cudf cannot be used here: `import cudf`'):
        ParquetReader(source, SPEC, options(), engine="cudf")
    gpu.setenv(ENGINE_VARIABLE, "cudf")
    with pytest.raises(RuntimeError, match=rf'{ENGINE_VARIABLE}="cudf" was asked for'):
        ParquetReader(source, SPEC, options())


def test_environment_variable_forces_pyarrow_without_probing_cudf(gpu, tmp_path):
    gpu.setenv(ENGINE_VARIABLE, "pyarrow")
    gpu.setitem(sys.modules, "cudf", fake_cudf(read=failing_read))
    assert ParquetReader(write_dataset(tmp_path, [table(2)]), SPEC, options()).engine == "pyarrow"


def test_unknown_engine_names_the_choices(gpu, tmp_path):
    source = write_dataset(tmp_path, [table(2)])
    with pytest.raises(ValueError, match=r"engine='gpu' is not an engine; use \"auto\", \"pyarrow\" or \"cudf\""):
        ParquetReader(source, SPEC, options(), engine="gpu")
    gpu.setenv(ENGINE_VARIABLE, "arrow")
    with pytest.raises(ValueError, match=rf"{ENGINE_VARIABLE}='arrow' is not an engine"):
        ParquetReader(source, SPEC, options())


def test_cudf_batches_skip_pinning_only_on_the_gpu(gpu, tmp_path):
    (batch,) = list(ParquetReader(write_dataset(tmp_path, [table(2)]), SPEC, options(), engine="cudf"))
    assert isinstance(batch, Batch) and not batch.label.is_cuda
    gpu.setattr(Batch, "pin_memory", lambda self: "pinned")
    assert batch.pin_memory() == "pinned"
