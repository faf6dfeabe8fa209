"""Staging data on the local disk (formats spec §10): `hugectr.data.DataSource(...).move_to_local(a, b)`.

v3.5's readers read only local files; HDFS data are copied first with `move_to_local(source, local)`, whose
first argument is the remote source and the second the local destination (the C++ parameter names say the
opposite; the behaviour is what counts). ctrflow accepts any fsspec URL as the source (`hdfs://host:port/…`,
`s3://…`, `memory://…`, a local path) and copies a file or a whole folder tree, like Hadoop's copyToLocal:
an existing local folder as destination receives the source under its own name.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from fsspec import AbstractFileSystem

from ctrflow.storage import filesystems

LOGGER = logging.getLogger(__name__)
CHUNK_BYTES = 8 << 20
# Trees at least this large log their progress every tenth of the bytes.
PROGRESS_MIN_BYTES = 64 << 20

ProgressCallback = Callable[[int, int], None]


def _local_destination(local_path: str) -> str:
    if filesystems.protocol_of(local_path) not in ("file", "local"):
        raise ValueError(
            f"move_to_local: the destination must be a local path, received {local_path!r}. "
            "Pass a path on this machine as the second argument (the first is the source URL)."
        )
    return os.path.abspath(local_path.split("://", 1)[-1])


def _plan(fs: AbstractFileSystem, root: str, destination: str) -> list[tuple[str, str, int]]:
    """(remote file, local file, size) for every file of the tree under `root`."""
    plan = []
    for remote, info in sorted(fs.find(root, detail=True).items()):
        relative = posixpath.relpath(remote.rstrip("/"), root.rstrip("/"))
        plan.append((remote, os.path.join(destination, *relative.split("/")), int(info.get("size") or 0)))
    return plan


def _copy_file(fs: AbstractFileSystem, remote: str, local: str, on_bytes: Callable[[int], None]) -> None:
    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
    partial = local + ".part"
    try:
        with fs.open(remote, "rb") as source, open(partial, "wb") as target:
            while chunk := source.read(CHUNK_BYTES):
                target.write(chunk)
                on_bytes(len(chunk))
        os.replace(partial, local)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def move_to_local(
    source_url: str,
    local_path: str,
    progress: ProgressCallback | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Copy the file or folder `source_url` to `local_path`; returns the local files written.

    Args:
        source_url: a file or folder on any fsspec file system (`hdfs://namenode:9000/data`, `s3://b/k`, ...).
        local_path: the local destination. An existing folder receives the source under its own name.
        progress: called as `progress(copied_bytes, total_bytes)` after every chunk. Without it, trees of at
            least 64 MiB log their progress (logger `ctrflow.storage.data_source`) every tenth of the bytes.

    Raises:
        FileNotFoundError: `source_url` does not exist.
        ValueError: `local_path` is not local, or a folder would be copied onto an existing file.
    """
    fs, root = filesystems.resolve(source_url, storage_options)
    destination = _local_destination(local_path)
    if not fs.exists(root):
        raise FileNotFoundError(
            f"move_to_local: source {source_url!r} does not exist; check the URL (and the namenode and port)."
        )
    if os.path.isdir(destination):
        destination = os.path.join(destination, posixpath.basename(root.rstrip("/")))
    if fs.isdir(root):
        if os.path.isfile(destination):
            raise ValueError(
                f"move_to_local: {source_url!r} is a folder but {destination!r} is an existing file; "
                "choose a folder or a new path as the destination."
            )
        plan = _plan(fs, root, destination)
        os.makedirs(destination, exist_ok=True)
    else:
        plan = [(root, destination, int(fs.size(root) or 0))]
    total = sum(size for _, _, size in plan)
    state = {"copied": 0, "logged": 0}

    def on_bytes(count: int) -> None:
        state["copied"] += count
        if progress is not None:
            progress(state["copied"], total)
        elif total >= PROGRESS_MIN_BYTES and state["copied"] - state["logged"] >= total // 10:
            state["logged"] = state["copied"]
            LOGGER.info("move_to_local %s: %d of %d bytes (%.0f%%)", source_url, state["copied"], total,
                        100.0 * state["copied"] / total)  # fmt: skip

    for remote, local, _ in plan:
        _copy_file(fs, remote, local, on_bytes)
    return [local for _, local, _ in plan]
