"""Per-format file writing for the data generator (formats spec §4.2-4.5); `generator.py` orchestrates.

`draw_samples` draws one file's samples (keys per slot, dense, nnz), `split_plan` lays out a split's paths
as HugeCTR does, and `SplitWriter` writes the files of one split, keeps the teacher's logits to report its
AUC, and finishes with the file list (Norm, Parquet) and `_metadata.json` (Parquet).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ctrflow.dense.metrics import roc_auc
from ctrflow.readers.file_list import write_file_list
from ctrflow.readers.norm_format import NormHeader, encode_records, frame
from ctrflow.readers.sample_block import interleave_slot_runs
from ctrflow.readers.teacher import Teacher
from ctrflow.readers.types import KeyType

if TYPE_CHECKING:
    from ctrflow.readers.generator import GeneratorConfig

logger = logging.getLogger(__name__)
RAW_CHUNK_ROWS = 1 << 20


@dataclass(slots=True)
class Draw:
    """One file's samples before labels: dense U[0,1), per-slot local keys (slot-major runs), nnz per slot."""

    dense: np.ndarray
    slot_keys: list[np.ndarray]
    lengths: np.ndarray
    global_keys: np.ndarray  # sample-major, slot offsets added: what Norm writes and the teacher weighs
    teacher_dense: np.ndarray


@dataclass(slots=True)
class SplitPlan:
    split: str
    files: tuple[str, ...]
    rows_per_file: tuple[int, ...]
    list_path: str  # the file list (Norm, Parquet) or the data file itself (Raw)


@dataclass(slots=True)
class SplitResult:
    files: tuple[str, ...]
    samples: int
    teacher_auc: float | None


def split_plan(config: GeneratorConfig, split: str) -> SplitPlan | None:
    """Paths of one split; None when a Norm split's file list exists already (formats spec §4.3)."""
    target = config.source if split == "train" else config.eval_source
    if config.format == "raw":
        rows = config.num_samples if split == "train" else config.eval_num_samples
        chunks = [min(RAW_CHUNK_ROWS, rows - start) for start in range(0, rows, RAW_CHUNK_ROWS)] or [0]
        return SplitPlan(split, (target,) * len(chunks), tuple(chunks), target)
    fs, local = fsspec.core.url_to_fs(target)
    if config.format == "norm" and fs.exists(local):
        logger.info("File list %r exists; the %s split is not regenerated.", target, split)
        if config.progress:
            print(f"ctrflow generate: {target} exists, {split} split not regenerated", flush=True)
        return None
    folder = (target.rsplit("/", 1)[0] if "/" in target else ".") + ("/train" if split == "train" else "/val")
    count = config.num_files if split == "train" else config.eval_num_files
    extension = "data" if config.format == "norm" else "parquet"
    files = tuple(f"{folder}/gen_{k}.{extension}" for k in range(count))
    return SplitPlan(split, files, (config.num_samples_per_file,) * count, target)


def draw_samples(config: GeneratorConfig, rng: np.random.Generator, rows: int) -> Draw:
    dense = rng.random((rows, config.dense_dim), dtype=np.float32)
    lengths = np.empty((rows, config.num_slot), np.int64)
    slot_keys, global_runs = [], []
    for slot, (size, nnz) in enumerate(zip(config.slot_size_array, config.nnz_array, strict=True)):
        if config.format == "parquet" and nnz > 1:
            lengths[:, slot] = rng.integers(1, nnz + 1, rows)
        else:
            lengths[:, slot] = nnz
        keys = _draw_keys(config, rng, int(lengths[:, slot].sum()), size)
        slot_keys.append(keys)
        global_runs.append(keys + config.slot_offsets[slot])
    global_keys = interleave_slot_runs(lengths, global_runs)
    teacher_dense = np.full_like(dense, 0.5) if config.format == "raw" else dense
    return Draw(dense, slot_keys, lengths, global_keys, teacher_dense)


