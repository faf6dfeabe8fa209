"""DistributedSparseEmbedding and the collectives: routing simulated in one process, then 2 gloo ranks.

The multi-rank tests run through `run_on_ranks` on a 2-worker `LocalCluster` shared by the module. Their
rank functions live in this file and travel to the workers by value (cloudpickle), since the workers
cannot import pytest's test modules.
"""

from __future__ import annotations

import sys

import cloudpickle
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ctrflow.embedding import communication
from ctrflow.embedding.distributed import (
    DistributedSparseEmbedding,
    local_slice,
    look_up_owned,
    pool_vectors,
    route_local_batch,
)
from ctrflow.embedding.sharding import key_ranks
from ctrflow.embedding.sparse_embedding import SparseEmbedding
from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig
from ctrflow.pipeline.cluster import ClusterSpec, run_on_ranks, start_cluster
from ctrflow.readers.types import SparseBatch

cloudpickle.register_pickle_by_value(sys.modules[__name__])

NUM_SLOTS, VEC, BATCH = 4, 4, 8
SLOT_SIZES = (5, 7, 6, 9)


def make_config(kind: str, optimizer: str = "sgd", update: str = "global", combiner: str = "sum") -> EmbeddingConfig:
    return EmbeddingConfig(
        name="emb",
        bottom="data1",
        kind=kind,  # type: ignore[arg-type]
        num_slots=NUM_SLOTS,
        embedding_vec_size=VEC,
        combiner=combiner,  # type: ignore[arg-type]
        workspace_size_per_gpu_in_mb=1,
        slot_size_array=SLOT_SIZES if kind == "one_hot" else (),
        optimizer=SparseOptimizerConfig(kind=optimizer, update_type=update, momentum_factor=0.5),  # type: ignore[arg-type]
    )


