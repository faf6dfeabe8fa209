"""SparseEmbedding behaviour: eval lookups, freezing, autocast, state dicts and input errors."""

from __future__ import annotations

import logging

import pytest
import torch

from ctrflow.embedding import EmbeddingConfig, SparseEmbedding, SparseOptimizerConfig
from ctrflow.readers.types import SparseBatch


def make_embedding(kind="distributed", combiner="sum", optimizer=None, slot_size_array=(), **kwargs):
    config = EmbeddingConfig(
        "emb", "data1", kind, num_slots=2, embedding_vec_size=3, combiner=combiner,
        workspace_size_per_gpu_in_mb=1, slot_size_array=slot_size_array,
        optimizer=optimizer or SparseOptimizerConfig("sgd"),
    )  # fmt: skip
    return SparseEmbedding(config, generator=torch.Generator().manual_seed(0), **kwargs)


def batch(rows: list[list[list[int]]]) -> SparseBatch:
    """[[slot0 keys, slot1 keys], ...] -> CSR."""
    lengths = [len(keys) for sample in rows for keys in sample]
    flat = [k for sample in rows for keys in sample for k in keys]
    offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int64)
    return SparseBatch(torch.tensor(flat, dtype=torch.int64), offsets, len(rows[0]))


def test_output_is_batch_slots_vec_and_requires_grad_without_dense_parameters():
    embedding = make_embedding()
    out = embedding(batch([[[1, 2], []], [[3], [1, 1]]]))
    assert out.shape == (2, 2, 3) and out.dtype == torch.float32
    assert out.requires_grad
    assert list(embedding.parameters()) == []
    assert (out[0, 1] == 0).all()  # empty slot


def test_eval_reads_unseen_keys_as_zeros_counts_them_in_the_mean_and_inserts_nothing():
    embedding = make_embedding(combiner="mean")
    embedding(batch([[[7], [8]]]))
    seen = embedding.dump()[1][0]
    embedding.eval()
    out = embedding(batch([[[7, 99], [100]]]))
    torch.testing.assert_close(out[0, 0], seen / 2)
    assert (out[0, 1] == 0).all()
    assert embedding.num_keys == 2


def test_mean_divides_only_when_a_slot_has_several_keys_and_counts_duplicates():
    embedding = make_embedding(combiner="mean")
    out = embedding(batch([[[4, 4, 5], [4]]]))
    keys, vectors, _ = embedding.dump()
    four, five = vectors[keys.tolist().index(4)], vectors[keys.tolist().index(5)]
    torch.testing.assert_close(out[0, 0], (2 * four + five) / 3)
    torch.testing.assert_close(out[0, 1], four)


def test_frozen_embedding_stays_bit_identical_and_inserts_no_keys():
    embedding = make_embedding(optimizer=SparseOptimizerConfig("adam", "global"))
    embedding(batch([[[1], [2]]])).sum().backward()
    embedding.step(0.1)
    before = embedding.dump()
    embedding.frozen = True
    out = embedding(batch([[[1, 3], [2]]]))
    out.sum().backward()
    embedding.step(0.1)
    after = embedding.dump()
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert embedding.shard.step_count == 1


def test_lr_zero_is_hugectr_freeze_states_still_move():
    embedding = make_embedding(optimizer=SparseOptimizerConfig("momentum_sgd", "global", momentum_factor=0.5))
    embedding(batch([[[1], [2]]])).sum().backward()
    embedding.step(0.1)
    before = embedding.dump()[1].clone()
    embedding(batch([[[1], [2]]])).sum().backward()
    embedding.step(0.0)
    assert not torch.equal(embedding.dump()[1], before)


def test_step_without_backward_still_runs_the_global_pass():
    embedding = make_embedding(optimizer=SparseOptimizerConfig("adam", "global"))
    embedding(batch([[[1], [2]]])).sum().backward()
    embedding.step(0.1)
    before = embedding.dump()[1].clone()
    embedding.step(0.1)
    assert embedding.shard.step_count == 2
    assert not torch.equal(embedding.dump()[1], before)


def test_autocast_keeps_float32_output_unless_another_dtype_is_asked():
    embedding = make_embedding()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = embedding(batch([[[1], [2]]]))
    assert out.dtype == torch.float32
    half = make_embedding(output_dtype=torch.bfloat16)
    out = half(batch([[[1], [2]]]))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    half.step(0.1)
    assert half.shard.step_count == 1


