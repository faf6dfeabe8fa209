"""FmOrder2 and WeightMultiply against float64 references, and their shape errors."""

import pytest
import torch

from ctrflow.dense.layers import FmOrder2, WeightMultiply
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# FmOrder2 subtracts two sums of squares (cancellation): 1e-5 relative, 1e-5 absolute in float32
RTOL, ATOL = 1e-5, 1e-5


def fm_reference(layer, x):
    vectors = x.reshape(x.shape[0], -1, layer.out_dim)
    total = torch.zeros(x.shape[0], layer.out_dim, dtype=x.dtype)
    for s in range(vectors.shape[1]):
        for t in range(s):
            total = total + vectors[:, s] * vectors[:, t]
    return total


def test_fm_order2_equals_the_sum_of_pairwise_products():
    run_layer_test(
        FmOrder2,
        [(4, 15)],
        {"out_dim": 3},
        expected_output_shapes=[(4, 3)],
        reference=fm_reference,
        rtol=RTOL,
        atol=ATOL,
    )
    # by hand: vectors (1, 2), (3, 4), (5, 6): 1·3 + 1·5 + 3·5 = 23 and 2·4 + 2·6 + 4·6 = 44
    assert FmOrder2([(1, 6)], out_dim=2)(torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])).tolist() == [[23.0, 44.0]]


def test_fm_order2_width_must_be_a_multiple_of_out_dim():
    with pytest.raises(LayerError, match=r'FmOrder2 "fm": bottom width 10 is not a multiple of out_dim=3'):
        FmOrder2([(4, 10)], name="fm", out_dim=3)


def test_fm_order2_needs_a_positive_out_dim():
    with pytest.raises(LayerError, match=r"out_dim=0 is too small"):
        FmOrder2([(4, 10)])


def weight_multiply_reference(layer, x):
    rows = [x[:, s : s + 1] * layer.weight[s] for s in range(layer.num_slots)]
    return torch.cat(rows, dim=1)


def test_weight_multiply_scales_each_slot_by_its_vector():
    run_layer_test(
        WeightMultiply,
        [(4, 3)],
        {"weight_dims": [3, 5]},
        expected_output_shapes=[(4, 15)],
        reference=weight_multiply_reference,
        rtol=1e-6,
        atol=1e-6,
    )
    layer = WeightMultiply([(1, 2)], weight_dims=[2, 3])
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    # slot 0 (2.0) scales row 0 of W, slot 1 (-1.0) row 1
    assert layer(torch.tensor([[2.0, -1.0]])).tolist() == [[2.0, 4.0, 6.0, -4.0, -5.0, -6.0]]


def test_weight_multiply_registers_w_of_shape_slots_by_vec():
    layer = WeightMultiply([(4, 3)], weight_dims=[3, 5])
    assert [tuple(p.shape) for p in layer.parameters()] == [(3, 5)]


def test_weight_multiply_first_dim_must_equal_the_bottom_width():
    with pytest.raises(LayerError, match=r"weight_dims=\[4, 5\] does not fit a bottom of shape \[4, 3\]"):
        WeightMultiply([(4, 3)], weight_dims=[4, 5])
