"""Raw little-endian arrays: the building block of every HugeCTR model file (formats spec, global conventions).

HugeCTR writes host memory with `ofstream::write`: no header, no padding, native (little-endian) byte order.
This module turns tensors / array-likes into such bytes and reads them back with size checks whose
messages name the file, the bytes expected and the bytes found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

import numpy as np
import torch

from ctrflow.storage import filesystems

# The dtypes HugeCTR files use, fixed to little-endian.
FLOAT32 = np.dtype("<f4")
FLOAT16 = np.dtype("<f2")
INT64 = np.dtype("<i8")
UINT64 = np.dtype("<u8")


def to_numpy(value: Any, name: str) -> np.ndarray:
    """`value` (torch tensor, NumPy array or nested sequence) as a NumPy array, without copying when possible."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name}: expected a torch tensor or NumPy array, received {type(value).__name__}. ({error})"
        ) from error


def to_float_array(value: Any, dtype: np.dtype, name: str) -> np.ndarray:
    """`value` as a C-contiguous array of the floating `dtype`; integer or boolean data are a TypeError."""
    array = to_numpy(value, name)
    if array.dtype.kind != "f":
        raise TypeError(
            f"{name}: expected floating-point values, received dtype {array.dtype}. "
            "Pass the parameter tensor itself (float32, float16, bfloat16 or float64)."
        )
    return np.ascontiguousarray(array, dtype=dtype)


def to_integer_array(value: Any, dtype: np.dtype, name: str) -> np.ndarray:
    """`value` as a 1-D C-contiguous array of the integer `dtype`, keeping each key's bit pattern."""
    array = to_numpy(value, name)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer keys or ids, received dtype {array.dtype}.")
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, received shape {tuple(array.shape)}.")
    if array.dtype.kind == "u" and array.dtype.itemsize == 4:
        array = array.astype(np.uint64)  # uint32 keys are zero-extended (formats spec §6.1)
    return np.ascontiguousarray(array.astype(dtype, copy=False))


def read_bytes(url: str, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """The whole content of the file `url`."""
    with filesystems.open_file(url, "rb", storage_options) as handle:
        return bytes(handle.read())


class _ReadsInto(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


def _read_into(url: str, dtype: np.dtype, count: int, storage_options: Mapping[str, Any] | None) -> np.ndarray:
    # Reads straight into the result, so a multi-gigabyte table needs its own size in memory, not twice that.
    result = np.empty(count, dtype=dtype)
    view = result.view(np.uint8).data
    position = 0
    with filesystems.open_file(url, "rb", storage_options) as handle:
        reader = cast(_ReadsInto, handle)
        while position < len(view):
            read = reader.readinto(view[position:])
            if not read:
                raise ValueError(f"{url}: file ended at byte offset {position}, expected {len(view)} bytes.")
            position += read
    return result


def read_exact(
    url: str,
    dtype: np.dtype,
    count: int,
    what: str,
    storage_options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Read exactly `count` values of `dtype` from `url`; any other file size is a ValueError."""
    expected = count * dtype.itemsize
    found = filesystems.file_size(url, storage_options)
    if found != expected:
        raise ValueError(
            f"{url}: {what} file has {found} bytes, expected {expected} bytes "
            f"({count} values × {dtype.itemsize} B). The file belongs to a different model "
            "(other layers, widths or precision) or was cut short; check the path and the model definition."
        )
    return _read_into(url, dtype, count, storage_options)


def read_whole(
    url: str,
    dtype: np.dtype,
    what: str,
    storage_options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Read all values of `dtype` in `url`; a size that is not a multiple of the element size is a ValueError."""
    size = filesystems.file_size(url, storage_options)
    if size % dtype.itemsize:
        raise ValueError(
            f"{url}: {what} file has {size} bytes, which is not a multiple of {dtype.itemsize} "
            f"({dtype} elements); the last {size % dtype.itemsize} bytes at offset "
            f"{size - size % dtype.itemsize} are a partial value. The file is truncated or not a {what} file."
        )
    return _read_into(url, dtype, size // dtype.itemsize, storage_options)
