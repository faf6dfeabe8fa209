"""Add, Sub, ElementwiseMultiply, MatrixMultiply against float64 references."""

import pytest
import torch

from ctrflow.dense.layers import Add, ElementwiseMultiply, MatrixMultiply, Sub
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# sums and products of a handful of float32 values: a few ulps
RTOL, ATOL = 1e-5, 1e-6


def test_add_sums_three_bottoms():
    run_layer_test(
        Add,
        [(4, 5)] * 3,
        {},
        reference=lambda layer, a, b, c: a + b + c,
        rtol=RTOL,
        atol=ATOL,
        expected_output_shapes=[(4, 5)],
    )


def test_sub_subtracts_the_second_bottom():
    run_layer_test(Sub, [(4, 5)] * 2, {}, reference=lambda layer, a, b: a - b, rtol=RTOL, atol=ATOL)


def test_elementwise_multiply_has_the_true_product_gradient():
    run_layer_test(
        ElementwiseMultiply, [(4, 5)] * 3, {}, reference=lambda layer, a, b, c: a * b * c, rtol=RTOL, atol=ATOL
    )


def test_elementwise_multiply_gives_a_gradient_where_the_product_is_zero():
    a = torch.tensor([[0.0, 2.0]], requires_grad=True)
    b = torch.tensor([[3.0, 0.0]], requires_grad=True)
    ElementwiseMultiply([(1, 2)] * 2)(a, b).sum().backward()
    torch.testing.assert_close(a.grad, torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(b.grad, torch.tensor([[0.0, 2.0]]))


def test_matrix_multiply_2d_and_batched_3d():
    run_layer_test(
        MatrixMultiply,
        [(4, 3), (3, 5)],
        {},
        reference=lambda layer, a, b: a @ b,
        rtol=RTOL,
        atol=ATOL,
        expected_output_shapes=[(4, 5)],
    )
    run_layer_test(
        MatrixMultiply,
        [(2, 4, 3), (2, 3, 6)],
        {},
        reference=lambda layer, a, b: torch.bmm(a, b),
        rtol=RTOL,
        atol=ATOL,
        expected_output_shapes=[(2, 4, 6)],
    )


def test_matrix_multiply_rejects_mismatched_inner_dimensions():
    with pytest.raises(LayerError, match=r"cannot multiply \[4, 3\] by \[4, 5\]"):
        MatrixMultiply([(4, 3), (4, 5)])


def test_matrix_multiply_rejects_mixed_ranks():
    with pytest.raises(LayerError, match=r"both must be 2-D or both 3-D"):
        MatrixMultiply([(4, 3), (2, 3, 5)])


def test_add_needs_two_bottoms_and_equal_shapes():
    with pytest.raises(LayerError, match=r'Add "add": expects at least 2 bottom tensor\(s\), received 1'):
        Add([(4, 5)], name="add")
    with pytest.raises(LayerError, match=r"bottom 1 has shape \[4, 6\] but bottom 0 has \[4, 5\]"):
        Add([(4, 5), (4, 6)])


def test_sub_takes_exactly_two_bottoms():
    with pytest.raises(LayerError, match=r"expects 2 bottom tensor\(s\), received 3"):
        Sub([(4, 5)] * 3)
