from __future__ import annotations

import pytest

from ctrflow.readers.file_list import file_type, read_file_list, write_file_list


def test_written_list_has_count_line_and_trailing_newline(tmp_path):
    path = tmp_path / "list.txt"
    write_file_list(str(path), ["./a/gen_0.data", "./a/gen_1.data"])
    assert path.read_text() == "2\n./a/gen_0.data\n./a/gen_1.data\n"


def test_paths_are_taken_verbatim_and_extra_lines_ignored(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("2\n dir with space/f0.data\nf1.data\nignored.data\n")
    assert read_file_list(str(path)) == [" dir with space/f0.data", "f1.data"]


def test_list_round_trips_through_a_memory_url():
    write_file_list("memory://lists/one.txt", ["memory://data/x.parquet"])
    assert read_file_list("memory://lists/one.txt") == ["memory://data/x.parquet"]
    assert file_type(["memory://data/x.parquet"]) == "parquet"


def test_missing_list_names_the_path(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.txt' does not exist"):
        read_file_list(str(tmp_path / "missing.txt"))


def test_non_numeric_count_line_is_reported(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("two\na.data\n")
    with pytest.raises(ValueError, match=r"line 1 must be the number of data files, found 'two'"):
        read_file_list(str(path))


def test_zero_count_is_rejected(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("0\n")
    with pytest.raises(ValueError, match="line 1 says 0 data files; expected a count of at least 1"):
        read_file_list(str(path))


def test_fewer_paths_than_the_count_is_rejected(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("3\na.data\nb.data\n")
    with pytest.raises(ValueError, match="says 3 data files but only 2 paths follow"):
        read_file_list(str(path))


def test_binary_file_passed_as_list_is_reported(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match="not UTF-8 text"):
        read_file_list(str(path))


def test_writing_an_empty_list_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        write_file_list(str(tmp_path / "l.txt"), [])
