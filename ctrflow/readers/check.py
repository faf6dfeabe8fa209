"""`check_dataset`: validate a Norm, Raw or Parquet dataset and gather its statistics (`ctrflow data check`).

The check reads every sample with the ordinary readers, so every error a training run would hit (truncated
file, wrong header, check-type or key-width mismatch, NaN in dense, bad Parquet column types) surfaces here
as the same ValueError. It returns a `DatasetStats`: records, files, slots, a histogram of nnz per
(sample, slot), the key range of every slot, label balance and skipped corrupt records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ctrflow.readers.file_list import file_type, read_file_list
from ctrflow.readers.norm import NormReader, open_data_file
from ctrflow.readers.norm_format import header_size, parse_header
from ctrflow.readers.parquet import ParquetReader, load_metadata, metadata_path
from ctrflow.readers.raw import RawReader
from ctrflow.readers.sample_block import SampleBlock
from ctrflow.readers.types import CheckType, DataSpec, KeyType, ReaderOptions, SparseInputSpec

UNBOUNDED_NNZ = 1 << 20


@dataclass(slots=True)
class DatasetStats:
    """Statistics of one dataset, accumulated block by block."""

    format: str
    files: int = 0
    records: int = 0
    label_dim: int = 0
    dense_dim: int = 0
    num_slots: int = 0
    corrupt_records: int = 0
    nnz_histogram: Counter[int] = field(default_factory=Counter)
    key_min: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    key_max: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    label_sum: float = 0.0
    label_positive: int = 0

    def add(self, block: SampleBlock) -> None:
        rows, slots = block.lengths.shape
        if self.key_min.size != slots:
            self.key_min = np.full(slots, np.iinfo(np.int64).max)
            self.key_max = np.full(slots, np.iinfo(np.int64).min)
        self.records += rows
        values, counts = np.unique(block.lengths, return_counts=True)
        self.nnz_histogram.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        if block.keys.size:
            slot_of_key = np.repeat(np.tile(np.arange(slots), rows), block.lengths.reshape(-1))
            np.minimum.at(self.key_min, slot_of_key, block.keys)
            np.maximum.at(self.key_max, slot_of_key, block.keys)
        if self.label_dim:
            label = block.label_dense[:, 0]
            self.label_sum += float(label.sum())
            self.label_positive += int((label > 0.5).sum())

    def format_report(self) -> str:
        lines = [
            f"format: {self.format}   files: {self.files}   records: {self.records}   "
            f"label_dim: {self.label_dim}   dense_dim: {self.dense_dim}   slots: {self.num_slots}",
            f"corrupt records skipped: {self.corrupt_records}",
        ]
        if self.records and self.label_dim:
            lines.append(
                f"label 0: mean {self.label_sum / self.records:.4f}, > 0.5 in {self.label_positive} records "
                f"({100.0 * self.label_positive / self.records:.2f} %)"
            )
        lines.append("nnz per (sample, slot): " + ", ".join(f"{k}: {v}" for k, v in sorted(self.nnz_histogram.items())))
        for slot in range(self.key_min.size):
            if self.key_min[slot] <= self.key_max[slot]:
                lines.append(f"slot {slot:3d}: keys in [{self.key_min[slot]}, {self.key_max[slot]}]")
            else:
                lines.append(f"slot {slot:3d}: no keys")
        return "\n".join(lines)


def check_dataset(
    path: str,
    format: str | None = None,
    check: CheckType = "sum",
    key_type: KeyType = "i32",
    slots: tuple[int, ...] = (),
    label_dim: int = 1,
    dense_dim: int = 13,
    float_label_dense: bool = False,
) -> DatasetStats:
    """Read every sample of the dataset at `path` and return its statistics (ValueError on bad data).

    Args:
        path: a file list (Norm, Parquet), a single Norm data file, or a Raw data file.
        format: "norm", "raw" or "parquet"; None guesses from the path (".bin" = Raw, list of .parquet = Parquet).
        check: Norm framing. key_type: "i32" or "i64".
        slots: slots per sparse input (Raw needs them; for Norm they must add up to the header's slot_num).
        label_dim, dense_dim, float_label_dense: Raw's record layout (Norm and Parquet know their own).
    """
    kind = format or _guess_format(path)
    if kind == "raw":
        return _check_raw(path, key_type, slots, label_dim, dense_dim, float_label_dense)
    if kind == "parquet":
        return _check_parquet(path, key_type)
    if kind == "norm":
        return _check_norm(path, check, key_type, slots)
    raise ValueError(f'format must be "norm", "raw" or "parquet", received {kind!r}.')


def _guess_format(path: str) -> str:
    if path.endswith(".bin"):
        return "raw"
    if path.endswith(".data"):
        return "norm"
    return "parquet" if file_type(read_file_list(path)) == "parquet" else "norm"


def _spec(label_dim: int, dense_dim: int, slots: tuple[int, ...]) -> DataSpec:
    inputs = tuple(
        SparseInputSpec(f"input{i}", count, (UNBOUNDED_NNZ,) * count) for i, count in enumerate(slots) if count
    )
    return DataSpec(label_dim, dense_dim, inputs)


def _check_norm(path: str, check: CheckType, key_type: KeyType, slots: tuple[int, ...]) -> DatasetStats:
    files = [path] if path.endswith(".data") else read_file_list(path)
    with open_data_file(files[0]) as handle:
        header = parse_header(handle.read(header_size(check)), files[0], check)
    spec = _spec(header.label_dim, header.dense_dim, slots or (header.slot_num,))
    options = ReaderOptions(batch_size=1, key_type=key_type, check=check, repeat=False)
    reader = NormReader([], spec, options, max_nnz_per_sample=UNBOUNDED_NNZ)
    stats = DatasetStats("norm", len(files), 0, header.label_dim, header.dense_dim, spec.total_slots)
    for file in files:
        for block in reader.iter_file(file):
            stats.add(block)
    stats.corrupt_records = reader.corrupt_records
    return stats


def _check_raw(
    path: str, key_type: KeyType, slots: tuple[int, ...], label_dim: int, dense_dim: int, float_label_dense: bool
) -> DatasetStats:
    if not slots:
        raise ValueError(f"Raw file {path!r}: Raw files do not record their slot count; pass --slots N.")
    spec = _spec(label_dim, dense_dim, slots)
    options = ReaderOptions(batch_size=65536, key_type=key_type, repeat=False, float_label_dense=float_label_dense)
    reader = RawReader(path, spec, options)
    stats = DatasetStats("raw", 1, 0, label_dim, dense_dim, spec.total_slots)
    for batch in reader:
        size = batch.size
        label_dense = np.concatenate([batch.label.numpy(), batch.dense.numpy()], axis=1)[:size]
        keys = np.concatenate([s.keys.numpy() for s in batch.sparse.values()]).reshape(size, -1)
        stats.add(SampleBlock(label_dense, np.ones(keys.shape, np.int64), keys.reshape(-1)))
    return stats


def _check_parquet(path: str, key_type: KeyType) -> DatasetStats:
    files = read_file_list(path)
    metadata = load_metadata(metadata_path(files[0]))
    spec = _spec(len(metadata.labels), len(metadata.conts), (len(metadata.cats),))
    reader = ParquetReader(path, spec, ReaderOptions(batch_size=1, key_type=key_type, repeat=False), engine="pyarrow")
    stats = DatasetStats("parquet", len(files), 0, spec.label_dim, spec.dense_dim, spec.total_slots)
    for file in files:
        for block in reader.iter_file(file):
            stats.add(block)
    return stats
