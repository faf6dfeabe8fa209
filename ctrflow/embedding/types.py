"""Contracts of the embedding engine: table and sparse-optimizer configuration.

An embedding turns the keys of one sparse input (`readers.types.SparseBatch`) into pooled vectors
`[batch, slots, embedding_vec_size]`. Keys map to rows through a growable key index per table shard
(DESIGN decision 3); the backward pass never builds a dense table gradient (decision 4): it
deduplicates the touched rows, sums their gradients and applies the sparse optimizer in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EmbeddingKind = Literal["distributed", "localized", "one_hot", "hybrid"]
Combiner = Literal["sum", "mean"]
SparseOptimizerKind = Literal["adam", "adagrad", "momentum_sgd", "nesterov", "sgd"]
UpdateType = Literal["global", "local", "lazy_global"]

_OPTIMIZERS = ("adam", "adagrad", "momentum_sgd", "nesterov", "sgd")
_UPDATES = ("global", "local", "lazy_global")
_KINDS = ("distributed", "localized", "one_hot", "hybrid")


@dataclass(slots=True, frozen=True)
class SparseOptimizerConfig:
    """A sparse optimizer and its hyper-parameters (semantics spec §4.1, §4.3).

    `lr` is not here: it comes from the learning-rate schedule every step.
    """

    kind: SparseOptimizerKind = "adam"
    update_type: UpdateType = "global"
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    initial_accu_value: float = 0.0
    momentum_factor: float = 0.0
    atomic_update: bool = True

    def __post_init__(self) -> None:
        if self.kind not in _OPTIMIZERS:
            raise ValueError(f"Unknown sparse optimizer {self.kind!r}; valid: {', '.join(_OPTIMIZERS)}.")
        if self.update_type not in _UPDATES:
            raise ValueError(f"Unknown update type {self.update_type!r}; valid: {', '.join(_UPDATES)}.")
        if self.update_type == "lazy_global" and self.kind != "adam":
            raise ValueError(
                f"Update type lazy_global is only defined for Adam, received optimizer {self.kind}. "
                "Use update type global or local."
            )

    @property
    def state_copies(self) -> int:
        """Optimizer copies of the table counted by HugeCTR's workspace formula (formats spec §8)."""
        if self.kind == "adam":
            return 3 if self.update_type == "lazy_global" else 2
        if self.kind == "sgd":
            return 0
        return 1


@dataclass(slots=True, frozen=True)
class EmbeddingConfig:
    """One sparse embedding (HugeCTR's `SparseEmbedding`).

    Args:
        name: the embedding's output tensor name (HugeCTR's `sparse_embedding_name`).
        bottom: the sparse input it reads.
        kind: distributed (key -> rank by key mod R), localized (slot -> rank by slot mod R),
            one_hot (dense table indexed by slot offset + key), hybrid (accepted, runs as one_hot).
        num_slots: slots of the sparse input.
        embedding_vec_size: width of each vector.
        combiner: "sum" or "mean" (mean divides by nnz only when nnz > 1).
        workspace_size_per_gpu_in_mb: sets the per-rank row capacity (formats spec §8).
        slot_size_array: per-slot cardinalities (localized capacity, one_hot offsets and row init).
        optimizer: the sparse optimizer of this table.
    """

    name: str
    bottom: str
    kind: EmbeddingKind
    num_slots: int
    embedding_vec_size: int
    combiner: Combiner = "sum"
    workspace_size_per_gpu_in_mb: int = 0
    slot_size_array: tuple[int, ...] = ()
    optimizer: SparseOptimizerConfig = SparseOptimizerConfig()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f'Embedding "{self.name}": unknown kind {self.kind!r}; valid: {", ".join(_KINDS)}.')
        if self.combiner not in ("sum", "mean"):
            raise ValueError(f'Embedding "{self.name}": No such combiner type: {self.combiner}; use "sum" or "mean".')
        if self.embedding_vec_size < 1:
            raise ValueError(
                f'Embedding "{self.name}": embedding_vec_size must be at least 1, received {self.embedding_vec_size}.'
            )
        if self.workspace_size_per_gpu_in_mb < 0:
            raise ValueError(
                f'Embedding "{self.name}": workspace_size_per_gpu_in_mb must be >= 0, '
                f"received {self.workspace_size_per_gpu_in_mb}."
            )
        if self.kind in ("one_hot", "hybrid") and len(self.slot_size_array) != self.num_slots:
            raise ValueError(
                f'Embedding "{self.name}": {self.kind} needs slot_size_array with one size per slot '
                f"({self.num_slots}), received {len(self.slot_size_array)} entries."
            )
        if self.slot_size_array and len(self.slot_size_array) != self.num_slots:
            raise ValueError(
                f'Embedding "{self.name}": slot_size_array has {len(self.slot_size_array)} entries but the '
                f'input "{self.bottom}" has {self.num_slots} slots; give one size per slot.'
            )

    def workspace_capacity_per_rank(self) -> int:
        """floor(MB * 2^20 / ((1 + copies) * 4 * vec)) rows (formats spec §8)."""
        denominator = (1 + self.optimizer.state_copies) * 4 * self.embedding_vec_size
        return (self.workspace_size_per_gpu_in_mb * 1024 * 1024) // denominator

    def capacity_per_rank(self, world_size: int = 1) -> int:
        """Row capacity of one rank's shard (formats spec §8)."""
        if self.kind == "distributed" or not self.slot_size_array:
            return self.workspace_capacity_per_rank()
        return max(
            sum(size for slot, size in enumerate(self.slot_size_array) if slot % world_size == rank)
            for rank in range(world_size)
        )
