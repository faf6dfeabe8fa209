"""Initial vectors from (seed, key): independent of insertion order, rank count and reloads."""

from __future__ import annotations

import torch

from ctrflow.embedding.initialization import keyed_uniform
from ctrflow.embedding.shard import EmbeddingShard
from ctrflow.embedding.types import EmbeddingConfig


def shard(rank: int = 0, world_size: int = 1, **config) -> EmbeddingShard:
    settings = {"name": "t", "bottom": "k", "kind": "distributed", "num_slots": 2, "embedding_vec_size": 8,
                "workspace_size_per_gpu_in_mb": 1, **config}  # fmt: skip
    return EmbeddingShard(EmbeddingConfig(**settings), capacity=1000, device="cpu",
                          generator=torch.Generator().manual_seed(4), rank=rank, world_size=world_size)  # fmt: skip


def test_keyed_uniform_is_uniform_on_minus_one_to_one_and_deterministic():
    values = keyed_uniform(torch.arange(20000), seed=7, width=16)
    assert values.shape == (20000, 16)
    assert float(values.min()) >= -1.0 and float(values.max()) < 1.0
    assert abs(float(values.mean())) < 0.01 and abs(float(values.var()) - 1 / 3) < 0.01
    torch.testing.assert_close(values, keyed_uniform(torch.arange(20000), seed=7, width=16), rtol=0, atol=0)
    assert not torch.equal(values, keyed_uniform(torch.arange(20000), seed=8, width=16))


def test_a_key_starts_from_the_same_vector_whatever_the_insertion_order():
    first, second = shard(), shard()
    rows_a = first.find_or_insert(torch.tensor([5, 9, 2]), insert=True)
    rows_b = second.find_or_insert(torch.tensor([2, 5, 9]), insert=True)
    vectors_a = dict(zip([5, 9, 2], first.gather(rows_a), strict=True))
    vectors_b = dict(zip([2, 5, 9], second.gather(rows_b), strict=True))
    for key in (2, 5, 9):
        assert torch.equal(vectors_a[key], vectors_b[key])
    assert float(first.gather(rows_a).abs().max()) <= 0.05


def test_a_key_starts_from_the_same_vector_on_any_rank():
    single = shard()
    owner = shard(rank=1, world_size=2)
    key = torch.tensor([7])
    assert torch.equal(single.gather(single.find_or_insert(key, True)), owner.gather(owner.find_or_insert(key, True)))


def test_slot_sizes_set_the_bound_of_localized_keys():
    table = shard(kind="localized", slot_size_array=(4, 10000))
    rows = table.find_or_insert(torch.arange(200), insert=True, slot_ids=torch.ones(200, dtype=torch.int64))
    assert float(table.gather(rows).abs().max()) <= 0.01  # sqrt(1/10000)
