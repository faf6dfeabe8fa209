"""Property tests: corrupted or truncated Norm files yield correct records or raise ValueError, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from norm_bytes import norm_file, norm_payload

from ctrflow.readers import DataSpec, NormReader, ReaderOptions, SparseInputSpec

SPEC = DataSpec(1, 1, (SparseInputSpec("data", 3, (2, 2, 2)),))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def original_samples(variable: bool):
    out = []
    for i in range(12):
        nnz = [(i + s) % 3 if variable else 1 for s in range(3)]
        out.append(([float(i % 2), float(i)], [[100 * i + 10 * s + j for j in range(nnz[s])] for s in range(3)]))
    return out


def records_of(batches):
    out = []
    for batch in batches:
        sparse = batch.sparse["data"]
        lengths = sparse.lengths()
        offsets = sparse.offsets.tolist()
        for row in range(batch.size):
            slots = [sparse.keys[offsets[row * 3 + s] : offsets[row * 3 + s + 1]].tolist() for s in range(3)]
            out.append(([batch.label[row, 0].item(), batch.dense[row, 0].item()], slots))
            assert lengths[row].sum().item() == sum(len(s) for s in slots)
    return out


def length_field_bytes(samples) -> set[int]:
    """Byte positions of the int32 length fields of the sample records of a Sum file."""
    positions, start = set(), 69
    for floats, slots in samples:
        positions.update(range(start, start + 4))
        start += 4 + len(norm_payload(floats, slots, "i32")) + 1
    return positions


def read_or_value_error(tmp_path, content: bytes, check: str, chunk_bytes: int):
    path = tmp_path / "f.data"
    path.write_bytes(content)
    file_list = tmp_path / "list.txt"
    file_list.write_text(f"1\n{path}\n")
    options = ReaderOptions(batch_size=5, check=check, repeat=False)
    try:
        return records_of(NormReader(str(file_list), SPEC, options, chunk_bytes=chunk_bytes))
    except ValueError:
        return None


def is_subsequence(found, original) -> bool:
    iterator = iter(original)
    return all(any(record == candidate for candidate in iterator) for record in found)


@SETTINGS
@given(data=st.data(), variable=st.booleans(), chunk=st.sampled_from([1024, 1 << 20]))
def test_one_corrupted_byte_in_a_sum_file_yields_only_original_records_or_raises(tmp_path, data, variable, chunk):
    # the Sum checksum (byte sum mod 256) catches every single-byte change of a payload; a change of the
    # length or checksum byte must be caught by the framing checks
    original = original_samples(variable)
    content = bytearray(norm_file(original, 1, 1, 3, "sum"))
    position = data.draw(st.integers(0, len(content) - 1))
    content[position] = data.draw(st.integers(0, 255).filter(lambda value: value != content[position]))
    found = read_or_value_error(tmp_path, bytes(content), "sum", chunk)
    if found is not None:
        assert is_subsequence(found, original)
        if position not in length_field_bytes(original):
            assert len(found) == len(original) - 1  # exactly the damaged record is dropped


@SETTINGS
@given(data=st.data(), variable=st.booleans())
def test_many_corrupted_bytes_in_a_sum_file_raise_only_value_error(tmp_path, data, variable):
    # compensating changes can fool a mod-256 sum (HugeCTR's checksum); the reader must still stay sane
    content = bytearray(norm_file(original_samples(variable), 1, 1, 3, "sum"))
    for _ in range(data.draw(st.integers(2, 6))):
        content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    found = read_or_value_error(tmp_path, bytes(content), "sum", 1024)
    if found is not None:
        assert len(found) <= 12
        assert all(sum(len(slot) for slot in slots) <= 6 for _, slots in found)


@SETTINGS
@given(data=st.data(), check=st.sampled_from(["sum", "none"]), variable=st.booleans())
def test_truncated_file_raises_or_yields_every_record(tmp_path, data, check, variable):
    original = original_samples(variable)
    content = norm_file(original, 1, 1, 3, check)
    cut = data.draw(st.integers(0, len(content)))
    found = read_or_value_error(tmp_path, content[:cut], check, 1024)
    if cut < len(content):
        assert found is None
    else:
        assert found == original


@pytest.mark.parametrize("variable", [False, True])
def test_uncorrupted_files_read_back_exactly(tmp_path, variable):
    original = original_samples(variable)
    for check in ("sum", "none"):
        assert read_or_value_error(tmp_path, norm_file(original, 1, 1, 3, check), check, 1024) == original


@SETTINGS
@given(data=st.data(), variable=st.booleans())
def test_corrupted_non_file_raises_only_value_error_and_keeps_record_shapes(tmp_path, data, variable):
    # Check_t.Non has no checksum, so a changed key or float cannot be detected; the reader must still
    # either raise ValueError or return well-formed records (at most 12, each within the nnz bound)
    content = bytearray(norm_file(original_samples(variable), 1, 1, 3, "none"))
    for _ in range(data.draw(st.integers(1, 4))):
        content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    found = read_or_value_error(tmp_path, bytes(content), "none", 1024)
    if found is not None:
        assert len(found) <= 12
        assert all(sum(len(slot) for slot in slots) <= 6 for _, slots in found)
