from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctrflow.readers import (
    DataSpec,
    GeneratorConfig,
    NormReader,
    ParquetReader,
    RawReader,
    ReaderOptions,
    SparseInputSpec,
    generate,
    read_file_list,
)

SIZES = (5, 50, 500)


def config(tmp_path, format, **kwargs):
    folder = tmp_path / format
    source, eval_source = (
        (f"{folder}/train.bin", f"{folder}/test.bin")
        if format == "raw"
        else (f"{folder}/file_list.txt", f"{folder}/file_list_test.txt")
    )
    values = dict(
        format=format,
        label_dim=1,
        dense_dim=2,
        num_slot=3,
        i64_input_key=False,
        source=source,
        eval_source=eval_source,
        slot_size_array=SIZES,
        num_files=3,
        eval_num_files=1,
        num_samples_per_file=100,
        num_samples=250,
        eval_num_samples=60,
        seed=11,
        progress=False,
    )
    values.update(kwargs)
    return GeneratorConfig(**values)


def spec(nnz=(1, 1, 1)):
    return DataSpec(1, 2, (SparseInputSpec("data", 3, nnz),))


def keys_by_slot(batches):
    keys = np.concatenate([b.sparse["data"].keys.numpy() for b in batches])
    lengths = np.concatenate([b.sparse["data"].lengths().numpy()[: b.size] for b in batches])
    slot_of_key = np.repeat(np.tile(np.arange(3), lengths.shape[0]), lengths.reshape(-1))
    return [keys[slot_of_key == s] for s in range(3)]


@pytest.mark.parametrize("check", ["sum", "none"])
@pytest.mark.parametrize("i64", [False, True])
def test_norm_dataset_reads_back_with_offset_keys_in_range(tmp_path, check, i64):
    cfg = config(tmp_path, "norm", check_type=check, i64_input_key=i64, nnz_array=(1, 2, 3))
    report = generate(cfg)
    assert report.train_samples == 300 and report.eval_samples == 100
    assert read_file_list(cfg.source) == list(report.train_files)
    assert report.train_files[0].endswith("norm/train/gen_0.data")
    options = ReaderOptions(batch_size=64, key_type="i64" if i64 else "i32", check=check, repeat=False)
    batches = list(NormReader(cfg.source, spec((1, 2, 3)), options))
    assert sum(b.size for b in batches) == 300
    for slot, keys in enumerate(keys_by_slot(batches)):
        offset = sum(SIZES[:slot])
        assert keys.size == 300 * (slot + 1)
        assert keys.min() >= offset and keys.max() < offset + SIZES[slot]
    labels = np.concatenate([b.label.numpy()[: b.size] for b in batches])
    assert ((labels >= 0) & (labels < 1)).all() and len(np.unique(labels)) > 2  # HugeCTR: U[0,1) labels


def test_norm_header_matches_the_spec(tmp_path):
    cfg = config(tmp_path, "norm", check_type="none")
    generate(cfg)
    raw = Path(read_file_list(cfg.source)[0]).read_bytes()
    assert struct.unpack_from("<8q", raw, 0) == (0, 100, 1, 2, 3, 0, 0, 0)
    assert len(raw) == 64 + 100 * (4 * 3 + 3 * 8)


def test_existing_norm_file_list_is_not_regenerated(tmp_path):
    cfg = config(tmp_path, "norm")
    generate(cfg)
    report = generate(cfg)
    assert report.skipped_splits == ("train", "eval")
    assert report.train_files == () and report.train_samples == 0


def test_power_law_favours_small_keys(tmp_path):
    cfg = config(tmp_path, "norm", num_files=1, num_samples_per_file=4000, slot_size_array=(1000, 1000, 1000))
    generate(cfg)
    options = ReaderOptions(batch_size=4000, repeat=False)
    keys = keys_by_slot(list(NormReader(cfg.source, spec(), options)))[0]
    # alpha 1.2, M = 1000: key 0 is y < 1.5, i.e. x < 0.078 / (1 - 1000^-0.2) = 0.104; uniform gives 0.1 %
    assert 0.08 < np.mean(keys == 0) < 0.13
    assert keys.max() > 100


def test_raw_dataset_has_alternating_labels_and_column_index_dense(tmp_path):
    cfg = config(tmp_path, "raw", float_label_dense=True)
    report = generate(cfg)
    assert report.train_files == (cfg.source,) and report.train_samples == 250
    options = ReaderOptions(batch_size=100, float_label_dense=True, repeat=False)
    batches = list(RawReader(cfg.source, spec(), options))
    labels = np.concatenate([b.label.numpy()[: b.size, 0] for b in batches])
    assert labels.tolist() == [i % 2 for i in range(250)]
    assert batches[0].dense[0].tolist() == [0.0, 1.0]
    for slot, keys in enumerate(keys_by_slot(batches)):
        assert keys.min() >= 0 and keys.max() < SIZES[slot]


