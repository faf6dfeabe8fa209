"""EmbeddingShard: capacity errors, row initialisation, dump / load and optimizer-state round trips."""

from __future__ import annotations

import math

import pytest
import torch

from ctrflow.embedding import EmbeddingConfig, EmbeddingShard, SparseEmbedding, SparseOptimizerConfig
from tests.embedding.reference_embedding import random_batch


def make_shard(kind="distributed", optimizer=None, capacity=None, vec=4, slot_size_array=(), seed=0, workspace=1):
    config = EmbeddingConfig(
        "table", "data1", kind, num_slots=3, embedding_vec_size=vec, workspace_size_per_gpu_in_mb=workspace,
        slot_size_array=slot_size_array, optimizer=optimizer or SparseOptimizerConfig("adam", "local"),
    )  # fmt: skip
    capacity = config.capacity_per_rank() if capacity is None else capacity
    return EmbeddingShard(config, capacity=capacity, device="cpu", generator=torch.Generator().manual_seed(seed))


def test_full_table_raises_with_name_capacity_keys_and_setting_and_stays_usable():
    shard = make_shard(capacity=5)
    shard.find_or_insert(torch.tensor([1, 2, 3]), insert=True)
    expected = r'"table".*capacity 5 rows, 3 keys held, 3 new keys.*6 keys seen.*workspace_size_per_gpu_in_mb \(now 1\)'
    with pytest.raises(ValueError, match=expected):
        shard.find_or_insert(torch.tensor([4, 5, 6]), insert=True)
    assert shard.num_keys == 3
    assert shard.find_or_insert(torch.tensor([3, 4]), insert=False).tolist() == [2, -1]
    assert shard.find_or_insert(torch.tensor([4, 5]), insert=True).tolist() == [3, 4]


def test_capacity_follows_the_workspace_formula():
    # formats spec §8: 75 MB, vec 16, Adam global -> 409,600 rows
    config = EmbeddingConfig("t", "d", "distributed", 1, 16, workspace_size_per_gpu_in_mb=75)
    assert SparseEmbedding(config).capacity == 409_600


def test_localized_with_slot_sizes_names_slot_size_array_when_full():
    shard = make_shard("localized", slot_size_array=(1, 1, 1))
    with pytest.raises(ValueError, match=r"capacity 3 rows.*slot_size_array"):
        shard.find_or_insert(torch.arange(4), insert=True)


def test_rows_start_uniform_within_five_hundredths_and_reproducibly():
    first = make_shard(vec=64, seed=3)
    second = make_shard(vec=64, seed=3)
    keys = torch.arange(500)
    first.find_or_insert(keys, insert=True)
    second.find_or_insert(keys, insert=True)
    vectors = first.dump()[1]
    assert torch.equal(vectors, second.dump()[1])
    assert vectors.abs().max() <= 0.05
    assert vectors.abs().max() > 0.049  # 32,000 draws reach the bound
    assert abs(vectors.mean().item()) < 2e-3


def test_per_slot_rows_start_within_sqrt_of_inverse_slot_size():
    sizes = (4, 100, 2500)
    shard = make_shard("one_hot", vec=32, slot_size_array=sizes)
    _, vectors, slot_ids = shard.dump()
    for slot, size in enumerate(sizes):
        rows = vectors[slot_ids == slot]
        bound = math.sqrt(1.0 / size)
        assert rows.shape[0] == size
        assert rows.abs().max() <= bound * (1 + 1e-6)
        assert rows.abs().max() > 0.9 * bound


def test_one_hot_dump_is_the_full_table_with_global_keys_in_slot_order():
    shard = make_shard("one_hot", slot_size_array=(2, 3, 1))
    keys, vectors, slot_ids = shard.dump()
    assert keys.tolist() == [0, 1, 2, 3, 4, 5]
    assert slot_ids.tolist() == [0, 0, 1, 1, 1, 2]
    assert vectors.shape == (6, 4)
    assert shard.num_keys == 6


def test_dump_load_round_trip_keeps_insertion_order():
    shard = make_shard("localized")
    shard.find_or_insert(torch.tensor([50, -7, 3]), insert=True, slot_ids=torch.tensor([2, 0, 1]))
    shard.find_or_insert(torch.tensor([3, 99]), insert=True, slot_ids=torch.tensor([1, 1]))
    keys, vectors, slot_ids = shard.dump()
    assert keys.tolist() == [50, -7, 3, 99]
    assert slot_ids.tolist() == [2, 0, 1, 1]
    other = make_shard("localized", seed=9)
    other.load(keys, vectors, slot_ids)
    loaded = other.dump()
    assert torch.equal(loaded[0], keys) and torch.equal(loaded[1], vectors) and torch.equal(loaded[2], slot_ids)
    assert other.find_or_insert(torch.tensor([99, 50]), insert=False).tolist() == [3, 0]


