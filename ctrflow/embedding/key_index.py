"""The key index of one table shard: a growable hash from int64 keys to row ids in insertion order.

Row `n` belongs to the `n`-th key ever inserted (HugeCTR dumps rows in that order, formats spec §6.2).
The table is open addressing with linear probing, written entirely in vectorised torch ops, so the same
code runs on CPU and CUDA: every probing round handles all still-unresolved keys at once, and concurrent
claims of one empty bucket are resolved with a scatter-min (the lowest request index wins, so the result
is deterministic). The bucket array doubles when the load passes one half; the insertion-ordered key list
is kept beside it so that rehashing and dumping never depend on bucket order.

Keys are arbitrary int64 values (no key is reserved as an empty marker: empty buckets are marked by
row -1 instead of HugeCTR's `max(key_type)` sentinel, §3.3).
"""

from __future__ import annotations

import torch

from ctrflow.embedding.kernel_choice import use_triton

_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64 (Fibonacci hashing)
_EMPTY_CLAIM = 2**62
_MIN_BUCKETS = 64


class KeyIndex:
    """Maps int64 keys to rows `0, 1, 2, ...` in the order keys are first inserted.

    Args:
        device: where the buckets live (the same device as the table's rows).
        initial_keys: expected number of keys, to size the first bucket array.
    """

    _buckets: torch.Tensor
    _bucket_keys: torch.Tensor
    _bucket_rows: torch.Tensor
    _claims: torch.Tensor

    def __init__(self, device: torch.device | str = "cpu", initial_keys: int = 0) -> None:
        self.device = torch.device(device)
        self._num_keys = 0
        self._keys_by_row = torch.empty(max(initial_keys, 16), dtype=torch.int64, device=self.device)
        self._allocate_buckets(_bucket_count_for(initial_keys))

    @property
    def num_keys(self) -> int:
        """How many keys the index holds (the next inserted key gets this row)."""
        return self._num_keys

    @property
    def num_buckets(self) -> int:
        return int(self._bucket_rows.numel())

    def keys(self) -> torch.Tensor:
        """The keys in insertion order (row order), int64 `[num_keys]`; a view, do not modify."""
        return self._keys_by_row[: self._num_keys]

    def find(self, keys: torch.Tensor) -> torch.Tensor:
        """Rows of `keys` (any shape of int64, duplicates allowed); -1 where a key is absent."""
        flat = keys.reshape(-1)
        if use_triton(flat) and flat.numel() > 0:
            from ctrflow.embedding import triton_kernels

            return triton_kernels.find_rows(flat, self._buckets, _GOLDEN, self._shift).view_as(keys)
        rows = torch.full_like(flat, -1)
        if flat.numel() == 0 or self._num_keys == 0:
            return rows.view_as(keys)
        active = torch.arange(flat.numel(), device=flat.device)
        position = self._home(flat)
        wanted = flat
        while active.numel() > 0:
            bucket_row = self._bucket_rows[position]
            hit = (self._bucket_keys[position] == wanted) & (bucket_row >= 0)
            rows[active[hit]] = bucket_row[hit]
            # keep probing past occupied buckets of other keys; an empty bucket ends the chain
            more = (~hit) & (bucket_row >= 0)
            active, wanted = active[more], wanted[more]
            position = (position[more] + 1) & self._mask
        return rows.view_as(keys)

    def insert_new(self, new_keys: torch.Tensor) -> torch.Tensor:
        """Append distinct keys that are not yet present; returns their rows (consecutive, in input order).

        The caller guarantees `new_keys` are unique and absent (use `find` first).
        """
        count = int(new_keys.numel())
        rows = torch.arange(self._num_keys, self._num_keys + count, device=self.device)
        if count == 0:
            return rows
        self._reserve_rows(self._num_keys + count)
        self._keys_by_row[self._num_keys : self._num_keys + count] = new_keys
        if 2 * (self._num_keys + count) > self.num_buckets:
            self._num_keys += count
            self._rehash(_bucket_count_for(self._num_keys))
        else:
            self._place(new_keys, rows)
            self._num_keys += count
        return rows

    def find_or_insert(self, unique_keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of distinct keys, inserting the absent ones. Returns (rows, mask of newly inserted keys)."""
        rows = self.find(unique_keys)
        missing = rows < 0
        new_keys = unique_keys[missing]
        if new_keys.numel() > 0:
            rows[missing] = self.insert_new(new_keys)
        return rows, missing

    def clear(self) -> None:
        """Forget every key; the next inserted key gets row 0."""
        self._num_keys = 0
        self._bucket_rows.fill_(-1)

    def load(self, keys_in_row_order: torch.Tensor) -> None:
        """Replace the contents: key `i` of the argument gets row `i`. Keys must be distinct."""
        self.clear()
        self._reserve_rows(int(keys_in_row_order.numel()))
        self._keys_by_row[: keys_in_row_order.numel()] = keys_in_row_order.to(self.device)
        self._num_keys = int(keys_in_row_order.numel())
        self._rehash(_bucket_count_for(self._num_keys))

    def to(self, device: torch.device | str) -> KeyIndex:
        self.device = torch.device(device)
        self._keys_by_row = self._keys_by_row.to(self.device)
        self._buckets = self._buckets.to(self.device)
        self._bucket_keys, self._bucket_rows = self._buckets[:, 0], self._buckets[:, 1]
        self._claims = self._claims.to(self.device)
        return self

    # -- internals -------------------------------------------------------------------------------------

    def _allocate_buckets(self, num_buckets: int) -> None:
        # key and row of a bucket side by side: one probe reads one 16-byte pair
        self._buckets = torch.zeros(num_buckets, 2, dtype=torch.int64, device=self.device)
        self._bucket_keys, self._bucket_rows = self._buckets[:, 0], self._buckets[:, 1]
        self._bucket_rows.fill_(-1)
        self._claims = torch.full((num_buckets,), _EMPTY_CLAIM, dtype=torch.int64, device=self.device)
        self._mask = num_buckets - 1
        self._shift = 64 - (num_buckets.bit_length() - 1)

    def _home(self, keys: torch.Tensor) -> torch.Tensor:
        # Fibonacci hashing: the top bits of key * golden ratio (int64 multiplication wraps)
        return ((keys * _GOLDEN) >> self._shift) & self._mask

    def _place(self, keys: torch.Tensor, rows: torch.Tensor) -> None:
        """Write distinct absent keys into empty buckets, resolving collisions round by round."""
        active = torch.arange(keys.numel(), device=self.device)
        position = self._home(keys)
        while active.numel() > 0:
            empty = self._bucket_rows[position] < 0
            candidates, target = active[empty], position[empty]
            # several keys may want one empty bucket: the lowest request index wins (deterministic)
            self._claims.scatter_reduce_(0, target, candidates, reduce="amin")
            won = self._claims[target] == candidates
            self._claims[target] = _EMPTY_CLAIM
            winners, winner_positions = candidates[won], target[won]
            self._bucket_keys[winner_positions] = keys[winners]
            self._bucket_rows[winner_positions] = rows[winners]
            placed = torch.zeros(active.numel(), dtype=torch.bool, device=self.device)
            placed[empty.nonzero().squeeze(1)[won]] = True
            active = active[~placed]
            position = (position[~placed] + 1) & self._mask

    def _rehash(self, num_buckets: int) -> None:
        self._allocate_buckets(num_buckets)
        if self._num_keys:
            self._place(self._keys_by_row[: self._num_keys], torch.arange(self._num_keys, device=self.device))

    def _reserve_rows(self, needed: int) -> None:
        if needed <= self._keys_by_row.numel():
            return
        grown = torch.empty(max(needed, 2 * self._keys_by_row.numel()), dtype=torch.int64, device=self.device)
        grown[: self._num_keys] = self._keys_by_row[: self._num_keys]
        self._keys_by_row = grown


def _bucket_count_for(num_keys: int) -> int:
    """A power of two that keeps the load at or under one half."""
    return max(_MIN_BUCKETS, 1 << max(2 * num_keys - 1, 1).bit_length())