def random_batch(seed: int, kind: str, batch_size: int = BATCH, vocabulary: int = 40) -> SparseBatch:
    """Hash kinds: 0-3 keys per slot, duplicates and negative keys; one_hot: one per-slot id per slot."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "one_hot":
        keys = torch.stack([torch.randint(0, size, (batch_size,), generator=gen) for size in SLOT_SIZES], 1)
        return SparseBatch(keys.reshape(-1), torch.arange(batch_size * NUM_SLOTS + 1), NUM_SLOTS)
    lengths = torch.randint(0, 4, (batch_size * NUM_SLOTS,), generator=gen)
    keys = torch.randint(-vocabulary // 4, vocabulary, (int(lengths.sum()),), generator=gen)
    if kind == "localized":  # disjoint key ranges per slot, so a key has one slot id
        slot_of_key = torch.repeat_interleave(torch.arange(lengths.numel()) % NUM_SLOTS, lengths)
        keys = keys.abs() + 1000 * slot_of_key
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return SparseBatch(keys, offsets, NUM_SLOTS)


def initial_table(config: EmbeddingConfig, batches: list[SparseBatch]) -> tuple:
    """A one-rank table holding every key of `batches` (so 1 and R ranks start from the same rows)."""
    embedding = DistributedSparseEmbedding(config, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        for batch in batches:
            embedding(batch)
    return embedding.dump()


def sorted_rows(keys: torch.Tensor, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.argsort(keys)
    return keys[order], vectors[order]


# -- rank functions (run on the dask workers and, with world size 1, in this process) ---------------------


def train_steps(rank, world_size, config, table, head_state, batches, lr, single_rank_module=False):
    embedding = SparseEmbedding(config) if single_rank_module else DistributedSparseEmbedding(config)
    embedding.load(*table)
    head = nn.Linear(NUM_SLOTS * VEC, 1)
    head.load_state_dict(head_state)
    for sparse, labels in batches:
        out = embedding(local_slice(sparse, rank, world_size))
        local_labels = labels.chunk(world_size)[rank]
        loss = F.binary_cross_entropy_with_logits(head(out.flatten(1)), local_labels)  # mean over local samples
        loss.backward()
        communication.allreduce_gradients(head.parameters())
        embedding.step(lr)
        with torch.no_grad():
            for p in head.parameters():
                p -= lr * p.grad
                p.grad = None
    full = embedding.dump() if single_rank_module else embedding.gather_dump()
    return full, head.state_dict(), embedding.dump()


def train_then_evaluate(rank, world_size, config, table, head_state, batches, lr, eval_batch):
    dumps = train_steps(rank, world_size, config, table, head_state, batches, lr)
    embedding = DistributedSparseEmbedding(config)
    embedding.load(*dumps[0])
    embedding.eval()
    with torch.no_grad():
        return dumps[0], embedding(local_slice(eval_batch, rank, world_size))


def exercise_collectives(rank, world_size):
    device = torch.device("cpu")
    received = communication.exchange_split_sizes([10 * rank + j for j in range(world_size)], device)
    rows = torch.arange(6, dtype=torch.float32).view(3, 2) + 100 * rank
    rows.requires_grad_(True)
    send = [1, 2] if rank == 0 else [2, 1]
    recv = communication.exchange_split_sizes(send, device)
    out = communication.all_to_all(rows, send, recv)
    (out * (rank + 1)).sum().backward()
    gathered = communication.all_gather_variable(torch.full((rank + 1, 2), float(rank)))
    return received, out.detach(), rows.grad, [g.shape[0] for g in gathered], gathered[1]


def dense_gradients(rank, world_size, inputs, targets, state, average):
    model = nn.Linear(3, 1)
    model.load_state_dict(state)
    local_x, local_y = inputs.chunk(world_size)[rank], targets.chunk(world_size)[rank]
    F.mse_loss(model(local_x), local_y).backward()
    communication.allreduce_gradients(model.parameters(), average=average)
    return [p.grad.clone() for p in model.parameters()]


# -- single-process tests ------------------------------------------------------------------------------


def simulate_forward(config: EmbeddingConfig, table: tuple, batch: SparseBatch, world_size: int) -> torch.Tensor:
    """R ranks in one process: the same route / look-up / pool steps, with lists in place of all-to-all."""
    owners = [DistributedSparseEmbedding(config, rank=r, world_size=world_size) for r in range(world_size)]
    for owner in owners:
        owner.load(*table)
    locals_ = [local_slice(batch, r, world_size) for r in range(world_size)]
    routes = [route_local_batch(b, config, world_size) for b in locals_]
    blocks = [list(torch.split(route.unique_keys, route.send_splits)) for route in routes]
    served: list[list[torch.Tensor]] = [[] for _ in range(world_size)]
    for o, owner in enumerate(owners):
        received = [blocks[r][o] for r in range(world_size)]
        if config.kind == "distributed":
            assert all(bool((key_ranks(k, world_size) == o).all()) for k in received)
        keys = torch.cat(received)
        rows, inverse = look_up_owned(owner.shard, keys, torch.zeros_like(keys), insert=False)
        vectors = owner.shard.gather(rows)[inverse]
        for r, part in enumerate(torch.split(vectors, [b.numel() for b in received])):
            served[r].append(part)
    outputs = [pool_vectors(torch.cat(served[r]), routes[r], config.combiner) for r in range(world_size)]
    return torch.cat(outputs).view(batch.batch_size, NUM_SLOTS, VEC)


@pytest.mark.parametrize("kind", ["distributed", "localized", "one_hot"])
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_simulated_ranks_pool_the_same_vectors_as_one_rank(kind, world_size):
    config = make_config(kind, combiner="mean")
    batch = random_batch(1, kind, batch_size=12)
    table = initial_table(config, [batch])
    reference = DistributedSparseEmbedding(config)
    reference.load(*table)
    reference.eval()
    with torch.no_grad():
        expected = reference(batch)
    torch.testing.assert_close(simulate_forward(config, table, batch, world_size), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("world_size", [2, 3, 5])
def test_route_groups_distinct_keys_by_owner(world_size):
    config = make_config("distributed")
    batch = random_batch(2, "distributed", batch_size=10)
    route = route_local_batch(batch, config, world_size)
    owners = key_ranks(route.unique_keys, world_size)
    assert sum(route.send_splits) == route.unique_keys.numel() == torch.unique(batch.keys).numel()
    assert bool((owners[1:] >= owners[:-1]).all())
    assert torch.equal(route.unique_keys[route.inverse], batch.keys)


def test_localized_route_sends_each_slot_to_slot_mod_world_size():
    config = make_config("localized")
    batch = random_batch(3, "localized")
    route = route_local_batch(batch, config, 3)
    owners = torch.repeat_interleave(torch.arange(3), torch.tensor(route.send_splits))
    assert torch.equal(owners, route.unique_slots % 3)


def test_mean_counts_unseen_keys_of_the_slot_at_evaluation():
    config = make_config("distributed", combiner="mean")
    embedding = DistributedSparseEmbedding(config)
    known = SparseBatch(torch.tensor([5]), torch.tensor([0, 1, 1, 1, 1]), NUM_SLOTS)
    with torch.no_grad():
        embedding(known)
    embedding.eval()
    batch = SparseBatch(torch.tensor([5, 999, 5]), torch.tensor([0, 3, 3, 3, 3]), NUM_SLOTS)
    with torch.no_grad():
        out = embedding(batch)
    vector = embedding.dump()[1][0]
    torch.testing.assert_close(out[0, 0], 2 * vector / 3)
    assert embedding.shard.num_keys == 1


@pytest.mark.parametrize("kind", ["distributed", "localized", "one_hot"])
def test_one_rank_trains_exactly_like_sparse_embedding(kind):
    config = make_config(kind, "adam", combiner="mean")
    batches = [(random_batch(50 + i, kind), torch.randint(0, 2, (BATCH, 1)).float()) for i in range(2)]
    table = initial_table(config, [b for b, _ in batches])
    head_state = nn.Linear(NUM_SLOTS * VEC, 1).state_dict()
    want, want_head, _ = train_steps(0, 1, config, table, head_state, batches, 0.1, True)
    got, got_head, _ = train_steps(0, 1, config, table, head_state, batches, 0.1)
    torch.testing.assert_close(sorted_rows(*got[:2]), sorted_rows(*want[:2]), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got_head, want_head, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("combiner", ["sum", "mean"])
def test_pooled_vectors_and_their_gradients_match_a_float64_reference(combiner):
    config = make_config("distributed", combiner=combiner)
    batch = random_batch(60, "distributed")
    route = route_local_batch(batch, config, 3)
    vectors = torch.randn(route.unique_keys.numel(), VEC, dtype=torch.float64, requires_grad=True)
    pooled = pool_vectors(vectors, route, combiner)
    reference_vectors = vectors.detach().clone().requires_grad_(True)
    lengths = batch.lengths().reshape(-1)
    segments = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    per_key = reference_vectors[route.inverse]
    if combiner == "mean":
        per_key = per_key / lengths.clamp(min=1)[segments].unsqueeze(1).double()
    reference = torch.zeros(lengths.numel(), VEC, dtype=torch.float64).index_add(0, segments, per_key)
    weights = torch.randn_like(reference)
    (pooled * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(pooled, reference)  # float64: exact up to summation order
    torch.testing.assert_close(vectors.grad, reference_vectors.grad)


def test_two_forwards_before_one_step_accumulate_like_sparse_embedding():
    config = make_config("distributed", "adagrad")
    batches = [random_batch(70 + i, "distributed") for i in range(2)]
    table = initial_table(config, batches)
    modules = [SparseEmbedding(config), DistributedSparseEmbedding(config)]
    for module in modules:
        module.load(*table)
        for batch in batches:
            module(batch).square().sum().backward()
        module.step(0.1, grad_scale=0.5)
    torch.testing.assert_close(sorted_rows(*modules[1].dump()[:2]), sorted_rows(*modules[0].dump()[:2]))
    assert not torch.equal(sorted_rows(*modules[1].dump()[:2])[1], sorted_rows(*table[:2])[1])


def test_local_slice_gives_rank_its_contiguous_samples():
    batch = random_batch(4, "distributed", batch_size=6)
    second = local_slice(batch, 1, 3)
    assert second.batch_size == 2
    start, stop = int(batch.offsets[2 * NUM_SLOTS]), int(batch.offsets[4 * NUM_SLOTS])
    assert torch.equal(second.keys, batch.keys[start:stop])


def test_local_slice_rejects_batch_that_does_not_split_evenly():
    with pytest.raises(ValueError, match="does not split evenly over 4 ranks"):
        local_slice(random_batch(5, "distributed", batch_size=6), 0, 4)


def test_forward_on_several_ranks_without_process_group_says_to_use_run_on_ranks():
    embedding = DistributedSparseEmbedding(make_config("distributed"), rank=1, world_size=2)
    with pytest.raises(RuntimeError, match=r"rank 1\) was built for 2 ranks.*run_on_ranks"):
        embedding(random_batch(6, "distributed"))


def test_forward_rejects_batch_with_other_slot_count():
    embedding = DistributedSparseEmbedding(make_config("distributed"))
    batch = SparseBatch(torch.tensor([1]), torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match='has 2 slots but the input "data1" was declared with 4'):
        embedding(batch)


def test_loading_localized_rows_without_slot_ids_names_the_slot_id_file():
    embedding = DistributedSparseEmbedding(make_config("localized"), rank=0, world_size=2)
    with pytest.raises(ValueError, match="slot_id file"):
        embedding.load(torch.tensor([1, 2]), torch.zeros(2, VEC))


def test_load_keeps_only_the_rows_this_rank_owns():
    config = make_config("distributed")
    keys = torch.tensor([0, 1, 2, 3, -1, -2])
    embedding = DistributedSparseEmbedding(config, rank=1, world_size=2)
    embedding.load(keys, torch.arange(6 * VEC, dtype=torch.float32).view(6, VEC))
    kept = embedding.dump()[0]
    assert sorted(kept.tolist()) == [-1, 1, 3]  # uint64(-1) = 2^64 - 1 is odd


# -- two gloo ranks ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    with start_cluster(ClusterSpec.from_vvgpu([[0, 1]])) as running:
        yield running


def test_collectives_exchange_sizes_rows_and_gradients(cluster):
    results = run_on_ranks(cluster, exercise_collectives)
    (sizes0, out0, grad0, counts0, block0), (sizes1, out1, grad1, _, _) = results
    assert sizes0 == [0, 10] and sizes1 == [1, 11]
    # rank 0 sends row 0 to itself and rows 1-2 to rank 1; rank 1 sends rows 0-1 to rank 0 and row 2 to itself
    torch.testing.assert_close(out0, torch.tensor([[0.0, 1.0], [100.0, 101.0], [102.0, 103.0]]))
    torch.testing.assert_close(out1, torch.tensor([[2.0, 3.0], [4.0, 5.0], [104.0, 105.0]]))
    # each row's gradient is the weight (receiver rank + 1) of the rank it went to
    torch.testing.assert_close(grad0, torch.tensor([[1.0, 1.0], [2.0, 2.0], [2.0, 2.0]]))
    torch.testing.assert_close(grad1, torch.tensor([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]))
    assert counts0 == [1, 2]
    torch.testing.assert_close(block0, torch.ones(2, 2))


def test_averaged_dense_gradients_on_two_ranks_equal_the_global_batch_mean_gradient(cluster):
    torch.manual_seed(0)
    inputs, targets = torch.randn(6, 3), torch.randn(6, 1)
    state = nn.Linear(3, 1).state_dict()
    expected = dense_gradients(0, 1, inputs, targets, state, True)
    for grads in run_on_ranks(cluster, dense_gradients, inputs, targets, state, True):
        for got, want in zip(grads, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    summed = run_on_ranks(cluster, dense_gradients, inputs, targets, state, False)[0]
    torch.testing.assert_close(summed[0], 2 * expected[0], rtol=1e-6, atol=1e-6)


TRAINING_CASES = [
    ("distributed", "adam", "global", "sum"),
    ("distributed", "momentum_sgd", "local", "mean"),
    ("localized", "adagrad", "local", "mean"),
    ("one_hot", "sgd", "global", "sum"),
]


@pytest.mark.parametrize(("kind", "optimizer", "update", "combiner"), TRAINING_CASES)
def test_two_ranks_train_the_same_rows_and_dense_weights_as_one_rank(cluster, kind, optimizer, update, combiner):
    config = make_config(kind, optimizer, update, combiner)
    batches = [(random_batch(10 + i, kind), torch.randint(0, 2, (BATCH, 1)).float()) for i in range(3)]
    table = initial_table(config, [b for b, _ in batches])
    torch.manual_seed(1)
    head_state = nn.Linear(NUM_SLOTS * VEC, 1).state_dict()
    (keys, vectors, slots), head, _ = train_steps(0, 1, config, table, head_state, batches, 0.05, True)
    for (got_keys, got_vectors, got_slots), got_head, _ in run_on_ranks(
        cluster, train_steps, config, table, head_state, batches, 0.05
    ):
        want_keys, want_vectors = sorted_rows(keys, vectors)
        have_keys, have_vectors = sorted_rows(got_keys, got_vectors)
        assert torch.equal(have_keys, want_keys)
        # float32, different summation order over ranks: agree to a few ulps of the step size
        torch.testing.assert_close(have_vectors, want_vectors, rtol=1e-5, atol=1e-6)
        assert (slots is None) == (got_slots is None)
        for name in head:
            torch.testing.assert_close(got_head[name], head[name], rtol=1e-5, atol=1e-6)
    assert not torch.equal(sorted_rows(keys, vectors)[1], sorted_rows(table[0], table[1])[1])


def test_a_rank_whose_samples_have_no_keys_still_trains_with_the_others(cluster):
    config = make_config("distributed", "adam")
    full = random_batch(80, "distributed")
    half = int(full.offsets[BATCH // 2 * NUM_SLOTS])
    offsets = torch.cat([full.offsets[: BATCH // 2 * NUM_SLOTS + 1], torch.full((BATCH // 2 * NUM_SLOTS,), half)])
    batches = [(SparseBatch(full.keys[:half], offsets, NUM_SLOTS), torch.ones(BATCH, 1))]
    table = initial_table(config, [b for b, _ in batches])
    head_state = nn.Linear(NUM_SLOTS * VEC, 1).state_dict()
    (keys, vectors, _), head, _ = train_steps(0, 1, config, table, head_state, batches, 0.1, True)
    for (got_keys, got_vectors, _), got_head, _ in run_on_ranks(
        cluster, train_steps, config, table, head_state, batches, 0.1
    ):
        torch.testing.assert_close(sorted_rows(got_keys, got_vectors), sorted_rows(keys, vectors), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got_head, head, rtol=1e-5, atol=1e-6)


def test_gather_dump_puts_rank_blocks_in_rank_order(cluster):
    config = make_config("distributed")
    batches = [(random_batch(20, "distributed"), torch.ones(BATCH, 1))]
    table = initial_table(config, [b for b, _ in batches])
    head_state = nn.Linear(NUM_SLOTS * VEC, 1).state_dict()
    results = run_on_ranks(cluster, train_steps, config, table, head_state, batches, 0.1)
    (keys, _, _), _, own0 = results[0]
    own1 = results[1][2]
    assert torch.equal(keys, torch.cat([own0[0], own1[0]]))
    assert bool((key_ranks(own0[0], 2) == 0).all()) and bool((key_ranks(own1[0], 2) == 1).all())


@pytest.mark.parametrize("kind", ["distributed", "localized", "one_hot"])
def test_model_saved_on_two_ranks_loads_on_one_with_identical_lookups(cluster, kind):
    config = make_config(kind, "adagrad")
    batches = [(random_batch(30 + i, kind), torch.ones(BATCH, 1)) for i in range(2)]
    eval_batch = random_batch(40, kind, vocabulary=60)  # has keys never trained
    head_state = nn.Linear(NUM_SLOTS * VEC, 1).state_dict()
    empty = DistributedSparseEmbedding(config).dump()
    empty = (empty[0][:0], empty[1][:0], None if empty[2] is None else empty[2][:0])
    if kind == "one_hot":
        empty = initial_table(config, [])
    results = run_on_ranks(cluster, train_then_evaluate, config, empty, head_state, batches, 0.1, eval_batch)
    saved = results[0][0]
    single = SparseEmbedding(config)
    single.load(*saved)
    single.eval()
    with torch.no_grad():
        expected = single(eval_batch)
    torch.testing.assert_close(torch.cat([out for _, out in results]), expected, rtol=0, atol=0)
    assert expected.abs().sum() > 0
