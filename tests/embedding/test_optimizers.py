"""Sparse optimizer formulas (semantics spec §4.3) on hand-made rows, float64 expectations."""

from __future__ import annotations

import math

import pytest
import torch

from ctrflow.embedding.optimizers import apply_sparse_update, state_names
from ctrflow.embedding.types import SparseOptimizerConfig

# float32 arithmetic of a handful of O(1) values: 1e-6 covers the rounding
ATOL = 1e-6


def table(rows: int = 3, vec: int = 2) -> torch.Tensor:
    return torch.arange(rows * vec, dtype=torch.float32).view(rows, vec) / 10


def test_state_order_follows_the_optimizer_state_file():
    assert state_names(SparseOptimizerConfig("adam")) == ("m", "v")
    assert state_names(SparseOptimizerConfig("adagrad")) == ("accm",)
    assert state_names(SparseOptimizerConfig("momentum_sgd")) == ("momentum",)
    assert state_names(SparseOptimizerConfig("nesterov")) == ("accm",)
    assert state_names(SparseOptimizerConfig("sgd")) == ()


def test_global_momentum_with_factor_zero_is_plain_sgd_not_nan():
    config = SparseOptimizerConfig("momentum_sgd", "global", momentum_factor=0.0)
    w, mom = table(), torch.zeros(3, 2)
    expected = w.clone()
    expected[1] -= 0.5 * torch.tensor([1.0, 2.0])
    apply_sparse_update(config, w, [mom], None, torch.tensor([1]), torch.tensor([[1.0, 2.0]]), 0.5, 1)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w, expected, atol=ATOL, rtol=0)


def test_global_momentum_moves_untouched_rows_by_decayed_momentum_even_at_lr_zero():
    config = SparseOptimizerConfig("momentum_sgd", "global", momentum_factor=0.5)
    w, mom = table(), torch.full((3, 2), 0.2)
    before = w.clone()
    apply_sparse_update(config, w, [mom], None, torch.tensor([0]), torch.ones(1, 2), 0.0, 1)
    torch.testing.assert_close(mom, torch.full((3, 2), 0.1))
    torch.testing.assert_close(w, before + 0.1, atol=ATOL, rtol=0)  # HugeCTR's lr-0 freeze still moves rows


def test_global_adam_keeps_moving_rows_with_momentum_and_leaves_fresh_rows():
    config = SparseOptimizerConfig("adam", "global")
    w = table()
    m, v = torch.zeros(3, 2), torch.zeros(3, 2)
    m[2], v[2] = 0.1, 0.01
    before = w.clone()
    apply_sparse_update(config, w, [m, v], None, torch.tensor([0]), torch.ones(1, 2), 0.1, 2)
    alpha = 0.1 * math.sqrt(1 - 0.999**2) / (1 - 0.9**2)
    m2, v2 = 0.9 * 0.1, 0.999 * 0.01
    torch.testing.assert_close(w[2], before[2] - alpha * m2 / (math.sqrt(v2) + 1e-7), atol=ATOL, rtol=0)
    assert torch.equal(w[1], before[1])  # m = v = 0: no movement
    m0, v0 = 0.1, 0.001
    torch.testing.assert_close(w[0], before[0] - alpha * m0 / (math.sqrt(v0) + 1e-7), atol=ATOL, rtol=0)


def test_lazy_adam_first_touch_does_not_move_and_later_touch_applies_the_deferred_step():
    config = SparseOptimizerConfig("adam", "lazy_global")
    w, m, v = table(), torch.zeros(3, 2), torch.zeros(3, 2)
    prev = torch.ones(3, dtype=torch.int64)
    before = w.clone()
    g = torch.tensor([[0.5, -1.0]])
    apply_sparse_update(config, w, [m, v], prev, torch.tensor([1]), g, 0.1, 1)
    assert torch.equal(w, before)
    torch.testing.assert_close(m[1], 0.1 * g[0])
    apply_sparse_update(config, w, [m, v], prev, torch.tensor([1]), g, 0.1, 4)
    skip, p = 3, 1
    scale = 0.1 / 0.1 * math.sqrt(1 - 0.999**p) / (1 - 0.9**p) * (1 - 0.9**skip)
    m1, v1 = 0.1 * g[0].double(), 0.001 * g[0].double() ** 2
    expected = before[1].double() - scale * m1 / (v1.sqrt() + 1e-7)
    torch.testing.assert_close(w[1].double(), expected, atol=1e-5, rtol=1e-6)
    assert prev.tolist() == [1, 4, 1]


@pytest.mark.parametrize("update", ["global", "local"])
def test_nesterov_touched_rows_follow_the_local_formula(update):
    config = SparseOptimizerConfig("nesterov", update, momentum_factor=0.9)
    w, acc = table(), torch.full((3, 2), 0.3)
    before = w.clone()
    g = torch.tensor([[1.0, -2.0]])
    apply_sparse_update(config, w, [acc], None, torch.tensor([2]), g, 0.1, 1)
    new = 0.9 * 0.3 - 0.1 * g[0]
    torch.testing.assert_close(w[2], before[2] - 0.9 * 0.3 + 1.9 * new, atol=ATOL, rtol=0)
    untouched = before[0] + (0.81 * 0.3 if update == "global" else 0.0)
    torch.testing.assert_close(w[0], untouched, atol=ATOL, rtol=0)


def test_adagrad_divides_by_the_root_of_the_accumulated_squares():
    config = SparseOptimizerConfig("adagrad", "global", initial_accu_value=1.0, epsilon=0.0)
    w, acc = table(), torch.ones(3, 2)
    before = w.clone()
    apply_sparse_update(config, w, [acc], None, torch.tensor([0]), torch.tensor([[3.0, 0.0]]), 0.5, 1)
    torch.testing.assert_close(acc[0], torch.tensor([10.0, 1.0]))
    torch.testing.assert_close(w[0], before[0] - torch.tensor([0.5 * 3 / math.sqrt(10), 0.0]), atol=ATOL, rtol=0)
    assert torch.equal(w[1:], before[1:])
