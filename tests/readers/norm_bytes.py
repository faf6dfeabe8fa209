"""Norm files built by hand from the formats spec (struct.pack), shared by the reader tests."""

from __future__ import annotations

import struct
from collections.abc import Sequence

Sample = tuple[Sequence[float], Sequence[Sequence[int]]]  # (label + dense floats, keys per slot)


def norm_payload(floats: Sequence[float], slots: Sequence[Sequence[int]], key_type: str) -> bytes:
    """formats spec §1.3: float32 label+dense, then per slot int32 nnz and the keys."""
    key_format = "<I" if key_type == "i32" else "<q"
    out = struct.pack(f"<{len(floats)}f", *floats)
    for keys in slots:
        out += struct.pack("<i", len(keys)) + b"".join(struct.pack(key_format, k) for k in keys)
    return out


def sum_frame(payload: bytes) -> bytes:
    """formats spec §1.2: int32 length, payload, checksum = byte sum mod 256."""
    return struct.pack("<i", len(payload)) + payload + bytes([sum(payload) % 256])


def norm_file(
    samples: Sequence[Sample],
    label_dim: int,
    dense_dim: int,
    num_slots: int,
    check: str = "sum",
    key_type: str = "i32",
    number_of_records: int | None = None,
) -> bytes:
    count = len(samples) if number_of_records is None else number_of_records
    header = struct.pack("<8q", 1 if check == "sum" else 0, count, label_dim, dense_dim, num_slots, 0, 0, 0)
    records = [header] + [norm_payload(f, s, key_type) for f, s in samples]
    if check == "sum":
        records = [sum_frame(r) for r in records]
    return b"".join(records)
