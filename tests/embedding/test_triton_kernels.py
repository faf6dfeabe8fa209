"""The Triton kernels on CPU tensors through Triton's interpreter: fixed-size captures, half dtypes.

Triton reads TRITON_INTERPRET when the kernels are defined, so these run only in a process started with it:
`TRITON_INTERPRET=1 pytest tests/embedding/test_triton_kernels.py`. On a GPU, `test_cuda_kernels.py` runs
the compiled kernels against the float64 references.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import pytest
import torch

from ctrflow.embedding import optimizers
from ctrflow.embedding.pooled_lookup import capture_gradient, summed_gradients
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


# A power-law batch in small: row 7 has thousands of occurrences (tens of chunks), rows 11-14 sit at and just
# past one and two chunks of CHUNK_SIZE = 64, rows 16-599 are cold, and some keys are -1 (unseen at eval).
# The check_* functions below run on CPU tensors here (interpreter) and on CUDA in test_cuda_kernels.py.
HOT_ROW_COUNTS = {7: 3000, 11: 64, 12: 65, 13: 128, 14: 129, 15: 1}
HOT_TABLE_ROWS = 600
HOT_SEGMENTS = 1000


def hot_row_csr(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    parts = [torch.full((count,), row) for row, count in HOT_ROW_COUNTS.items()]
    parts.append(torch.randint(16, HOT_TABLE_ROWS, (900,), generator=generator))
    parts.append(torch.full((40,), -1))
    rows = torch.cat(parts)
    rows = rows[torch.randperm(rows.numel(), generator=generator)]
    cuts = torch.randint(0, rows.numel() + 1, (HOT_SEGMENTS - 1,), generator=generator).sort().values
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), cuts, torch.tensor([rows.numel()])])
    return rows, offsets  # empty segments included


def single_chunk_rows(captured, chunk_size: int) -> torch.Tensor:
    """Mask of the captured rows of at most chunk_size occurrences (one program sums them, chunks or not)."""
    counts = captured.occurrence_offsets[1:] - captured.occurrence_offsets[:-1]
    return counts <= chunk_size


def float32_sum_bound(captured64) -> torch.Tensor:
    """Error bound of any float32 summation order of each row's terms: (n - 1)·2^-24·Σ|g| (the terms themselves
    are float32 values, exact in float64)."""
    counts = (captured64.occurrence_offsets[1:] - captured64.occurrence_offsets[:-1]).to(torch.float64)
    magnitude = torch.nn.functional.embedding_bag(
        captured64.occurrence_segments,
        captured64.grad_output.abs(),
        captured64.occurrence_offsets,
        mode="sum",
        include_last_offset=True,
    )
    return (counts.clamp(min=1) - 1).unsqueeze(1) * 2.0**-24 * magnitude * 1.01  # 1.01: γ_n = nu/(1-nu) > nu


def hot_row_update(kind: str, update_type: str) -> tuple[SparseOptimizerConfig, Callable[..., None]]:
    from ctrflow.embedding import triton_kernels

    config = SparseOptimizerConfig(kind, update_type, momentum_factor=0.9, initial_accu_value=0.1)  # type: ignore[arg-type]
    if update_type == "global" and kind not in ("sgd", "adagrad"):
        return config, triton_kernels.fused_global_update
    return config, triton_kernels.fused_update


def check_chunked_segment_sum_of_a_hot_row(vec: int, chunk_size: int, device: str) -> None:
    from ctrflow.embedding import triton_kernels

    rows, offsets = hot_row_csr(seed=vec)
    grad = torch.randn(HOT_SEGMENTS, vec, generator=torch.Generator().manual_seed(9))
    captured = capture_gradient(rows.to(device), offsets.to(device), grad.to(device), HOT_TABLE_ROWS)
    chunked = triton_kernels.segment_sum(captured, chunk_size=chunk_size).cpu()
    unchunked = triton_kernels.segment_sum(captured, chunk_size=None).cpu()
    reference = capture_gradient(rows, offsets, grad.double())
    assert torch.equal(captured.rows.cpu(), reference.rows)
    bound = float32_sum_bound(reference)
    assert bool(((chunked.double() - summed_gradients(reference)).abs() <= bound).all())
    assert bool(((unchunked.double() - summed_gradients(reference)).abs() <= bound).all())
    # rows of at most one chunk are summed by the same code in the same order: bit for bit
    single = single_chunk_rows(reference, chunk_size)
    assert int((~single).sum()) >= 2  # the hot row and rows past the boundary took the chunked path
    assert torch.equal(chunked[single], unchunked[single])


def check_chunked_segment_sum_when_every_row_needs_two_chunks(device: str) -> None:
    """Every row has chunk_size + 1 occurrences: the most chunks a batch can have (the grid's upper bound)."""
    from ctrflow.embedding import triton_kernels

    generator = torch.Generator().manual_seed(13)
    rows = torch.arange(50).repeat(6)
    rows = rows[torch.randperm(rows.numel(), generator=generator)]
    offsets = torch.arange(0, rows.numel() + 1, 3)  # 100 segments of 3 keys
    grad = torch.randn(100, 16, generator=generator)
    captured = capture_gradient(rows.to(device), offsets.to(device), grad.to(device))
    chunked = triton_kernels.segment_sum(captured, chunk_size=5).cpu()
    reference = capture_gradient(rows, offsets, grad.double())
    assert bool(((chunked.double() - summed_gradients(reference)).abs() <= float32_sum_bound(reference)).all())


def check_chunked_fused_update_of_a_hot_row(kind: str, update_type: str, vec: int, device: str) -> None:
    from ctrflow.embedding import triton_kernels

    config, update = hot_row_update(kind, update_type)
    rows, offsets = hot_row_csr(seed=vec + 1)
    grad = torch.randn(HOT_SEGMENTS, vec, generator=torch.Generator().manual_seed(10))
    captured = capture_gradient(rows.to(device), offsets.to(device), grad.to(device), HOT_TABLE_ROWS)
    results = []
    for chunk_size in (triton_kernels.CHUNK_SIZE, triton_kernels.CHUNK_SIZE, None):  # twice: deterministic
        weights, states = tables(config, HOT_TABLE_ROWS, vec)
        weights, states = weights.to(device), [state.to(device) for state in states]
        update(config, weights, states, captured, 0.1, 0.5, 3, chunk_size=chunk_size)
        results.append([weights.cpu(), *(state.cpu() for state in states)])
    reference = capture_gradient(rows, offsets, grad.double())
    expected = []  # float64 updates from the float64 sums, and from the kernel's own float32 sums
    for summed in (summed_gradients(reference), triton_kernels.segment_sum(captured).cpu().double()):
        weights, states = tables(config, HOT_TABLE_ROWS, vec)
        w64, s64 = weights.double(), [s.double() for s in states]
        optimizers.apply_sparse_update(config, w64, s64, None, reference.rows, summed * 0.5, 0.1, 3)
        expected.append([w64, *s64])
    single = torch.ones(HOT_TABLE_ROWS, dtype=torch.bool)
    single[reference.rows[~single_chunk_rows(reference, triton_kernels.CHUNK_SIZE)]] = False
    assert not bool(single[7]) and bool(single[11]) and not bool(single[12])
    for chunked, again, unchunked, exact_sums, own_sums in zip(*results, *expected, strict=True):
        assert torch.equal(chunked, again)  # no atomics: the same result every time
        assert torch.equal(chunked[single], unchunked[single])  # same code, same order: bit for bit
        # each row is updated once from its summed gradient: float32 rounding of the update alone; compiled
        # kernels use approximate sqrt and division (a few ulp), and the hot row's Adam v reaches ~1e3,
        # so allow 3e-5 relative (the interpreter meets 1e-5)
        torch.testing.assert_close(chunked.double(), own_sums, atol=1e-5, rtol=3e-5)
        # rows of one chunk: float32 sums of <= 64 O(1) terms against float64
        torch.testing.assert_close(chunked[single].double(), exact_sums[single], atol=1e-5, rtol=1e-5)
        # chunked rows: float32 sums of up to 3000 O(1) terms (|Σ| ~ 55, any order off by up to ~1e-3 of it,
        # doubled where AdaGrad squares it); check_chunked_segment_sum_of_a_hot_row bounds the sums rigorously
        for mine in (chunked, unchunked):
            torch.testing.assert_close(mine[~single].double(), exact_sums[~single], atol=1e-4, rtol=1e-3)


def check_chunked_updates_of_fixed_size_and_compact_captures(kind: str, update_type: str, device: str) -> None:
    config, update = hot_row_update(kind, update_type)
    rows, offsets = hot_row_csr(seed=3)
    grad = torch.randn(HOT_SEGMENTS, 16, generator=torch.Generator().manual_seed(4)).to(device)
    results = []
    for fixed in (False, True):
        weights, states = tables(config, HOT_TABLE_ROWS, 16)
        weights, states = weights.to(device), [state.to(device) for state in states]
        captured = capture_gradient(rows.to(device), offsets.to(device), grad, HOT_TABLE_ROWS, fixed_size=fixed)
        update(config, weights, states, captured, 0.1, 0.5, 3)
        results.append([weights, *states])
    for compact, fixed_size in zip(*results, strict=True):
        assert torch.equal(compact, fixed_size)  # the same chunks in the same order: no atomics


EMPTY_CASES = {
    "no segments": (torch.empty(0, dtype=torch.int64), torch.zeros(1, dtype=torch.int64)),
    "empty segments": (torch.empty(0, dtype=torch.int64), torch.zeros(9, dtype=torch.int64)),
    "only unseen keys": (torch.full((200,), -1), torch.tensor([0, 150, 150, 200])),  # one -1 group of 4 chunks
}


def check_chunked_kernels_on_captures_without_rows(kind: str, case: str, fixed: bool, device: str) -> None:
    from ctrflow.embedding import triton_kernels

    rows, offsets = (tensor.to(device) for tensor in EMPTY_CASES[case])
    config = SparseOptimizerConfig(kind, "local", momentum_factor=0.9, initial_accu_value=0.1)  # type: ignore[arg-type]
    grad = torch.randn(offsets.numel() - 1, 16, generator=torch.Generator().manual_seed(12)).to(device)
    captured = capture_gradient(rows, offsets, grad, 40, fixed_size=fixed)
    summed = triton_kernels.segment_sum(captured)
    assert summed.shape == (captured.rows.numel(), 16)
    if case == "only unseen keys" and fixed:  # the -1 group is summed (its consumers skip it): 200 terms
        torch.testing.assert_close(summed[0], grad[0] * 150 + grad[2] * 50, atol=1e-4, rtol=1e-5)
    weights, states = tables(config, 40, 16)
    weights, states = weights.to(device), [state.to(device) for state in states]
    before = [weights.clone(), *(state.clone() for state in states)]
    triton_kernels.fused_update(config, weights, states, captured, 0.1, 0.5, 3)
    for after, original in zip([weights, *states], before, strict=True):
        assert torch.equal(after, original)


@pytest.mark.parametrize("vec", [1, 16, 128, 300])
@pytest.mark.parametrize("chunk_size", [5, 64])
def test_chunked_segment_sum_of_a_hot_row_is_within_float32_rounding_of_float64(vec, chunk_size):
    check_chunked_segment_sum_of_a_hot_row(vec, chunk_size, "cpu")


def test_chunked_segment_sum_when_every_row_needs_two_chunks():
    check_chunked_segment_sum_when_every_row_needs_two_chunks("cpu")


@pytest.mark.parametrize("vec", [1, 16, 128, 300])
@pytest.mark.parametrize("update_type", ["local", "global"])
@pytest.mark.parametrize("kind", KINDS)
def test_chunked_fused_update_of_a_hot_row_matches_the_unchunked_update_and_float64(kind, update_type, vec):
    check_chunked_fused_update_of_a_hot_row(kind, update_type, vec, "cpu")


@pytest.mark.parametrize("update_type", ["local", "global"])
@pytest.mark.parametrize("kind", KINDS)
def test_chunked_updates_of_fixed_size_and_compact_captures_of_a_hot_row_are_equal(kind, update_type):
    check_chunked_updates_of_fixed_size_and_compact_captures(kind, update_type, "cpu")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_chunked_segment_sum_widens_a_half_gradient_as_it_loads_it(dtype):
    from ctrflow.embedding import triton_kernels

    rows, offsets = hot_row_csr(seed=5)
    grad = torch.randn(HOT_SEGMENTS, 8, generator=torch.Generator().manual_seed(6)).to(dtype)
    half = capture_gradient(rows, offsets, grad, fixed_size=True)
    half.grad_output = grad  # as a CUDA capture keeps it for the kernels
    wide = capture_gradient(rows, offsets, grad.float(), fixed_size=True)
    assert torch.equal(triton_kernels.segment_sum(half), triton_kernels.segment_sum(wide))


@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("case", list(EMPTY_CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_chunked_kernels_leave_the_table_alone_for_captures_without_rows(kind, case, fixed):
    check_chunked_kernels_on_captures_without_rows(kind, case, fixed, "cpu")


def test_a_chunk_size_below_one_is_refused_with_the_value_received():
    from ctrflow.embedding import triton_kernels

    rows, offsets = random_csr(10, 5, 3, seed=1)
    captured = capture_gradient(rows, offsets, torch.randn(10, 4), 5)
    with pytest.raises(ValueError, match=r"chunk_size is 0; expected a positive number"):
        triton_kernels.segment_sum(captured, chunk_size=0)
