"""The logistic teacher behind the generator's `teacher_labels` (a ctrflow option, not in HugeCTR).

HugeCTR's generator writes labels that carry no signal (U[0,1) floats, or i mod 2 for Raw), so no model can
learn them. With `teacher_labels=True` the labels come from a known logistic model instead:

    logit(sample) = scale · (Σ_keys w(key) + Σ_j v_j · (dense_j − 0.5) − mean)
    label         ~ Bernoulli(sigmoid(logit)), written as 0.0 / 1.0

* `w(key)` is a deterministic hash of (global key, salt) mapped to a uniform value of unit variance
  (splitmix64 finaliser; the "global" key is the key plus its slot's offset, so Raw and Parquet keys of
  different slots get different weights). `v_j` is the same hash of the dense column index.
* Keys carry 80 % of the logit's variance and dense features 20 % (all of it when either is absent).
* `scale` and `mean` are calibrated once on a sample drawn like the data so that the logit has standard
  deviation `TARGET_LOGIT_STD` = 1.4, which puts the teacher's own AUC near 0.8; that AUC, measured on the
  written labels, is the ceiling a model can reach and the generator reports it per split.

The salt is the generator's seed (a random one when the seed is 0), so a seeded dataset is reproducible.
"""

from __future__ import annotations

import numpy as np

TARGET_LOGIT_STD = 1.4
KEY_SHARE = 0.8

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def hash_uniform(values: np.ndarray, salt: int) -> np.ndarray:
    """A deterministic value in [-√3, √3) (mean 0, variance 1) per integer in `values`."""
    z = np.asarray(values, dtype=np.int64).view(np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    unit = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return (unit * 2.0 - 1.0) * np.sqrt(3.0)


class Teacher:
    """A fixed logistic model over global keys and dense features (see the module docstring).

    Args:
        salt: the hash salt (the generator's seed).
        dense_dim: dense features per sample.
        has_keys: whether samples carry keys at all.
    """

    def __init__(self, salt: int, dense_dim: int, has_keys: bool) -> None:
        self.salt = salt
        key_share = KEY_SHARE if dense_dim else 1.0
        key_share = key_share if has_keys else 0.0
        self.key_weight = np.sqrt(key_share)
        # dense in U[0,1) has variance 1/12, hence the √12
        self.dense_weights = hash_uniform(np.arange(dense_dim) + (1 << 40), salt) * np.sqrt(
            (1.0 - key_share) * 12.0 / max(dense_dim, 1)
        )
        self.scale, self.mean = 1.0, 0.0

    def raw_logit(self, dense: np.ndarray, global_keys: np.ndarray, lengths_per_row: np.ndarray) -> np.ndarray:
        """The uncalibrated logit of each row; `global_keys` are grouped by row with `lengths_per_row` keys each."""
        rows = dense.shape[0]
        logit = (np.asarray(dense, np.float64) - 0.5) @ self.dense_weights if dense.shape[1] else np.zeros(rows)
        if global_keys.size:
            row_of_key = np.repeat(np.arange(rows), lengths_per_row)
            per_key = hash_uniform(global_keys, self.salt)
            key_sum = np.bincount(row_of_key, weights=per_key, minlength=rows)
            # normalise by the keys per row so the key share keeps its variance whatever the nnz
            logit = logit + self.key_weight * key_sum / np.sqrt(np.maximum(lengths_per_row, 1))
        return logit

    def calibrate(self, raw_logit: np.ndarray) -> None:
        """Fix scale and mean so that logits of data like `raw_logit` have std TARGET_LOGIT_STD and mean 0."""
        std = float(np.std(raw_logit))
        self.mean = float(np.mean(raw_logit))
        self.scale = TARGET_LOGIT_STD / std if std > 0 else 0.0

    def logit(self, dense: np.ndarray, global_keys: np.ndarray, lengths_per_row: np.ndarray) -> np.ndarray:
        return (self.raw_logit(dense, global_keys, lengths_per_row) - self.mean) * self.scale

    @staticmethod
    def sample_labels(logit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Bernoulli(sigmoid(logit)) labels as float32 0/1."""
        probability = 1.0 / (1.0 + np.exp(-logit))
        return (rng.random(logit.shape[0]) < probability).astype(np.float32)
