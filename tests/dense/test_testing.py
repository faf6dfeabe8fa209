"""run_layer_test catches broken layers: wrong shapes, lossy configs, wrong gradients, dead weights."""

from collections.abc import Sequence

import pytest
import torch
from torch import nn

from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import Layer, Shape


class Doubler(Layer):
    """A third-party style layer: y = 2x·w with one weight per column; misbehaves on request."""

    layer_type = "Doubler"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", mode: str = "ok") -> None:
        super().__init__(input_shapes, name=name, mode=mode)
        self.mode = mode
        self.weight = nn.Parameter(torch.ones(self.input_shapes[0][1]))
        width = self.input_shapes[0][1] + (1 if mode == "bad_shape" else 0)
        self.output_shapes = [(self.input_shapes[0][0], width)]
        if mode == "lossy_config":
            self.params = {}

    def forward(self, x):
        if self.mode == "wrong_gradient":
            return 2 * x.detach() * self.weight + (x - x.detach())
        if self.mode == "dead_weight":
            return 2 * x
        return 2 * x * self.weight


def reference(layer, x):
    return 2 * x * layer.weight


def test_a_correct_third_party_layer_passes():
    layer = run_layer_test(Doubler, [(3, 4)], {}, expected_output_shapes=[(3, 4)], reference=reference)
    assert layer.get_config() == {"mode": "ok"}


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("bad_shape", r"output 0 has shape \(3, 4\), declared \(3, 5\)"),
        ("lossy_config", r"get_config\(\)\['mode'\] = None, passed 'lossy_config'"),
        ("wrong_gradient", r"gradient of input 0"),
        ("dead_weight", r"no trainable weight received a non-zero gradient"),
    ],
)
def test_a_broken_layer_fails_with_a_message_naming_the_problem(mode, message):
    with pytest.raises(AssertionError, match=message):
        run_layer_test(Doubler, [(3, 4)], {"mode": mode}, reference=reference if mode != "dead_weight" else None)


def test_expected_output_shapes_are_checked():
    with pytest.raises(AssertionError, match=r"output_shapes \[\(3, 4\)\] != expected \[\(3, 5\)\]"):
        run_layer_test(Doubler, [(3, 4)], {}, expected_output_shapes=[(3, 5)])
