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
from ctrflow.embedding.types import SparseOptimizerConfig
from tests.embedding.test_sparse_embedding_reference import KINDS, OPTIMIZERS, make_config, train_against_reference

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
    train_against_reference(config, "cuda")