def test_module_state_dict_round_trip_restores_rows_states_and_step():
    optimizer = SparseOptimizerConfig("adam", "local")
    embedding = make_embedding(optimizer=optimizer)
    for _ in range(2):
        embedding(batch([[[1, 5], [2]]])).sum().backward()
        embedding.step(0.1)
    state = embedding.state_dict()
    assert {"keys", "vectors", "state_0", "state_1", "step"} <= set(state)
    other = make_embedding(optimizer=optimizer)
    other.load_state_dict(state)
    assert other.shard.step_count == 2
    assert torch.equal(other.dump()[1], embedding.dump()[1])
    assert torch.equal(other.optimizer_states()[1], embedding.optimizer_states()[1])


def test_hybrid_logs_that_it_runs_as_one_hot(caplog):
    with caplog.at_level(logging.WARNING, logger="ctrflow.embedding.sparse_embedding"):
        make_embedding("hybrid", slot_size_array=(3, 4))
    assert "runs as LocalizedSlotSparseEmbeddingOneHot" in caplog.text


def test_one_hot_uses_slot_offsets_and_rejects_ids_outside_the_slot():
    embedding = make_embedding("one_hot", slot_size_array=(3, 4))
    out = embedding(batch([[[2], [0]]]))
    vectors = embedding.dump()[1]
    torch.testing.assert_close(out[0], torch.stack([vectors[2], vectors[3]]))
    with pytest.raises(ValueError, match=r"one-hot key 4 of slot 1 is outside \[0, 4\)"):
        embedding(batch([[[0], [4]]]))


def test_input_errors_name_the_embedding_and_the_fix():
    embedding = make_embedding()
    with pytest.raises(ValueError, match='"emb": input "data1" should have 2 slots, received a batch with 1'):
        embedding(batch([[[1]]]))
    with pytest.raises(TypeError, match=r"must be int64, received torch\.int32"):
        embedding(SparseBatch(torch.tensor([1], dtype=torch.int32), torch.tensor([0, 1, 1]), 2))
    with pytest.raises(ValueError, match="lr must be a number >= 0, received -1"):
        embedding.step(-1)
    other_rank = make_embedding(rank=1, world_size=2)
    with pytest.raises(ValueError, match=r"rank 1 of 2; use sharding\.route_batch"):
        other_rank(batch([[[1], [2]]]))
    with pytest.raises(TypeError, match="expects an EmbeddingConfig, received dict"):
        SparseEmbedding({})  # type: ignore[arg-type]


@pytest.mark.parametrize("combiner", ["sum", "mean"])
@pytest.mark.parametrize(("kind", "slot_size_array"), [("distributed", ()), ("one_hot", (6, 5))])
def test_autocast_output_is_the_rounded_float32_output_and_trains_the_same(kind, slot_size_array, combiner):
    optimizer = SparseOptimizerConfig("adam", "local")
    plain = make_embedding(kind, combiner, optimizer, slot_size_array)
    direct = make_embedding(kind, combiner, optimizer, slot_size_array, autocast_output=True)
    data = batch([[[1, 2], [0]], [[3], [4, 4, 1]], [[2, 2], []]])
    upstream = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(5))
    outputs = []
    for embedding in (plain, direct):
        for _ in range(3):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = embedding(data)
                # what an autocast consumer (a bmm) does with the float32 output: cast it to bf16
                consumed = out.to(torch.bfloat16)
            (consumed.float() * upstream).sum().backward()
            embedding.step(0.1)
        outputs.append(out)
    assert outputs[0].dtype == torch.float32 and outputs[1].dtype == torch.bfloat16
    assert torch.equal(outputs[1], outputs[0].to(torch.bfloat16))
    assert torch.equal(direct.dump()[1], plain.dump()[1])
    assert torch.equal(direct.optimizer_states()[1], plain.optimizer_states()[1])


def test_autocast_output_without_autocast_keeps_the_output_dtype():
    embedding = make_embedding(autocast_output=True)
    assert embedding(batch([[[1], [2]]])).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        assert embedding(batch([[[1], [2]]])).dtype == torch.float32
