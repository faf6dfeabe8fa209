from __future__ import annotations

import logging
import struct

import numpy as np
import pytest
import torch
from norm_bytes import norm_file, norm_payload, sum_frame

from ctrflow.readers import DataSpec, NormReader, ReaderOptions, SparseInputSpec

SPEC_2_SLOTS = DataSpec(1, 2, (SparseInputSpec("data", 2, (2, 2)),))


def samples(count: int, start: int = 0, nnz=lambda i: (1, 1)):
    out = []
    for i in range(start, start + count):
        a, b = nnz(i)
        out.append(([float(i % 2), i + 0.5, -i], [[10 * i + j for j in range(a)], [1000 + i + j for j in range(b)]]))
    return out


def read_all(reader):
    return list(reader)


def flat(batches):
    labels, dense, keys, lengths = [], [], [], []
    for batch in batches:
        labels.append(batch.label[: batch.size])
        dense.append(batch.dense[: batch.size])
        sparse = batch.sparse["data"]
        lengths.append(sparse.lengths()[: batch.size])
        keys.append(sparse.keys)
    return torch.cat(labels), torch.cat(dense), torch.cat(keys), torch.cat(lengths)


@pytest.mark.parametrize("check", ["sum", "none"])
@pytest.mark.parametrize("key_type", ["i32", "i64"])
def test_hand_built_file_is_read_exactly(write_norm, check, key_type):
    data = samples(5, nnz=lambda i: (i % 3, 1))  # variable nnz, empty slots included
    source = write_norm([norm_file(data, 1, 2, 2, check, key_type)])
    options = ReaderOptions(batch_size=5, key_type=key_type, check=check, repeat=False)
    (batch,) = read_all(NormReader(source, SPEC_2_SLOTS, options))
    assert batch.size == 5
    assert batch.label[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert batch.dense.tolist() == [[i + 0.5, -i] for i in range(5)]
    sparse = batch.sparse["data"]
    assert sparse.lengths().tolist() == [[0, 1], [1, 1], [2, 1], [0, 1], [1, 1]]
    assert sparse.keys.tolist() == [1000, 10, 1001, 20, 21, 1002, 1003, 40, 1004]
    assert sparse.keys.dtype == torch.int64


def test_i32_keys_keep_their_uint32_value(write_norm):
    source = write_norm([norm_file([([0.0, 1.0, 2.0], [[0xFFFFFFFF], [0x80000000]])], 1, 2, 2)])
    (batch,) = read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))
    assert batch.sparse["data"].keys.tolist() == [4294967295, 2147483648]


def test_fixed_length_file_uses_every_record_across_chunks(write_norm):
    data = samples(300)
    source = write_norm([norm_file(data, 1, 2, 2)])
    reader = NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=64, repeat=False), chunk_bytes=1024)
    _, dense, keys, lengths = flat(read_all(reader))
    assert dense[:, 0].tolist() == [i + 0.5 for i in range(300)]
    assert keys.tolist() == [k for _, slots in data for slot in slots for k in slot]
    assert (lengths == 1).all()


def test_variable_records_spanning_chunk_boundaries_are_read_in_order(write_norm):
    data = samples(120, nnz=lambda i: (i % 3, (i * 7) % 3))
    source = write_norm([norm_file(data, 1, 2, 2, "none")])
    options = ReaderOptions(batch_size=50, check="none", repeat=False)
    _, dense, keys, _ = flat(read_all(NormReader(source, SPEC_2_SLOTS, options, chunk_bytes=1024)))
    assert dense[:, 0].tolist() == [i + 0.5 for i in range(120)]
    assert keys.tolist() == [k for _, slots in data for slot in slots for k in slot]


def test_slots_are_split_into_sparse_inputs_in_file_order(write_norm):
    spec = DataSpec(1, 2, (SparseInputSpec("wide", 1, (1,)), SparseInputSpec("deep", 1, (2,))))
    source = write_norm([norm_file(samples(3, nnz=lambda i: (1, 2)), 1, 2, 2)])
    (batch,) = read_all(NormReader(source, spec, ReaderOptions(batch_size=4, repeat=False)))
    assert batch.sparse["wide"].keys.tolist() == [0, 10, 20]
    assert batch.sparse["deep"].keys.tolist() == [1000, 1001, 1001, 1002, 1002, 1003]
    assert batch.sparse["deep"].offsets.tolist() == [0, 2, 4, 6, 6]


