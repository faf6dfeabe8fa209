"""Fixtures of the reader tests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


@pytest.fixture
def write_norm(tmp_path):
    """Write Norm files built by hand plus their file list; returns the file list path."""

    def write(files: Sequence[bytes], name: str = "list.txt") -> str:
        paths = []
        for index, content in enumerate(files):
            path = tmp_path / f"{name}.{index}.data"
            path.write_bytes(content)
            paths.append(str(path))
        file_list = tmp_path / name
        file_list.write_text(f"{len(paths)}\n" + "".join(p + "\n" for p in paths))
        return str(file_list)

    return write
