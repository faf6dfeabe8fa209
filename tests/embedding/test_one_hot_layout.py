"""One-hot key offsets and their range check; the row layout's device tables."""

from __future__ import annotations

import pytest
import torch

from ctrflow.embedding import EmbeddingConfig
from ctrflow.embedding.one_hot_layout import OneHotLayout, check_one_hot_keys, offset_one_hot_keys


def test_offsets_add_the_sizes_of_the_slots_before():
    keys, slots = torch.tensor([2, 0, 3, 1]), torch.tensor([0, 1, 1, 2])
    assert offset_one_hot_keys(keys, slots, (3, 4, 2), "emb").tolist() == [2, 3, 6, 8]


def test_an_id_outside_its_slot_raises_naming_the_key_and_the_slot():
    keys, slots = torch.tensor([2, 4]), torch.tensor([0, 1])
    with pytest.raises(
        ValueError, match=r'"emb": one-hot key 4 of slot 1 is outside \[0, 4\) \(slot_size_array\[1\]\)'
    ):
        offset_one_hot_keys(keys, slots, (3, 4), "emb")
    with pytest.raises(ValueError, match=r"one-hot key -1 of slot 0 is outside \[0, 3\)"):
        check_one_hot_keys(torch.tensor([-1]), torch.tensor([0]), (3, 4), "emb")


def test_check_false_skips_the_check_of_keys_checked_before():
    keys, slots = torch.tensor([2, 4]), torch.tensor([0, 1])
    assert offset_one_hot_keys(keys, slots, (3, 4), "emb", check=False).tolist() == [2, 7]


def test_rows_of_builds_its_prefix_tables_once_per_device():
    config = EmbeddingConfig("emb", "data1", "one_hot", num_slots=3, embedding_vec_size=2, slot_size_array=(3, 4, 2))
    layout = OneHotLayout(config, rank=1, world_size=2)
    keys = torch.arange(-1, 10)
    first = layout.rows_of(keys)
    tables = layout._prefixes(keys.device)
    assert torch.equal(layout.rows_of(keys), first)
    assert layout._prefixes(keys.device) is tables
    # rank 1 of 2 owns slot 1 (global keys 3..6); every other key has no row here
    assert first.tolist() == [-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1]
