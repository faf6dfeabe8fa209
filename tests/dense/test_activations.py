"""ReLU, ReLUHalf, Sigmoid, ELU, Dropout against float64 references."""

import pytest
import torch

from ctrflow.dense.layers import ELU, Dropout, ReLU, ReLUHalf, Sigmoid
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# element-wise float32 math against float64: a few ulps
RTOL, ATOL = 1e-6, 1e-6


@pytest.mark.parametrize("layer_cls", [ReLU, ReLUHalf])
def test_relu_is_max_of_x_and_zero(layer_cls):
    run_layer_test(layer_cls, [(6, 7)], {}, reference=lambda layer, x: torch.clamp(x, min=0), rtol=RTOL, atol=ATOL)


def test_relu_passes_no_gradient_at_zero():
    x = torch.zeros(3, requires_grad=True)
    ReLU([(3,)])(x).sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_sigmoid_matches_the_logistic_function():
    run_layer_test(Sigmoid, [(6, 7)], {}, reference=lambda layer, x: 1 / (1 + torch.exp(-x)), rtol=RTOL, atol=ATOL)


def elu_reference(layer, x):
    return torch.where(x >= 0, x, layer.elu_alpha * (torch.exp(x) - 1))


def test_elu_matches_its_formula_with_alpha():
    run_layer_test(ELU, [(6, 7)], {"elu_alpha": 0.7}, reference=elu_reference, rtol=RTOL, atol=ATOL)


def test_elu_gradient_is_one_at_zero_and_finite_for_huge_inputs():
    x = torch.tensor([0.0, 1e4, -1e4], requires_grad=True)
    ELU([(3,)], elu_alpha=0.5)(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([1.0, 1.0, 0.0]))


def test_dropout_zeroes_about_rate_and_scales_the_rest_in_training():
    layer = Dropout([(200, 100)], dropout_rate=0.3)
    torch.manual_seed(0)
    y = layer(torch.ones(200, 100))
    kept = y != 0
    # 20000 Bernoulli draws: the kept fraction is within 0.02 of 0.7
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.02)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))


def test_dropout_is_the_identity_in_evaluation():
    layer = Dropout([(4, 5)], dropout_rate=0.5).eval()
    x = torch.randn(4, 5)
    torch.testing.assert_close(layer(x), x, rtol=0, atol=0)


def test_dropout_contract_holds():
    layer = run_layer_test(Dropout, [(8, 5)], {"dropout_rate": 0.25}, expected_output_shapes=[(8, 5)])
    assert layer.get_config() == {"dropout_rate": 0.25}


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1])
def test_dropout_rate_outside_the_open_unit_interval_is_rejected(rate):
    with pytest.raises(LayerError, match=r'Dropout "drop": dropout_rate=.* is outside \(0, 1\)'):
        Dropout([(4, 5)], name="drop", dropout_rate=rate)
