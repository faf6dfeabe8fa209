"""Every path a URL: one small layer over fsspec that all of ctrflow's file I/O goes through.

A path is either a plain local path (`/data/model`, `relative/dir`) or a URL understood by fsspec:
`file://`, `memory://`, `s3://bucket/key` (needs s3fs: `pip install ctrflow[s3]`) and
`hdfs://host:port/path` (pyarrow's `HadoopFileSystem` through fsspec; needs libhdfs and a Java runtime
on the machine). Snapshots and dumps are written with `atomic_write` / `atomic_directory` (DESIGN
decision 7): a temporary name in the same directory, then a rename, so a crash never leaves a partial
file under the final name. Object stores have no rename, but a single PUT is atomic there, so the data
are staged in a local temporary file and uploaded only once the writer finished without error.

Options for a file system (an S3 endpoint, credentials, ...) come from the `storage_options` argument, from
`set_storage_options(protocol, ...)`, or from the usual environment: `AWS_ENDPOINT_URL` /
`AWS_ENDPOINT_URL_S3` and the AWS credential variables for S3, fsspec's `FSSPEC_<PROTOCOL>_<OPTION>`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

import fsspec
from fsspec import AbstractFileSystem

# Protocols whose `mv` is a real rename (atomic for a file, cheap for a folder).
_RENAME_PROTOCOLS = frozenset({"file", "local", "memory", "hdfs", "viewfs"})
# Packages imported lazily behind a protocol, and the command that installs them.
_OPTIONAL_BACKENDS = {
    "s3": ("s3fs", "pip install ctrflow[s3]"),
    "s3a": ("s3fs", "pip install ctrflow[s3]"),
    "hdfs": ("pyarrow.fs", "pip install ctrflow  (pyarrow is a core dependency)"),
    "viewfs": ("pyarrow.fs", "pip install ctrflow  (pyarrow is a core dependency)"),
}
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {}


def set_storage_options(protocol: str, **options: Any) -> None:
    """Set default fsspec options for every later URL of `protocol` (e.g. `s3`, endpoint_url=...)."""
    _DEFAULT_OPTIONS[protocol] = dict(options)


def protocol_of(url: str) -> str:
    """The fsspec protocol of `url`; a plain path is `file`."""
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def _check_backend(protocol: str, url: str) -> None:
    if protocol not in _OPTIONAL_BACKENDS:
        return
    module, command = _OPTIONAL_BACKENDS[protocol]
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{url!r} needs the package {module!r}, which is not installed. Install it with `{command}`."
        ) from error


def _options_for(protocol: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(_DEFAULT_OPTIONS.get(protocol, {}))
    options.update(storage_options or {})
    if protocol in ("s3", "s3a") and "endpoint_url" not in options:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
    return options


def resolve(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[AbstractFileSystem, str]:
    """Return the file system of `url` and the path inside it.

    Raises:
        TypeError: `url` is not a string or `os.PathLike`.
        ImportError: the protocol needs an optional package that is missing (the message names the extra).
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        raise TypeError(f"Expected a path or URL string, received {type(url).__name__} {url!r}.")
    protocol = protocol_of(url)
    _check_backend(protocol, url)
    options = _options_for(protocol, storage_options)
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ValueError as error:
        known = ", ".join(fsspec.available_protocols())
        raise ValueError(f"Cannot open {url!r}: {error}. Known protocols: {known}.") from error
    except OSError as error:
        if protocol not in ("hdfs", "viewfs"):
            raise
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OSError(
            f"Cannot connect to HDFS for {url!r}: {first_line}. pyarrow needs a Java runtime and the Hadoop client "
            "libraries: set JAVA_HOME, HADOOP_HOME (or ARROW_LIBHDFS_DIR) and CLASSPATH=$(hadoop classpath --glob), "
            "and check the namenode host and port."
        ) from error
    return fs, path


