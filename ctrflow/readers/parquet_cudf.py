"""The cudf engine of the Parquet reader, and the choice between it and pyarrow.

pyarrow always works and is the default. cudf decodes on the GPU and is used only when a CUDA GPU is visible,
`import cudf` succeeds and a probe works: cudf reads a small Parquet table written by pyarrow and
`device_row_group` turns it into the expected tensors. Otherwise the reader falls back to pyarrow and logs why,
once per process, at INFO. `CTRFLOW_PARQUET_ENGINE` (or `ParquetReader(engine=...)`) forces "pyarrow" or
"cudf"; forcing cudf where it cannot work raises and says why.

With cudf each row group is read with `cudf.read_parquet(path, columns=..., row_groups=[group])` (the same
column checks as pyarrow run first, on the footer), converted to torch tensors through DLPack, and cut into
batches on the device by `DeviceCutter`; the batches equal the pyarrow path's (dtypes, slot offsets, order),
only their tensors live where cudf put them.

The cudf path is checked here against a stand-in only: the tests install a small fake `cudf` module built on
pyarrow, which hands back CPU tensors. No run on a real GPU with real cudf has been made.
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.utils.dlpack

from ctrflow.readers.parquet_columns import nonfinite_error, null_error
from ctrflow.readers.types import Batch, DataSpec, SparseBatch

logger = logging.getLogger(__name__)

ENGINE_VARIABLE = "CTRFLOW_PARQUET_ENGINE"
ENGINES = ("auto", "pyarrow", "cudf")
_UINT32_MASK = 0xFFFFFFFF


def choose_engine(requested: str | None = None) -> str:
    """Pick "pyarrow" or "cudf": `requested`, else `$CTRFLOW_PARQUET_ENGINE`, else "auto" (cudf when it works)."""
    where = "engine" if requested is not None else ENGINE_VARIABLE
    name = requested if requested is not None else os.environ.get(ENGINE_VARIABLE, "auto")
    if name not in ENGINES:
        raise ValueError(f'Parquet reader: {where}={name!r} is not an engine; use "auto", "pyarrow" or "cudf".')
    if name == "pyarrow":
        return "pyarrow"
    if name == "cudf":
        problem = cudf_problem()
        if problem is not None:
            raise RuntimeError(
                f'Parquet reader: {where}="cudf" was asked for, but cudf cannot be used here: {problem}. '
                'Install a cudf that matches the CUDA driver, or use "pyarrow" (or "auto" to fall back).'
            )
        return "cudf"
    return _auto_engine()


def forget_engine_choice() -> None:
    """Check cudf again on the next choice (after installing it in a running process; tests)."""
    cudf_problem.cache_clear()
    _auto_engine.cache_clear()


@functools.cache
def _auto_engine() -> str:
    problem = cudf_problem()
    if problem is None:
        logger.info("Parquet reader: decoding with cudf on the GPU (%s=pyarrow reads on the CPU).", ENGINE_VARIABLE)
        return "cudf"
    logger.info("Parquet reader: decoding with pyarrow, not cudf: %s.", problem)
    return "pyarrow"


@functools.cache
def cudf_problem() -> str | None:
    """Why cudf cannot decode Parquet here, or None when it can (checked once per process)."""
    if not torch.cuda.is_available():
        return "no CUDA GPU is available (torch.cuda.is_available() is False)"
    try:
        cudf = importlib.import_module("cudf")
    except Exception as error:  # a broken install raises more than ImportError (CUDA runtime errors)
        return f"`import cudf` failed ({type(error).__name__}: {error})"
    try:
        _probe(cudf)
    except Exception as error:
        return f"cudf could not read a small probe table ({type(error).__name__}: {error})"
    return None


def _probe(cudf: Any) -> None:
    """Read a 2-row table (float32, uint32, list<uint32>) written by pyarrow through the real conversion."""
    table = pa.table(
        {
            "dense": pa.array([0.5, -2.0], pa.float32()),
            "key": pa.array([7, _UINT32_MASK], pa.uint32()),
            "keys": pa.array([[1], [2, 3]], pa.list_(pa.uint32())),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    frame = cudf.read_parquet(io.BytesIO(sink.getvalue()), columns=["dense", "key", "keys"])
    offsets = np.array([0, 10], np.int64)
    group = device_row_group(frame, ["dense", "key", "keys"], 1, [False, True], "probe", "i32", offsets)
    found = (group.label_dense.tolist(), group.lengths.tolist(), group.keys.tolist())
    expected = ([[0.5], [-2.0]], [[1, 1], [1, 2]], [7, 11, _UINT32_MASK, 12, 13])
    if found != expected:
        raise ValueError(f"read {found}, expected {expected}")


def read_row_groups(
    path: str, num_row_groups: int, names: list[str], width: int, multi_hot: list[bool], key_type: str,
    offsets: np.ndarray | None, *, allow_nonfinite: bool,
) -> Iterator[DeviceRowGroup]:  # fmt: skip
    """The non-empty row groups of one Parquet file read with cudf (columns already checked on the footer)."""
    cudf = importlib.import_module("cudf")
    for group in range(num_row_groups):
        frame = cudf.read_parquet(path, columns=sorted(set(names)), row_groups=[group])
        if len(frame):
            yield device_row_group(
                frame, names, width, multi_hot, path, key_type, offsets, allow_nonfinite=allow_nonfinite
            )


def device_row_group(
    frame: Any, names: list[str], width: int, multi_hot: list[bool], path: str, key_type: str,
    offsets: np.ndarray | None, *, allow_nonfinite: bool = False,
) -> DeviceRowGroup:  # fmt: skip
    """A cudf row group as tensors: `width` label/cont columns, then the cats (list columns where `multi_hot`)."""
    columns = [_tensor(_checked(frame, name, path, cat=False).astype("float32")) for name in names[:width]]
    label_dense = torch.stack(columns, 1) if columns else None
    if label_dense is not None and not allow_nonfinite and not bool(torch.isfinite(label_dense).all()):
        row, column = (int(v) for v in torch.nonzero(~torch.isfinite(label_dense))[0])
        raise nonfinite_error(path, row, float(label_dense[row, column]), names[column])
    lengths, keys = [], []
    for slot, name in enumerate(names[width:]):
        series = _checked(frame, name, path, cat=True)
        if multi_hot[slot]:
            lengths.append(_tensor(series.list.len().astype("int64")))
            series = series.list.leaves
        slot_keys = _tensor(series.astype("int64"))
        offset = 0 if offsets is None else int(offsets[slot])
        if key_type == "i32":  # uint32 bit patterns, offsets added with wrap-around (formats spec §3)
            slot_keys = ((slot_keys & _UINT32_MASK) + offset) & _UINT32_MASK
        elif offset:
            slot_keys = slot_keys + offset
        keys.append(slot_keys)
        if not multi_hot[slot]:
            lengths.append(torch.ones_like(slot_keys))
    if label_dense is None:  # no label or cont columns: put the empty block where the keys are
        label_dense = torch.zeros((len(frame), 0), device=keys[0].device if keys else None)
    return _interleave(label_dense, lengths, keys)


def _checked(frame: Any, name: str, path: str, *, cat: bool) -> Any:
    series = frame[name]
    if series.null_count:
        raise null_error(path, name, int(series.null_count), cat=cat)
    return series


def _tensor(series: Any) -> torch.Tensor:
    """The values of a cudf Series as a tensor on its device, through DLPack."""
    return torch.utils.dlpack.from_dlpack(series.to_dlpack())


def _interleave(label_dense: torch.Tensor, lengths: list[torch.Tensor], keys: list[torch.Tensor]) -> DeviceRowGroup:
    """Per-slot keys (each slot's keys row after row) → sample-major, slot-major keys and `[rows, slots]` lengths."""
    num_rows, device = label_dense.shape[0], label_dense.device
    if not keys:
        empty = torch.zeros((num_rows, 0), dtype=torch.int64, device=device)
        return DeviceRowGroup(label_dense, empty, empty.reshape(-1), torch.zeros(num_rows + 1, dtype=torch.int64))
    matrix = torch.stack(lengths, 1)
    if all(slot_keys.numel() == num_rows for slot_keys in keys) and bool((matrix == 1).all()):
        starts = torch.arange(num_rows + 1, dtype=torch.int64) * len(keys)
        return DeviceRowGroup(label_dense, matrix, torch.stack(keys, 1).reshape(-1), starts)
    out_offsets = torch.zeros(matrix.numel() + 1, dtype=torch.int64, device=device)
    torch.cumsum(matrix.reshape(-1), 0, out=out_offsets[1:])
    out = torch.empty(int(out_offsets[-1]), dtype=torch.int64, device=device)
    rows = torch.arange(num_rows, device=device)
    for slot, slot_keys in enumerate(keys):
        slot_lengths = matrix[:, slot]
        row_of_key = torch.repeat_interleave(rows, slot_lengths, output_size=slot_keys.numel())
        run_starts = torch.cumsum(slot_lengths, 0) - slot_lengths
        within = torch.arange(slot_keys.numel(), device=device) - run_starts[row_of_key]
        out[out_offsets[row_of_key * len(keys) + slot] + within] = slot_keys
    starts = out_offsets[:: len(keys)].cpu()
    return DeviceRowGroup(label_dense, matrix, out, starts)


@dataclass(slots=True)
class DeviceBlock:
    """Consecutive samples as tensors on one device: the torch twin of `SampleBlock`.

    Args:
        label_dense: float32 `[n, label_dim + dense_dim]`, labels first.
        lengths: int64 `[n, total_slots]`, keys per (sample, slot).
        keys: int64 `[lengths.sum()]`, sample-major then slot-major, slot offsets added.
    """

    label_dense: torch.Tensor
    lengths: torch.Tensor
    keys: torch.Tensor

    @property
    def num_rows(self) -> int:
        return int(self.label_dense.shape[0])

    def to_batch(self, spec: DataSpec, batch_size: int) -> Batch:
        """The `Batch` of these rows, zero-padded to `batch_size` rows, as `SampleBlock.to_batch` builds it."""
        size = self.num_rows
        label_dense, lengths = self.label_dense, self.lengths
        if batch_size > size:
            label_dense = torch.cat([label_dense, label_dense.new_zeros((batch_size - size, label_dense.shape[1]))])
            lengths = torch.cat([lengths, lengths.new_zeros((batch_size - size, lengths.shape[1]))])
        label = label_dense[:, : spec.label_dim].contiguous()
        dense = label_dense[:, spec.label_dim :].contiguous()
        return DeviceBatch(label, dense, _split_inputs(spec, lengths, self.keys), size)


@dataclass(slots=True)
class DeviceRowGroup(DeviceBlock):
    """A whole row group as a `DeviceBlock`, plus where each row's keys start (host int64 `[n + 1]`)."""

    key_starts: torch.Tensor

    def block(self, start: int, stop: int) -> DeviceBlock:
        """Rows `[start, stop)` (views)."""
        first, last = int(self.key_starts[start]), int(self.key_starts[stop])
        return DeviceBlock(self.label_dense[start:stop], self.lengths[start:stop], self.keys[first:last])


def _split_inputs(spec: DataSpec, lengths: torch.Tensor, keys: torch.Tensor) -> dict[str, SparseBatch]:
    """CSR per sparse input; the file's slots belong to the inputs in order (formats spec §1.3)."""
    sparse: dict[str, SparseBatch] = {}
    slot_of_key = None
    if len(spec.sparse) > 1:
        slots = torch.arange(lengths.shape[1], device=lengths.device).repeat(lengths.shape[0])
        slot_of_key = torch.repeat_interleave(slots, lengths.reshape(-1), output_size=keys.numel())
    first = 0
    for sparse_input in spec.sparse:
        last = first + sparse_input.num_slots
        input_lengths = lengths[:, first:last].reshape(-1)
        offsets = torch.zeros(input_lengths.numel() + 1, dtype=torch.int64, device=lengths.device)
        torch.cumsum(input_lengths, 0, out=offsets[1:])
        input_keys = keys if slot_of_key is None else keys[(slot_of_key >= first) & (slot_of_key < last)]
        sparse[sparse_input.name] = SparseBatch(input_keys, offsets, sparse_input.num_slots)
        first = last
    return sparse


@dataclass(slots=True)
class DeviceBatch(Batch):
    """A `Batch` whose tensors cudf already put on the GPU: pinning it (as `Loader` does) is a no-op there."""

    def pin_memory(self) -> Batch:
        return self if self.label.is_cuda else Batch.pin_memory(self)


class DeviceCutter:
    """`BatchCutter` for `DeviceBlock`s: joins blocks into batches of exactly `batch_size` rows.

    The reader never hands it more rows than `rows_missing`, so blocks are joined, never split.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._pending: list[DeviceBlock] = []
        self._pending_rows = 0

    @property
    def rows_missing(self) -> int:
        return self.batch_size - self._pending_rows

    def add(self, block: DeviceBlock) -> list[DeviceBlock]:
        """Add at most `rows_missing` rows; return the batch now complete, if any."""
        self._pending.append(block)
        self._pending_rows += block.num_rows
        return [self._take()] if self._pending_rows == self.batch_size else []

    def flush(self) -> DeviceBlock | None:
        return self._take() if self._pending_rows else None

    def _take(self) -> DeviceBlock:
        blocks, self._pending, self._pending_rows = self._pending, [], 0
        if len(blocks) == 1:
            return blocks[0]
        return DeviceBlock(
            torch.cat([b.label_dense for b in blocks]), torch.cat([b.lengths for b in blocks]),
            torch.cat([b.keys for b in blocks]),
        )  # fmt: skip
