from __future__ import annotations

import struct

import numpy as np
import pytest
from norm_bytes import norm_file

from ctrflow.readers.norm_format import NormHeader, parse_header, write_norm_file


def as_arrays(samples):
    label_dense = np.array([f for f, _ in samples], np.float32)
    lengths = np.array([[len(slot) for slot in slots] for _, slots in samples], np.int64)
    keys = np.array([k for _, slots in samples for slot in slots for k in slot], np.int64)
    return label_dense, lengths, keys


FIXED = [([1.0, 0.25, -2.0], [[7], [0xFFFFFFFF]]), ([0.0, 3.5, 9.0], [[8], [9]])]
VARIABLE = [([1.0, 0.25, -2.0], [[], [1, 2]]), ([0.0, 3.5, 9.0], [[3], []])]


@pytest.mark.parametrize("samples", [FIXED, VARIABLE], ids=["fixed", "variable"])
@pytest.mark.parametrize("check", ["sum", "none"])
@pytest.mark.parametrize("key_type", ["i32", "i64"])
def test_writer_output_equals_the_hand_packed_file(tmp_path, samples, check, key_type):
    path = tmp_path / "f.data"
    write_norm_file(str(path), *as_arrays(samples), label_dim=1, key_type=key_type, check=check)
    assert path.read_bytes() == norm_file(samples, 1, 2, 2, check, key_type)


def test_sum_header_is_a_69_byte_frame():
    raw = norm_file([], 1, 13, 26, "sum")
    assert len(raw) == 69
    assert struct.unpack_from("<i", raw, 0)[0] == 64
    assert raw[68] == sum(raw[4:68]) % 256
    assert parse_header(raw, "x.data", "sum") == NormHeader(1, 0, 1, 13, 26)


def test_corrupt_header_checksum_is_reported():
    raw = bytearray(norm_file([], 1, 13, 26, "sum"))
    raw[50] ^= 4  # a reserved field: never read by HugeCTR, but covered by the checksum
    with pytest.raises(ValueError, match="header checksum mismatch at byte 68"):
        parse_header(bytes(raw), "x.data", "sum")


def test_short_header_is_reported_with_its_size():
    with pytest.raises(ValueError, match=r"10 bytes, shorter than the 64-byte header"):
        parse_header(b"\x00" * 10, "x.data", "none")


def test_impossible_header_field_is_reported():
    raw = struct.pack("<8q", 0, -5, 1, 13, 26, 0, 0, 0)
    with pytest.raises(ValueError, match="number_of_records=-5 is impossible"):
        parse_header(raw, "x.data", "none")
