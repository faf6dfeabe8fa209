"""Norm files at the byte level: header, framing and writing (formats spec §1.1-1.3).

A Norm file is a 64-byte header (8 little-endian int64) followed by `number_of_records` samples. With
Check_t.Sum every record, the header included, is framed as `int32 N ‖ N payload bytes ‖ uint8 checksum`
(the sum of the payload bytes mod 256); with Check_t.Non records are bare payloads. A payload is
`float32 label[label_dim] ‖ float32 dense[dense_dim] ‖ per slot: int32 nnz ‖ nnz keys` with uint32 ("i32")
or int64 ("i64") keys. `norm_parse.py` turns the records into `SampleBlock`s; `norm.py` is the reader.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

import fsspec
import numpy as np

from ctrflow.readers.keyset import key_dtype
from ctrflow.readers.types import CheckType, DataSpec, KeyType

logger = logging.getLogger(__name__)

HEADER_BYTES = 64
SUM_HEADER_BYTES = 4 + HEADER_BYTES + 1  # formats spec §11.1: the header is framed too


@dataclass(slots=True, frozen=True)
class NormHeader:
    """The five fields of HugeCTR's `DataSetHeader` that carry meaning (the three reserved ones are 0)."""

    error_check: int
    number_of_records: int
    label_dim: int
    dense_dim: int
    slot_num: int

    def pack(self) -> bytes:
        return struct.pack(
            "<8q", self.error_check, self.number_of_records, self.label_dim, self.dense_dim, self.slot_num, 0, 0, 0
        )


def header_size(check: CheckType) -> int:
    return SUM_HEADER_BYTES if check == "sum" else HEADER_BYTES


def frame(payload: bytes, check: CheckType) -> bytes:
    """One record as written under `check`: bare, or length + payload + checksum (formats spec §1.2)."""
    if check == "none":
        return payload
    return struct.pack("<i", len(payload)) + payload + bytes([sum(payload) & 0xFF])


def parse_header(raw: bytes, path: str, check: CheckType) -> NormHeader:
    """Decode and validate the (framed) header at the start of a file; `raw` holds its first bytes."""
    need = header_size(check)
    if len(raw) < need:
        raise ValueError(
            f"Norm file {path!r}: {len(raw)} bytes, shorter than the {need}-byte header of a "
            f'check="{check}" file (formats spec §1.1). The file is empty or truncated; regenerate or re-copy it.'
        )
    if check == "sum":
        declared = struct.unpack_from("<i", raw, 0)[0]
        if declared != HEADER_BYTES:
            raise ValueError(_sum_frame_error(raw, path, declared))
        body = raw[4 : 4 + HEADER_BYTES]
        if sum(body) & 0xFF != raw[4 + HEADER_BYTES]:
            raise ValueError(
                f"Norm file {path!r}: header checksum mismatch at byte {4 + HEADER_BYTES} (stored "
                f"{raw[4 + HEADER_BYTES]}, computed {sum(body) & 0xFF}); the header is corrupt. Regenerate the file."
            )
    else:
        body = raw[:HEADER_BYTES]
    fields = struct.unpack_from("<8q", body, 0)
    header = NormHeader(*fields[:5])
    _check_header_fields(header, path, check)
    return header


def _sum_frame_error(raw: bytes, path: str, declared: int) -> str:
    first = struct.unpack_from("<q", raw, 0)[0]
    if first == 0:
        return (
            f'Norm file {path!r}: check="sum" expects the file to start with the header length 64, found '
            f"{declared}; the 8-byte error_check field is 0, so this file was written with Check_t.Non. "
            'Set check_type=Check_t.Non (check="none").'
        )
    return (
        f'Norm file {path!r}: check="sum" expects the file to start with the header length 64 (bytes 0-3), '
        f"found {declared}. This is not a Sum-framed Norm file; check the path and check_type."
    )


def _check_header_fields(header: NormHeader, path: str, check: CheckType) -> None:
    expected = 1 if check == "sum" else 0
    if header.error_check != expected:
        if check == "none" and header.error_check & 0xFFFFFFFF == HEADER_BYTES:
            found = "a Sum-framed header (int32 length 64 first)"
        else:
            found = f"error_check={header.error_check}"
        hint = 'Check_t.Sum (check="sum")' if header.error_check == 1 else "the check_type the file was written with"
        raise ValueError(
            f'Norm file {path!r}: check="{check}" expects error_check={expected} at byte 0 but found {found}. '
            f"Set check_type to {hint}."
        )
    for name in ("number_of_records", "label_dim", "dense_dim", "slot_num"):
        value = getattr(header, name)
        if value < 0 or value > 1 << 40:
            raise ValueError(
                f"Norm file {path!r}: header field {name}={value} is impossible; the header is corrupt or "
                "this is not a Norm file."
            )


