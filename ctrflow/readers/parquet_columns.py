"""Parquet column checks and key extraction for the Parquet reader (formats spec §3, "Dtypes").

Label and cont columns must be float32. A cat column is either a scalar integer column whose width equals
the key width (int32/uint32 for "i32", int64/uint64 for "i64"; signedness is not checked, as in HugeCTR)
or a list column of such integers (multi-hot). `cat_columns` converts the cat columns of a row group to NumPy
once; `cat_block` turns a row range of them into the sample-major, slot-major CSR of `SampleBlock`, adding the
per-slot offsets in the key type's arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ctrflow.readers.sample_block import SampleBlock, interleave_slot_runs, pooled_empty

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
        element = field.type.value_type if is_list_type(field.type) else field.type
        if not pa.types.is_integer(element) or element.bit_width != _KEY_WIDTH[key_type]:
            other = "i64" if key_type == "i32" else "i32"
            raise ValueError(
                f"Parquet file {path!r}: cat column {index} ({field.name!r}) has type {field.type}, but "
                f'key_type="{key_type}" needs {_KEY_WIDTH[key_type]}-bit integers (or a list of them for multi-hot). '
                f'Cast the column, or set i64_input_key to match (key_type="{other}").'
            )


@dataclass(slots=True)
class CatColumn:
    """One cat column of a row group in NumPy form.

    Args:
        keys: every stored key, as uint32 ("i32") or int64 ("i64") bit patterns, no slot offset added yet.
        row_offsets: int64 `[rows + 1]` offsets of each row's keys in `keys` for a list column; None for a
            scalar column (one key per row).
    """

    keys: np.ndarray
    row_offsets: np.ndarray | None = None


@dataclass(slots=True)
class RowGroupColumns:
    """One non-empty row group in NumPy form, checked: what the reader cuts into `SampleBlock`s.

    Args:
        label_dense: the float32 label then cont columns (zero-copy views of the Arrow buffers).
        cats: one `CatColumn` per slot.
        num_rows: rows of the row group.
        offsets: int64 per-slot key offsets (from `slot_size_array`), or None.
        key_type: "i32" or "i64", the arithmetic the offsets are added in.
    """

    label_dense: list[np.ndarray]
    cats: list[CatColumn]
    num_rows: int
    offsets: np.ndarray | None
    key_type: str

    @staticmethod
    def of(
        table: pa.Table, names: list[str], width: int, path: str, key_type: str, offsets: np.ndarray | None,
        *, allow_nonfinite: bool,
    ) -> RowGroupColumns:  # fmt: skip
        """Convert the columns `names` (`width` label/cont columns, then the cats) of a row group, once."""
        label_dense = label_dense_columns(table, names[:width], path, allow_nonfinite=allow_nonfinite)
        cats = cat_columns(table, names[width:], path, key_type)
        return RowGroupColumns(label_dense, cats, table.num_rows, offsets, key_type)

    def block(self, start: int, stop: int) -> SampleBlock:
        """Rows `[start, stop)` as fresh arrays, slot offsets added; label_dense is column-major."""
        columns = pooled_empty((len(self.label_dense), stop - start), np.float32)
        for column, values in enumerate(self.label_dense):
            columns[column] = values[start:stop]
        lengths, keys = cat_block(self.cats, start, stop, self.offsets, self.key_type)
        return SampleBlock(columns.T, lengths, keys)


def label_dense_columns(table: pa.Table, names: list[str], path: str, *, allow_nonfinite: bool) -> list[np.ndarray]:
    """The label and cont columns `names` of a row group as float32 NumPy, checked for nulls and NaN/inf."""
    columns = []
    for name in names:
        values = table.column(name)
        if values.null_count:
            raise null_error(path, name, values.null_count, cat=False)
        columns.append(values.to_numpy())
    if not allow_nonfinite and not all(np.isfinite(column).all() for column in columns):
        label_dense = np.stack(columns, axis=1)
        row, column = (int(v) for v in np.argwhere(~np.isfinite(label_dense))[0])
        raise nonfinite_error(path, row, float(label_dense[row, column]), names[column])
    return columns


def null_error(path: str, name: str, count: int, *, cat: bool) -> ValueError:
    """The error for a label/cont (`cat` False) or cat column `name` holding `count` nulls."""
    kind = "cat column" if cat else "column"
    return ValueError(
        f"Parquet file {path!r}: {kind} {name!r} has {count} nulls; missing values are not supported. "
        "Fill them before training."
    )


def nonfinite_error(path: str, row: int, value: float, name: str) -> ValueError:
    """The error for a NaN/inf `value` in row `row` (of its row group) of the label/cont column `name`."""
    return ValueError(
        f"Parquet file {path!r}: row {row} of this row group has {value} in column {name!r}. "
        "Clean the dataset or pass allow_nonfinite=True."
    )


def cat_columns(table: pa.Table, names: list[str], path: str, key_type: str) -> list[CatColumn]:
    """The cat columns `names` of a row group as NumPy, converted once (zero-copy for plain integer columns)."""
    columns = []
    for name in names:
        column = table.column(name)
        if column.null_count:
            raise null_error(path, name, column.null_count, cat=True)
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        if is_list_type(array.type):  # offsets index the whole child array, also for a sliced list array
            row_offsets = array.offsets.to_numpy().astype(np.int64)
            keys = _key_bits(array.values.to_numpy(zero_copy_only=False), key_type)
            columns.append(CatColumn(keys, row_offsets))
        else:
            columns.append(CatColumn(_key_bits(array.to_numpy(zero_copy_only=False), key_type)))
    return columns


def cat_block(
    columns: list[CatColumn], start: int, stop: int, offsets: np.ndarray | None, key_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """(lengths [rows, slots], keys) of rows `[start, stop)`, keys sample-major then slot-major, offsets added."""
    rows, num_slots = stop - start, len(columns)
    slot_offsets = [0 if offsets is None else int(offsets[slot]) for slot in range(num_slots)]
    if all(column.row_offsets is None for column in columns):  # one-hot: each slot is a column of the key matrix
        matrix = pooled_empty((rows, num_slots), np.int64)
        for slot, column in enumerate(columns):
            _write_keys(column.keys[start:stop], slot_offsets[slot], key_type, matrix[:, slot])
        return np.broadcast_to(np.int64(1), (rows, num_slots)), matrix.reshape(-1)
    lengths = np.empty((rows, num_slots), np.int64)
    values = []
    for slot, column in enumerate(columns):
        if column.row_offsets is None:
            lengths[:, slot] = 1
            flat = column.keys[start:stop]
        else:
            row_offsets = column.row_offsets[start : stop + 1]
            lengths[:, slot] = np.diff(row_offsets)
            flat = column.keys[int(row_offsets[0]) : int(row_offsets[-1])]
        keys = np.empty(flat.shape, np.int64)
        _write_keys(flat, slot_offsets[slot], key_type, keys)
        values.append(keys)
    if (lengths == 1).all():
        keys = np.empty((rows, num_slots), np.int64)
        for slot, column_keys in enumerate(values):  # column writes: much faster than np.stack here
            keys[:, slot] = column_keys
        return lengths, keys.reshape(-1)
    return lengths, interleave_slot_runs(lengths, values)


def _key_bits(values: np.ndarray, key_type: str) -> np.ndarray:
    """Stored keys as uint32 (i32) or int64 (i64): a view for integers of the key width (the bit pattern kept)."""
    dtype = np.dtype(np.uint32 if key_type == "i32" else np.int64)
    if values.dtype.kind in "iu" and values.dtype.itemsize == dtype.itemsize:
        return values.view(dtype)
    return values.astype(dtype)


def _write_keys(keys: np.ndarray, offset: int, key_type: str, out: np.ndarray) -> None:
    """out (int64) = keys + offset in the key type's arithmetic, in one pass (formats spec §3: uint32 wraps)."""
    if offset == 0:
        out[...] = keys
    elif key_type == "i32":
        np.add(keys, np.uint32(offset & 0xFFFFFFFF), out=out, dtype=np.uint32)
    else:
        np.add(keys.view(np.uint64), np.uint64(offset), out=out.view(np.uint64))


def is_list_type(data_type: pa.DataType) -> bool:
    """True for a list (multi-hot) column type."""
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type)