def _draw_keys(config: GeneratorConfig, rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Keys in [0, size − 1] (formats spec §4.2); the power law favours the smallest keys."""
    if config.dist_type == "uniform":
        return rng.integers(0, size, count, dtype=np.int64)
    x = rng.random(count, dtype=np.float32).astype(np.float64)
    exponent = 1.0 - config.alpha
    y = ((float(size) ** exponent - 1.0) * x + 1.0) ** (1.0 / exponent)
    return np.clip(np.floor(y + 0.5).astype(np.int64) - 1, 0, size - 1)


class SplitWriter:
    """Writes the files of one split and collects what the report needs."""

    def __init__(self, config: GeneratorConfig, plan: SplitPlan, teacher: Teacher | None) -> None:
        self.config, self.plan, self.teacher = config, plan, teacher
        self._logits: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._written: list[str] = []
        self._samples = 0
        fs, local = fsspec.core.url_to_fs(plan.files[0])
        fs.makedirs(os.path.dirname(local) or ".", exist_ok=True)

    def write_file(self, index: int, rng: np.random.Generator) -> None:
        rows = self.plan.rows_per_file[index]
        draw = draw_samples(self.config, rng, rows)
        labels = self._labels_for(draw, rng, rows)
        path = self.plan.files[index]
        if self.config.format == "norm":
            self._write_norm(path, draw, labels)
        elif self.config.format == "raw":
            self._write_raw(path, draw, labels, index)
        else:
            self._write_parquet(path, draw, labels)
        if not self._written or self._written[-1] != path:
            self._written.append(path)
        self._samples += rows
        if self.config.progress:
            print(
                f"ctrflow generate: {self.plan.split} {index + 1}/{len(self.plan.files)} {path} ({rows} samples)",
                flush=True,
            )

    def finish(self) -> SplitResult:
        if self.config.format != "raw":
            write_file_list(self.plan.list_path, self._written)
        if self.config.format == "parquet":
            self._write_metadata()
        auc = None
        if self.teacher is not None and self._logits:
            auc = roc_auc(np.concatenate(self._logits), np.concatenate(self._labels))
        return SplitResult(tuple(self._written), self._samples, auc)

    def _labels_for(self, draw: Draw, rng: np.random.Generator, rows: int) -> np.ndarray:
        label_dim = self.config.label_dim
        if self.teacher is None:
            if self.config.format == "raw":
                column = ((np.arange(rows) + self._samples) % 2).astype(np.float32)  # formats spec §4.4: i mod 2
                return np.repeat(column[:, None], label_dim, axis=1)
            return rng.random((rows, label_dim), dtype=np.float32)
        logit = self.teacher.logit(draw.teacher_dense, draw.global_keys, draw.lengths.sum(axis=1))
        labels = np.stack([Teacher.sample_labels(logit, rng) for _ in range(label_dim)], axis=1)
        self._logits.append(np.repeat(logit, label_dim))
        self._labels.append(labels.reshape(-1))
        return labels.reshape(rows, label_dim)

    def _write_norm(self, path: str, draw: Draw, labels: np.ndarray) -> None:
        check = self.config.check_type
        key_type: KeyType = "i64" if self.config.i64_input_key else "i32"
        label_dense = np.concatenate([labels, draw.dense], axis=1)
        header = NormHeader(
            1 if check == "sum" else 0,
            labels.shape[0],
            self.config.label_dim,
            self.config.dense_dim,
            self.config.num_slot,
        )
        with fsspec.open(path, "wb") as handle:
            handle.write(frame(header.pack(), check))
            handle.write(encode_records(label_dense, draw.lengths, draw.global_keys, key_type, check))

    def _write_raw(self, path: str, draw: Draw, labels: np.ndarray, index: int) -> None:
        width = self.config.label_dim + self.config.dense_dim
        value_type = "<f4" if self.config.float_label_dense else "<i4"
        records = np.zeros(labels.shape[0], [("ld", value_type, (width,)), ("keys", "<u4", (self.config.num_slot,))])
        records["ld"][:, : self.config.label_dim] = labels
        records["ld"][:, self.config.label_dim :] = np.arange(self.config.dense_dim)  # formats spec §4.4: dense_j = j
        if self.config.num_slot:
            records["keys"] = np.stack(draw.slot_keys, axis=1)
        with fsspec.open(path, "wb" if index == 0 else "ab") as handle:
            handle.write(records.tobytes())

    def _write_parquet(self, path: str, draw: Draw, labels: np.ndarray) -> None:
        config = self.config
        key_type = pa.int64() if config.i64_input_key else pa.uint32()
        columns: dict[str, pa.Array] = {}
        for i in range(config.label_dim):
            columns[f"label{i}"] = pa.array(labels[:, i], pa.float32())
        for j in range(config.dense_dim):
            columns[f"C{config.label_dim + j}"] = pa.array(draw.dense[:, j], pa.float32())
        first_cat = config.label_dim + config.dense_dim
        for slot, keys in enumerate(draw.slot_keys):
            values = pa.array(keys, key_type)
            if config.nnz_array[slot] > 1:  # non-null lists (v3.5 writes an all-zero validity mask)
                offsets = np.zeros(labels.shape[0] + 1, np.int32)
                np.cumsum(draw.lengths[:, slot], out=offsets[1:])
                values = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
            columns[f"C{first_cat + slot}"] = values
        with fsspec.open(path, "wb") as handle:
            pq.write_table(pa.table(columns), handle)

    def _write_metadata(self) -> None:
        folder = self.plan.files[0].rsplit("/", 1)[0]
        with fsspec.open(f"{folder}/_metadata.json", "w", encoding="utf-8") as handle:
            handle.write(metadata_text(self.config, self._written, self.plan.rows_per_file))


def metadata_text(config: GeneratorConfig, files: list[str], rows: tuple[int, ...]) -> str:
    """`_metadata.json` in HugeCTR's exact text (formats spec §4.5), with basenames as `file_name`."""

    def group(entries: list[str]) -> str:
        return "[" + ", ".join(entries) + (" " if entries else "") + "]"

    stats = [f'{{"file_name": "{os.path.basename(f)}", "num_rows":{n}}}' for f, n in zip(files, rows, strict=False)]
    width = config.label_dim + config.dense_dim
    labels = [f'{{"col_name": "label{i}", "index":{i}}}' for i in range(config.label_dim)]
    conts = [f'{{"col_name": "C{i}", "index":{i}}}' for i in range(config.label_dim, width)]
    cats = [f'{{"col_name": "C{i}", "index":{i}}}' for i in range(width, width + config.num_slot)]
    return (
        f'{{ "file_stats": {group(stats)}, "labels": {group(labels)}, "conts": {group(conts)}, "cats": {group(cats)} }}'
    )
