"""ReduceSum and ReduceMean on 1-D to 3-D bottoms."""

import pytest
import torch

from ctrflow.dense.layers import ReduceMean, ReduceSum
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# sums of <= 6 float32 values: a few ulps
RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.parametrize(
    ("shape", "axis", "expected"),
    [((6,), 0, (1,)), ((4, 5), 1, (4, 1)), ((4, 5), 0, (1, 5)), ((2, 3, 4), 2, (2, 3, 1)), ((2, 3, 4), 1, (2, 1, 4))],
)
def test_reduce_sum_keeps_the_reduced_axis_as_one(shape, axis, expected):
    run_layer_test(
        ReduceSum,
        [shape],
        {"axis": axis},
        expected_output_shapes=[expected],
        reference=lambda layer, x: x.sum(dim=axis, keepdim=True),
        rtol=RTOL,
        atol=ATOL,
    )


def test_reduce_mean_divides_the_gradient_by_the_axis_length():
    run_layer_test(
        ReduceMean,
        [(2, 3, 4)],
        {"axis": 1},
        expected_output_shapes=[(2, 1, 4)],
        reference=lambda layer, x: x.mean(dim=1, keepdim=True),
        rtol=RTOL,
        atol=ATOL,
    )


def test_reduce_axis_past_the_rank_overflows():
    with pytest.raises(LayerError, match=r'ReduceSum "r": axis=2 overflows a 2-D bottom'):
        ReduceSum([(4, 5)], name="r", axis=2)


def test_reduce_rejects_a_4d_bottom():
    with pytest.raises(LayerError, match=r"expected a 1-D or 2-D or 3-D tensor"):
        ReduceMean([(2, 2, 2, 2)], axis=1)


def test_reduce_default_axis_is_one():
    assert ReduceSum([(4, 5)]).output_shapes == [(4, 1)]
    assert ReduceSum([(4, 5)])(torch.ones(3, 5)).shape == (3, 1)
