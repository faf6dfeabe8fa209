"""Row layout of one-hot embeddings (LocalizedSlotSparseEmbeddingOneHot; hybrid runs as this too).

Input keys of a one-hot slot are local ids in `[0, slot_size)`; adding the prefix sum of the slot sizes
before the slot gives the global key (formats spec §6.3), which is also what the `key` file holds. A rank
owns slots `s` with `s mod R == rank` (§6.3) and stores their rows slot after slot in ascending slot order,
which is also the dump order (§6.2).

The per-step functions (`OneHotLayout.rows_of`, `offset_one_hot_keys`) run without host synchronisation
on CUDA: their small prefix and size tables are built once per device and cached, and the key range check
of a CUDA batch is a device-side assertion (`torch._assert_async`); CPU batches raise a `ValueError`.
"""

from __future__ import annotations

import functools

import torch

from ctrflow.embedding.types import EmbeddingConfig


class OneHotLayout:
    """Global key ↔ local row mapping for the slots one rank owns.

    Args:
        config: a one_hot or hybrid embedding (with one slot size per slot).
        rank: the rank whose rows this layout describes.
        world_size: number of ranks.
    """

    def __init__(self, config: EmbeddingConfig, rank: int = 0, world_size: int = 1) -> None:
        sizes = torch.tensor(config.slot_size_array, dtype=torch.int64)
        self.name = config.name
        self.slot_sizes = sizes
        self.global_prefix = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
        self.world_size, self.rank = world_size, rank
        self.local_slots = torch.arange(rank, config.num_slots, world_size, dtype=torch.int64)
        local_sizes = sizes[self.local_slots]
        self.local_prefix = torch.cat([torch.zeros(1, dtype=torch.int64), local_sizes.cumsum(0)])
        # (global_prefix, local_prefix) per device: a copy per call would be a host-to-device sync each step
        self._prefixes_on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def num_rows(self) -> int:
        return int(self.local_prefix[-1])

    def rows_of(self, global_keys: torch.Tensor) -> torch.Tensor:
        """Local rows of prefix-offset keys; -1 for keys out of range or of slots on other ranks."""
        prefix, local_prefix = self._prefixes(global_keys.device)
        slot = torch.searchsorted(prefix[1:], global_keys, right=True)
        valid = (global_keys >= 0) & (global_keys < prefix[-1]) & (slot % self.world_size == self.rank)
        slot = slot.clamp(max=len(self.slot_sizes) - 1)
        local = local_prefix[(slot // self.world_size).clamp(max=len(self.local_slots) - 1)]
        rows = local + global_keys - prefix[slot]
        return torch.where(valid, rows, torch.full_like(rows, -1))

    def _prefixes(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._prefixes_on:
            self._prefixes_on[device] = (self.global_prefix.to(device), self.local_prefix.to(device))
        return self._prefixes_on[device]

    def row_keys(self) -> torch.Tensor:
        """Global key of each local row, in row order."""
        starts = self.global_prefix[self.local_slots]
        sizes = self.slot_sizes[self.local_slots]
        slot_start = torch.repeat_interleave(starts, sizes)
        within = torch.arange(self.num_rows) - torch.repeat_interleave(self.local_prefix[:-1], sizes)
        return slot_start + within

    def row_slots(self) -> torch.Tensor:
        """Global slot index of each local row, in row order (the `slot_id` file)."""
        return torch.repeat_interleave(self.local_slots, self.slot_sizes[self.local_slots])


@functools.lru_cache(maxsize=64)
def _slot_tables(slot_size_array: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(sizes, prefix sums with a leading 0) of `slot_size_array` on `device`, built once per device."""
    sizes = torch.tensor(slot_size_array, dtype=torch.int64)
    prefix = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
    return sizes.to(device), prefix.to(device)


def check_one_hot_keys(
    keys: torch.Tensor, key_slots: torch.Tensor, slot_size_array: tuple[int, ...], name: str
) -> None:
    """Check that every per-slot id is in `[0, slot_size)`.

    CPU keys raise a ValueError naming the slot and the key. CUDA keys are checked by a device-side
    assertion instead, so the step does not wait for the result: an id out of range fails a later CUDA
    call with "device-side assert triggered" (the process cannot go on using the device). Check the data
    on the CPU first (the readers check one-hot ids against `slot_size_array`) to get the ValueError.
    """
    sizes, _ = _slot_tables(tuple(slot_size_array), keys.device)
    bad = (keys < 0) | (keys >= sizes[key_slots])
    if keys.is_cuda:
        torch._assert_async(
            ~bad.any(),
            f'Embedding "{name}": a one-hot key is outside [0, slot_size) of its slot. One-hot inputs hold '
            "per-slot ids; raise that slot size or fix the data.",
        )
        return
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        slot = int(key_slots[first])
        raise ValueError(
            f'Embedding "{name}": one-hot key {int(keys[first])} of slot {slot} is outside '
            f"[0, {slot_size_array[slot]}) (slot_size_array[{slot}]). One-hot inputs hold per-slot ids; "
            "raise that slot size or fix the data."
        )


def offset_one_hot_keys(
    keys: torch.Tensor,
    key_slots: torch.Tensor,
    slot_size_array: tuple[int, ...],
    name: str,
    *,
    check: bool = True,
) -> torch.Tensor:
    """Turn per-slot local ids into global keys: key + Σ sizes of the slots before (formats spec §6.3).

    Raises ValueError naming the slot when an id is outside `[0, slot_size)` (CPU keys; see
    `check_one_hot_keys` for CUDA keys). `check=False` skips the check for keys the caller
    has already checked (for example on the CPU before copying them to the device).
    """
    if check:
        check_one_hot_keys(keys, key_slots, slot_size_array, name)
    _, prefix = _slot_tables(tuple(slot_size_array), keys.device)
    return keys + prefix[key_slots]
