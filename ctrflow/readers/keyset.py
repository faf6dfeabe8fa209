"""Keyset files of the Embedding Training Cache (formats spec §4.6).

A keyset is a flat binary array of keys of the dataset's key type (uint32 for "i32", int64 for "i64"),
little-endian, no header, any order, duplicates allowed. One keyset goes with one file list; the training
cache reads it to know which embedding rows the next pass will touch. Keys are returned widened to int64
(uint32 bit patterns kept), like every key a reader hands on.
"""

from __future__ import annotations

import fsspec
import numpy as np

from ctrflow.readers.types import KeyType

_KEY_DTYPES: dict[str, np.dtype] = {"i32": np.dtype("<u4"), "i64": np.dtype("<i8")}


def key_dtype(key_type: KeyType) -> np.dtype:
    """The on-disk NumPy dtype of a key type: little-endian uint32 ("i32") or int64 ("i64")."""
    if key_type not in _KEY_DTYPES:
        raise ValueError(f'key_type must be "i32" or "i64", received {key_type!r}.')
    return _KEY_DTYPES[key_type]


def read_keyset(path: str, key_type: KeyType) -> np.ndarray:
    """Read every key of a keyset file as int64 (duplicates and order kept).

    Raises:
        ValueError: the file is missing, or its size is not a multiple of the key width.
    """
    dtype = key_dtype(key_type)
    try:
        with fsspec.open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ValueError(f"Keyset file {path!r} does not exist; pass the keyset written for this file list.") from None
    if len(raw) % dtype.itemsize:
        other = "i64" if key_type == "i32" else "i32"
        raise ValueError(
            f"Keyset file {path!r}: {len(raw)} bytes is not a multiple of the {dtype.itemsize}-byte {key_type} "
            f"key width (the last key would be cut at byte {len(raw) - len(raw) % dtype.itemsize}). "
            f'The file is truncated, or it holds {other} keys: check i64_input_key (key_type="{other}").'
        )
    return np.frombuffer(raw, dtype=dtype).astype(np.int64)


def write_keyset(path: str, keys: np.ndarray, key_type: KeyType) -> None:
    """Write `keys` as a keyset of `key_type`; keys outside the type's range raise ValueError."""
    dtype = key_dtype(key_type)
    values = np.asarray(keys)
    if values.dtype.kind not in "iu":
        raise TypeError(f"Keyset {path!r}: keys must be integers, received dtype {values.dtype}.")
    values = values.reshape(-1)
    if values.size:
        low, high = int(values.min()), int(values.max())
        info = np.iinfo(dtype)
        if low < info.min or high > info.max:
            raise ValueError(
                f"Keyset {path!r}: keys span [{low}, {high}] but {key_type} keys must lie in "
                f'[{info.min}, {info.max}]. Use key_type="i64" for larger keys.'
            )
    with fsspec.open(path, "wb") as handle:
        handle.write(values.astype(dtype).tobytes())
