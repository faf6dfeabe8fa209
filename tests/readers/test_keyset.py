from __future__ import annotations

import struct

import numpy as np
import pytest

from ctrflow.readers.keyset import read_keyset, write_keyset


def test_i32_keyset_is_read_as_uint32_widened_to_int64(tmp_path):
    path = tmp_path / "a.keyset"
    path.write_bytes(struct.pack("<3I", 7, 0xFFFFFFFF, 7))
    keys = read_keyset(str(path), "i32")
    assert keys.dtype == np.int64
    assert keys.tolist() == [7, 4294967295, 7]


def test_i64_keyset_round_trips_bytes(tmp_path):
    path = tmp_path / "b.keyset"
    write_keyset(str(path), np.array([-1, 2**40, 3]), "i64")
    assert path.read_bytes() == struct.pack("<3q", -1, 2**40, 3)
    assert read_keyset(str(path), "i64").tolist() == [-1, 2**40, 3]


def test_size_not_multiple_of_key_width_suggests_the_other_key_type(tmp_path):
    path = tmp_path / "c.keyset"
    path.write_bytes(b"\x00" * 12)
    with pytest.raises(ValueError, match=r"not a multiple of the 8-byte i64 key width.*key_type=\"i32\""):
        read_keyset(str(path), "i64")


def test_keys_too_large_for_i32_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"keys span \[0, 4294967296\]"):
        write_keyset(str(tmp_path / "d.keyset"), np.array([0, 2**32]), "i32")


def test_missing_keyset_is_reported(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_keyset(str(tmp_path / "none.keyset"), "i32")