def test_epoch_mode_ends_with_a_short_zero_padded_batch_spanning_files(write_norm):
    source = write_norm([norm_file(samples(3), 1, 2, 2), norm_file(samples(4, start=3), 1, 2, 2)])
    batches = read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=5, repeat=False)))
    assert [b.size for b in batches] == [5, 2]
    assert batches[0].dense[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]  # spans both files
    last = batches[1]
    assert last.batch_size == 5
    assert last.dense[2:].abs().sum() == 0 and last.label[2:].abs().sum() == 0
    assert last.sparse["data"].lengths()[2:].sum() == 0


def test_repeat_mode_wraps_and_never_yields_a_short_batch(write_norm):
    source = write_norm([norm_file(samples(3), 1, 2, 2)])
    iterator = iter(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=2, repeat=True)))
    batches = [next(iterator) for _ in range(4)]
    assert [b.size for b in batches] == [2, 2, 2, 2]
    assert [b.dense[:, 0].tolist() for b in batches] == [[0.5, 1.5], [2.5, 0.5], [1.5, 2.5], [0.5, 1.5]]


def test_workers_read_interleaved_files_and_hand_out_batches_round_robin(write_norm):
    files = [norm_file(samples(2, start=100 * f), 1, 2, 2) for f in range(4)]
    source = write_norm(files)
    options = ReaderOptions(batch_size=2, repeat=False, num_workers=2)
    firsts = [b.dense[0, 0].item() for b in read_all(NormReader(source, SPEC_2_SLOTS, options))]
    # worker 0 reads files 0, 2; worker 1 reads files 1, 3; batch k comes from worker k mod 2
    assert firsts == [0.5, 100.5, 200.5, 300.5]


def test_repeat_mode_workers_wrap_modulo_the_file_count(write_norm):
    source = write_norm([norm_file(samples(2, start=100 * f), 1, 2, 2) for f in range(3)])
    options = ReaderOptions(batch_size=2, repeat=True, num_workers=2)
    iterator = iter(NormReader(source, SPEC_2_SLOTS, options))
    firsts = [next(iterator).dense[0, 0].item() for _ in range(6)]
    iterator.close()
    # worker 0: files 0, 2, 4 mod 3 = 1; worker 1: files 1, 3 mod 3 = 0, 5 mod 3 = 2
    assert firsts == [0.5, 100.5, 200.5, 0.5, 100.5, 200.5]


def test_an_error_in_a_worker_thread_reaches_the_consumer(write_norm):
    source = write_norm([norm_file(samples(2), 1, 2, 2), norm_file(samples(2), 1, 2, 3)])
    options = ReaderOptions(batch_size=2, repeat=False, num_workers=2)
    with pytest.raises(ValueError, match="slot_num=3"):
        read_all(NormReader(source, SPEC_2_SLOTS, options))


def test_more_workers_than_files_are_reduced_with_a_log(write_norm, caplog):
    source = write_norm([norm_file(samples(2), 1, 2, 2)])
    with caplog.at_level(logging.WARNING):
        batches = read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=2, repeat=False, num_workers=3)))
    assert len(batches) == 1
    assert "using 1 workers" in caplog.text


def test_corrupt_record_is_skipped_logged_and_counted(write_norm, caplog):
    content = bytearray(norm_file(samples(4), 1, 2, 2))
    second_record = 69 + (len(content) - 69) // 4
    content[second_record + 6] ^= 0xFF  # a label byte of record 1
    source = write_norm([bytes(content)])
    reader = NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=8, repeat=False))
    with caplog.at_level(logging.ERROR):
        (batch,) = read_all(reader)
    assert batch.size == 3
    assert batch.dense[:3, 0].tolist() == [0.5, 2.5, 3.5]
    assert reader.corrupt_records == 1
    assert "record 1 at byte offset" in caplog.text and "checksum" in caplog.text


def test_strict_mode_raises_on_a_corrupt_record(write_norm):
    content = bytearray(norm_file(samples(2), 1, 2, 2))
    content[-1] ^= 1  # checksum byte of record 1
    source = write_norm([bytes(content)])
    reader = NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=2, repeat=False, strict=True))
    with pytest.raises(ValueError, match=r"record 1 at byte offset \d+ fails its checksum"):
        read_all(reader)


def test_non_file_read_as_sum_names_the_check_type_fix(write_norm):
    source = write_norm([norm_file(samples(1), 1, 2, 2, "none")])
    with pytest.raises(ValueError, match=r"written with Check_t\.Non.*check_type=Check_t\.Non"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))


