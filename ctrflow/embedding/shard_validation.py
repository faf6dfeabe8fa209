"""Checks of what users hand to `EmbeddingShard.load*` (rows from files, optimizer states, state dicts).

Kept apart from the shard so that its hot paths stay short; every check raises a ValueError that names
the embedding, what was received and what was expected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ctrflow.embedding.sharding import key_ranks

if TYPE_CHECKING:
    from ctrflow.embedding.shard import EmbeddingShard


def check_loaded_rows(
    shard: EmbeddingShard, keys: torch.Tensor, vectors: torch.Tensor, slot_ids: torch.Tensor | None
) -> None:
    """Shapes, distinct keys, capacity, ownership and slot ids of rows about to be loaded."""
    name, vec = shard.config.name, shard.config.embedding_vec_size
    if keys.dim() != 1 or vectors.shape != (keys.numel(), vec):
        raise ValueError(
            f'Embedding "{name}": load expects keys [n] and vectors [n, {vec}], received keys '
            f"{list(keys.shape)} and vectors {list(vectors.shape)}."
        )
    if slot_ids is not None and slot_ids.shape != keys.shape:
        raise ValueError(
            f'Embedding "{name}": slot_ids must have one entry per key ({keys.numel()}), '
            f"received {list(slot_ids.shape)}."
        )
    if torch.unique(keys).numel() != keys.numel():
        raise ValueError(f'Embedding "{name}": load received duplicate keys; each key may appear once.')
    if shard.is_one_hot:
        if bool((shard.find_or_insert(keys, insert=False) < 0).any()):
            raise ValueError(
                f'Embedding "{name}": some one-hot keys are not rows of rank {shard.rank} '
                "(outside the slot ranges of slot_size_array or owned by another rank)."
            )
        return
    if keys.numel() > shard.capacity:
        raise ValueError(
            f'Embedding "{name}": loading {keys.numel()} keys into rank {shard.rank} whose capacity is '
            f"{shard.capacity} rows; raise workspace_size_per_gpu_in_mb (now "
            f"{shard.config.workspace_size_per_gpu_in_mb})."
        )
    distributed = shard.config.kind == "distributed" and shard.world_size > 1
    if distributed and bool((key_ranks(keys, shard.world_size) != shard.rank).any()):
        raise ValueError(
            f'Embedding "{name}": keys given to rank {shard.rank} must satisfy uint64(key) mod '
            f"{shard.world_size} == {shard.rank} (formats spec §6.3); route them with sharding.key_ranks."
        )
    if shard.config.kind == "localized" and slot_ids is None:
        raise ValueError(
            f'Embedding "{name}": a localized embedding needs the slot_id of every loaded key (the slot_id file).'
        )


def check_optimizer_states(shard: EmbeddingShard, states: list[torch.Tensor]) -> None:
    expected = (shard.capacity, shard.config.embedding_vec_size)
    names = shard.state_names
    if len(states) != len(names):
        raise ValueError(
            f'Embedding "{shard.config.name}": optimizer {shard.config.optimizer.kind} has {len(names)} state '
            f"tensors ({', '.join(names) or 'none'}), received {len(states)}."
        )
    for name, state in zip(names, states, strict=True):
        if tuple(state.shape) != expected:
            raise ValueError(
                f'Embedding "{shard.config.name}": optimizer state {name} must be {list(expected)} '
                f"(capacity × embedding_vec_size), received {list(state.shape)}."
            )


def unpack_state_dict(
    shard: EmbeddingShard, state: dict[str, object]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[torch.Tensor], torch.Tensor, int]:
    missing = {"keys", "vectors", "slot_ids", "states", "prev_time", "step"} - set(state)
    if missing:
        raise ValueError(
            f'Embedding "{shard.config.name}": state dict lacks {sorted(missing)}; pass what state_dict() returned.'
        )
    keys, vectors, slot_ids = state["keys"], state["vectors"], state["slot_ids"]
    states, prev_time, step = state["states"], state["prev_time"], state["step"]
    if not (isinstance(keys, torch.Tensor) and isinstance(vectors, torch.Tensor)):
        raise TypeError(f'Embedding "{shard.config.name}": state dict keys/vectors must be tensors.')
    if slot_ids is not None and not isinstance(slot_ids, torch.Tensor):
        raise TypeError(f'Embedding "{shard.config.name}": state dict slot_ids must be a tensor or None.')
    if not isinstance(states, list) or not isinstance(prev_time, torch.Tensor) or not isinstance(step, int):
        raise TypeError(
            f'Embedding "{shard.config.name}": state dict states must be a list, prev_time a tensor, step an int.'
        )
    if len(states) != len(shard.state_names):
        raise ValueError(
            f'Embedding "{shard.config.name}": state dict has {len(states)} optimizer states, '
            f"expected {len(shard.state_names)}."
        )
    return keys, vectors, slot_ids, states, prev_time, step
