"""Tests of ctrflow.storage.filesystems: every path a URL (local, file://, memory://, s3://), atomic writes."""

from __future__ import annotations

import sys

import pytest

from ctrflow.storage import filesystems


class WriterFailed(RuntimeError):
    pass


def test_written_file_reads_back_on_every_file_system(root):
    url = root.join("sub", "file.bin")
    with filesystems.atomic_write(url, storage_options=root.storage_options) as handle:
        handle.write(b"\x01\x02\x03")
    with filesystems.open_file(url, "rb", root.storage_options) as handle:
        assert handle.read() == b"\x01\x02\x03"
    assert filesystems.file_size(url, root.storage_options) == 3
    assert filesystems.exists(url, root.storage_options)
    assert filesystems.listdir(root.join("sub"), root.storage_options) == ["file.bin"]


def test_failure_mid_write_leaves_no_partial_file_under_the_final_name(root):
    url = root.join("model.bin")
    with (
        pytest.raises(WriterFailed),
        filesystems.atomic_write(url, storage_options=root.storage_options) as handle,
    ):
        handle.write(b"partial data")
        raise WriterFailed("disk full")
    assert not filesystems.exists(url, root.storage_options)
    parent = root.url
    leftovers = (
        filesystems.listdir(parent, root.storage_options) if filesystems.isdir(parent, root.storage_options) else []
    )
    assert leftovers == []


def test_failure_mid_write_keeps_the_previous_file_intact(root):
    url = root.join("model.bin")
    with filesystems.atomic_write(url, storage_options=root.storage_options) as handle:
        handle.write(b"old")
    with pytest.raises(WriterFailed), filesystems.atomic_write(url, storage_options=root.storage_options) as handle:
        handle.write(b"new but incomplete")
        raise WriterFailed("crash")
    with filesystems.open_file(url, "rb", root.storage_options) as handle:
        assert handle.read() == b"old"
    assert filesystems.listdir(root.url, root.storage_options) == ["model.bin"]


def test_atomic_write_replaces_an_existing_file_in_text_mode(root):
    url = root.join("notes.txt")
    for text in ("first version", "second"):
        with filesystems.atomic_write(url, "w", root.storage_options) as handle:
            handle.write(text)
    with filesystems.open_file(url, "rb", root.storage_options) as handle:
        assert handle.read() == b"second"


def test_atomic_directory_replaces_the_whole_previous_folder(root):
    url = root.join("emb0_sparse_0.model")
    for names in (["key", "slot_id", "emb_vector"], ["key", "emb_vector"]):
        with filesystems.atomic_directory(url, root.storage_options) as folder:
            for name in names:
                with filesystems.open_file(f"{folder}/{name}", "wb", root.storage_options) as handle:
                    handle.write(name.encode())
    assert filesystems.listdir(url, root.storage_options) == ["emb_vector", "key"]
    assert filesystems.listdir(root.url, root.storage_options) == ["emb0_sparse_0.model"]


def test_failed_atomic_directory_keeps_the_previous_folder_and_no_temporary(root):
    url = root.join("emb0_sparse_0.model")
    with (
        filesystems.atomic_directory(url, root.storage_options) as folder,
        filesystems.open_file(f"{folder}/key", "wb", root.storage_options) as handle,
    ):
        handle.write(b"old")
    with pytest.raises(WriterFailed), filesystems.atomic_directory(url, root.storage_options) as folder:
        with filesystems.open_file(f"{folder}/key", "wb", root.storage_options) as handle:
            handle.write(b"new")
        raise WriterFailed("crash")
    with filesystems.open_file(f"{url}/key", "rb", root.storage_options) as handle:
        assert handle.read() == b"old"
    assert filesystems.listdir(root.url, root.storage_options) == ["emb0_sparse_0.model"]


def test_remove_deletes_files_and_folders_only_when_asked(root):
    folder = root.join("folder")
    filesystems.makedirs(folder, root.storage_options)
    with filesystems.open_file(root.join("folder", "a"), "wb", root.storage_options) as handle:
        handle.write(b"a")
    with pytest.raises(IsADirectoryError, match="recursive=True"):
        filesystems.remove(folder, storage_options=root.storage_options)
    filesystems.remove(root.join("folder", "a"), storage_options=root.storage_options)
    assert not filesystems.exists(root.join("folder", "a"), root.storage_options)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        filesystems.remove(root.join("folder", "a"), storage_options=root.storage_options)


def test_reading_a_missing_file_names_the_url(root):
    url = root.join("missing.model")
    with pytest.raises(FileNotFoundError, match=r"missing\.model"):
        filesystems.open_file(url, "rb", root.storage_options)
    with pytest.raises(FileNotFoundError, match=r"missing\.model"):
        filesystems.file_size(url, root.storage_options)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        filesystems.listdir(url, root.storage_options)


def test_file_url_and_plain_path_name_the_same_file(tmp_path):
    with filesystems.atomic_write(f"file://{tmp_path}/a.bin") as handle:
        handle.write(b"xyz")
    assert (tmp_path / "a.bin").read_bytes() == b"xyz"
    assert filesystems.file_size(str(tmp_path / "a.bin")) == 3


def test_s3_endpoint_comes_from_the_environment(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    url = f"s3://{s3_server.bucket}/from-env/value.bin"
    with filesystems.atomic_write(url) as handle:
        handle.write(b"env")
    assert filesystems.file_size(url) == 3


def test_default_storage_options_apply_to_later_urls(s3_server, monkeypatch):
    monkeypatch.setattr(filesystems, "_DEFAULT_OPTIONS", {})
    filesystems.set_storage_options("s3", **s3_server.storage_options)
    url = f"s3://{s3_server.bucket}/defaults/value.bin"
    with filesystems.atomic_write(url) as handle:
        handle.write(b"12345")
    assert filesystems.file_size(url) == 5


def test_missing_s3fs_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(ImportError, match=r"pip install ctrflow\[s3\]"):
        filesystems.exists("s3://bucket/key")


def test_unknown_protocol_and_wrong_types_are_user_errors():
    with pytest.raises(ValueError, match="Known protocols"):
        filesystems.exists("nosuchprotocol://x/y")
    with pytest.raises(TypeError, match="received int"):
        filesystems.exists(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="modes 'w' and 'wb'"), filesystems.atomic_write("memory://x/y", "ab"):
        pass


def test_hdfs_connection_failure_says_what_pyarrow_needs():
    # No HDFS cluster (nor Java runtime) exists in the test environment; real HDFS I/O is not tested here.
    with pytest.raises(OSError, match=r"Cannot connect to HDFS for 'hdfs://127\.0\.0\.1:1/x'.*JAVA_HOME"):
        filesystems.exists("hdfs://127.0.0.1:1/x")