def test_sum_file_read_as_none_names_the_check_type_fix(write_norm):
    source = write_norm([norm_file(samples(1), 1, 2, 2, "sum")])
    options = ReaderOptions(batch_size=1, check="none", repeat=False)
    with pytest.raises(ValueError, match=r"Sum-framed header.*check_type"):
        read_all(NormReader(source, SPEC_2_SLOTS, options))


def test_header_error_check_disagreeing_with_framing_is_reported(write_norm):
    header = struct.pack("<8q", 1, 0, 1, 2, 2, 0, 0, 0)  # says Sum but has no Sum frame
    source = write_norm([header])
    options = ReaderOptions(batch_size=1, check="none", repeat=False)
    with pytest.raises(ValueError, match=r"expects error_check=0 at byte 0 but found error_check=1"):
        read_all(NormReader(source, SPEC_2_SLOTS, options))


def test_slot_count_mismatch_names_file_expected_and_found(write_norm):
    source = write_norm([norm_file([([0.0, 1.0, 2.0], [[1], [2], [3]])], 1, 2, 3)])
    with pytest.raises(ValueError, match=r"list\.txt\.0\.data.*slot_num=3.*have 2 slots in total"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))


def test_label_plus_dense_mismatch_names_both_sums(write_norm):
    source = write_norm([norm_file([([0.0, 1.0], [[1], [2]])], 1, 1, 2)])
    with pytest.raises(ValueError, match=r"label_dim=1 \+ dense_dim=1 = 2 floats.*= 3"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))


def test_truncated_file_names_the_record_and_byte(write_norm):
    content = norm_file(samples(3), 1, 2, 2)
    source = write_norm([content[:-7]])
    with pytest.raises(ValueError, match=r"truncated: the header announces 3 records.*inside record 2"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))


def test_bytes_after_the_announced_records_are_reported(write_norm):
    source = write_norm([norm_file(samples(3), 1, 2, 2, number_of_records=2)])
    with pytest.raises(ValueError, match=r"bytes remain at byte offset \d+ after the 2 records"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))


@pytest.mark.parametrize("check", ["sum", "none"])
def test_i64_file_read_as_i32_is_a_key_width_error(write_norm, check):
    source = write_norm([norm_file(samples(4), 1, 2, 2, check, "i64")])
    options = ReaderOptions(batch_size=4, check=check, repeat=False)
    with pytest.raises(ValueError, match=r"record \d+ at byte offset \d+|truncated|bytes remain") as error:
        read_all(NormReader(source, SPEC_2_SLOTS, options))
    assert "i64_input_key" in str(error.value)


def test_missing_data_file_is_named(tmp_path):
    file_list = tmp_path / "list.txt"
    file_list.write_text(f"1\n{tmp_path}/nowhere.data\n")
    with pytest.raises(ValueError, match=r"nowhere\.data.*does not exist"):
        read_all(NormReader(str(file_list), SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))


def test_nan_in_dense_names_file_and_record(write_norm):
    data = samples(3)
    data[2] = ([0.0, float("nan"), 1.0], data[2][1])
    source = write_norm([norm_file(data, 1, 2, 2)])
    with pytest.raises(ValueError, match=r"record 2 at byte offset \d+ has nan in float 1"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=4, repeat=False)))
    reader = NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=4, repeat=False), allow_nonfinite=True)
    assert np.isnan(read_all(reader)[0].dense[2, 0].item())


def test_nnz_above_the_configured_maximum_is_rejected(write_norm):
    source = write_norm([norm_file([([0.0, 1.0, 2.0], [[1, 2, 3, 4, 5], [6]])], 1, 2, 2, "none")])
    with pytest.raises(ValueError, match=r"nnz=5 in slot 0"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, check="none", repeat=False)))


def test_sum_record_whose_slots_disagree_with_its_length_is_rejected(write_norm):
    payload = norm_payload([0.0, 1.0, 2.0], [[1], [2]], "i32") + b"\x00\x00\x00\x00"
    content = norm_file([], 1, 2, 2, number_of_records=1) + sum_frame(payload)
    source = write_norm([content])
    with pytest.raises(ValueError, match=r"record 0 at byte offset 69 declares 32 payload bytes"):
        read_all(NormReader(source, SPEC_2_SLOTS, ReaderOptions(batch_size=1, repeat=False)))
