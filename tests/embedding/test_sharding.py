"""Routing of keys and slots to ranks (formats spec §6.3), for world sizes 1..4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctrflow.embedding import EmbeddingConfig, EmbeddingShard, SparseEmbedding, SparseOptimizerConfig
from ctrflow.embedding.one_hot_layout import offset_one_hot_keys
from ctrflow.embedding.pooled_lookup import lookup_rows, pooled_sum
from ctrflow.embedding.sharding import (
    assemble_outputs,
    key_ranks,
    route_batch,
    slot_ranks,
    slots_of_rank,
    split_output_grad,
)
from tests.embedding.reference_embedding import one_hot_batch, random_batch

WORLD_SIZES = [1, 2, 3, 4]


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_key_rank_is_the_unsigned_key_modulo_world_size(world_size):
    keys = [0, 1, 7, -1, -2, -(2**63), 2**63 - 1, 123456789012345]
    expected = [(k % 2**64) % world_size for k in keys]
    assert key_ranks(torch.tensor(keys), world_size).tolist() == expected


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_slot_rank_is_slot_modulo_world_size_and_ranks_own_their_slots(world_size):
    assert slot_ranks(7, world_size).tolist() == [s % world_size for s in range(7)]
    owned = [slots_of_rank(7, r, world_size).tolist() for r in range(world_size)]
    assert sorted(s for slots in owned for s in slots) == list(range(7))
    assert all(s % world_size == r for r, slots in enumerate(owned) for s in slots)


def test_world_size_below_one_is_rejected():
    with pytest.raises(ValueError, match="world_size must be at least 1, received 0"):
        key_ranks(torch.tensor([1]), 0)


@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("kind", ["distributed", "localized"])
def test_route_batch_sends_every_key_once_to_its_owner(kind, world_size):
    batch = random_batch(torch.Generator().manual_seed(world_size), 5, 4, max_nnz=3, key_low=-9, key_high=40)
    requests = route_batch(batch, kind, world_size)
    assert len(requests) == world_size
    assert sum(r.keys.numel() for r in requests) == batch.keys.numel()
    for rank, request in enumerate(requests):
        if kind == "distributed":
            assert (key_ranks(request.keys, world_size) == rank).all()
            assert request.num_segments == 5 * 4
        else:
            assert (request.key_slots() % world_size == rank).all()
            assert request.num_segments == 5 * slots_of_rank(4, rank, world_size).numel()


@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("kind", ["distributed", "localized", "one_hot"])
def test_shards_pool_and_reassemble_to_the_single_rank_output(kind, world_size):
    sizes = (6, 9, 4, 7)
    config = EmbeddingConfig(
        "emb", "data1", kind, num_slots=4, embedding_vec_size=3, workspace_size_per_gpu_in_mb=1,
        slot_size_array=sizes if kind == "one_hot" else (), optimizer=SparseOptimizerConfig("sgd"),
    )  # fmt: skip
    generator = torch.Generator().manual_seed(5)
    if kind == "one_hot":
        batch = one_hot_batch(generator, 6, sizes, max_nnz=2)
        slots = torch.repeat_interleave(torch.arange(24) % 4, batch.offsets[1:] - batch.offsets[:-1])
        batch.keys = offset_one_hot_keys(batch.keys, slots, sizes, "emb")
    else:
        batch = random_batch(generator, 6, 4, max_nnz=3, key_low=-5, key_high=30)
        if kind == "localized":  # one rank per slot holds its own rows: give each slot its own keys
            slots = torch.repeat_interleave(torch.arange(24) % 4, batch.offsets[1:] - batch.offsets[:-1])
            batch.keys = batch.keys * 4 + slots
    whole = SparseEmbedding(config, generator=torch.Generator().manual_seed(0))
    shards = [
        EmbeddingShard(config, capacity=config.capacity_per_rank(world_size), device="cpu",
                       generator=torch.Generator().manual_seed(r), rank=r, world_size=world_size)
        for r in range(world_size)
    ]  # fmt: skip
    parts = []
    for shard, request in zip(shards, route_batch(batch, kind, world_size), strict=True):
        rows = lookup_rows(shard, request.keys, insert=True, key_slots=request.key_slots())
        parts.append(pooled_sum(shard.weights, rows, request.offsets).view(6, request.slots.numel(), 3))
    # give the single-rank table the same vectors, then compare pooled outputs
    keys = torch.cat([s.dump()[0] for s in shards])
    vectors = torch.cat([s.dump()[1] for s in shards])
    whole.load(keys, vectors, torch.cat([s.dump()[2] for s in shards]) if kind != "distributed" else None)
    expected = pooled_sum(whole.shard.weights, whole.shard.find_or_insert(batch.keys, False), batch.offsets)
    assembled = assemble_outputs(kind, parts, 4)
    np.testing.assert_allclose(assembled.numpy(), expected.view(6, 4, 3).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_localized_output_grad_splits_by_owned_slots(world_size):
    grad = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    parts = split_output_grad("localized", grad, world_size)
    for rank, part in enumerate(parts):
        assert torch.equal(part, grad[:, slots_of_rank(5, rank, world_size)])
    assert torch.equal(assemble_outputs("localized", parts, 5), grad)
    assert all(p is grad for p in split_output_grad("distributed", grad, world_size))
