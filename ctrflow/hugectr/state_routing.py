"""Sparse optimizer states saved by R ranks, loaded into a run of another rank count.

HugeCTR's sparse optimizer-state file (formats spec §6.4) holds, per state, one `[capacity, vec]` block per
rank in rank order, indexed by each rank's rows: hash tables number rows in key-insertion order, one-hot
tables by the slot layout. The file alone does not say which key a row belongs to; the sparse model folder
saved with it does: its keys are the rank blocks in rank order, each in insertion order (§6.2). So a key's
saved row is its owner rank under R (key mod R, or slot mod R) times the capacity, plus its position among
that rank's keys in the key file (hash), or its row in that rank's one-hot layout.
"""

from __future__ import annotations

import numpy as np
import torch

from ctrflow.embedding.one_hot_layout import OneHotLayout
from ctrflow.embedding.sharding import key_ranks
from ctrflow.embedding.types import EmbeddingConfig


def saved_world_size(config: EmbeddingConfig, file_bytes: int, num_states: int, element_bytes: int) -> int:
    """The rank count whose state file has `file_bytes` bytes for this table (formats spec §6.4)."""
    for ranks in range(1, 1025):
        if (
            num_states * ranks * config.capacity_per_rank(ranks) * config.embedding_vec_size * element_bytes
            == file_bytes
        ):
            return ranks
    raise ValueError(
        f'Embedding "{config.name}": a sparse optimizer-state file of {file_bytes} bytes matches no rank count for '
        f"{num_states} state(s) of capacity x {config.embedding_vec_size} values; it was saved for another table, "
        "workspace size or slot_size_array."
    )


def saved_rows(
    config: EmbeddingConfig, file_keys: torch.Tensor, file_slots: torch.Tensor | None, saved_ranks: int
) -> torch.Tensor:
    """Row of each key of the sparse model file within the state file of `saved_ranks` ranks."""
    capacity = config.capacity_per_rank(saved_ranks)
    if config.kind in ("one_hot", "hybrid"):
        rows = torch.full_like(file_keys, -1)
        for rank in range(saved_ranks):
            local = OneHotLayout(config, rank, saved_ranks).rows_of(file_keys)
            rows = torch.where(local >= 0, rank * capacity + local, rows)
        return rows
    if config.kind == "distributed":
        owners = key_ranks(file_keys, saved_ranks)
    else:
        if file_slots is None:
            raise ValueError(
                f'Embedding "{config.name}": the sparse model has no slot_id file to route localized keys.'
            )
        owners = torch.remainder(file_slots, saved_ranks)
    # position of each key among the keys of its owner, in file order
    positions = torch.zeros_like(file_keys)
    for rank in range(saved_ranks):
        mine = owners == rank
        positions[mine] = torch.arange(int(mine.sum()), dtype=torch.int64)
    return owners * capacity + positions


def local_states(
    states: np.ndarray, file_keys: torch.Tensor, rows: torch.Tensor, my_keys: torch.Tensor, base: list[torch.Tensor]
) -> list[torch.Tensor]:
    """This rank's states `[capacity, vec]`: saved rows for the keys it holds, `base` (initial values) elsewhere.

    Args:
        states: float32 `[num_states, saved rows, vec]`, the whole state file.
        file_keys, rows: keys of the sparse model file and their rows in `states`.
        my_keys: this rank's keys in its row order.
        base: this rank's current states (their untouched rows keep their initial value).
    """
    order = torch.argsort(file_keys)
    position = torch.searchsorted(file_keys[order], my_keys).clamp(max=max(len(order) - 1, 0))
    found = file_keys[order][position] == my_keys if len(order) else torch.zeros_like(my_keys, dtype=torch.bool)
    source = rows[order][position]
    result = []
    for saved, current in zip(states, base, strict=True):
        updated = current.detach().cpu().clone()
        picked = torch.from_numpy(saved)[source.clamp(min=0)]
        count = len(my_keys)
        updated[:count] = torch.where(found.unsqueeze(1), picked, updated[:count])
        result.append(updated)
    return result
