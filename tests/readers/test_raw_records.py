from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from ctrflow.readers import DataSpec, Loader, RawReader, ReaderOptions, SparseInputSpec
from ctrflow.readers.raw_records import RawRecords, decode
from ctrflow.readers.types import Batch

SPEC = DataSpec(1, 3, (SparseInputSpec("a", 2, (1, 1)), SparseInputSpec("b", 3, (1, 1, 1))))


def write_random_raw(tmp_path, count: int, float_label_dense: bool, seed: int = 0) -> str:
    """Records of SPEC with keys over the whole uint32 range (bit patterns >= 2**31 included)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, (count, 1))
    dense = rng.integers(0, 1 << 20, (count, 3))
    head = np.concatenate([label, dense], axis=1)
    head = head.astype("<f4").view("<i4") if float_label_dense else head.astype("<i4")
    keys = rng.integers(0, 1 << 32, (count, 5), dtype=np.uint64).astype("<u4").view("<i4")
    path = tmp_path / "random.bin"
    path.write_bytes(np.ascontiguousarray(np.concatenate([head, keys], axis=1)).tobytes())
    return str(path)


def assert_same_batch(decoded: Batch, expected: Batch) -> None:
    assert decoded.size == expected.size
    assert torch.equal(decoded.label.cpu(), expected.label)
    # both are float32 ln(v + 1): torch's and NumPy's log may differ in the last bit
    torch.testing.assert_close(decoded.dense.cpu(), expected.dense, rtol=2.4e-7, atol=0)
    assert decoded.sparse.keys() == expected.sparse.keys()
    for name, part in expected.sparse.items():
        assert torch.equal(decoded.sparse[name].keys.cpu(), part.keys)
        assert torch.equal(decoded.sparse[name].offsets.cpu(), part.offsets)
        assert decoded.sparse[name].num_slots == part.num_slots


@pytest.mark.parametrize("float_label_dense", [False, True])
@pytest.mark.parametrize("workers", [1, 3])
def test_device_batches_decode_to_the_readers_batches(tmp_path, float_label_dense, workers):
    source = write_random_raw(tmp_path, 23, float_label_dense)  # 5 full batches of 4 and a short one of 3
    options = ReaderOptions(batch_size=4, float_label_dense=float_label_dense, repeat=False, shuffle_batches=True,
                            seed=7, num_workers=workers)  # fmt: skip
    expected = list(RawReader(source, SPEC, options))
    records = list(RawReader(source, SPEC, options).device_batches())
    assert all(isinstance(r, RawRecords) for r in records)
    assert len(records) == len(expected) == 6
    for record, batch in zip(records, expected, strict=True):
        assert_same_batch(record.to("cpu"), batch)


def test_decode_of_a_hand_built_short_batch():
    # formats spec §2, int32 words: label 1, dense 0, 6, 2 (ln 1, ln 7, ln 3), keys 5, 7 | 4294967295 (uint32), 0, 9
    words = torch.tensor([[1, 0, 6, 2, 5, 7, -1, 0, 9]], dtype=torch.int32)
    batch = decode(words, DataSpec(1, 3, SPEC.sparse), float_label_dense=False, batch_size=2)
    assert batch.size == 1 and batch.label.tolist() == [[1.0], [0.0]]
    expected_dense = torch.tensor([[0.0, np.log(7), np.log(3)], [0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(batch.dense, expected_dense, rtol=2.4e-7, atol=0)  # a float32 ulp
    assert batch.sparse["a"].keys.tolist() == [5, 7]
    assert batch.sparse["a"].offsets.tolist() == [0, 1, 2, 2, 2]
    assert batch.sparse["b"].keys.tolist() == [4294967295, 0, 9]
    assert batch.sparse["b"].offsets.tolist() == [0, 1, 2, 3, 3, 3, 3]


def test_device_batches_report_non_finite_dense_like_the_reader(tmp_path):
    path = tmp_path / "neg.bin"
    path.write_bytes(struct.pack("<4i", 0, 3, -1, 0) + struct.pack("<5i", 1, 2, 3, 4, 5))
    reader = RawReader(str(path), SPEC, ReaderOptions(batch_size=1, repeat=False))
    with pytest.raises(ValueError, match=r"record 0 \(byte offset 0\) has label/dense float 2 = -inf"):
        list(reader.device_batches())
    lenient = RawReader(str(path), SPEC, ReaderOptions(batch_size=1, repeat=False), allow_nonfinite=True)
    (records,) = list(lenient.device_batches())
    assert records.to("cpu").dense[0, 1].item() == float("-inf")


def test_device_batches_report_keys_outside_slot_size_array_on_every_pass(tmp_path):
    source = write_random_raw(tmp_path, 4, float_label_dense=False)
    options = ReaderOptions(batch_size=2, slot_size_array=(1 << 32,) * 4 + (7,), repeat=False)
    reader = RawReader(source, SPEC, options)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"record 0, slot 4 \(byte offset 32\) holds key \d+, outside \[0, 7\)"):
            list(reader.device_batches())


def test_cpu_loader_reads_decoded_batches(tmp_path):
    source = write_random_raw(tmp_path, 8, float_label_dense=False)
    options = ReaderOptions(batch_size=4, repeat=False)
    batches = list(Loader(RawReader(source, SPEC, options), "cpu"))
    assert all(type(b) is Batch for b in batches)
    for batch, expected in zip(batches, RawReader(source, SPEC, options), strict=True):
        assert_same_batch(batch, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("float_label_dense", [False, True])
def test_cuda_loader_decodes_on_the_device_to_the_readers_batches(tmp_path, float_label_dense):
    source = write_random_raw(tmp_path, 23, float_label_dense)
    options = ReaderOptions(batch_size=4, float_label_dense=float_label_dense, repeat=False, num_workers=2)
    batches = list(Loader(RawReader(source, SPEC, options), "cuda"))
    assert all(b.label.is_cuda and b.sparse["b"].keys.is_cuda for b in batches)
    for batch, expected in zip(batches, RawReader(source, SPEC, options), strict=True):
        assert_same_batch(batch, expected)
