"""One rank's rows of one embedding table: key index, row storage, optimizer states.

`EmbeddingShard` is the unit the sharding layer (`sharding.py`) and the distributed embed stage work
with: it maps distinct keys to rows (inserting unseen keys while training), gathers rows, applies the
sparse optimizer to deduplicated rows, and dumps / loads rows in insertion order (formats spec §6.2) and
optimizer states as `[capacity, V]` tensors in insertion-row order (§6.4).

Hash kinds (distributed, localized) grow their storage lazily, doubling up to the capacity, and draw a
row's initial values from the shard's `torch.Generator` when its key is inserted (HugeCTR pre-fills every
row at start-up; rows that were never handed out are invisible in every file, so the results agree).
One-hot kinds (one_hot, hybrid) hold the dense table of their slots, initialised at construction.
"""

from __future__ import annotations

import math

import torch

from ctrflow.embedding import optimizers
from ctrflow.embedding.initialization import keyed_uniform
from ctrflow.embedding.key_index import KeyIndex
from ctrflow.embedding.one_hot_layout import OneHotLayout
from ctrflow.embedding.shard_validation import check_loaded_rows, check_optimizer_states, unpack_state_dict
from ctrflow.embedding.types import EmbeddingConfig

_DEFAULT_BOUND = 0.05  # semantics spec §3.4: U(-0.05, 0.05)


