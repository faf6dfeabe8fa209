from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from ctrflow.readers import DataSpec, RawReader, ReaderOptions, SparseInputSpec

SPEC = DataSpec(1, 2, (SparseInputSpec("data", 3, (1, 1, 1)),))


def raw_record(i: int, float_label_dense: bool) -> bytes:
    """formats spec §2: label, dense (int32 or float32), then one int32 key per slot."""
    values = (i % 2, i, 2 * i)
    head = struct.pack("<3f", *values) if float_label_dense else struct.pack("<3i", *values)
    return head + struct.pack("<3i", i, 10 + i, 20 + i)


def write_raw(tmp_path, count: int, float_label_dense: bool = False, name: str = "data.bin") -> str:
    path = tmp_path / name
    path.write_bytes(b"".join(raw_record(i, float_label_dense) for i in range(count)))
    return str(path)


def test_int32_label_dense_become_float_label_and_log_dense(tmp_path):
    source = write_raw(tmp_path, 3)
    (batch,) = list(RawReader(source, SPEC, ReaderOptions(batch_size=3, num_samples=3, repeat=False)))
    assert batch.label[:, 0].tolist() == [0.0, 1.0, 0.0]
    # float32 ln(v + 1); tolerance of a float32 ulp
    expected = [[math.log(i + 1), math.log(2 * i + 1)] for i in range(3)]
    np.testing.assert_allclose(batch.dense.numpy(), expected, rtol=1e-6)
    assert batch.sparse["data"].keys.tolist() == [0, 10, 20, 1, 11, 21, 2, 12, 22]
    assert batch.sparse["data"].offsets.tolist() == list(range(10))


def test_float_label_dense_is_read_untransformed(tmp_path):
    source = write_raw(tmp_path, 2, float_label_dense=True)
    options = ReaderOptions(batch_size=2, num_samples=2, float_label_dense=True, repeat=False)
    (batch,) = list(RawReader(source, SPEC, options))
    assert batch.dense.tolist() == [[0.0, 0.0], [1.0, 2.0]]


def test_last_batch_is_short_even_in_repeat_mode(tmp_path):
    source = write_raw(tmp_path, 5)
    iterator = iter(RawReader(source, SPEC, ReaderOptions(batch_size=2, num_samples=5, repeat=True)))
    sizes = [next(iterator).size for _ in range(6)]
    assert sizes == [2, 2, 1, 2, 2, 1]


def test_short_batch_is_zero_padded(tmp_path):
    source = write_raw(tmp_path, 3)
    batches = list(RawReader(source, SPEC, ReaderOptions(batch_size=2, num_samples=3, repeat=False)))
    last = batches[-1]
    assert (last.size, last.batch_size) == (1, 2)
    assert last.dense[1].abs().sum() == 0
    assert last.sparse["data"].lengths()[1].tolist() == [0, 0, 0]


def test_training_shuffle_permutes_batch_order_reproducibly(tmp_path):
    source = write_raw(tmp_path, 40)
    options = ReaderOptions(batch_size=4, num_samples=40, repeat=False, shuffle_batches=True, seed=3)
    firsts = [int(b.sparse["data"].keys[0]) for b in RawReader(source, SPEC, options)]
    again = [int(b.sparse["data"].keys[0]) for b in RawReader(source, SPEC, options)]
    assert sorted(firsts) == list(range(0, 40, 4))
    assert firsts != sorted(firsts)
    assert firsts == again


@pytest.mark.parametrize("repeat", [False, True])
@pytest.mark.parametrize("workers", [2, 3, 8])
def test_worker_threads_give_the_batches_of_one_worker_in_the_same_order(tmp_path, repeat, workers):
    source = write_raw(tmp_path, 22)  # 5 full batches and a short one: not a multiple of the workers

    def first_keys(num_workers: int) -> list[tuple[int, int]]:
        options = ReaderOptions(batch_size=4, num_samples=22, repeat=repeat, shuffle_batches=True, seed=5,
                                num_workers=num_workers)  # fmt: skip
        batches = iter(RawReader(source, SPEC, options))
        count = 20 if repeat else 6  # over three epochs when repeating
        taken = [next(batches) for _ in range(count)]
        if not repeat:
            assert next(batches, None) is None
        return [(int(b.sparse["data"].keys[0]), b.size) for b in taken]

    assert first_keys(workers) == first_keys(1)


