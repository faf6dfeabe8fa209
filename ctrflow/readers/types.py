"""Contracts of the data side: what a dataset looks like and what a reader hands to the stages.

A reader turns files (Norm, Raw, Parquet) into `Batch` objects. Everything downstream of the reader
(key staging, embeddings, the dense network) sees only `Batch`, never a file format.

Sparse features travel as CSR per sparse input (DESIGN decision 2): `keys` holds every key of the batch,
sample-major then slot-major, and `offsets` has `batch_size * num_slots + 1` entries, so the keys of
sample `b`, slot `s` are `keys[offsets[b * num_slots + s] : offsets[b * num_slots + s + 1]]`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch

KeyType = Literal["i32", "i64"]
CheckType = Literal["sum", "none"]
ReaderKind = Literal["norm", "raw", "parquet"]


@dataclass(slots=True, frozen=True)
class SparseInputSpec:
    """One sparse input of a dataset (HugeCTR's `DataReaderSparseParam`).

    Args:
        name: the tensor name layers use to refer to this input.
        num_slots: how many slots (categorical features) this input holds.
        nnz_per_slot: the maximum number of keys per slot, one entry per slot.
        is_fixed_length: every sample has exactly `nnz_per_slot[s]` keys in slot `s`.
    """

    name: str
    num_slots: int
    nnz_per_slot: tuple[int, ...]
    is_fixed_length: bool = False

    def __post_init__(self) -> None:
        if self.num_slots < 1:
            raise ValueError(f'Sparse input "{self.name}": slot_num must be at least 1, received {self.num_slots}.')
        if len(self.nnz_per_slot) != self.num_slots:
            raise ValueError(
                f'Sparse input "{self.name}": nnz_per_slot has {len(self.nnz_per_slot)} entries but '
                f"slot_num is {self.num_slots}; give one entry per slot or a single int."
            )
        if any(n < 0 for n in self.nnz_per_slot):
            raise ValueError(
                f'Sparse input "{self.name}": nnz_per_slot entries must be >= 0, received {self.nnz_per_slot}.'
            )

    @property
    def max_nnz(self) -> int:
        """Upper bound of keys per sample over all slots of this input."""
        return sum(self.nnz_per_slot)


@dataclass(slots=True, frozen=True)
class DataSpec:
    """What one sample holds: label and dense widths and the sparse inputs in file order."""

    label_dim: int
    dense_dim: int
    sparse: tuple[SparseInputSpec, ...] = ()

    @property
    def total_slots(self) -> int:
        return sum(s.num_slots for s in self.sparse)

    @property
    def max_nnz(self) -> int:
        return sum(s.max_nnz for s in self.sparse)


@dataclass(slots=True)
class SparseBatch:
    """The keys of one sparse input for one batch, in CSR form.

    Args:
        keys: int64 `[total_nnz]`; i32 datasets are widened (uint32 bit patterns kept, so keys are >= 0).
        offsets: int64 `[batch_size * num_slots + 1]`, starting at 0 and non-decreasing.
        num_slots: slots of this input.
    """

    keys: torch.Tensor
    offsets: torch.Tensor
    num_slots: int

    @property
    def batch_size(self) -> int:
        return (self.offsets.numel() - 1) // self.num_slots

    def lengths(self) -> torch.Tensor:
        """nnz per (sample, slot), int64 `[batch_size, num_slots]`."""
        return (self.offsets[1:] - self.offsets[:-1]).view(-1, self.num_slots)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> SparseBatch:
        return SparseBatch(
            self.keys.to(device, non_blocking=non_blocking),
            self.offsets.to(device, non_blocking=non_blocking),
            self.num_slots,
        )

    def pin_memory(self) -> SparseBatch:
        return SparseBatch(self.keys.pin_memory(), self.offsets.pin_memory(), self.num_slots)


@dataclass(slots=True)
class Batch:
    """One batch as every stage after the reader sees it.

    Rows past `size` are padding (HugeCTR's short last batch in epoch mode): their label and dense
    are zero and their slots are empty. Losses and metrics use only the first `size` rows. A batch is
    read-only: readers share tensors between batches where they are equal (one-hot CSR offsets).

    Args:
        label: float32 `[batch_size, label_dim]`.
        dense: float32 `[batch_size, dense_dim]`.
        sparse: one `SparseBatch` per sparse input, keyed by input name, in file order.
        size: the number of valid rows (HugeCTR's `current_batch_size`).
    """

    label: torch.Tensor
    dense: torch.Tensor
    sparse: dict[str, SparseBatch] = field(default_factory=dict)
    size: int = -1

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = int(self.label.shape[0])

    @property
    def batch_size(self) -> int:
        return int(self.label.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            self.label.to(device, non_blocking=non_blocking),
            self.dense.to(device, non_blocking=non_blocking),
            {k: v.to(device, non_blocking) for k, v in self.sparse.items()},
            self.size,
        )

    def rows(self, start: int, stop: int) -> Batch:
        """Rows [start, stop) as a batch of their own: one rank's share of a global batch (formats spec §1.4).

        The valid-row count is clipped to the slice, so padding rows of a short batch stay padding.
        """
        sparse = {}
        for name, part in self.sparse.items():
            bounds = part.offsets[start * part.num_slots : stop * part.num_slots + 1]
            keys = part.keys[bounds[0] : bounds[-1]] if bounds.numel() else part.keys[:0]
            sparse[name] = SparseBatch(keys, bounds - bounds[0] if bounds.numel() else bounds, part.num_slots)
        size = min(max(self.size - start, 0), stop - start)
        return Batch(self.label[start:stop], self.dense[start:stop], sparse, size)

    def pin_memory(self) -> Batch:
        return Batch(
            self.label.pin_memory(),
            self.dense.pin_memory(),
            {k: v.pin_memory() for k, v in self.sparse.items()},
            self.size,
        )


@dataclass(slots=True, frozen=True)
class ReaderOptions:
    """How to read a source, shared by every format (fields of HugeCTR's `DataReaderParams`).

    Args:
        batch_size: rows per batch produced by this reader (the global batch for one process).
        key_type: "i32" (uint32 keys) or "i64" (int64 keys) as stored in the files.
        check: Norm framing, "sum" (length + checksum per record) or "none".
        repeat: True wraps around the source forever (HugeCTR non-epoch mode); False ends after one pass.
        num_workers: parallel workers (Norm: worker w reads files w, w+W, ...; Raw: it builds batches w, w+W, ...).
        slot_size_array: per-slot cardinalities; Parquet adds their prefix sums to the keys.
        float_label_dense: Raw only, label and dense stored as float32 (else int32, dense -> ln(x+1)).
        num_samples: Raw only, samples in the file (checked against its size).
        shuffle_batches: Raw training only, shuffle the order of batches once.
        seed: seeds the batch shuffle.
        strict: a corrupt Norm record raises instead of being skipped and counted.
    """

    batch_size: int
    key_type: KeyType = "i32"
    check: CheckType = "sum"
    repeat: bool = True
    num_workers: int = 1
    slot_size_array: tuple[int, ...] = ()
    float_label_dense: bool = False
    num_samples: int = 0
    shuffle_batches: bool = False
    seed: int = 0
    strict: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, received {self.batch_size}.")
        if self.key_type not in ("i32", "i64"):
            raise ValueError(f'key_type must be "i32" or "i64", received {self.key_type!r}.')
        if self.check not in ("sum", "none"):
            raise ValueError(f'check must be "sum" or "none", received {self.check!r}.')
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, received {self.num_workers}.")


class Reader(abc.ABC):
    """A source of batches. Iterating yields CPU `Batch` objects until the source ends.

    In repeat mode iteration never ends. In epoch mode it ends after one pass; the last batch may be
    short (`Batch.size < batch_size`), as the format's rules say.
    """

    spec: DataSpec
    options: ReaderOptions

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Batch]: ...

    @abc.abstractmethod
    def set_source(self, source: str | Sequence[str] = "") -> None:
        """Point the reader at a new source; "" restarts the current one from its beginning."""

    @property
    @abc.abstractmethod
    def source(self) -> str:
        """The current source (a file list path or, for Raw, a data file path)."""

    def device_batches(self) -> Iterator[Transfer]:
        """What a `Loader` feeding a GPU copies: the batches themselves, unless the format decodes faster there.

        Each item is pinned and copied with `pin_memory().to(device, non_blocking=True)`, which returns the
        `Batch` on the device. Raw readers hand over undecoded records (`raw_records.RawRecords`).
        """
        return iter(self)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and workers."""


class Transfer(Protocol):
    """Something a `Loader` pins and copies to the device, arriving there as a `Batch`."""

    def pin_memory(self) -> Transfer: ...

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch: ...
