"""Which rank owns which rows, and how one batch's keys are split over ranks and put back together.

DESIGN decision 5 and formats spec §6.3: a distributed embedding puts key `k` on rank `uint64(k) mod R`
(negative int64 keys taken as unsigned); localized and one-hot embeddings put slot `s` on rank `s mod R`.

`route_batch` splits a CSR batch into one `ShardRequest` per rank: the keys that rank looks up and a CSR
over the output segments that rank produces. A distributed rank produces partial sums for every
(sample, slot) of the batch, which are summed over ranks (HugeCTR's reduce-scatter); a localized rank
produces the full sums of its own slots, which are put in place by slot (HugeCTR's all-to-all).
`assemble_outputs` and `split_output_grad` are the two directions of that exchange on one process; the
torch.distributed collectives replace them when ranks are processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ctrflow.embedding.types import EmbeddingKind
from ctrflow.readers.types import SparseBatch

_TWO_POW_64 = 1 << 64


def key_ranks(keys: torch.Tensor, world_size: int) -> torch.Tensor:
    """Rank of each key of a distributed embedding: uint64(key) mod world_size, int64 like `keys`."""
    _check_world_size(world_size)
    ranks = torch.remainder(keys, world_size)
    # uint64(k) = k + 2^64 for negative k, so its residue gains (2^64 mod R)
    wrap = _TWO_POW_64 % world_size
    if wrap:
        ranks = torch.where(keys < 0, torch.remainder(ranks + wrap, world_size), ranks)
    return ranks


def slot_ranks(num_slots: int, world_size: int) -> torch.Tensor:
    """Rank of each slot of a localized / one-hot embedding: slot mod world_size."""
    _check_world_size(world_size)
    return torch.arange(num_slots, dtype=torch.int64) % world_size


def slots_of_rank(num_slots: int, rank: int, world_size: int) -> torch.Tensor:
    """The global slots a rank owns, ascending (rank, rank + R, ...)."""
    _check_world_size(world_size)
    return torch.arange(rank, num_slots, world_size, dtype=torch.int64)


@dataclass(slots=True)
class ShardRequest:
    """What one rank looks up for one batch.

    Args:
        keys: int64 `[n]`, the rank's keys in batch order.
        offsets: int64 `[batch_size * num_segment_slots + 1]`, CSR of `keys` over the rank's output segments.
        slots: int64 `[num_segment_slots]`, the global slot of each output column.
    """

    keys: torch.Tensor
    offsets: torch.Tensor
    slots: torch.Tensor

    @property
    def num_segments(self) -> int:
        return int(self.offsets.numel() - 1)

    def key_segments(self) -> torch.Tensor:
        """Output segment of every key, int64 `[n]`."""
        lengths = self.offsets[1:] - self.offsets[:-1]
        segments = torch.arange(self.num_segments, device=self.keys.device)
        return torch.repeat_interleave(segments, lengths, output_size=self.keys.numel())

    def key_slots(self) -> torch.Tensor:
        """Global slot of every key, int64 `[n]`."""
        return self.slots.to(self.keys.device)[self.key_segments() % self.slots.numel()]


def route_batch(batch: SparseBatch, kind: EmbeddingKind, world_size: int) -> list[ShardRequest]:
    """Split a batch's keys into one request per rank (see the module docstring)."""
    _check_world_size(world_size)
    device = batch.keys.device
    all_slots = torch.arange(batch.num_slots, dtype=torch.int64, device=device)
    if world_size == 1:
        return [ShardRequest(batch.keys, batch.offsets, all_slots)]
    whole = ShardRequest(batch.keys, batch.offsets, all_slots)
    segments = whole.key_segments()
    if kind == "distributed":
        owner = key_ranks(batch.keys, world_size)
        return [_select(batch.keys, segments, owner == r, whole.num_segments, all_slots) for r in range(world_size)]
    slot = segments % batch.num_slots
    requests = []
    for rank in range(world_size):
        mine = slot % world_size == rank
        local_slots = slots_of_rank(batch.num_slots, rank, world_size).to(device)
        local_segments = (segments // batch.num_slots) * local_slots.numel() + slot // world_size
        num_segments = batch.batch_size * local_slots.numel()
        requests.append(_select(batch.keys, local_segments, mine, num_segments, local_slots))
    return requests


def assemble_outputs(kind: EmbeddingKind, parts: list[torch.Tensor], num_slots: int) -> torch.Tensor:
    """Per-rank pooled outputs → `[batch, num_slots, V]`.

    Distributed parts are `[batch, num_slots, V]` partial sums (summed); localized / one-hot parts are
    `[batch, slots of rank r, V]` (placed at slots r, r + R, ...).
    """
    if len(parts) == 1:
        return parts[0]
    if kind == "distributed":
        return torch.stack(parts).sum(0)
    world_size = len(parts)
    batch, vec = parts[0].shape[0], parts[0].shape[2]
    out = parts[0].new_empty(batch, num_slots, vec)
    for rank, part in enumerate(parts):
        out[:, rank::world_size] = part
    return out


def split_output_grad(kind: EmbeddingKind, grad: torch.Tensor, world_size: int) -> list[torch.Tensor]:
    """Gradient of the assembled `[batch, num_slots, V]` output → the gradient of each rank's part."""
    _check_world_size(world_size)
    if kind == "distributed" or world_size == 1:
        return [grad] * world_size
    return [grad[:, rank::world_size] for rank in range(world_size)]


def _select(
    keys: torch.Tensor, segments: torch.Tensor, mask: torch.Tensor, num_segments: int, slots: torch.Tensor
) -> ShardRequest:
    chosen = segments[mask]
    lengths = torch.bincount(chosen, minlength=num_segments)
    offsets = torch.zeros(num_segments + 1, dtype=torch.int64, device=keys.device)
    torch.cumsum(lengths, 0, out=offsets[1:])
    return ShardRequest(keys[mask], offsets, slots)


def _check_world_size(world_size: int) -> None:
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, received {world_size}.")