def _has_rename(fs: AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return any(p in _RENAME_PROTOCOLS for p in protocols)


def _sibling(path: str, suffix: str) -> str:
    return f"{path.rstrip('/')}.{suffix}-{secrets.token_hex(6)}"


def open_file(url: str, mode: str = "rb", storage_options: Mapping[str, Any] | None = None) -> IO[Any]:
    """Open `url` like the builtin `open` (modes r, rb, w, wb, a, ab). Writes create parent folders."""
    fs, path = resolve(url, storage_options)
    if mode[0] in "wa":
        _makedirs_parent(fs, path)
    if mode[0] == "r" and not fs.isfile(path):
        raise FileNotFoundError(f"{url!r} does not exist (or is a folder); expected a file to read.")
    return fs.open(path, mode)


def exists(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether a file or folder exists at `url`."""
    fs, path = resolve(url, storage_options)
    return bool(fs.exists(path))


def isdir(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether `url` is a folder (on object stores: a prefix with objects under it)."""
    fs, path = resolve(url, storage_options)
    return bool(fs.isdir(path))


def makedirs(url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Create the folder `url` and its parents; an existing folder is fine (a no-op on object stores)."""
    fs, path = resolve(url, storage_options)
    fs.makedirs(path, exist_ok=True)


def _makedirs_parent(fs: AbstractFileSystem, path: str) -> None:
    parent = fs._parent(path)
    if parent and not fs.exists(parent):
        fs.makedirs(parent, exist_ok=True)


def listdir(url: str, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Sorted names (not paths) of the entries directly inside the folder `url`."""
    fs, path = resolve(url, storage_options)
    if not fs.isdir(path):
        raise FileNotFoundError(f"{url!r} is not a folder; expected a folder to list.")
    names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False)}
    return sorted(names)


def remove(url: str, recursive: bool = False, storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete the file `url`, or the folder `url` with everything in it when `recursive`."""
    fs, path = resolve(url, storage_options)
    if not fs.exists(path):
        raise FileNotFoundError(f"Cannot remove {url!r}: it does not exist.")
    if fs.isdir(path) and not recursive:
        raise IsADirectoryError(f"Cannot remove {url!r}: it is a folder. Pass recursive=True to delete it.")
    fs.rm(path, recursive=recursive)


def file_size(url: str, storage_options: Mapping[str, Any] | None = None) -> int:
    """Size of the file `url` in bytes."""
    fs, path = resolve(url, storage_options)
    if not fs.isfile(path):
        raise FileNotFoundError(f"{url!r} does not exist or is not a file; expected a file to measure.")
    return int(fs.size(path))


@contextlib.contextmanager
def atomic_write(url: str, mode: str = "wb", storage_options: Mapping[str, Any] | None = None) -> Iterator[IO[Any]]:
    """Write a file that appears under its final name only once complete.

    Where the file system renames (local, memory, HDFS) the data go to `<url>.tmp-<random>` in the same folder
    and are renamed over `url` at the end (HDFS cannot rename over a file: the old one is deleted just before).
    On object stores they are staged in a local temporary file and uploaded once complete (one PUT, or one
    multipart upload, which also appears at once). On an exception nothing is left under `url`, and an earlier
    file there is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports modes 'w' and 'wb', received {mode!r}. Use open_file to append.")
    fs, path = resolve(url, storage_options)
    _makedirs_parent(fs, path)
    if _has_rename(fs):
        temporary = _sibling(path, "tmp")
        try:
            with fs.open(temporary, mode) as handle:
                yield handle
            _rename_over(fs, temporary, path)
        finally:
            if fs.exists(temporary):
                fs.rm(temporary)
        return
    with tempfile.TemporaryDirectory(prefix="ctrflow-upload-") as staging:
        local = os.path.join(staging, "data")
        with open(local, mode) as handle:
            yield handle
        fs.put_file(local, path)


def _rename_over(fs: AbstractFileSystem, source: str, target: str) -> None:
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        os.replace(source, target)  # atomic replacement of an existing file on POSIX
        return
    if fs.exists(target):
        fs.rm(target, recursive=fs.isdir(target))
    fs.mv(source, target)


@contextlib.contextmanager
def atomic_directory(url: str, storage_options: Mapping[str, Any] | None = None) -> Iterator[str]:
    """Build a folder (a sparse model) that replaces `url` only once complete.

    Yields `<url>.tmp-<random>` to write into. On success it is renamed to `url` (an earlier folder there is
    moved aside and deleted); object stores have no rename, so there the earlier objects under `url/` are
    deleted and the new ones copied server-side, a short non-atomic window. On an exception the temporary
    folder is deleted and an earlier `url` is left as it was, on every file system.
    """
    fs, path = resolve(url, storage_options)
    temporary_url = f"{url.rstrip('/')}.tmp-{secrets.token_hex(6)}"
    _, temporary = resolve(temporary_url, storage_options)
    fs.makedirs(temporary, exist_ok=True)
    try:
        yield temporary_url
        _replace_directory(fs, temporary, path)
    finally:
        if fs.exists(temporary):
            fs.rm(temporary, recursive=True)


def _replace_directory(fs: AbstractFileSystem, temporary: str, path: str) -> None:
    if not _has_rename(fs):
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.copy(temporary.rstrip("/") + "/", path, recursive=True)
        return
    is_local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    if not fs.exists(path):
        if is_local:
            os.rename(temporary, path)
        else:
            fs.mv(temporary, path, recursive=True)
        return
    # A folder cannot be renamed over a non-empty one: move the old one aside first, then delete it.
    old = _sibling(path, "old")
    if is_local:
        os.rename(path, old)
        os.rename(temporary, path)
        shutil.rmtree(old) if os.path.isdir(old) else os.remove(old)
        return
    fs.mv(path, old, recursive=True)
    fs.mv(temporary, path, recursive=True)
    fs.rm(old, recursive=True)