def test_num_samples_disagreeing_with_file_size_is_reported(tmp_path):
    source = write_raw(tmp_path, 3)
    with pytest.raises(ValueError, match=r"72 bytes, but num_samples=4 records of 24 bytes need 96"):
        RawReader(source, SPEC, ReaderOptions(batch_size=2, num_samples=4))


def test_zero_num_samples_is_inferred_from_the_file_size(tmp_path):
    source = write_raw(tmp_path, 3)
    assert RawReader(source, SPEC, ReaderOptions(batch_size=2)).num_samples == 3


def test_file_size_not_a_whole_number_of_records_is_reported(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\x00" * 30)
    with pytest.raises(ValueError, match="30 bytes is not a whole number of 24-byte records"):
        RawReader(str(path), SPEC, ReaderOptions(batch_size=2))


def test_key_outside_slot_size_array_names_record_and_slot(tmp_path):
    source = write_raw(tmp_path, 4)
    options = ReaderOptions(batch_size=4, num_samples=4, slot_size_array=(10, 100, 23), repeat=False)
    with pytest.raises(ValueError, match=r"record 3, slot 2 \(byte offset 92\) holds key 23, outside \[0, 23\)"):
        list(RawReader(source, SPEC, options))


def test_minus_one_dense_gives_non_finite_error(tmp_path):
    path = tmp_path / "neg.bin"
    path.write_bytes(struct.pack("<3i", 0, -1, 0) + struct.pack("<3i", 1, 2, 3))
    with pytest.raises(ValueError, match=r"record 0 \(byte offset 0\) has label/dense float 1 = -inf"):
        list(RawReader(str(path), SPEC, ReaderOptions(batch_size=1, repeat=False)))


def test_i64_keys_are_rejected_for_raw(tmp_path):
    source = write_raw(tmp_path, 1)
    with pytest.raises(ValueError, match="Raw files hold int32 keys only"):
        RawReader(source, SPEC, ReaderOptions(batch_size=1, key_type="i64"))


def test_missing_raw_file_is_reported(tmp_path):
    with pytest.raises(ValueError, match=r"none\.bin' does not exist"):
        RawReader(str(tmp_path / "none.bin"), SPEC, ReaderOptions(batch_size=1))


def test_raw_file_on_a_memory_url_is_read(tmp_path):
    import fsspec

    with fsspec.open("memory://raw/data.bin", "wb") as handle:
        handle.write(b"".join(raw_record(i, True) for i in range(2)))
    options = ReaderOptions(batch_size=2, float_label_dense=True, repeat=False)
    (batch,) = list(RawReader("memory://raw/data.bin", SPEC, options))
    assert batch.sparse["data"].keys.tolist() == [0, 10, 20, 1, 11, 21]


def test_slots_split_into_sparse_inputs_in_order(tmp_path):
    source = write_raw(tmp_path, 2)
    spec = DataSpec(1, 2, (SparseInputSpec("a", 1, (1,)), SparseInputSpec("b", 2, (1, 1))))
    (batch,) = list(RawReader(source, spec, ReaderOptions(batch_size=3, num_samples=2, repeat=False)))
    assert batch.sparse["a"].keys.tolist() == [0, 1]
    assert batch.sparse["a"].offsets.tolist() == [0, 1, 2, 2]
    assert batch.sparse["b"].keys.tolist() == [10, 20, 11, 21]
    assert batch.sparse["b"].offsets.tolist() == [0, 1, 2, 3, 4, 4, 4]


def test_key_outside_slot_size_array_is_reported_on_every_pass(tmp_path):
    source = write_raw(tmp_path, 4)
    options = ReaderOptions(batch_size=2, num_samples=4, slot_size_array=(10, 100, 23), repeat=False)
    reader = RawReader(source, SPEC, options)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"record 3, slot 2 \(byte offset 92\) holds key 23"):
            list(reader)
