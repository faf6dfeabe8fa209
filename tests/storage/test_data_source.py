"""Tests of ctrflow.storage.data_source.move_to_local (formats spec §10)."""

from __future__ import annotations

import logging

import pytest

from ctrflow.storage import data_source, filesystems


def _put(url, data, storage_options=None):
    with filesystems.open_file(url, "wb", storage_options) as handle:
        handle.write(data)


def _make_tree(root):
    _put(root.join("dataset", "file_list.txt"), b"2\na\nb\n", root.storage_options)
    _put(root.join("dataset", "train", "gen_0.data"), b"\x00" * 100, root.storage_options)
    _put(root.join("dataset", "train", "gen_1.data"), b"\x01" * 50, root.storage_options)


def test_a_folder_tree_is_copied_to_a_new_local_path(root, tmp_path):
    _make_tree(root)
    written = data_source.move_to_local(
        root.join("dataset"), str(tmp_path / "local"), storage_options=root.storage_options
    )
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "local").rglob("*") if p.is_file()) == [
        "local/file_list.txt", "local/train/gen_0.data", "local/train/gen_1.data"]  # fmt: skip
    assert (tmp_path / "local" / "train" / "gen_1.data").read_bytes() == b"\x01" * 50
    assert len(written) == 3


def test_an_existing_local_folder_receives_the_source_under_its_name(root, tmp_path):
    _make_tree(root)
    (tmp_path / "staging").mkdir()
    data_source.move_to_local(root.join("dataset"), str(tmp_path / "staging"), storage_options=root.storage_options)
    assert (tmp_path / "staging" / "dataset" / "file_list.txt").read_bytes() == b"2\na\nb\n"
    data_source.move_to_local(
        root.join("dataset", "train", "gen_0.data"), str(tmp_path / "staging"), storage_options=root.storage_options
    )
    assert (tmp_path / "staging" / "gen_0.data").stat().st_size == 100


def test_progress_reports_bytes_up_to_the_total(tmp_path):
    _put("memory://progress/data/a.bin", b"x" * 3000)
    _put("memory://progress/data/b.bin", b"y" * 1000)
    calls = []
    data_source.move_to_local(
        "memory://progress/data", str(tmp_path / "out"), progress=lambda c, t: calls.append((c, t))
    )
    assert calls[-1] == (4000, 4000)
    assert all(total == 4000 for _, total in calls)


def test_large_trees_log_progress(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(data_source, "PROGRESS_MIN_BYTES", 10)
    monkeypatch.setattr(data_source, "CHUNK_BYTES", 10)
    _put("memory://logged/data/a.bin", b"x" * 100)
    with caplog.at_level(logging.INFO, logger="ctrflow.storage.data_source"):
        data_source.move_to_local("memory://logged/data", str(tmp_path / "out"))
    assert "100 of 100 bytes (100%)" in caplog.text


def test_missing_source_and_remote_destination_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="source 'memory://nothing/here' does not exist"):
        data_source.move_to_local("memory://nothing/here", str(tmp_path / "x"))
    _put("memory://somewhere/file", b"1")
    with pytest.raises(ValueError, match="destination must be a local path, received 's3://b/k'"):
        data_source.move_to_local("memory://somewhere/file", "s3://b/k")


def test_a_folder_cannot_overwrite_a_local_file(tmp_path):
    _put("memory://tree/folder/a", b"1")
    (tmp_path / "folder").write_bytes(b"existing")
    with pytest.raises(ValueError, match=r"is a folder but .* is an existing file"):
        data_source.move_to_local("memory://tree/folder", str(tmp_path / "folder"))
