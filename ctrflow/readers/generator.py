"""Synthetic datasets in HugeCTR's layout (formats spec §4): what `hugectr.tools.DataGenerator` calls.

`generate(GeneratorConfig(...))` writes a training and an evaluation split:

* Norm: `dir(source)/train/gen_<k>.data` (`num_files` files) and `dir(eval_source)/val/gen_<k>.data`, each
  `num_samples_per_file` samples, plus the file lists at `source` / `eval_source`. A split whose file list
  already exists is not regenerated (as HugeCTR). Keys of slot k are drawn from [offset_k, offset_k +
  size_k − 1], offset_k = Σ_{j<k} size_j; label and dense are U[0,1) floats.
* Raw: the single files `source` and `eval_source` with `num_samples` / `eval_num_samples` records; label =
  i mod 2, dense_j = j, as float32 (`float_label_dense`) or int32; keys per-slot indices in [0, size_k).
* Parquet: `.../train/gen_<k>.parquet` + `_metadata.json` in HugeCTR's exact text; keys in [0, size_k)
  (the reader adds offsets); a slot with nnz > 1 is a list column with 1 + U{0..nnz−1} keys per row.

Keys follow the power law y = ((M^(1−a) − 1)·x + 1)^(1/(1−a)), key = round(y) + (min − 1) for x ~ U[0,1),
or a uniform law. `teacher_labels=True` replaces the labels by draws from the logistic teacher of
`teacher.py` and reports the teacher's AUC per split. `seed=0` is nondeterministic as in HugeCTR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ctrflow.readers.generator_writers import SplitResult, SplitWriter, draw_samples, split_plan
from ctrflow.readers.teacher import Teacher

CALIBRATION_ROWS = 16384


@dataclass(slots=True)
class GeneratorConfig:
    """HugeCTR's `DataGeneratorParams` plus ctrflow's `teacher_labels`, `seed` and `progress`."""

    format: Literal["norm", "raw", "parquet"]
    label_dim: int
    dense_dim: int
    num_slot: int
    i64_input_key: bool
    source: str
    eval_source: str
    slot_size_array: tuple[int, ...]
    nnz_array: tuple[int, ...] = ()
    check_type: Literal["sum", "none"] = "sum"
    dist_type: Literal["power_law", "uniform"] = "power_law"
    alpha: float = 1.2
    num_files: int = 128
    eval_num_files: int = 32
    num_samples_per_file: int = 40960
    num_samples: int = 5242880
    eval_num_samples: int = 1310720
    float_label_dense: bool = False
    teacher_labels: bool = False
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        self.slot_size_array = tuple(int(s) for s in self.slot_size_array)
        self.nnz_array = tuple(int(n) for n in self.nnz_array) or (1,) * self.num_slot  # formats spec §4.1
        _validate(self)

    @property
    def slot_offsets(self) -> np.ndarray:
        sizes = np.asarray(self.slot_size_array, np.int64)
        return np.cumsum(sizes) - sizes


@dataclass(slots=True)
class GenerationReport:
    """What `generate` wrote. A split that was not regenerated has no files and is named in `skipped_splits`."""

    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    train_samples: int
    eval_samples: int
    teacher_auc_train: float | None
    teacher_auc_eval: float | None
    skipped_splits: tuple[str, ...] = ()


def generate(config: GeneratorConfig) -> GenerationReport:
    """Write the training and evaluation splits described by `config` (see the module docstring)."""
    salt = config.seed if config.seed else int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    teacher = _calibrated_teacher(config, salt) if config.teacher_labels else None
    results: dict[str, SplitResult | None] = {}
    for split in ("train", "eval"):
        plan = split_plan(config, split)
        if plan is None:
            results[split] = None
            continue
        writer = SplitWriter(config, plan, teacher)
        for index in range(len(plan.files)):
            rng = _rng(config.seed, split, index)
            writer.write_file(index, rng)
        results[split] = writer.finish()
    train, evaluation = results["train"], results["eval"]
    return GenerationReport(
        train_files=train.files if train else (),
        eval_files=evaluation.files if evaluation else (),
        train_samples=train.samples if train else 0,
        eval_samples=evaluation.samples if evaluation else 0,
        teacher_auc_train=train.teacher_auc if train else None,
        teacher_auc_eval=evaluation.teacher_auc if evaluation else None,
        skipped_splits=tuple(split for split, result in results.items() if result is None),
    )


def _calibrated_teacher(config: GeneratorConfig, salt: int) -> Teacher:
    teacher = Teacher(salt, config.dense_dim, config.num_slot > 0)
    rng = np.random.default_rng([salt & 0xFFFFFFFF, 7])
    draw = draw_samples(config, rng, CALIBRATION_ROWS)
    teacher.calibrate(teacher.raw_logit(draw.teacher_dense, draw.global_keys, draw.lengths.sum(axis=1)))
    return teacher


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    if seed == 0:
        return np.random.default_rng()
    return np.random.default_rng([seed, 0 if split == "train" else 1, index])


def _validate(config: GeneratorConfig) -> None:
    if config.format not in ("norm", "raw", "parquet"):
        raise ValueError(f'format must be "norm", "raw" or "parquet", received {config.format!r}.')
    if config.num_slot < 0 or config.label_dim < 0 or config.dense_dim < 0:
        raise ValueError(
            f"label_dim, dense_dim and num_slot must be >= 0, received {config.label_dim}, {config.dense_dim}, "
            f"{config.num_slot}."
        )
    if len(config.slot_size_array) != config.num_slot:
        raise ValueError(
            f"slot_size_array has {len(config.slot_size_array)} entries but num_slot is {config.num_slot}; "
            "give one cardinality per slot."
        )
    if len(config.nnz_array) != config.num_slot:
        raise ValueError(f"nnz_array has {len(config.nnz_array)} entries but num_slot is {config.num_slot}.")
    if any(size < 1 for size in config.slot_size_array) or any(nnz < 1 for nnz in config.nnz_array):
        raise ValueError(
            f"slot_size_array and nnz_array entries must be >= 1, received {config.slot_size_array} and "
            f"{config.nnz_array}."
        )
    if config.dist_type == "power_law" and (config.alpha <= 0 or abs(config.alpha - 1.0) < 1e-6):
        raise ValueError(f"alpha must be > 0 and not 1 for the power law, received {config.alpha}.")
    if config.dist_type not in ("power_law", "uniform"):
        raise ValueError(f'dist_type must be "power_law" or "uniform", received {config.dist_type!r}.')
    if config.check_type not in ("sum", "none"):
        raise ValueError(f'check_type must be "sum" or "none", received {config.check_type!r}.')
    _validate_format_limits(config)


def _validate_format_limits(config: GeneratorConfig) -> None:
    counts = (config.num_files, config.eval_num_files, config.num_samples_per_file)
    if config.format != "raw" and min(counts) < 1:
        raise ValueError(f"num_files, eval_num_files and num_samples_per_file must be >= 1, received {counts}.")
    if config.format == "raw":
        if config.i64_input_key:
            raise ValueError(
                "Raw datasets hold int32 keys only (HugeCTR v3.5 writes 8-byte keys for i64_input_key=True, which "
                "its Raw reader cannot read). Set i64_input_key=False or use the Norm or Parquet format."
            )
        if any(nnz != 1 for nnz in config.nnz_array):
            raise ValueError(f"Raw datasets are one-hot: nnz_array must be all 1, received {config.nnz_array}.")
        if config.num_samples < 0 or config.eval_num_samples < 0:
            raise ValueError("num_samples and eval_num_samples must be >= 0.")
    largest = (
        int(np.sum(config.slot_size_array)) - 1 if config.format == "norm" else max(config.slot_size_array or (0,))
    )
    limit = np.iinfo(np.int64 if config.i64_input_key else np.uint32).max
    if largest > limit:
        raise ValueError(
            f"Keys up to {largest} do not fit {'int64' if config.i64_input_key else 'uint32'} keys; set "
            "i64_input_key=True or lower slot_size_array."
        )