class EmbeddingShard:
    """The rows of one table on one rank.

    Args:
        config: the embedding.
        capacity: the row capacity of this rank (`config.capacity_per_rank(world_size)`).
        device: where rows and states live.
        generator: draws the initial values of rows (reproducible given the same insertion sequence).
        rank: this shard's rank.
        world_size: number of ranks the table is split over.
    """

    def __init__(
        self,
        config: EmbeddingConfig,
        *,
        capacity: int,
        device: torch.device | str,
        generator: torch.Generator,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f'Embedding "{config.name}": rank {rank} is not in [0, world_size={world_size}); '
                "give 0 <= rank < world_size."
            )
        if capacity < 0:
            raise ValueError(f'Embedding "{config.name}": capacity must be >= 0, received {capacity}.')
        self.config = config
        self.device = torch.device(device)
        self.generator = generator
        # a key's initial vector depends only on this seed and the key (ctrflow/embedding/initialization.py)
        self._init_seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        self.rank, self.world_size = rank, world_size
        self._capacity = capacity
        self.step_count = 0
        self._lazy = optimizers.uses_prev_time(config.optimizer)
        self._one_hot = OneHotLayout(config, rank, world_size) if config.kind in ("one_hot", "hybrid") else None
        self._slot_bounds = self._make_slot_bounds()
        self._index = KeyIndex(self.device) if self._one_hot is None else None
        self._num_rows = 0
        self._weights = torch.empty(0, config.embedding_vec_size, device=self.device)
        self._slot_ids = torch.empty(0, dtype=torch.int64, device=self.device)
        self._states = [torch.empty(0, config.embedding_vec_size, device=self.device) for _ in self.state_names]
        self._prev_time = torch.empty(0, dtype=torch.int64, device=self.device)
        if self._one_hot is not None:
            if self._one_hot.num_rows > capacity:
                raise ValueError(
                    f'Embedding "{config.name}": rank {rank} holds {self._one_hot.num_rows} one-hot rows '
                    f"(its slot sizes) but capacity is {capacity}; pass config.capacity_per_rank(world_size)."
                )
            self._add_rows(self._one_hot.num_rows, keys=self._one_hot.row_keys().to(self.device))
            self._slot_ids[: self._num_rows] = self._one_hot.row_slots().to(self.device)

    # -- properties -------------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def num_keys(self) -> int:
        """Keys held: inserted or loaded keys (hash kinds), every row of the local slots (one-hot kinds)."""
        return self._num_rows

    @property
    def weights(self) -> torch.Tensor:
        """The live rows `[num_keys, V]` (a view; kernels read and update it in place)."""
        return self._weights[: self._num_rows]

    @property
    def states(self) -> list[torch.Tensor]:
        """The live optimizer states `[num_keys, V]` each, in §6.4 order (views)."""
        return [s[: self._num_rows] for s in self._states]

    @property
    def state_names(self) -> tuple[str, ...]:
        return optimizers.state_names(self.config.optimizer)

    @property
    def is_one_hot(self) -> bool:
        return self._one_hot is not None

    # -- lookup -----------------------------------------------------------------------------------------

    def find_or_insert(
        self, unique_keys: torch.Tensor, insert: bool, slot_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Rows of `unique_keys` (int64, distinct when `insert`); -1 where absent and not inserted.

        `slot_ids` (one per key) records the slot of newly inserted keys for localized dumps.
        One-hot shards take prefix-offset keys (§6.3) and never insert: their rows are fixed.
        """
        if self._one_hot is not None:
            return self._one_hot.rows_of(unique_keys)
        index = self._hash_index()
        if not insert:
            return index.find(unique_keys)
        rows = index.find(unique_keys)
        missing = rows < 0
        new_keys = unique_keys[missing]
        if new_keys.numel() == 0:
            return rows
        self._check_room(int(new_keys.numel()))
        start = index.num_keys
        rows[missing] = index.insert_new(new_keys)
        new_slots = slot_ids[missing].to(self.device) if slot_ids is not None else None
        self._add_rows(int(new_keys.numel()), keys=new_keys, slots=new_slots)
        if slot_ids is not None:
            self._slot_ids[start : self._num_rows] = slot_ids[missing].to(self.device)
        return rows

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Vectors of `rows` `[n, V]`; zeros where the row is -1."""
        valid = rows >= 0
        vectors = self._weights.index_select(0, rows.clamp(min=0))
        return vectors * valid.unsqueeze(1).to(vectors.dtype)

    def apply_gradients(self, rows_unique: torch.Tensor, grads: torch.Tensor, lr: float) -> None:
        """Run one sparse-optimizer step on distinct rows with their summed, unscaled float32 gradients."""
        keep = rows_unique >= 0
        rows, grads = rows_unique[keep], grads[keep].to(torch.float32)
        self.step_count += 1
        prev_time = self._prev_time[: self._num_rows] if self._lazy else None
        optimizers.apply_sparse_update(
            self.config.optimizer, self.weights, self.states, prev_time, rows, grads, lr, self.step_count
        )

    # -- files ------------------------------------------------------------------------------------------

    def dump(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(keys int64 [n], vectors float32 [n, V], slot_ids int64 [n] or None) in insertion order."""
        if self._one_hot is not None:
            keys = self._one_hot.row_keys().to(self.device)
        else:
            keys = self._hash_index().keys().clone()
        slot_ids = self._slot_ids[: self._num_rows].clone() if self.config.kind != "distributed" else None
        return keys, self.weights.clone(), slot_ids

    def load(self, keys: torch.Tensor, vectors: torch.Tensor, slot_ids: torch.Tensor | None = None) -> None:
        """Replace the rows with `keys` / `vectors` (one-hot: overwrite the rows of the given keys)."""
        keys, vectors = keys.to(self.device, torch.int64), vectors.to(self.device, torch.float32)
        check_loaded_rows(self, keys, vectors, slot_ids)
        if self._one_hot is not None:
            self._weights[self._one_hot.rows_of(keys)] = vectors
            return
        self._hash_index().load(keys)
        self._num_rows = 0
        self._add_rows(int(keys.numel()))
        self._weights[: self._num_rows] = vectors
        if slot_ids is not None:
            self._slot_ids[: self._num_rows] = slot_ids.to(self.device, torch.int64)

    def optimizer_states(self) -> list[torch.Tensor]:
        """Each state as float32 `[capacity, V]`, row n ↔ n-th inserted key (formats spec §6.4)."""
        result = []
        for name, state in zip(self.state_names, self._states, strict=True):
            fill = optimizers.initial_state_value(self.config.optimizer, name)
            full = torch.full((self._capacity, self.config.embedding_vec_size), fill, device=self.device)
            full[: self._num_rows] = state[: self._num_rows]
            result.append(full)
        return result

    def load_optimizer_states(self, states: list[torch.Tensor]) -> None:
        """Load tensors shaped like `optimizer_states()`; rows past `num_keys` are not kept."""
        check_optimizer_states(self, states)
        for mine, theirs in zip(self._states, states, strict=True):
            mine[: self._num_rows] = theirs[: self._num_rows].to(self.device, torch.float32)

    def state_dict(self) -> dict[str, object]:
        keys, vectors, slot_ids = self.dump()
        return {
            "keys": keys,
            "vectors": vectors,
            "slot_ids": slot_ids,
            "states": [s.clone() for s in self.states],
            "prev_time": self._prev_time[: self._num_rows].clone(),
            "step": self.step_count,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        keys, vectors, slot_ids, states, prev_time, step = unpack_state_dict(self, state)
        self.load(keys, vectors, slot_ids)
        for mine, theirs in zip(self._states, states, strict=True):
            mine[: self._num_rows] = theirs.to(self.device, torch.float32)
        if self._lazy:
            self._prev_time[: self._num_rows] = prev_time.to(self.device)
        self.step_count = step

    # -- storage ----------------------------------------------------------------------------------------

    def _hash_index(self) -> KeyIndex:
        if self._index is None:
            raise RuntimeError(f'Embedding "{self.config.name}": one-hot shards have no key index.')
        return self._index

    def _check_room(self, num_new: int) -> None:
        if self._num_rows + num_new <= self._capacity:
            return
        if self.config.kind == "localized" and self.config.slot_size_array:
            setting = "the slot_size_array entries of the slots on this rank (they set the capacity)"
        else:
            setting = f"workspace_size_per_gpu_in_mb (now {self.config.workspace_size_per_gpu_in_mb})"
        raise ValueError(
            f'Embedding "{self.config.name}": the key index of rank {self.rank} is full: capacity '
            f"{self._capacity} rows, {self._num_rows} keys held, {num_new} new keys in this batch "
            f"({self._num_rows + num_new} keys seen). Raise {setting}; formats spec §8 gives the formula. "
            "No key of this batch was inserted."
        )

    def _add_rows(self, count: int, keys: torch.Tensor | None = None, slots: torch.Tensor | None = None) -> None:
        """Append `count` rows; with `keys`, initialise them (§3.4) from the keys (and their slots)."""
        start, end = self._num_rows, self._num_rows + count
        if end > self._weights.shape[0]:
            self._grow(max(end, min(self._capacity, 2 * self._weights.shape[0])))
        if keys is not None:
            self._weights[start:end] = self._initial_rows(start, end, keys, slots)
        for name, state in zip(self.state_names, self._states, strict=True):
            state[start:end] = optimizers.initial_state_value(self.config.optimizer, name)
        if self._lazy:
            self._prev_time[start:end] = 1  # §4.3: prev_time starts at 1
        self._slot_ids[start:end] = -1
        self._num_rows = end

    def _grow(self, rows: int) -> None:
        def grown(old: torch.Tensor) -> torch.Tensor:
            new = torch.empty((rows, *old.shape[1:]), dtype=old.dtype, device=self.device)
            new[: self._num_rows] = old[: self._num_rows]
            return new

        self._weights = grown(self._weights)
        self._states = [grown(s) for s in self._states]
        self._slot_ids = grown(self._slot_ids)
        if self._lazy:
            self._prev_time = grown(self._prev_time)

    def _make_slot_bounds(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(row ends of the local slots, their init bounds) where rows are initialised per slot (§3.4)."""
        if not self.config.slot_size_array:
            return None
        sizes = [s for i, s in enumerate(self.config.slot_size_array) if i % self.world_size == self.rank]
        if not sizes:
            return None
        ends = torch.tensor(sizes, dtype=torch.int64).cumsum(0)
        bounds = torch.tensor([math.sqrt(1.0 / max(s, 1)) for s in sizes], dtype=torch.float32)
        return ends, bounds

    def _initial_rows(self, start: int, end: int, keys: torch.Tensor, slots: torch.Tensor | None) -> torch.Tensor:
        """Initial vectors of rows [start, end) holding `keys`: U(±bound) with §3.4's bound per row.

        Values come from `keyed_uniform(keys, seed)`, so they do not depend on the row a key lands in. The
        bound is sqrt(1/size) of the key's slot where the table has a slot_size_array: the slot given for
        localized inserts, else the slot of the row in the one-hot layout; 0.05 otherwise.
        """
        uniform = keyed_uniform(keys, self._init_seed, self.config.embedding_vec_size)
        sizes = self.config.slot_size_array
        if not sizes or self.config.kind == "distributed":  # §3.4: distributed tables ignore slot sizes
            return uniform * _DEFAULT_BOUND
        if slots is not None:
            bounds = torch.tensor([math.sqrt(1.0 / max(s, 1)) for s in sizes], dtype=torch.float32)
            slot_bounds = bounds.to(self.device)[slots.clamp(0, len(sizes) - 1)]
            return uniform * slot_bounds.unsqueeze(1)
        if self._slot_bounds is None:
            return uniform * _DEFAULT_BOUND
        ends, local_bounds = self._slot_bounds
        # one-hot rows are laid out slot after slot (§3.4); rows past the last slot take the last slot's bound
        slot = torch.searchsorted(ends, torch.arange(start, end), right=True).clamp(max=len(local_bounds) - 1)
        return uniform * local_bounds[slot].to(self.device).unsqueeze(1)