def check_header_matches(header: NormHeader, path: str, spec: DataSpec) -> None:
    """Header vs. configuration (formats spec §1.4): slot count, and label+dense as a sum."""
    if header.slot_num != spec.total_slots:
        raise ValueError(
            f"Norm file {path!r}: header says slot_num={header.slot_num} (byte 32 of the header) but the "
            f"sparse inputs have {spec.total_slots} slots in total. Make the slot_num of the "
            f"DataReaderSparseParams add up to {header.slot_num}, or point at the right dataset."
        )
    found = header.label_dim + header.dense_dim
    wanted = spec.label_dim + spec.dense_dim
    if found != wanted:
        raise ValueError(
            f"Norm file {path!r}: header says label_dim={header.label_dim} + dense_dim={header.dense_dim} = {found} "
            f"floats per sample, but the Input has label_dim={spec.label_dim} + dense_dim={spec.dense_dim} = {wanted}. "
            "Set label_dim and dense_dim of the Input to the dataset's."
        )
    if header.label_dim != spec.label_dim:
        # HugeCTR checks only the sum; the split is the configuration's, as in v3.5
        logger.warning(
            "Norm file %r: header splits %d floats as label %d + dense %d, Input splits them %d + %d; "
            "using the Input's split as HugeCTR does.",
            path,
            found,
            header.label_dim,
            header.dense_dim,
            spec.label_dim,
            spec.dense_dim,
        )


def encode_records(
    label_dense: np.ndarray, lengths: np.ndarray, keys: np.ndarray, key_type: KeyType, check: CheckType
) -> bytes:
    """Encode samples as Norm records (no header), vectorised when every sample has the same nnz pattern."""
    label_dense = np.ascontiguousarray(label_dense, dtype="<f4")
    lengths = np.asarray(lengths, dtype=np.int64)
    num_rows, num_slots = lengths.shape
    if num_rows and (lengths == lengths[0]).all():
        return _encode_regular(label_dense, lengths[0], keys, key_type, check)
    kdt = key_dtype(key_type)
    row_offsets = np.r_[0, np.cumsum(lengths.sum(axis=1))]
    out = []
    for row in range(num_rows):
        parts = [label_dense[row].tobytes()]
        cursor = int(row_offsets[row])
        for slot in range(num_slots):
            nnz = int(lengths[row, slot])
            parts.append(struct.pack("<i", nnz) + keys[cursor : cursor + nnz].astype(kdt).tobytes())
            cursor += nnz
        out.append(frame(b"".join(parts), check))
    return b"".join(out)


def _encode_regular(
    label_dense: np.ndarray, pattern: np.ndarray, keys: np.ndarray, key_type: KeyType, check: CheckType
) -> bytes:
    kdt = key_dtype(key_type)
    num_rows, width = label_dense.shape
    payload = 4 * width + int(4 * pattern.size + pattern.sum() * kdt.itemsize)
    lead = 4 if check == "sum" else 0
    stride = payload + (5 if check == "sum" else 0)
    matrix = np.zeros((num_rows, stride), np.uint8)
    if check == "sum":
        matrix[:, :4] = np.frombuffer(struct.pack("<i", payload), np.uint8)
    matrix[:, lead : lead + 4 * width] = label_dense.view(np.uint8).reshape(num_rows, -1)
    key_matrix = np.asarray(keys).astype(kdt).reshape(num_rows, -1).view(np.uint8)
    column, key_column = lead + 4 * width, 0
    for nnz in pattern.tolist():
        matrix[:, column : column + 4] = np.frombuffer(struct.pack("<i", nnz), np.uint8)
        width_bytes = nnz * kdt.itemsize
        matrix[:, column + 4 : column + 4 + width_bytes] = key_matrix[:, key_column : key_column + width_bytes]
        column += 4 + width_bytes
        key_column += width_bytes
    if check == "sum":
        matrix[:, -1] = matrix[:, lead : lead + payload].sum(axis=1, dtype=np.uint8)
    return matrix.tobytes()


def write_norm_file(
    path: str,
    label_dense: np.ndarray,
    lengths: np.ndarray,
    keys: np.ndarray,
    *,
    label_dim: int,
    key_type: KeyType = "i32",
    check: CheckType = "sum",
) -> None:
    """Write one complete Norm file (header + records) to `path` (any fsspec URL)."""
    num_rows, num_slots = np.asarray(lengths).shape
    width = np.asarray(label_dense).shape[1]
    header = NormHeader(1 if check == "sum" else 0, num_rows, label_dim, width - label_dim, num_slots)
    with fsspec.open(path, "wb") as handle:
        handle.write(frame(header.pack(), check))
        handle.write(encode_records(label_dense, lengths, keys, key_type, check))
