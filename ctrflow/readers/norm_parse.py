"""Vectorised parsing of Norm records into `SampleBlock`s (formats spec §1.2-1.4).

`NormRecordParser.parse` takes a buffer that starts at a record boundary and returns every complete record
in it. It never loops over keys in Python:

1. Record positions. The first record fixes a guess of the record stride; one strided NumPy read checks
   the guess for every record of the buffer (Sum: the length fields; Non: the nnz fields). Records past the
   first mismatch are walked one by one (Sum: one int32 each; Non: one int32 per slot).
2. Checksums (Sum): one `np.add.reduceat` over all payloads, mod 256. Bad records are skipped and reported.
3. Payloads. Records sharing one nnz pattern are read through a structured dtype (one strided copy per
   slot); others are gathered slot by slot across all records at once through byte-stride views.

Anything that cannot be a valid record (an impossible length or nnz, slots that do not add up to the
declared length, non-finite label/dense) raises ValueError naming the file, record and byte offset.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ctrflow.readers.keyset import key_dtype
from ctrflow.readers.sample_block import SampleBlock
from ctrflow.readers.types import CheckType, KeyType

_read_int32 = struct.Struct("<i").unpack_from
WIDTH_HINT = "The file may hold keys of the other width (check i64_input_key / key_type) or be corrupt."


@dataclass(slots=True)
class ParseResult:
    block: SampleBlock
    consumed_bytes: int
    consumed_records: int  # records consumed, skipped corrupt ones included


class NormRecordParser:
    """Parses the records of one Norm file.

    Args:
        path: the file, for messages.
        width: label_dim + dense_dim floats per sample.
        num_slots: slots per sample.
        key_type: "i32" (uint32) or "i64".
        check: "sum" or "none" framing.
        max_nnz: the most keys one sample may hold (HugeCTR's max_feature_num_per_sample).
        on_corrupt: called with (record index, byte offset, message) for each Sum record whose checksum fails.
        allow_nonfinite: accept NaN/inf in label and dense instead of raising.
    """

    def __init__(
        self,
        path: str,
        width: int,
        num_slots: int,
        key_type: KeyType,
        check: CheckType,
        max_nnz: int,
        on_corrupt: Callable[[int, int, str], None],
        allow_nonfinite: bool = False,
    ) -> None:
        self.path, self.width, self.num_slots, self.check = path, width, num_slots, check
        self.kdt = key_dtype(key_type)
        self.max_nnz, self.on_corrupt, self.allow_nonfinite = max_nnz, on_corrupt, allow_nonfinite
        self.lead = 4 if check == "sum" else 0
        self.min_payload = 4 * width + 4 * num_slots
        if self.min_payload == 0:
            raise ValueError(f"Norm file {path!r}: the dataset has no label, dense or slot fields; nothing to read.")
        self.max_payload = self.min_payload + max_nnz * self.kdt.itemsize

    def parse(self, buf: bytes, first_record: int, max_records: int, file_offset: int) -> ParseResult:
        """Parse up to `max_records` complete records at the start of `buf` (which sits at `file_offset`)."""
        self._first_record, self._file_offset = first_record, file_offset
        starts, payloads, regular = self._locate(buf, max_records)
        count = starts.size
        if count == 0:
            return ParseResult(SampleBlock.empty(self.width, self.num_slots), 0, 0)
        consumed = int(starts[-1] + payloads[-1] + (5 if self.check == "sum" else 0))
        index = np.arange(count)
        if self.check == "sum":
            index = np.flatnonzero(self._verify_checksums(buf, starts, payloads))
        records = self._regular_records(buf, count, int(payloads[0])) if regular and index.size == count else None
        if records is not None:
            block = self._parse_regular(records)
        else:
            payload_starts = starts[index] + self.lead
            lengths, key_starts = self._structure(buf, payload_starts, payloads[index], index)
            block = self._parse_gather(buf, payload_starts, lengths, key_starts)
        self._check_finite(block, starts, index)
        return ParseResult(block, consumed, count)

    # -- step 1: where the records are ------------------------------------------------------------
    def _locate(self, buf: bytes, max_records: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """Start offsets and payload sizes of the complete records; True when all share one stride."""
        first = self._walk_one(buf, 0, self._first_record) if max_records else None
        if first is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), False
        payload, pattern = first[0], np.asarray(first[1], np.int64)
        frame_extra = 5 if self.check == "sum" else 0
        stride = payload + frame_extra
        regular = self._regular_prefix(buf, stride, payload, pattern, min(max_records, len(buf) // stride))
        position = regular * stride
        extra_starts: list[int] = []
        extra_sizes: list[int] = []
        while regular + len(extra_starts) < max_records:
            record = self._walk_one(buf, position, self._first_record + regular + len(extra_starts))
            if record is None:
                break
            extra_starts.append(position)
            extra_sizes.append(record[0])
            position += record[0] + frame_extra
        starts = np.arange(regular, dtype=np.int64) * stride
        sizes = np.full(regular, payload, np.int64)
        if not extra_starts:
            return starts, sizes, True
        return np.concatenate([starts, extra_starts]), np.concatenate([sizes, extra_sizes]), False

    def _regular_prefix(self, buf: bytes, stride: int, payload: int, pattern: np.ndarray, count: int) -> int:
        """How many records from the start share the first record's stride (and, for Non, nnz pattern)."""
        if count <= 1:
            return count
        rows = np.ndarray((count, stride), np.uint8, buf, 0, (stride, 1))
        if self.check == "sum":
            same = rows[:, :4].copy().view("<i4")[:, 0] == payload
        elif pattern.size:
            columns = 4 * self.width + np.r_[0, np.cumsum(4 + pattern[:-1] * self.kdt.itemsize)]
            nnz_bytes = rows[:, (columns[:, None] + np.arange(4)).reshape(-1)]
            same = (np.ascontiguousarray(nnz_bytes).view("<i4") == pattern).all(axis=1)
        else:
            return count
        return count if same.all() else int(np.argmin(same))

    def _walk_one(self, buf: bytes, position: int, record: int) -> tuple[int, list[int]] | None:
        """(payload size, nnz per slot) of the record at `position`, or None if it is not all in `buf`.

        Sum: only the frame is read (the payload is checked after its checksum). Non: the slots are walked.
        Plain Python ints on purpose: this runs once per irregular record.
        """
        end = len(buf)
        if self.check == "sum":
            if position + 4 > end:
                return None
            declared = _read_int32(buf, position)[0]
            if not self.min_payload <= declared <= self.max_payload:
                raise ValueError(self._message(record, position, f"declares a payload of {declared} bytes"))
            return (declared, []) if position + declared + 5 <= end else None
        cursor, total, key_bytes, pattern = position + 4 * self.width, 0, self.kdt.itemsize, []
        for slot in range(self.num_slots):
            if cursor + 4 > end:
                return None
            nnz = _read_int32(buf, cursor)[0]
            total += nnz
            if nnz < 0 or total > self.max_nnz:
                where = f"has nnz={nnz} in slot {slot} (byte offset {self._file_offset + cursor})"
                raise ValueError(self._message(record, position, where))
            pattern.append(nnz)
            cursor += 4 + nnz * key_bytes
        return (cursor - position, pattern) if cursor <= end else None

    # -- step 2: checksums -------------------------------------------------------------------------
    def _verify_checksums(self, buf: bytes, starts: np.ndarray, payloads: np.ndarray) -> np.ndarray:
        data = np.frombuffer(buf, np.uint8)
        bounds = np.empty(2 * starts.size, np.int64)
        bounds[0::2] = starts + 4
        bounds[1::2] = starts + 4 + payloads
        sums = np.add.reduceat(data, bounds, dtype=np.uint8)[0::2]
        good = sums == data[starts + 4 + payloads]
        for bad in np.flatnonzero(~good).tolist():
            record = self._first_record + bad
            offset = self._file_offset + int(starts[bad])
            self.on_corrupt(
                record,
                offset,
                (
                    f"Norm file {self.path!r}: record {record} at byte offset {offset} fails its checksum "
                    f"(stored {int(data[starts[bad] + 4 + payloads[bad]])}, computed {int(sums[bad])})"
                ),
            )
        return good

    # -- step 3: payloads --------------------------------------------------------------------------
    def _regular_records(self, buf: bytes, count: int, payload: int) -> np.ndarray | None:
        """All records as one structured array when they share the first record's nnz pattern, else None."""
        stride = payload + (5 if self.check == "sum" else 0)
        cursor = self.lead + 4 * self.width
        pattern: list[int] = []
        for _ in range(self.num_slots):
            if cursor + 4 > self.lead + payload:
                return None
            nnz = struct.unpack_from("<i", buf, cursor)[0]
            if not 0 <= nnz <= self.max_nnz - sum(pattern):
                return None
            pattern.append(nnz)
            cursor += 4 + nnz * self.kdt.itemsize
        if cursor != self.lead + payload:
            return None
        names: list[str] = ["ld"]
        formats: list[np.dtype] = [np.dtype(("<f4", (self.width,)))]
        offsets = [self.lead]
        cursor = self.lead + 4 * self.width
        for slot, nnz in enumerate(pattern):
            names += [f"n{slot}", f"k{slot}"]
            formats += [np.dtype("<i4"), np.dtype((self.kdt, (nnz,)))]
            offsets += [cursor, cursor + 4]
            cursor += 4 + nnz * self.kdt.itemsize
        layout = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": stride})
        records = np.frombuffer(buf, layout, count, 0)
        for slot, nnz in enumerate(pattern):
            if not (records[f"n{slot}"] == nnz).all():
                return None
        return records

    def _parse_regular(self, records: np.ndarray) -> SampleBlock:
        count = records.shape[0]
        fields: dict = dict(records.dtype.fields or {})
        pattern = [fields[f"k{slot}"][0].shape[0] for slot in range(self.num_slots)]
        keys = np.empty((count, sum(pattern)), np.int64)
        column = 0
        for slot, nnz in enumerate(pattern):
            if nnz:
                keys[:, column : column + nnz] = records[f"k{slot}"]
                column += nnz
        lengths = np.broadcast_to(np.asarray(pattern, np.int64), (count, self.num_slots))
        return SampleBlock(records["ld"].astype(np.float32), lengths, keys.reshape(-1))

    def _structure(
        self, buf: bytes, payload_starts: np.ndarray, payloads: np.ndarray, index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """nnz and key offsets per (record, slot), walked slot by slot across all records at once."""
        count = payload_starts.size
        ints = np.ndarray((max(len(buf) - 3, 0),), "<i4", buf, 0, (1,))
        lengths = np.empty((count, self.num_slots), np.int64)
        key_starts = np.empty((count, self.num_slots), np.int64)
        ends = payload_starts + payloads
        cursor = payload_starts + 4 * self.width
        bad = np.zeros(count, bool)
        for slot in range(self.num_slots):
            bad |= cursor + 4 > ends
            nnz = ints[np.minimum(cursor, ends - 4).clip(0)].astype(np.int64)
            bad |= (nnz < 0) | (nnz > self.max_nnz)
            nnz[bad] = 0
            lengths[:, slot] = nnz
            key_starts[:, slot] = cursor + 4
            cursor = cursor + 4 + nnz * self.kdt.itemsize
        bad |= (cursor != ends) | (lengths.sum(axis=1) > self.max_nnz)
        if bad.any():
            row = int(np.argmax(bad))
            record, position = self._first_record + int(index[row]), int(payload_starts[row]) - self.lead
            found = f"declares {int(payloads[row])} payload bytes but its label, dense and slots do not add up to it"
            if self.check == "none":
                found = "has slots that do not fit the file"
            raise ValueError(self._message(record, position, found))
        return lengths, key_starts

    def _parse_gather(
        self, buf: bytes, payload_starts: np.ndarray, lengths: np.ndarray, key_starts: np.ndarray
    ) -> SampleBlock:
        floats = np.ndarray((max(len(buf) - 3, 0),), "<f4", buf, 0, (1,))
        label_dense = floats[payload_starts[:, None] + 4 * np.arange(self.width)].astype(np.float32)
        flat_lengths = lengths.reshape(-1)
        total = int(flat_lengths.sum())
        run_starts = np.repeat(np.cumsum(flat_lengths) - flat_lengths, flat_lengths)
        step = self.kdt.itemsize
        positions = np.repeat(key_starts.reshape(-1), flat_lengths) + (np.arange(total) - run_starts) * step
        key_view = np.ndarray((max(len(buf) - step + 1, 0),), self.kdt, buf, 0, (1,))
        return SampleBlock(label_dense, lengths, key_view[positions].astype(np.int64))

    def _check_finite(self, block: SampleBlock, starts: np.ndarray, index: np.ndarray) -> None:
        if self.allow_nonfinite or block.label_dense.size == 0:
            return
        finite = np.isfinite(block.label_dense)
        if finite.all():
            return
        row, column = (int(v) for v in np.argwhere(~finite)[0])
        record = int(index[row])
        raise ValueError(
            f"Norm file {self.path!r}: record {self._first_record + record} at byte offset "
            f"{self._file_offset + int(starts[record])} has {block.label_dense[row, column]} in float {column} "
            "of label+dense. Clean the dataset, or pass allow_nonfinite=True to read such values as they are."
        )

    def _message(self, record: int, position: int, what: str) -> str:
        return (
            f"Norm file {self.path!r}: record {record} at byte offset {self._file_offset + position} {what}; "
            f"a valid record has a payload of {self.min_payload} to {self.max_payload} bytes with "
            f"{self.kdt.itemsize}-byte keys and at most {self.max_nnz} keys per sample. {WIDTH_HINT}"
        )
