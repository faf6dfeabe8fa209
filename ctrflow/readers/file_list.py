"""File lists: the text file that names the data files of a Norm or Parquet dataset (formats spec §1.5).

Line 1 holds the decimal count; the next `count` lines hold one path each, taken verbatim (no trimming),
relative paths resolving against the working directory as in HugeCTR. Extra lines are ignored. Readers call
`read_file_list` once per source; the data generator writes lists with `write_file_list`.

Every path, the list's own and the data files', may be an fsspec URL (`memory://`, `s3://`, `hdfs://`).
"""

from __future__ import annotations

from collections.abc import Sequence

import fsspec


def read_file_list(path: str) -> list[str]:
    """Return the data file paths named by the file list at `path`.

    Raises:
        ValueError: the list is missing or unreadable, its count line is not a positive integer, or it
            names fewer paths than its count.
    """
    text = _read_text(path)
    lines = text.split("\n")
    count_line = lines[0].strip()
    try:
        count = int(count_line)
    except ValueError:
        raise ValueError(
            f"File list {path!r}: line 1 must be the number of data files, found {count_line[:60]!r}. "
            "Write the count on the first line and one data file path per line after it."
        ) from None
    if count <= 0:
        raise ValueError(
            f"File list {path!r}: line 1 says {count} data files; expected a count of at least 1. "
            "List at least one data file and put their number on the first line."
        )
    # formats spec §1.5: paths are taken verbatim; only the line terminator (and a CR from Windows) goes
    paths = [line[:-1] if line.endswith("\r") else line for line in lines[1 : count + 1]]
    paths = [p for p in paths if p != ""]
    if len(paths) < count:
        raise ValueError(
            f"File list {path!r}: line 1 says {count} data files but only {len(paths)} paths follow. "
            f"Add the missing paths or change the count to {len(paths)}."
        )
    return paths


def write_file_list(path: str, data_files: Sequence[str]) -> None:
    """Write a file list as HugeCTR v3.5 does: `"<count>\\n"` then `"<path>\\n"` per file."""
    if len(data_files) == 0:
        raise ValueError(f"File list {path!r}: received no data files; a file list must name at least one.")
    for file in data_files:
        if "\n" in file or file == "":
            raise ValueError(f"File list {path!r}: data file path {file!r} is empty or contains a newline.")
    text = f"{len(data_files)}\n" + "".join(f"{file}\n" for file in data_files)
    with fsspec.open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def file_type(data_files: Sequence[str]) -> str:
    """HugeCTR's "file type": the text after the last '.' of the first path (formats spec §1.5)."""
    first = data_files[0]
    return first.rsplit(".", 1)[1] if "." in first else ""


def _read_text(path: str) -> str:
    try:
        with fsspec.open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ValueError(
            f"File list {path!r} does not exist. Pass the path of an existing file list (for example the "
            "`source` written by the data generator), relative to the current directory or as a URL."
        ) from None
    except (IsADirectoryError, PermissionError, OSError) as error:
        raise ValueError(f"File list {path!r} cannot be read ({error}). Pass a readable text file.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"File list {path!r} is not UTF-8 text (byte {error.start} is 0x{raw[error.start]:02x}); "
            "a file list is text: a count, then one path per line. Did you pass a data file instead?"
        ) from None
