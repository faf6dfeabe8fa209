"""The Triton kernels on CPU tensors through Triton's interpreter: fixed-size captures, half dtypes.

Triton reads TRITON_INTERPRET when the kernels are defined, so these run only in a process started with it:
`TRITON_INTERPRET=1 pytest tests/embedding/test_triton_kernels.py`. On a GPU, `test_cuda_kernels.py` runs
the compiled kernels against the float64 references.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from ctrflow.embedding import optimizers
from ctrflow.embedding.pooled_lookup import capture_gradient
from ctrflow.embedding.types import SparseOptimizerConfig

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" or importlib.util.find_spec("triton") is None,
    reason="needs triton and TRITON_INTERPRET=1 in the environment of the test process",
)

KINDS = ["sgd", "adagrad", "momentum_sgd", "nesterov", "adam"]


def random_csr(num_segments: int, num_rows: int, max_nnz: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, max_nnz + 1, (num_segments,), generator=generator)
    rows = torch.randint(-1, num_rows, (int(lengths.sum()),), generator=generator)  # -1: unseen at eval
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return rows, offsets


def tables(config: SparseOptimizerConfig, num_rows: int, vec: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(11)
    weights = torch.randn(num_rows, vec, generator=generator)
    return weights, [torch.rand(num_rows, vec, generator=generator) for _ in optimizers.state_names(config)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vec", [3, 16])
def test_fused_update_of_a_fixed_size_capture_equals_the_compact_capture(kind, vec):
    from ctrflow.embedding import triton_kernels

    config = SparseOptimizerConfig(kind, "local", momentum_factor=0.9, initial_accu_value=0.1)  # type: ignore[arg-type]
    rows, offsets = random_csr(120, 30, 4, seed=vec)
    grad = torch.randn(120, vec, generator=torch.Generator().manual_seed(2))
    results = []
    for fixed in (False, True):
        weights, states = tables(config, 30, vec)
        captured = capture_gradient(rows, offsets, grad, 30, fixed_size=fixed)
        triton_kernels.fused_update(config, weights, states, captured, 0.1, 0.5, 3)
        results.append([weights, *states])
    for compact, fixed_size in zip(*results, strict=True):
        assert torch.equal(compact, fixed_size)


@pytest.mark.parametrize("kind", ["momentum_sgd", "nesterov", "adam"])
def test_global_update_of_a_fixed_size_capture_equals_the_compact_capture(kind):
    from ctrflow.embedding import triton_kernels

    config = SparseOptimizerConfig(kind, "global", momentum_factor=0.9)  # type: ignore[arg-type]
    rows, offsets = random_csr(40, 50, 3, seed=1)  # few keys: most rows, the last one included, untouched
    rows = torch.where(rows == 49, -1, rows)
    grad = torch.randn(40, 4, generator=torch.Generator().manual_seed(3))
    results = []
    for fixed in (False, True):
        weights, states = tables(config, 50, 4)
        captured = capture_gradient(rows, offsets, grad, 50, fixed_size=fixed)
        triton_kernels.fused_global_update(config, weights, states, captured, 0.1, 0.5, 2)
        results.append([weights, *states])
    for compact, fixed_size in zip(*results, strict=True):
        assert torch.equal(compact, fixed_size)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_segment_sum_widens_a_half_gradient_as_it_loads_it(dtype):
    from ctrflow.embedding import triton_kernels

    rows, offsets = random_csr(100, 20, 4, seed=5)
    grad = torch.randn(100, 8, generator=torch.Generator().manual_seed(6)).to(dtype)
    half = capture_gradient(rows, offsets, grad, fixed_size=True)
    half.grad_output = grad  # as a CUDA capture keeps it for the kernels
    wide = capture_gradient(rows, offsets, grad.float(), fixed_size=True)
    assert torch.equal(triton_kernels.segment_sum(half), triton_kernels.segment_sum(wide))


def test_pooled_sum_rounds_the_float32_sums_to_the_output_dtype():
    from ctrflow.embedding import triton_kernels

    rows, offsets = random_csr(60, 20, 4, seed=7)
    weights = torch.randn(20, 8, generator=torch.Generator().manual_seed(8))
    wide = triton_kernels.pooled_sum(weights, rows, offsets)
    half = triton_kernels.pooled_sum(weights, rows, offsets, dtype=torch.float16)
    assert wide.dtype == torch.float32 and half.dtype == torch.float16
    assert torch.equal(half, wide.to(torch.float16))
    # bf16: the interpreter truncates float32 to bf16 where the GPU rounds to nearest even (test_cuda_kernels
    # checks that equality); here the two differ by less than one bf16 step (2^-7 relative)
    bf16 = triton_kernels.pooled_sum(weights, rows, offsets, dtype=torch.bfloat16).float()
    torch.testing.assert_close(bf16, wide, rtol=2**-7, atol=0.0)
