"""GRU: the documented recurrence against a float64 loop and torch.nn.GRU, weight layout, batch sizes."""

import math

import pytest
import torch

from ctrflow.dense.layers import GRU
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# three recurrent steps of float32 sigmoid/tanh math: ~1e-6 relative; gradients through time 1e-5
RTOL, ATOL = 1e-5, 1e-5
CONFIG = {"num_output": 4, "batchsize": 2, "SeqLength": 3, "vector_size": 5}


def gru_reference(layer, x):
    hidden_size = layer.hidden_size
    steps = x.reshape(layer.seq_length, -1, layer.vector_size)
    w_r, w_z, w_n = layer.weight_ih.split(hidden_size)
    r_r, r_z, r_n = layer.weight_hh.split(hidden_size)
    b_r, b_z, b_n = layer.bias.split(hidden_size)
    h = torch.zeros(steps.shape[1], hidden_size, dtype=x.dtype)
    outputs = []
    for x_t in steps:
        r = torch.sigmoid(x_t @ w_r.T + b_r + h @ r_r.T)
        z = torch.sigmoid(x_t @ w_z.T + b_z + h @ r_z.T)
        n = torch.tanh(x_t @ w_n.T + b_n + r * (h @ r_n.T))
        h = (1 - z) * n + z * h
        outputs.append(h)
    return torch.cat(outputs)


def test_gru_matches_the_documented_single_bias_recurrence():
    run_layer_test(
        GRU, [(6, 5)], CONFIG, expected_output_shapes=[(6, 4)], reference=gru_reference, rtol=RTOL, atol=ATOL
    )
    # zero weights and b_n = 1: r = z = 1/2 and n = tanh(1) at every step, so h_t = (1 - 2^-t) tanh(1)
    layer = GRU([(6, 5)], **CONFIG).double()
    with torch.no_grad():
        for parameter in (layer.weight_ih, layer.weight_hh, layer.bias):
            parameter.zero_()
        layer.bias[8:].fill_(1.0)
    out = layer(torch.randn(6, 5, dtype=torch.float64))
    steps = [(1 - 2.0**-t) * math.tanh(1.0) for t in (1, 2, 3)]
    expected = torch.tensor([[value] * 4 for value in steps for _ in range(2)], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_gru_equals_torch_gru_with_a_zero_hidden_bias():
    layer = GRU([(6, 5)], **CONFIG).double()
    reference = torch.nn.GRU(5, 4).double()
    with torch.no_grad():
        reference.weight_ih_l0.copy_(layer.weight_ih)
        reference.weight_hh_l0.copy_(layer.weight_hh)
        reference.bias_ih_l0.copy_(layer.bias)
        reference.bias_hh_l0.zero_()
    x = torch.randn(6, 5, dtype=torch.float64)
    expected, _ = reference(x.reshape(3, 2, 5))
    torch.testing.assert_close(layer(x), expected.reshape(6, 4))


def test_gru_weights_follow_the_documented_file_order_and_hx_has_no_gradient():
    layer = GRU([(6, 5)], **CONFIG)
    assert [(n, tuple(p.shape)) for n, p in layer.named_parameters()] == [
        ("weight_ih", (12, 5)),
        ("weight_hh", (12, 4)),
        ("bias", (12,)),
        ("hx", (8,)),
    ]
    assert not layer.hx.requires_grad


def test_gru_reads_the_batch_from_the_real_input():
    layer = GRU([(6, 5)], **CONFIG)
    assert layer(torch.randn(3 * 7, 5)).shape == (21, 4)


def test_gru_rejects_a_bottom_that_does_not_match_its_sizes():
    with pytest.raises(LayerError, match=r'GRU "gru": bottom has shape \[6, 4\], expected .* = \[6, 5\]'):
        GRU([(6, 4)], name="gru", **CONFIG)
