"""MultiCross: the DCN cross network against a float64 loop, weight order and errors."""

import pytest
import torch

from ctrflow.dense.layers import MultiCross
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# three layers of dot products over D=6 in float32: relative error ~1e-6, allow 1e-5
RTOL, ATOL = 1e-5, 1e-5


def cross_reference(layer, x):
    x0 = x
    for index in range(layer.num_layers):
        w, b = getattr(layer, f"weight{index}"), getattr(layer, f"bias{index}")
        x = x0 * (x @ w).unsqueeze(1) + x + b
    return x


def test_multi_cross_matches_the_cross_formula_with_nonzero_biases():
    layer = MultiCross([(5, 6)], num_layers=3)
    with torch.no_grad():
        for _, bias in layer.cross_weights():
            bias.uniform_(-1, 1)
    x = torch.randn(5, 6, dtype=torch.float64)
    torch.testing.assert_close(layer.double()(x), cross_reference(layer, x))


def test_multi_cross_contract_and_gradients():
    run_layer_test(
        MultiCross,
        [(5, 6)],
        {"num_layers": 3},
        expected_output_shapes=[(5, 6)],
        reference=cross_reference,
        rtol=RTOL,
        atol=ATOL,
    )
    one_layer = MultiCross([(1, 2)], num_layers=1)
    with torch.no_grad():
        one_layer.weight0.fill_(1.0)
        one_layer.bias0.fill_(0.5)
    # by hand: x0 * (x0 · w) + b + x0 with x0 = (1, 2), w = (1, 1), b = 0.5: x0 · w = 3
    assert one_layer(torch.tensor([[1.0, 2.0]])).tolist() == [[4.5, 8.5]]


def test_multi_cross_registers_w_and_b_interleaved_as_in_the_dense_file():
    layer = MultiCross([(2, 4)], num_layers=2)
    assert [(n, tuple(p.shape)) for n, p in layer.named_parameters()] == [
        ("weight0", (4,)),
        ("bias0", (4,)),
        ("weight1", (4,)),
        ("bias1", (4,)),
    ]


def test_multi_cross_needs_at_least_one_layer():
    with pytest.raises(LayerError, match=r'MultiCross "mc": num_layers=0 is < 1'):
        MultiCross([(2, 4)], name="mc")
