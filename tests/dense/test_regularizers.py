"""regularization_term against λ/(2B)·Σw² and λ/B·Σ|w|, and its gradient reaching every weight."""

import pytest
import torch

from ctrflow.dense.layers import BatchNorm, MultiCross
from ctrflow.dense.regularizers import regularization_term


def test_l2_term_is_lambda_over_two_b_times_the_sum_of_squares():
    weights = [torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]
    assert regularization_term(weights, "L2", 0.5, 4).item() == pytest.approx(0.5 / 8 * 14)


def test_l1_term_is_lambda_over_b_times_the_sum_of_absolute_values():
    weights = [torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]
    assert regularization_term(weights, "L1", 0.5, 4).item() == pytest.approx(0.5 / 4 * 6)


def test_l2_gradient_is_lambda_over_b_times_w_for_every_layer_kind():
    # v3.5 drops it for BatchNorm and MultiCross biases; here autograd reaches every weight
    layers = [BatchNorm([(4, 3)]), MultiCross([(4, 3)], num_layers=1)]
    params = [p for layer in layers for p in layer.parameters()]
    with torch.no_grad():
        for p in params:
            p.add_(0.25)
    regularization_term(params, "L2", 0.2, 5).backward()
    for p in params:
        torch.testing.assert_close(p.grad, 0.2 / 5 * p.detach())


def test_l1_gradient_is_the_sign_times_lambda_over_b():
    w = torch.tensor([2.0, -3.0], requires_grad=True)
    regularization_term([w], "L1", 1.0, 2).backward()
    torch.testing.assert_close(w.grad, torch.tensor([0.5, -0.5]))


def test_no_weights_give_a_zero_term():
    assert regularization_term([], "L2", 1.0, 2).item() == 0.0


@pytest.mark.parametrize(
    ("kind", "lam", "batch", "message"),
    [
        ("L3", 1.0, 2, r"kind='L3' is not a regularizer type"),
        ("L1", -1.0, 2, r"lambda=-1.0 is negative"),
        ("L2", 1.0, 0, r"batch_size=0, expected a positive int"),
    ],
)
def test_bad_regularizer_arguments_are_rejected(kind, lam, batch, message):
    with pytest.raises(ValueError, match=message):
        regularization_term([torch.ones(1)], kind, lam, batch)
