"""Scale, Softmax and PReLU_Dice against float64 references with true gradients."""

import math

import pytest
import torch

from ctrflow.dense.layers import PReLU_Dice, Scale, Softmax
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# softmax / dice in float32 over <= 8 values: ~1e-6 relative; gradients through batch statistics 1e-5
RTOL, ATOL = 1e-5, 1e-5


def test_scale_axis_zero_repeats_each_element_and_sums_replica_gradients():
    run_layer_test(
        Scale,
        [(3, 4)],
        {"axis": 0, "factor": 3.0},
        expected_output_shapes=[(3, 12)],
        reference=lambda layer, x: x.unsqueeze(2).expand(3, 4, 3).reshape(3, 12),
        rtol=RTOL,
        atol=ATOL,
    )
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    y = Scale([(1, 2)], axis=0, factor=3.0)(x)
    assert y.tolist() == [[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]]
    y.sum().backward()
    assert x.grad.tolist() == [[3.0, 3.0]]  # each element is read three times


def test_scale_axis_one_repeats_each_row():
    run_layer_test(
        Scale,
        [(3, 4)],
        {"axis": 1, "factor": 2},
        expected_output_shapes=[(6, 4)],
        reference=lambda layer, x: x.unsqueeze(1).expand(3, 2, 4).reshape(6, 4),
        rtol=RTOL,
        atol=ATOL,
    )
    rows = Scale([(2, 2)], axis=1, factor=2)(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert rows.tolist() == [[1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [3.0, 4.0]]


def test_scale_rejects_axis_two():
    with pytest.raises(LayerError, match=r'Scale "s": axis=2 is not 0 or 1'):
        Scale([(3, 4)], name="s", axis=2)


def softmax_reference(layer, x):
    e = torch.exp(x)
    return e / e.sum(dim=1, keepdim=True)


def test_softmax_has_the_true_jacobian():
    run_layer_test(Softmax, [(5, 7)], {}, reference=softmax_reference, rtol=RTOL, atol=ATOL)
    x = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64, requires_grad=True)
    y = Softmax([(1, 2)])(x)
    torch.testing.assert_close(y, torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    y[0, 0].backward()  # dy0/dx = y0 (e0 - y) = 0.25 · (0.75, -0.75)
    torch.testing.assert_close(x.grad, torch.tensor([[0.1875, -0.1875]], dtype=torch.float64))


def test_softmax_does_not_overflow_on_large_logits():
    y = Softmax([(1, 2)])(torch.tensor([[1000.0, 1000.0]]))
    torch.testing.assert_close(y, torch.tensor([[0.5, 0.5]]))


def dice_reference(layer, x):
    mean = x.mean(dim=0)
    var = ((x - mean) ** 2).mean(dim=0)
    p = 1 / (1 + torch.exp(-(x - mean) / torch.sqrt(var + layer.eps)))
    return p * x + (1 - p) * layer.alpha * x


def test_prelu_dice_matches_its_formula_with_the_full_batch_gradient():
    run_layer_test(
        PReLU_Dice,
        [(8, 5)],
        {"elu_alpha": 0.3, "eps": 1e-4},
        expected_output_shapes=[(8, 5)],
        reference=dice_reference,
        rtol=RTOL,
        atol=ATOL,
    )
    # x = (1, -1): batch mean 0, biased variance 1, so p = sigmoid(±1 / sqrt(1 + eps))
    layer = PReLU_Dice([(2, 1)], elu_alpha=0.3, eps=1e-4)
    p = 1 / (1 + math.exp(-1 / math.sqrt(1 + 1e-4)))
    out = layer(torch.tensor([[1.0], [-1.0]], dtype=torch.float64))
    expected = [[p + (1 - p) * 0.3], [-(1 - p) - p * 0.3]]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))


def test_prelu_dice_uses_batch_statistics_in_evaluation_too_and_has_no_weights():
    layer = PReLU_Dice([(8, 5)], elu_alpha=0.3).eval()
    x = torch.randn(8, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), dice_reference(layer, x))
    assert list(layer.parameters()) == []


def test_prelu_dice_needs_a_2d_bottom():
    with pytest.raises(LayerError, match=r"bottom 0 has shape \[2, 3, 4\] \(3-D\), expected a 2-D tensor"):
        PReLU_Dice([(2, 3, 4)])


def test_softmax_accepts_three_dimensional_scores_as_the_din_sample_uses():
    layer = Softmax([(2, 1, 5)], name="scores")
    x = torch.randn(2, 1, 5, dtype=torch.float64)
    assert layer.output_shapes == [(2, 1, 5)]
    torch.testing.assert_close(layer(x), torch.exp(x) / torch.exp(x).sum(-1, keepdim=True))
