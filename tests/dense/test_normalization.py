"""BatchNorm: batch statistics in training, cuDNN-style running update, running statistics at evaluation."""

import math

import pytest
import torch

from ctrflow.dense.layers import BatchNorm
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# normalisation over B=16 rows in float32: ~1e-6 relative; gradients through the statistics ~1e-5
RTOL, ATOL = 1e-4, 1e-5


def batch_norm_reference(layer, x):
    mean = x.mean(dim=0)
    var = ((x - mean) ** 2).mean(dim=0)
    return layer.gamma * (x - mean) / torch.sqrt(var + layer.eps) + layer.beta


def test_batch_norm_training_uses_batch_mean_and_biased_variance():
    run_layer_test(
        BatchNorm,
        [(16, 5)],
        {"eps": 1e-3},
        expected_output_shapes=[(16, 5)],
        reference=batch_norm_reference,
        rtol=RTOL,
        atol=ATOL,
    )
    # rows 1 and 3: mean 2, biased variance 1 (the unbiased one would be 2); gamma 1, beta 0 at start
    layer = BatchNorm([(2, 1)], eps=1e-3).double()
    out = layer(torch.tensor([[1.0], [3.0]], dtype=torch.float64))
    scale = 1 / math.sqrt(1 + 1e-3)
    torch.testing.assert_close(out, torch.tensor([[-scale], [scale]], dtype=torch.float64))


def test_batch_norm_running_statistics_use_factor_and_the_unbiased_variance():
    layer = BatchNorm([(8, 3)], factor=0.25)
    x = torch.randn(8, 3, dtype=torch.float64)
    layer.double()(x)
    torch.testing.assert_close(layer.running_mean, 0.75 * 0 + 0.25 * x.mean(dim=0))
    torch.testing.assert_close(layer.running_var, 0.75 * 1 + 0.25 * x.var(dim=0, unbiased=True))


def test_batch_norm_with_default_factor_keeps_only_the_last_batch():
    layer = BatchNorm([(8, 3)]).double()
    layer(torch.randn(8, 3, dtype=torch.float64))
    last = torch.randn(8, 3, dtype=torch.float64)
    layer(last)
    torch.testing.assert_close(layer.running_mean, last.mean(dim=0))


def test_batch_norm_evaluation_normalises_with_the_running_statistics():
    layer = BatchNorm([(8, 3)], factor=1.0).double()
    train = torch.randn(8, 3, dtype=torch.float64) * 3 + 2
    layer(train)
    layer.eval()
    x = torch.randn(4, 3, dtype=torch.float64)
    expected = (x - train.mean(0)) / torch.sqrt(train.var(0, unbiased=True) + layer.eps)
    torch.testing.assert_close(layer(x), expected)


def test_batch_norm_running_statistics_are_buffers_not_weights():
    layer = BatchNorm([(8, 3)])
    assert [n for n, _ in layer.named_parameters()] == ["gamma", "beta"]
    assert {"running_mean", "running_var"} <= set(layer.state_dict())


def test_batch_norm_rejects_a_3d_bottom_and_a_bad_factor():
    with pytest.raises(LayerError, match=r'BatchNorm "bn": bottom 0 has shape \[2, 3, 4\]'):
        BatchNorm([(2, 3, 4)], name="bn")
    with pytest.raises(LayerError, match=r"factor=1.5 is outside \[0, 1\]"):
        BatchNorm([(2, 3)], factor=1.5)


def test_batch_norm_training_on_one_row_is_an_error_that_names_the_fix():
    with pytest.raises(LayerError, match=r"training batch has 1 row\(s\); batch statistics need at least 2"):
        BatchNorm([(2, 3)])(torch.randn(1, 3))
