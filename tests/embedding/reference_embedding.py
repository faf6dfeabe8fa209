"""A float64 reference of one embedding table, written from the semantics spec (§3.3, §3.5, §4.3).

It keeps a dict key -> vector (plus optimizer states) and replays forward, backward and the sparse
optimizer with plain NumPy loops. New keys take their initial vector from the module under test (the
initial values are random; their distribution is tested on its own), everything else is recomputed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ctrflow.embedding.types import EmbeddingConfig
from ctrflow.readers.types import SparseBatch


def random_batch(
    generator: torch.Generator, batch_size: int, num_slots: int, max_nnz: int, key_high: int, key_low: int = 0
) -> SparseBatch:
    """Multi-hot CSR batch with empty slots and duplicate keys (keys drawn from a small range)."""
    lengths = torch.randint(0, max_nnz + 1, (batch_size * num_slots,), generator=generator)
    keys = torch.randint(key_low, key_high, (int(lengths.sum()),), generator=generator)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return SparseBatch(keys, offsets, num_slots)


def one_hot_batch(
    generator: torch.Generator, batch_size: int, slot_sizes: tuple[int, ...], max_nnz: int
) -> SparseBatch:
    """Per-slot local ids in [0, size) for a one-hot embedding."""
    num_slots = len(slot_sizes)
    lengths = torch.randint(0, max_nnz + 1, (batch_size * num_slots,), generator=generator)
    slots = torch.arange(batch_size * num_slots) % num_slots
    key_slots = torch.repeat_interleave(slots, lengths)
    sizes = torch.tensor(slot_sizes)[key_slots]
    keys = (torch.rand(key_slots.numel(), generator=generator, dtype=torch.float64) * sizes).long()
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return SparseBatch(keys, offsets, num_slots)


class ReferenceEmbedding:
    """Float64 replay of a `SparseEmbedding` in the same configuration."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self.config = config
        self.table: dict[int, np.ndarray] = {}
        self.states: dict[int, list[np.ndarray]] = {}
        self.prev: dict[int, int] = {}
        self.t = 0
        self.prefix = np.concatenate([[0], np.cumsum(config.slot_size_array)]).astype(np.int64)

    def global_key(self, key: int, slot: int) -> int:
        return key + int(self.prefix[slot]) if self.config.kind in ("one_hot", "hybrid") else key

    def adopt(self, keys: torch.Tensor, vectors: torch.Tensor) -> None:
        """Take the initial vector of keys the module inserted and the reference has not seen."""
        for key, vector in zip(keys.tolist(), vectors.double().numpy(), strict=True):
            if key not in self.table:
                self.table[key] = vector.copy()
                n_states = {"adam": 2, "sgd": 0}.get(self.config.optimizer.kind, 1)
                init = self.config.optimizer.initial_accu_value if self.config.optimizer.kind == "adagrad" else 0.0
                self.states[key] = [np.full_like(vector, init) for _ in range(n_states)]
                self.prev[key] = 1

    def segments(self, batch: SparseBatch) -> list[list[int]]:
        offsets = batch.offsets.tolist()
        keys = batch.keys.tolist()
        result = []
        for seg in range(len(offsets) - 1):
            slot = seg % batch.num_slots
            result.append([self.global_key(k, slot) for k in keys[offsets[seg] : offsets[seg + 1]]])
        return result

    def forward(self, batch: SparseBatch) -> np.ndarray:
        vec = self.config.embedding_vec_size
        out = np.zeros((len(batch.offsets) - 1, vec))
        for seg, keys in enumerate(self.segments(batch)):
            for key in keys:
                out[seg] += self.table.get(key, np.zeros(vec))
            if self.config.combiner == "mean" and len(keys) > 1:
                out[seg] /= len(keys)
        return out.reshape(batch.batch_size, batch.num_slots, vec)

    def backward(self, batch: SparseBatch, grad_out: np.ndarray) -> dict[int, np.ndarray]:
        grads: dict[int, np.ndarray] = {}
        flat = grad_out.reshape(-1, self.config.embedding_vec_size)
        for seg, keys in enumerate(self.segments(batch)):
            scale = len(keys) if self.config.combiner == "mean" and len(keys) > 1 else 1
            for key in keys:
                grads[key] = grads.get(key, 0.0) + flat[seg] / scale
        return grads

    def step(self, grads: dict[int, np.ndarray], lr: float) -> None:
        """One optimizer step: touched keys, or every key for Update_t.Global (g = 0 when untouched)."""
        opt = self.config.optimizer
        if opt.update_type == "lazy_global":
            self.step_lazy(grads, lr)
            return
        self.t += 1
        for key in self.table:
            if key in grads or opt.update_type == "global":
                self._update(key, grads.get(key, np.zeros(self.config.embedding_vec_size)), lr)

    def _update(self, key: int, g: np.ndarray, lr: float) -> None:
        opt, w, s = self.config.optimizer, self.table[key], self.states[key]
        if opt.kind == "sgd":
            w -= lr * g
        elif opt.kind == "adagrad":
            s[0] += g * g
            w -= lr * g / (np.sqrt(s[0]) + opt.epsilon)
        elif opt.kind == "momentum_sgd":
            s[0] = opt.momentum_factor * s[0] - lr * g
            w += s[0]
        elif opt.kind == "nesterov":
            old = s[0].copy()
            s[0] = opt.momentum_factor * old - lr * g
            w += -opt.momentum_factor * old + (1 + opt.momentum_factor) * s[0]
        else:
            b1, b2 = opt.beta1, opt.beta2
            s[0] = b1 * s[0] + (1 - b1) * g
            s[1] = b2 * s[1] + (1 - b2) * g * g
            alpha = lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
            w -= alpha * s[0] / (np.sqrt(s[1]) + opt.epsilon)

    def step_lazy(self, grads: dict[int, np.ndarray], lr: float) -> None:
        """Adam LazyGlobal (§4.3): deferred update with old m, v, then fold in the new gradient."""
        opt = self.config.optimizer
        b1, b2 = opt.beta1, opt.beta2
        self.t += 1
        for key, g in grads.items():
            w, (m, v) = self.table[key], self.states[key]
            prev = self.prev[key]
            skip = self.t - prev
            self.prev[key] = self.t
            scale = lr / (1 - b1) * math.sqrt(1 - b2**prev) / (1 - b1**prev) * (1 - b1**skip)
            w -= scale * m / (np.sqrt(v) + opt.epsilon)
            self.states[key] = [b1**skip * m + (1 - b1) * g, b2**skip * v + (1 - b2) * g * g]