def test_optimizer_states_are_capacity_sized_in_row_order_and_round_trip():
    shard = make_shard(optimizer=SparseOptimizerConfig("adam", "local"), capacity=10)
    rows = shard.find_or_insert(torch.tensor([8, 6, 4]), insert=True)
    shard.apply_gradients(rows, torch.ones(3, 4), lr=0.1)
    m, v = shard.optimizer_states()
    assert m.shape == (10, 4) and v.shape == (10, 4)
    assert torch.allclose(m[:3], torch.full((3, 4), 0.1)) and (m[3:] == 0).all()
    assert torch.allclose(v[:3], torch.full((3, 4), 0.001))
    other = make_shard(optimizer=SparseOptimizerConfig("adam", "local"), capacity=10)
    other.load(*shard.dump()[:2])
    other.load_optimizer_states([m * 2, v * 3])
    assert torch.equal(other.optimizer_states()[0], m * 2)
    assert torch.equal(other.optimizer_states()[1], v * 3)


def test_adagrad_states_start_at_initial_accu_value_and_sgd_has_none():
    shard = make_shard(optimizer=SparseOptimizerConfig("adagrad", initial_accu_value=0.25), capacity=4)
    shard.find_or_insert(torch.tensor([1]), insert=True)
    (accm,) = shard.optimizer_states()
    assert (accm == 0.25).all()
    assert make_shard(optimizer=SparseOptimizerConfig("sgd"), capacity=4).optimizer_states() == []


def test_state_dict_round_trip_restores_rows_states_and_step():
    config_opt = SparseOptimizerConfig("adam", "lazy_global")
    shard = make_shard(optimizer=config_opt)
    rows = shard.find_or_insert(torch.tensor([5, 1]), insert=True)
    for _ in range(3):
        shard.apply_gradients(rows, torch.randn(2, 4), lr=0.1)
    other = make_shard(optimizer=config_opt, seed=4)
    other.load_state_dict(shard.state_dict())
    assert other.step_count == 3
    for a, b in zip(shard.optimizer_states(), other.optimizer_states(), strict=True):
        assert torch.equal(a, b)
    grads = torch.randn(2, 4)
    shard.apply_gradients(rows, grads, lr=0.1)
    other.apply_gradients(rows, grads, lr=0.1)
    assert torch.equal(shard.dump()[1], other.dump()[1])


def test_gather_reads_zeros_for_absent_rows():
    shard = make_shard()
    rows = shard.find_or_insert(torch.tensor([4]), insert=True)
    vectors = shard.gather(torch.tensor([-1, int(rows[0])]))
    assert (vectors[0] == 0).all() and torch.equal(vectors[1], shard.dump()[1][0])


def test_load_errors_name_what_is_wrong():
    shard = make_shard(capacity=2)
    with pytest.raises(ValueError, match="duplicate keys"):
        shard.load(torch.tensor([1, 1]), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"loading 3 keys into rank 0 whose capacity is 2"):
        shard.load(torch.tensor([1, 2, 3]), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"vectors \[n, 4\], received keys \[2\] and vectors \[2, 3\]"):
        shard.load(torch.tensor([1, 2]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="slot_id of every loaded key"):
        make_shard("localized").load(torch.tensor([1]), torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"state m must be \[2, 4\].*received \[3, 4\]"):
        shard.load_optimizer_states([torch.zeros(3, 4), torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="has 2 state tensors"):
        shard.load_optimizer_states([])


def test_distributed_shard_rejects_keys_of_other_ranks():
    config = EmbeddingConfig("table", "d", "distributed", 3, 4, workspace_size_per_gpu_in_mb=1)
    shard = EmbeddingShard(config, capacity=100, device="cpu", generator=torch.Generator(), rank=1, world_size=2)
    with pytest.raises(ValueError, match=r"uint64\(key\) mod 2 == 1"):
        shard.load(torch.tensor([1, 2]), torch.zeros(2, 4))


def test_shard_rejects_rank_outside_world():
    config = EmbeddingConfig("table", "d", "distributed", 3, 4, workspace_size_per_gpu_in_mb=1)
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, world_size=2\)"):
        EmbeddingShard(config, capacity=1, device="cpu", generator=torch.Generator(), rank=2, world_size=2)


def test_storage_grows_lazily_but_keys_beyond_a_batch_keep_their_vectors():
    shard = make_shard(capacity=10_000)
    generator = torch.Generator().manual_seed(1)
    before = None
    for step in range(5):
        batch = random_batch(generator, 64, 3, max_nnz=4, key_high=20_000)
        shard.find_or_insert(torch.unique(batch.keys), insert=True)
        if step == 0:
            before = shard.dump()
    keys, vectors, _ = shard.dump()
    assert torch.equal(vectors[: before[1].shape[0]], before[1])
    assert torch.equal(keys[: before[0].numel()], before[0])
