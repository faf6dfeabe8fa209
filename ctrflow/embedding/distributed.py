"""Model-parallel embedding over R ranks: each rank owns one `EmbeddingShard` (DESIGN decision 5).

The batch is global (HugeCTR's `batchsize`); rank r reads the contiguous slice of B/R samples
`[r·B/R, (r+1)·B/R)` (formats spec §1.4) and calls `forward` with it. One forward:

1. route (local): every key of the local batch goes to its owner, `uint64(key) mod R` for distributed
   embeddings and `slot mod R` for localized / one-hot ones (formats spec §6.3); keys are deduplicated per
   owner, so each owner receives each key at most once from each rank;
2. exchange the split sizes, then the keys (with their slots) with an all-to-all;
3. owners deduplicate the keys of all ranks, look them up (inserting unseen keys while training) and send
   the vectors back with a differentiable all-to-all;
4. the requester pools the vectors per (sample, slot) with the combiner; it holds the whole slot, so
   mean's nnz counts every key of the slot, unseen keys included (semantics spec §3.3).

Backward runs the vector all-to-all in reverse: the gradient of every vector an owner served comes back to
it, already summed over ranks per key. `step` applies the sparse optimizer to the owner's shard only.

With one rank there is no communication and the module is a single-rank embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ctrflow.embedding import communication
from ctrflow.embedding.one_hot_layout import offset_one_hot_keys
from ctrflow.embedding.shard import EmbeddingShard
from ctrflow.embedding.sharding import key_ranks
from ctrflow.embedding.types import EmbeddingConfig
from ctrflow.readers.types import SparseBatch

_NO_SLOT = torch.iinfo(torch.int64).max


@dataclass(slots=True)
class KeyRoute:
    """How one rank's local batch is split over the owners of its keys.

    Args:
        unique_keys: int64 `[u]`, the distinct (owner, key) pairs' keys, grouped by owner in rank order.
        unique_slots: int64 `[u]`, the smallest slot each of those keys appeared in (localized slot ids).
        send_splits: how many of `unique_keys` go to each rank.
        inverse: int64 `[nnz]`, for each key of the batch the index of its entry in `unique_keys`.
        offsets: int64 `[batch * num_slots + 1]`, the batch's CSR offsets over (sample, slot) segments.
        segment_lengths: int64 `[batch * num_slots]`, nnz of each output segment (the mean's divisor).
    """

    unique_keys: torch.Tensor
    unique_slots: torch.Tensor
    send_splits: list[int]
    inverse: torch.Tensor
    offsets: torch.Tensor
    segment_lengths: torch.Tensor


def route_local_batch(batch: SparseBatch, config: EmbeddingConfig, world_size: int) -> KeyRoute:
    """Split the keys of a local batch over their owners (step 1 of the module docstring)."""
    device = batch.keys.device
    lengths = batch.lengths().reshape(-1)
    segments = torch.repeat_interleave(
        torch.arange(lengths.numel(), device=device), lengths, output_size=batch.keys.numel()
    )
    slots = segments % config.num_slots
    keys = batch.keys
    if config.kind in ("one_hot", "hybrid"):
        keys = offset_one_hot_keys(keys, slots, config.slot_size_array, config.name)
    unique_keys, unique_owners, unique_slots, inverse = _distinct_keys_by_owner(keys, slots, config, world_size)
    send_splits = torch.bincount(unique_owners, minlength=world_size).tolist()
    return KeyRoute(unique_keys, unique_slots, send_splits, inverse, batch.offsets, lengths)


def _distinct_keys_by_owner(
    keys: torch.Tensor, slots: torch.Tensor, config: EmbeddingConfig, world_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct (owner, key) pairs sorted by owner: keys, owners, smallest slot of each, inverse per key."""
    distinct, inverse = torch.unique(keys, return_inverse=True)
    if config.kind == "distributed":
        owners = key_ranks(distinct, world_size)
    else:
        key_owners = slots % world_size
        owners = _reduce_by_key(key_owners, inverse, distinct.numel(), "amin")
        if bool((owners != _reduce_by_key(key_owners, inverse, distinct.numel(), "amax")).any()):
            # a localized key used in slots of different ranks: one entry per (owner, key) pair
            pairs, inverse = torch.unique(torch.stack([key_owners, keys], dim=1), dim=0, return_inverse=True)
            pair_slots = _reduce_by_key(slots, inverse, pairs.shape[0], "amin")
            return pairs[:, 1].contiguous(), pairs[:, 0].contiguous(), pair_slots, inverse
    order = torch.argsort(owners, stable=True)
    position = torch.empty_like(order)
    position[order] = torch.arange(order.numel(), device=order.device)
    inverse = position[inverse]
    return distinct[order], owners[order], _reduce_by_key(slots, inverse, order.numel(), "amin"), inverse


def _reduce_by_key(values: torch.Tensor, inverse: torch.Tensor, size: int, reduce: str) -> torch.Tensor:
    start = _NO_SLOT if reduce == "amin" else -1
    out = torch.full((size,), start, dtype=values.dtype, device=values.device)
    return out.scatter_reduce_(0, inverse, values, reduce=reduce)


def look_up_owned(
    shard: EmbeddingShard, keys: torch.Tensor, slots: torch.Tensor, insert: bool, distinct: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Owner side (step 3): rows of the distinct received keys and, per received key, its distinct index.

    `distinct=True` says the keys are already distinct (one requester: this rank alone).
    """
    if distinct:
        unique_keys, inverse, unique_slots = keys, torch.arange(keys.numel(), device=keys.device), slots
    else:
        unique_keys, inverse = torch.unique(keys, return_inverse=True)
        unique_slots = _reduce_by_key(slots, inverse, unique_keys.numel(), "amin")
    slot_ids = unique_slots if shard.config.kind == "localized" else None
    rows = shard.find_or_insert(unique_keys, insert, slot_ids=slot_ids)
    return rows, inverse


class _PooledSum(torch.autograd.Function):
    """Sums of `vectors[inverse]` per CSR segment; backward adds each segment's gradient to its keys' vectors."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, vectors: torch.Tensor, inverse: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(inverse, offsets)
        ctx.num_vectors = vectors.shape[0]
        return F.embedding_bag(inverse, vectors, offsets, mode="sum", include_last_offset=True)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        inverse, offsets = ctx.saved_tensors
        lengths = offsets[1:] - offsets[:-1]
        segments = torch.repeat_interleave(
            torch.arange(lengths.numel(), device=lengths.device), lengths, output_size=inverse.numel()
        )
        per_key = grad_output.index_select(0, segments)
        grad = grad_output.new_zeros(ctx.num_vectors, grad_output.shape[1]).index_add_(0, inverse, per_key)
        return grad, None, None


def pool_vectors(vectors: torch.Tensor, route: KeyRoute, combiner: str) -> torch.Tensor:
    """Requester side (step 4): combine the vectors of `route.unique_keys` into `[batch * num_slots, V]`."""
    pooled = _PooledSum.apply(vectors, route.inverse, route.offsets)
    if combiner == "mean":
        # semantics spec §3.3: divide by nnz only when nnz > 1; unseen keys still count
        pooled = pooled / route.segment_lengths.clamp(min=1).to(pooled.dtype).unsqueeze(1)
    return pooled


def local_slice(batch: SparseBatch, rank: int, world_size: int) -> SparseBatch:
    """Rank `rank`'s samples of a global batch: the contiguous slice `[rank·B/R, (rank+1)·B/R)` (formats spec §1.4)."""
    if batch.batch_size % world_size != 0:
        raise ValueError(
            f"Rank {rank}: the global batch of {batch.batch_size} samples does not split evenly over {world_size} "
            "ranks; choose a batchsize that is a multiple of the number of ranks."
        )
    per_rank = batch.batch_size // world_size
    first, last = rank * per_rank * batch.num_slots, (rank + 1) * per_rank * batch.num_slots
    offsets = batch.offsets[first : last + 1]
    keys = batch.keys[int(offsets[0]) : int(offsets[-1])]
    return SparseBatch(keys, offsets - offsets[0], batch.num_slots)


class DistributedSparseEmbedding(nn.Module):
    """A sparse embedding split over the ranks of a `torch.distributed` process group.

    Call it on every rank together, each with its own slice of the global batch. The per-rank loss is
    expected to be the mean over the rank's local samples, as for `communication.allreduce_gradients`:
    `step` then divides the summed key gradients by R (`average_gradients=True`), which gives the gradient
    of the mean over the global batch (semantics spec §0). Pass `average_gradients=False` if the loss
    already divides by the global batch size.

    Args:
        config: the embedding.
        device: where this rank's rows live.
        generator: draws the initial rows of this rank's shard; default: a CPU generator seeded from torch's
            global RNG plus the rank.
        rank: this process's rank (default: from the process group, else 0).
        world_size: number of ranks (default: from the process group, else 1).
        group: the process group (None: the default group).
        average_gradients: divide key gradients by R in `step` (see above).
        output_dtype: dtype of the output (float32 by default, also under autocast).

    Example (inside `run_on_ranks(cluster, train)`):
        embedding = DistributedSparseEmbedding(config)
        out = embedding(local_batch)              # [B / R, num_slots, V]
        loss = head(out).mean(); loss.backward()
        embedding.step(lr=0.01); allreduce_gradients(head.parameters())
    """

    def __init__(
        self,
        config: EmbeddingConfig,
        *,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        group: communication.ProcessGroup = None,
        average_gradients: bool = True,
        output_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.config = config
        self.group = group
        self.rank, self.world_size = _resolve_rank(config, rank, world_size, group)
        self.average_gradients = average_gradients
        self.output_dtype = output_dtype
        self.frozen = False  # as SparseEmbedding: no inserts, no updates
        if generator is None:  # as SparseEmbedding: from torch's global RNG, then apart per rank
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()) + self.rank)
        self.shard = EmbeddingShard(
            config,
            capacity=config.capacity_per_rank(self.world_size),
            device=device,
            generator=generator,
            rank=self.rank,
            world_size=self.world_size,
        )
        self._captured: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, batch: SparseBatch) -> torch.Tensor:
        """Pooled vectors `[local batch, num_slots, V]` of this rank's slice of the global batch."""
        self._check_batch(batch)
        device = self.shard.device
        batch = batch.to(device)
        route = route_local_batch(batch, self.config, self.world_size)
        recv_splits = self._exchange_sizes(route.send_splits, device)
        received_keys = self._exchange(route.unique_keys, route.send_splits, recv_splits)
        if self.config.kind == "localized":  # only localized shards record slot ids of inserted keys
            received_slots = self._exchange(route.unique_slots, route.send_splits, recv_splits)
        else:
            received_slots = route.unique_slots if self.world_size == 1 else torch.zeros_like(received_keys)
        insert = self.training and not self.frozen
        distinct = self.world_size == 1
        rows, inverse = look_up_owned(self.shard, received_keys, received_slots, insert, distinct)
        vectors = self.shard.gather(rows)
        if self.training and torch.is_grad_enabled() and not self.frozen:
            vectors = vectors.detach().requires_grad_(True)
            self._captured.append((rows, vectors))
        served = vectors if distinct else vectors.index_select(0, inverse)
        if self.world_size > 1:
            served = communication.all_to_all(served, recv_splits, route.send_splits, self.group)
        with torch.autocast(device_type=device.type, enabled=False):  # the table is float32: pool in float32
            pooled = pool_vectors(served, route, self.config.combiner)
        out = pooled.view(batch.batch_size, self.config.num_slots, self.config.embedding_vec_size)
        return out.to(self.output_dtype)

    def step(self, lr: float, grad_scale: float = 1.0) -> None:
        """Apply the sparse optimizer to this rank's shard with the gradients of the forwards since the last step.

        Every rank calls it once per training step, even with no touched rows (Global updates move every row).

        Args:
            lr: this step's learning rate.
            grad_scale: multiplies the summed gradients (1 / loss scaler), as `SparseEmbedding.step`.
        """
        if not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(
                f'Embedding "{self.config.name}" (rank {self.rank}): lr must be a number >= 0, received {lr!r}.'
            )
        rows, grads = self._collect_gradients()
        if self.frozen:
            return
        scale = grad_scale / (self.world_size if self.average_gradients else 1)
        self.shard.apply_gradients(rows, grads * scale, float(lr))

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget captured gradients without applying them."""
        super().zero_grad(set_to_none)
        self._captured.clear()

    # -- files ------------------------------------------------------------------------------------------

    def dump(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """This rank's rows: (keys, vectors, slot_ids or None), in insertion order (formats spec §6.2)."""
        return self.shard.dump()

    def gather_dump(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Every rank's rows, rank blocks in rank order (formats spec §6.2), returned on every rank."""
        keys, vectors, slot_ids = self.shard.dump()
        keys_all = torch.cat(communication.all_gather_variable(keys, self.group))
        vectors_all = torch.cat(communication.all_gather_variable(vectors, self.group))
        if slot_ids is None:
            return keys_all, vectors_all, None
        return keys_all, vectors_all, torch.cat(communication.all_gather_variable(slot_ids, self.group))

    def load(self, keys: torch.Tensor, vectors: torch.Tensor, slot_ids: torch.Tensor | None = None) -> None:
        """Load the rows of a full dump (any number of ranks saved it); this rank keeps the rows it owns."""
        owners = self._owners_of_rows(keys, slot_ids)
        mine = owners == self.rank
        kept_slots = None if slot_ids is None else slot_ids[mine]
        if self.config.kind in ("one_hot", "hybrid") and kept_slots is None:
            kept_slots = self._one_hot_slots(keys[mine])
        self.shard.load(keys[mine], vectors[mine], kept_slots)

    def optimizer_states(self) -> list[torch.Tensor]:
        """This rank's optimizer states, each `[capacity, V]` (formats spec §6.4)."""
        return self.shard.optimizer_states()

    def gather_optimizer_states(self) -> list[torch.Tensor]:
        """Each state as the rank blocks in rank order, `[R · capacity, V]` (formats spec §6.4)."""
        return [torch.cat(communication.all_gather_variable(s, self.group)) for s in self.shard.optimizer_states()]

    def load_optimizer_states(self, states: list[torch.Tensor]) -> None:
        """Load this rank's block of states saved by `gather_optimizer_states` with the same world size."""
        capacity = self.shard.capacity
        for state in states:
            if state.shape[0] != capacity * self.world_size:
                raise ValueError(
                    f'Embedding "{self.config.name}": rank {self.rank} expected optimizer states of '
                    f"{self.world_size} ranks × {capacity} rows, received {state.shape[0]} rows. States are "
                    "indexed by insertion row, so they load only on the world size that saved them."
                )
        start = self.rank * capacity
        self.shard.load_optimizer_states([s[start : start + capacity] for s in states])

    # -- internals --------------------------------------------------------------------------------------

    def _check_batch(self, batch: SparseBatch) -> None:
        if batch.keys.dtype != torch.int64 or batch.offsets.dtype != torch.int64:
            raise TypeError(
                f'Embedding "{self.config.name}" (rank {self.rank}): keys and offsets must be int64, received '
                f"{batch.keys.dtype} and {batch.offsets.dtype}; widen them with .long()."
            )
        if batch.num_slots != self.config.num_slots:
            raise ValueError(
                f'Embedding "{self.config.name}" (rank {self.rank}): the sparse batch has {batch.num_slots} slots '
                f'but the input "{self.config.bottom}" was declared with {self.config.num_slots}.'
            )
        if self.world_size > 1 and not communication.is_distributed(self.group):
            raise RuntimeError(
                f'Embedding "{self.config.name}" (rank {self.rank}) was built for {self.world_size} ranks but no '
                "torch.distributed process group is active. Run it inside ctrflow.pipeline.cluster.run_on_ranks."
            )

    def _exchange_sizes(self, send_splits: list[int], device: torch.device) -> list[int]:
        if self.world_size == 1:
            return send_splits
        return communication.exchange_split_sizes(send_splits, device, self.group)

    def _exchange(self, tensor: torch.Tensor, send_splits: list[int], recv_splits: list[int]) -> torch.Tensor:
        if self.world_size == 1:
            return tensor
        return communication.all_to_all_rows(tensor, send_splits, recv_splits, self.group)

    def _collect_gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        vec, device = self.config.embedding_vec_size, self.shard.device
        if not self._captured:
            return torch.empty(0, dtype=torch.int64, device=device), torch.empty(0, vec, device=device)
        rows = torch.cat([r for r, _ in self._captured])
        grads = torch.cat([v.grad if v.grad is not None else torch.zeros_like(v) for _, v in self._captured])
        single = len(self._captured) == 1
        self._captured.clear()
        if single:  # one forward's rows are distinct already (the owner deduplicated its keys)
            return rows, grads
        unique_rows, inverse = torch.unique(rows, return_inverse=True)
        summed = grads.new_zeros(unique_rows.numel(), vec).index_add_(0, inverse, grads)
        return unique_rows, summed

    def _owners_of_rows(self, keys: torch.Tensor, slot_ids: torch.Tensor | None) -> torch.Tensor:
        if self.config.kind == "distributed":
            return key_ranks(keys.to(torch.int64), self.world_size)
        if slot_ids is None and self.config.kind == "localized":
            raise ValueError(
                f'Embedding "{self.config.name}" (rank {self.rank}): loading a localized embedding needs the '
                "slot_id of every row (the slot_id file) to route rows to their ranks."
            )
        slots = self._one_hot_slots(keys) if slot_ids is None else slot_ids.to(torch.int64)
        return slots % self.world_size

    def _one_hot_slots(self, keys: torch.Tensor) -> torch.Tensor:
        ends = torch.tensor(self.config.slot_size_array, dtype=torch.int64).cumsum(0)
        return torch.searchsorted(ends, keys.to(torch.int64).cpu(), right=True).to(keys.device)


def _resolve_rank(
    config: EmbeddingConfig, rank: int | None, world_size: int | None, group: communication.ProcessGroup
) -> tuple[int, int]:
    group_rank, group_size = communication.rank_and_world_size(group)
    active = communication.is_distributed(group)
    rank = group_rank if rank is None else rank
    world_size = group_size if world_size is None else world_size
    if active and (rank, world_size) != (group_rank, group_size):
        raise ValueError(
            f'Embedding "{config.name}": received rank {rank} of world_size {world_size} but the process group '
            f"says rank {group_rank} of {group_size}; leave rank and world_size unset to take them from the group."
        )
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f'Embedding "{config.name}": rank {rank} is not in [0, world_size={world_size}); give 0 <= rank < '
            "world_size."
        )
    return rank, world_size
