"""pooled_lookup's torch paths: the fixed-size gradient capture against the compact one, output dtypes."""

from __future__ import annotations

import pytest
import torch

from ctrflow.embedding.pooled_lookup import capture_gradient, merged_gradients, pooled_sum, summed_gradients


def random_csr(num_segments: int, num_rows: int, max_nnz: int, seed: int, unseen: bool = True):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, max_nnz + 1, (num_segments,), generator=generator)
    low = -1 if unseen else 0  # -1: a key unseen at eval
    rows = torch.randint(low, num_rows, (int(lengths.sum()),), generator=generator)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    return rows, offsets


@pytest.mark.parametrize("unseen", [False, True])
@pytest.mark.parametrize("num_table_rows", [None, 40])
def test_fixed_size_capture_is_the_compact_capture_plus_rows_minus_one(unseen, num_table_rows):
    rows, offsets = random_csr(200, 40, 5, seed=3, unseen=unseen)
    grad = torch.randn(200, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    compact = capture_gradient(rows, offsets, grad, num_table_rows)
    fixed = capture_gradient(rows, offsets, grad, num_table_rows, fixed_size=True)
    n = rows.numel()
    # sizes follow the number of occurrences only, never the data
    assert fixed.rows.shape == (n,) and fixed.occurrence_offsets.shape == (n + 1,)
    assert fixed.occurrence_segments.shape == (n,)
    present = fixed.rows >= 0
    assert torch.equal(fixed.rows[present], compact.rows)
    # float64 and the same occurrence order: the sums of the kept rows are equal bit for bit
    assert torch.equal(summed_gradients(fixed)[present], summed_gradients(compact))
    # padding: empty occurrence ranges at the end, after the last group
    starts, ends = fixed.occurrence_offsets[:-1], fixed.occurrence_offsets[1:]
    groups = int(present.sum()) + int(unseen and bool((rows < 0).any()))
    assert torch.equal(starts[groups:], torch.full((n - groups,), n))
    assert bool((ends >= starts).all()) and int(fixed.occurrence_offsets[-1]) == n
    assert bool((fixed.rows[groups:] == -1).all())


def test_fixed_size_captures_merge_to_the_same_rows_and_gradients():
    captures = {True: [], False: []}
    for seed in (5, 6):
        rows, offsets = random_csr(50, 30, 4, seed=seed)
        grad = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        for fixed in (True, False):
            captures[fixed].append(capture_gradient(rows, offsets, grad, fixed_size=fixed))
    fixed_rows, fixed_grads = merged_gradients(captures[True], 3, torch.device("cpu"))
    rows, grads = merged_gradients(captures[False], 3, torch.device("cpu"))
    keep = fixed_rows >= 0  # EmbeddingShard.apply_gradients drops rows -1
    assert torch.equal(fixed_rows[keep], rows)
    assert torch.equal(fixed_grads[keep], grads)


def test_fixed_size_capture_of_no_keys_is_empty():
    offsets = torch.zeros(4, dtype=torch.int64)
    captured = capture_gradient(torch.empty(0, dtype=torch.int64), offsets, torch.randn(3, 2), fixed_size=True)
    assert captured.rows.numel() == 0 and captured.occurrence_offsets.tolist() == [0]
    assert summed_gradients(captured).shape == (0, 2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_gradients_are_widened_for_the_torch_path(dtype):
    rows, offsets = random_csr(20, 10, 3, seed=1, unseen=False)
    grad = torch.randn(20, 4).to(dtype)
    captured = capture_gradient(rows, offsets, grad, fixed_size=True)
    assert captured.grad_output.dtype == torch.float32
    assert torch.equal(captured.grad_output, grad.float())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_pooled_sum_in_a_half_dtype_rounds_the_float32_sums_once(dtype):
    rows, offsets = random_csr(30, 12, 4, seed=2)
    weights = torch.randn(12, 5)
    out = pooled_sum(weights, rows, offsets, dtype=dtype)
    assert out.dtype == dtype
    assert torch.equal(out, pooled_sum(weights, rows, offsets).to(dtype))


def test_pooled_sum_keeps_the_table_dtype_and_trusts_rows_all_present():
    rows, offsets = random_csr(30, 12, 4, seed=2, unseen=False)
    weights = torch.randn(12, 5, dtype=torch.float64)
    out = pooled_sum(weights, rows, offsets)
    assert out.dtype == torch.float64
    assert torch.equal(pooled_sum(weights, rows, offsets, rows_all_present=True), out)
