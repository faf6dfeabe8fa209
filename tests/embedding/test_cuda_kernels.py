"""CUDA paths (Triton kernels, key index on the GPU) against the CPU / float64 references.

Marked `device`: skipped without a CUDA device (and without triton, for the kernel-level tests).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from ctrflow.embedding import optimizers
from ctrflow.embedding.key_index import KeyIndex
from ctrflow.embedding.pooled_lookup import capture_gradient, pooled_sum, summed_gradients
from ctrflow.embedding.sparse_embedding import SparseEmbedding
from ctrflow.embedding.types import SparseOptimizerConfig
from tests.embedding.test_sparse_embedding_reference import (
    KINDS,
    OPTIMIZERS,
    check_training_against_reference,
    make_batch,
    make_config,
)
from tests.embedding.test_triton_kernels import (
    check_chunked_fused_update_of_a_hot_row,
    check_chunked_kernels_on_captures_without_rows,
    check_chunked_segment_sum_of_a_hot_row,
    check_chunked_segment_sum_when_every_row_needs_two_chunks,
    check_chunked_updates_of_fixed_size_and_compact_captures,
)

pytestmark = [
    pytest.mark.device,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton")

# float32 sums of <= 6 O(1) terms in another order than the float64 reference
ATOL = 1e-5


def random_csr(num_segments: int, num_rows: int, max_nnz: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, max_nnz + 1, (num_segments,), generator=generator)
    rows = torch.randint(-1, num_rows, (int(lengths.sum()),), generator=generator)  # -1: unseen at eval
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return rows, offsets


@needs_triton
@pytest.mark.parametrize("vec", [1, 16, 64, 128, 300])
def test_triton_pooled_sum_matches_float64(vec):
    from ctrflow.embedding import triton_kernels

    rows, offsets = random_csr(500, 40, 5, seed=vec)
    weights = torch.randn(40, vec)
    out = triton_kernels.pooled_sum(weights.cuda(), rows.cuda(), offsets.cuda()).cpu()
    expected = pooled_sum(weights.double(), rows, offsets)
    np.testing.assert_allclose(out.double().numpy(), expected.numpy(), atol=ATOL)


@needs_triton
@pytest.mark.parametrize("vec", [1, 8, 64, 128, 300])
def test_triton_segment_sum_matches_float64(vec):
    from ctrflow.embedding import triton_kernels

    rows, offsets = random_csr(500, 40, 5, seed=vec)
    grad = torch.randn(500, vec)
    captured = capture_gradient(rows.cuda(), offsets.cuda(), grad.cuda())
    out = triton_kernels.segment_sum(captured).cpu()
    expected = summed_gradients(capture_gradient(rows, offsets, grad.double()))
    np.testing.assert_allclose(out.double().numpy(), expected.numpy(), atol=ATOL)


@needs_triton
@pytest.mark.parametrize("vec", [1, 4, 64, 128, 300])
@pytest.mark.parametrize("kind", ["sgd", "adagrad", "momentum_sgd", "nesterov", "adam"])
def test_triton_fused_update_matches_the_float64_optimizer(kind, vec):
    from ctrflow.embedding import triton_kernels

    config = SparseOptimizerConfig(kind, "local", momentum_factor=0.9, initial_accu_value=0.1)  # type: ignore[arg-type]
    rows, offsets = random_csr(300, 50, 4, seed=1)
    grad = torch.randn(300, vec)
    weights = torch.randn(50, vec)
    states = [torch.rand(50, vec) for _ in optimizers.state_names(config)]
    cuda_weights, cuda_states = weights.cuda(), [s.cuda() for s in states]
    captured = capture_gradient(rows.cuda(), offsets.cuda(), grad.cuda())
    triton_kernels.fused_update(config, cuda_weights, cuda_states, captured, 0.1, 0.5, 3)
    reference = capture_gradient(rows, offsets, grad.double())
    w64, s64 = weights.double(), [s.double() for s in states]
    optimizers.apply_sparse_update(config, w64, s64, None, reference.rows, summed_gradients(reference) * 0.5, 0.1, 3)
    np.testing.assert_allclose(cuda_weights.cpu().double().numpy(), w64.numpy(), atol=1e-5, rtol=1e-5)
    for mine, theirs in zip(cuda_states, s64, strict=True):
        np.testing.assert_allclose(mine.cpu().double().numpy(), theirs.numpy(), atol=1e-5, rtol=1e-5)


def test_key_index_on_cuda_matches_cpu_rows():
    generator = torch.Generator().manual_seed(0)
    cpu, cuda = KeyIndex("cpu"), KeyIndex("cuda")
    for _ in range(5):
        keys = torch.unique(torch.randint(-(10**12), 10**12, (5000,), generator=generator))
        keys = keys[torch.randperm(keys.numel(), generator=generator)]
        cpu.find_or_insert(keys[cpu.find(keys) < 0])
        cuda.find_or_insert(keys[cuda.find(keys.cuda()).cpu() < 0].cuda())
    assert torch.equal(cpu.keys(), cuda.keys().cpu())
    probe = torch.cat([cpu.keys(), torch.tensor([10**13, -(10**13)])])
    assert torch.equal(cpu.find(probe), cuda.find(probe.cuda()).cpu())


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("combiner", ["sum", "mean"])
@pytest.mark.parametrize(("optimizer", "update_type", "extra"), OPTIMIZERS)
def test_cuda_training_steps_match_the_float64_reference(kind, combiner, optimizer, update_type, extra):
    config = make_config(kind, combiner, SparseOptimizerConfig(optimizer, update_type, **extra))
    check_training_against_reference(config, "cuda")


@pytest.mark.parametrize("kind", ["distributed", "one_hot"])
@pytest.mark.parametrize(("optimizer", "update_type", "extra"), [o for o in OPTIMIZERS if o[1] == "global"])
def test_cuda_announced_steps_match_the_float64_reference(kind, optimizer, update_type, extra):
    config = make_config(kind, "sum", SparseOptimizerConfig(optimizer, update_type, **extra))
    check_training_against_reference(config, "cuda", announce=True)


def _train_adam_global(announce: bool, steps: int = 3) -> list[torch.Tensor]:
    config = make_config("one_hot", "sum", SparseOptimizerConfig("adam", "global"))
    embedding = SparseEmbedding(config, device="cuda", generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(5)
    for _ in range(steps):
        if announce:
            embedding.announce_step(0.01)
        out = embedding(make_batch(config, generator, batch_size=16).to("cuda"))
        (out * 2).sum().backward()
        embedding.step(0.01)
    return [embedding.shard.weights.clone(), *[s.clone() for s in embedding.shard.states]]


@needs_triton
def test_overlapped_untouched_pass_gives_bit_identical_tables():
    started = _train_adam_global(announce=True)
    after = _train_adam_global(announce=False)
    for overlapped, serial in zip(started, after, strict=True):
        assert torch.equal(overlapped, serial)


@needs_triton
def test_a_second_forward_in_an_announced_step_is_refused():
    config = make_config("one_hot", "sum", SparseOptimizerConfig("adam", "global"))
    embedding = SparseEmbedding(config, device="cuda", generator=torch.Generator().manual_seed(1))
    batch = make_batch(config, torch.Generator().manual_seed(5)).to("cuda")
    embedding.announce_step(0.01)
    embedding(batch)
    embedding.announce_step(0.01)
    with pytest.raises(RuntimeError, match="a second training forward in an announced step"):
        embedding(batch)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_pooled_sum_in_a_half_dtype_is_the_rounded_float32_sum(dtype):
    from ctrflow.embedding import triton_kernels

    rows, offsets = random_csr(500, 40, 5, seed=3)
    weights = torch.randn(40, 128).cuda()
    wide = triton_kernels.pooled_sum(weights, rows.cuda(), offsets.cuda())
    half = triton_kernels.pooled_sum(weights, rows.cuda(), offsets.cuda(), dtype=dtype)
    assert half.dtype == dtype
    assert torch.equal(half, wide.to(dtype))  # round to nearest even, as torch's cast


@needs_triton
@pytest.mark.parametrize("kind", ["sgd", "adagrad", "momentum_sgd", "nesterov", "adam"])
@pytest.mark.parametrize("update_type", ["local", "global"])
def test_triton_updates_of_fixed_size_and_compact_captures_are_equal(kind, update_type):
    from ctrflow.embedding import triton_kernels

    config = SparseOptimizerConfig(kind, update_type, momentum_factor=0.9, initial_accu_value=0.1)  # type: ignore[arg-type]
    rows, offsets = random_csr(300, 50, 4, seed=2)
    grad = torch.randn(300, 64).cuda()
    update = triton_kernels.fused_global_update if update_type == "global" else triton_kernels.fused_update
    if update_type == "global" and kind in ("sgd", "adagrad"):
        update = triton_kernels.fused_update
    results = []
    for fixed in (False, True):
        generator = torch.Generator().manual_seed(4)
        weights = torch.randn(50, 64, generator=generator).cuda()
        states = [torch.rand(50, 64, generator=generator).cuda() for _ in optimizers.state_names(config)]
        captured = capture_gradient(rows.cuda(), offsets.cuda(), grad, 50, fixed_size=fixed)
        update(config, weights, states, captured, 0.1, 0.5, 3)
        results.append([weights, *states])
    for compact, fixed_size in zip(*results, strict=True):
        assert torch.equal(compact, fixed_size)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("combiner", ["sum", "mean"])
def test_cuda_autocast_output_is_the_rounded_output_and_trains_the_same(dtype, combiner):
    from ctrflow.embedding import SparseEmbedding

    config = make_config("one_hot", combiner, SparseOptimizerConfig("adam", "local"))
    generator = torch.Generator().manual_seed(7)
    batches = [make_batch(config, generator, 64).to("cuda") for _ in range(3)]
    upstream = torch.randn(64, config.num_slots, config.embedding_vec_size, generator=generator).cuda()
    outputs, embeddings = [], []
    for autocast_output in (False, True):
        embedding = SparseEmbedding(
            config, device="cuda", generator=torch.Generator().manual_seed(1), autocast_output=autocast_output
        )
        for batch in batches:
            with torch.autocast("cuda", dtype=dtype):
                out = embedding(batch)
                consumed = out.to(dtype)  # what an autocast bmm does with a float32 output
            (consumed.float() * upstream).sum().backward()
            embedding.step(0.05)
        outputs.append(out)
        embeddings.append(embedding)
    assert outputs[1].dtype == dtype
    assert torch.equal(outputs[1], outputs[0].to(dtype))
    assert torch.equal(embeddings[1].dump()[1], embeddings[0].dump()[1])


def test_a_cpu_batch_for_a_cuda_one_hot_table_is_checked_before_its_copy():
    from ctrflow.embedding import SparseEmbedding
    from ctrflow.readers.types import SparseBatch

    config = make_config("one_hot", "sum", SparseOptimizerConfig("sgd"))
    embedding = SparseEmbedding(config, device="cuda", generator=torch.Generator().manual_seed(1))
    slots = config.num_slots
    keys = torch.zeros(slots, dtype=torch.int64)
    keys[-1] = config.slot_size_array[-1]
    batch = SparseBatch(keys, torch.arange(slots + 1, dtype=torch.int64), slots)
    with pytest.raises(ValueError, match=rf"one-hot key {keys[-1].item()} of slot {slots - 1} is outside"):
        embedding(batch)


@needs_triton
@pytest.mark.parametrize("vec", [1, 16, 128, 300])
@pytest.mark.parametrize("chunk_size", [5, 64])
def test_triton_chunked_segment_sum_of_a_hot_row_is_within_float32_rounding_of_float64(vec, chunk_size):
    check_chunked_segment_sum_of_a_hot_row(vec, chunk_size, "cuda")


@needs_triton
def test_triton_chunked_segment_sum_when_every_row_needs_two_chunks():
    check_chunked_segment_sum_when_every_row_needs_two_chunks("cuda")


@needs_triton
@pytest.mark.parametrize("vec", [1, 16, 128, 300])
@pytest.mark.parametrize("update_type", ["local", "global"])
@pytest.mark.parametrize("kind", ["sgd", "adagrad", "momentum_sgd", "nesterov", "adam"])
def test_triton_chunked_fused_update_of_a_hot_row_matches_the_unchunked_update_and_float64(kind, update_type, vec):
    check_chunked_fused_update_of_a_hot_row(kind, update_type, vec, "cuda")


@needs_triton
@pytest.mark.parametrize("update_type", ["local", "global"])
@pytest.mark.parametrize("kind", ["sgd", "adagrad", "momentum_sgd", "nesterov", "adam"])
def test_triton_chunked_updates_of_fixed_size_and_compact_captures_of_a_hot_row_are_equal(kind, update_type):
    check_chunked_updates_of_fixed_size_and_compact_captures(kind, update_type, "cuda")


@needs_triton
@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("case", ["no segments", "empty segments", "only unseen keys"])
@pytest.mark.parametrize("kind", ["sgd", "adagrad", "momentum_sgd", "nesterov", "adam"])
def test_triton_chunked_kernels_leave_the_table_alone_for_captures_without_rows(kind, case, fixed):
    check_chunked_kernels_on_captures_without_rows(kind, case, fixed, "cuda")
