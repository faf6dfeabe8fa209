"""Parquet column checks and key extraction for the Parquet reader (formats spec §3, "Dtypes").

Label and cont columns must be float32. A cat column is either a scalar integer column whose width equals
the key width (int32/uint32 for "i32", int64/uint64 for "i64"; signedness is not checked, as in HugeCTR)
or a list column of such integers (multi-hot). `cat_block` turns the cat columns of a table into the
sample-major, slot-major CSR of `SampleBlock`, adding the per-slot offsets in the key type's arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ctrflow.readers.sample_block import interleave_slot_runs

if TYPE_CHECKING:
    from ctrflow.readers.parquet import ParquetMetadata

_KEY_WIDTH = {"i32": 32, "i64": 64}


def check_column_types(schema: pa.Schema, metadata: ParquetMetadata, path: str, key_type: str) -> None:
    """Raise ValueError naming the column, its type and the expected one when a column does not fit."""
    for index in [*metadata.labels, *metadata.conts, *metadata.cats]:
        if not 0 <= index < len(schema):
            raise ValueError(
                f"Parquet file {path!r}: {metadata.path!r} refers to column index {index}, but the file has "
                f"{len(schema)} columns (0-{len(schema) - 1}). Fix the indices in _metadata.json."
            )
    for index in [*metadata.labels, *metadata.conts]:
        field = schema.field(index)
        if field.type != pa.float32():
            raise ValueError(
                f"Parquet file {path!r}: label/cont column {index} ({field.name!r}) has type {field.type}; "
                "HugeCTR needs float32. Cast the column to float32 when writing the dataset."
            )
    for index in metadata.cats:
        field = schema.field(index)
        element = field.type.value_type if _is_list(field.type) else field.type
        if not pa.types.is_integer(element) or element.bit_width != _KEY_WIDTH[key_type]:
            other = "i64" if key_type == "i32" else "i32"
            raise ValueError(
                f"Parquet file {path!r}: cat column {index} ({field.name!r}) has type {field.type}, but "
                f'key_type="{key_type}" needs {_KEY_WIDTH[key_type]}-bit integers (or a list of them for multi-hot). '
                f'Cast the column, or set i64_input_key to match (key_type="{other}").'
            )


def cat_block(
    table: pa.Table, names: list[str], path: str, offsets: np.ndarray | None, key_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """(lengths [rows, slots], keys) of the cat columns `names`, keys sample-major then slot-major."""
    rows, num_slots = table.num_rows, len(names)
    lengths = np.empty((rows, num_slots), np.int64)
    values = []
    for slot, name in enumerate(names):
        column = table.column(name).combine_chunks()
        if column.null_count:
            raise ValueError(
                f"Parquet file {path!r}: cat column {name!r} has {column.null_count} nulls; "
                "missing values are not supported. Fill them before training."
            )
        if _is_list(column.type):
            list_offsets = column.offsets.to_numpy().astype(np.int64)
            lengths[:, slot] = np.diff(list_offsets)
            flat = column.values.slice(int(list_offsets[0]), int(list_offsets[-1] - list_offsets[0]))
        else:
            lengths[:, slot] = 1
            flat = column
        keys = _widen(flat.to_numpy(zero_copy_only=False), key_type)
        if offsets is not None and offsets[slot]:
            keys = _add_offset(keys, int(offsets[slot]), key_type)
        values.append(keys)
    if (lengths == 1).all():
        keys = np.empty((rows, num_slots), np.int64)
        for slot, column_keys in enumerate(values):  # column writes: much faster than np.stack here
            keys[:, slot] = column_keys
        return lengths, keys.reshape(-1)
    return lengths, interleave_slot_runs(lengths, values)


def _widen(values: np.ndarray, key_type: str) -> np.ndarray:
    if key_type == "i32":
        return values.astype(np.uint32, copy=False).astype(np.int64)  # bit pattern kept, as uint32
    return values.astype(np.int64, copy=False)


def _add_offset(keys: np.ndarray, offset: int, key_type: str) -> np.ndarray:
    if key_type == "i32":
        return (keys + offset) & 0xFFFFFFFF  # formats spec §3: K arithmetic, uint32 wraps
    return (keys.view(np.uint64) + np.uint64(offset)).view(np.int64)


def _is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type)