def test_raw_int_dense_reads_as_log_of_column_index_plus_one(tmp_path):
    cfg = config(tmp_path, "raw")
    generate(cfg)
    batch = next(iter(RawReader(cfg.eval_source, spec(), ReaderOptions(batch_size=60, repeat=False))))
    np.testing.assert_allclose(batch.dense[0].numpy(), [0.0, np.log(2.0)], rtol=1e-6)  # float32 ulp


def test_parquet_dataset_round_trips_with_list_columns_and_exact_metadata(tmp_path):
    cfg = config(tmp_path, "parquet", nnz_array=(1, 3, 1), i64_input_key=True)
    report = generate(cfg)
    folder = tmp_path / "parquet" / "train"
    metadata = (folder / "_metadata.json").read_text()
    assert metadata.startswith('{ "file_stats": [{"file_name": "gen_0.parquet", "num_rows":100}, ')
    assert '"labels": [{"col_name": "label0", "index":0} ], "conts": [{"col_name": "C1", "index":1}, ' in metadata
    assert metadata.endswith('{"col_name": "C5", "index":5} ] }')
    schema = pq.read_schema(report.train_files[0])
    assert pa.types.is_list(schema.field(4).type) and schema.field(4).type.value_type == pa.int64()
    assert schema.field(3).type == pa.int64()
    options = ReaderOptions(batch_size=128, key_type="i64", repeat=False, slot_size_array=SIZES)
    batches = list(ParquetReader(cfg.source, spec((1, 3, 1)), options))
    assert sum(b.size for b in batches) == 300
    lengths = np.concatenate([b.sparse["data"].lengths().numpy()[: b.size] for b in batches])
    assert set(lengths[:, 1].tolist()) == {1, 2, 3} and (lengths[:, [0, 2]] == 1).all()
    for slot, keys in enumerate(keys_by_slot(batches)):
        offset = sum(SIZES[:slot])
        assert keys.min() >= offset and keys.max() < offset + SIZES[slot]


def test_i32_parquet_cats_are_uint32_columns(tmp_path):
    report = generate(config(tmp_path, "parquet"))
    assert str(pq.read_schema(report.eval_files[0]).field(3).type) == "uint32"


@pytest.mark.parametrize("format", ["norm", "raw", "parquet"])
def test_teacher_labels_are_binary_and_learnable(tmp_path, format):
    cfg = config(
        tmp_path,
        format,
        teacher_labels=True,
        num_samples_per_file=2000,
        num_samples=6000,
        eval_num_samples=2000,
        slot_size_array=(50, 50, 50),
    )
    report = generate(cfg)
    assert 0.68 < report.teacher_auc_train < 0.92
    assert 0.68 < report.teacher_auc_eval < 0.92
    first = report.train_files[0]
    if format == "raw":
        labels = np.fromfile(first, np.int32).reshape(-1, 6)[:, 0]
    elif format == "norm":
        batch = next(iter(NormReader(cfg.source, spec(), ReaderOptions(batch_size=2000, repeat=False))))
        labels = batch.label.numpy()[:, 0]
    else:
        labels = pq.read_table(first).column(0).to_numpy()
    assert set(np.unique(labels).tolist()) == {0, 1}


def test_same_seed_gives_identical_files(tmp_path):
    first = generate(config(tmp_path / "a", "norm", teacher_labels=True))
    second = generate(config(tmp_path / "b", "norm", teacher_labels=True))
    assert Path(first.train_files[1]).read_bytes() == Path(second.train_files[1]).read_bytes()
    assert first.teacher_auc_train == second.teacher_auc_train


def test_progress_prints_one_line_per_file(tmp_path, capsys):
    generate(config(tmp_path, "norm", progress=True))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("ctrflow generate: train 1/3")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slot_size_array": (5, 5)}, "slot_size_array has 2 entries but num_slot is 3"),
        ({"nnz_array": (1, 1)}, "nnz_array has 2 entries"),
        ({"alpha": 1.0}, "alpha must be > 0 and not 1"),
        ({"format": "raw", "i64_input_key": True}, "Raw datasets hold int32 keys only"),
        ({"format": "raw", "nnz_array": (1, 2, 1)}, "Raw datasets are one-hot"),
        ({"slot_size_array": (2**31, 2**31, 10)}, "do not fit uint32 keys"),
    ],
)
def test_invalid_configs_are_rejected(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, kwargs.pop("format", "norm"), **kwargs)
