"""Initialisers per layer and Initializer_t against semantics spec §1.3, and seeded reproducibility."""

import math

import pytest
import torch

from ctrflow.dense import initializers
from ctrflow.dense.layers import GRU, BatchNorm, InnerProduct, MultiCross, WeightMultiply

CORRECTION = 0.87962566103423978


def draw(layer_cls, shapes, seed=0, **config):
    layer = layer_cls(shapes, **config)
    layer.reset_parameters(torch.Generator().manual_seed(seed))
    return layer


def assert_uniform(values, limit):
    # 10^4+ draws: the extremes come within 1% of the bound and the std within 5% of limit/sqrt(3)
    assert values.abs().max() <= limit
    assert values.abs().max() > 0.99 * limit
    assert values.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.05)


def assert_normal(values, std):
    # untruncated normal: std within 5%, and values beyond 2σ exist (about 4.6% of draws)
    assert values.std().item() == pytest.approx(std, rel=0.05)
    assert (values.abs() > 2 * std).float().mean().item() == pytest.approx(0.0455, abs=0.01)


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("Default", lambda w: assert_normal(w, math.sqrt(2 / (200 + 100)) / CORRECTION)),
        ("XavierNorm", lambda w: assert_normal(w, math.sqrt(2 / (200 + 100)) / CORRECTION)),
        ("Uniform", lambda w: assert_uniform(w, 1 / (200 + 100))),
        ("XavierUniform", lambda w: assert_uniform(w, math.sqrt(6 / (200 + 100)))),
        ("Zero", lambda w: torch.testing.assert_close(w, torch.zeros_like(w))),
    ],
)
def test_inner_product_weight_follows_the_documented_formula(kind, check):
    layer = draw(InnerProduct, [(4, 200)], num_output=100, weight_init_type=kind)
    check(layer.weight.detach())


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("Default", lambda b: assert_normal(b, math.sqrt(1 / 20000))),
        ("XavierNorm", lambda b: assert_normal(b, math.sqrt(1 / 10000) / CORRECTION)),
        ("Uniform", lambda b: assert_uniform(b, 1 / 20000)),
        ("XavierUniform", lambda b: assert_uniform(b, math.sqrt(3 / 10000))),
        ("Zero", lambda b: torch.testing.assert_close(b, torch.zeros_like(b))),
    ],
)
def test_inner_product_bias_follows_the_documented_formula(kind, check):
    layer = draw(InnerProduct, [(4, 2)], num_output=20000, bias_init_type=kind)
    check(layer.bias.detach())


@pytest.mark.parametrize("kind", ["Default", "Uniform", "XavierNorm", "XavierUniform"])
def test_multi_cross_weights_are_variance_scaling_uniform_and_biases_zero(kind):
    layer = draw(MultiCross, [(4, 5000)], num_layers=3, weight_init_type=kind, bias_init_type="Uniform")
    for weight, bias in layer.cross_weights():
        assert_uniform(weight.detach(), math.sqrt(3 / 5000))
        assert torch.count_nonzero(bias) == 0


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("Default", lambda w: assert_uniform(w, math.sqrt(6 / (100 + 100 * 50)))),
        ("XavierUniform", lambda w: assert_uniform(w, math.sqrt(6 / (100 + 100 * 50)))),
        ("Uniform", lambda w: assert_uniform(w, 1 / (100 + 100 * 50))),
        ("XavierNorm", lambda w: assert_normal(w, math.sqrt(2 / (100 + 100 * 50)) / CORRECTION)),
    ],
)
def test_weight_multiply_follows_the_documented_formula(kind, check):
    layer = draw(WeightMultiply, [(4, 100)], weight_dims=[100, 50], weight_init_type=kind)
    check(layer.weight.detach())


def test_batch_norm_gamma_is_one_unless_zero_and_beta_is_zero():
    layer = draw(BatchNorm, [(4, 3)], gamma_init_type="XavierUniform", beta_init_type="Uniform")
    torch.testing.assert_close(layer.gamma.detach(), torch.ones(3))
    torch.testing.assert_close(layer.beta.detach(), torch.zeros(3))
    zero = draw(BatchNorm, [(4, 3)], gamma_init_type="Zero")
    torch.testing.assert_close(zero.gamma.detach(), torch.zeros(3))


def test_gru_weights_are_uniform_over_one_over_sqrt_hidden():
    layer = draw(GRU, [(6, 100)], num_output=64, batchsize=2, SeqLength=3, vector_size=100)
    assert_uniform(layer.weight_ih.detach(), 1 / 8)
    assert torch.count_nonzero(layer.hx) == 0


def test_the_same_seed_gives_the_same_weights_and_another_seed_other_weights():
    first = draw(InnerProduct, [(4, 30)], seed=7, num_output=20)
    again = draw(InnerProduct, [(4, 30)], seed=7, num_output=20)
    other = draw(InnerProduct, [(4, 30)], seed=8, num_output=20)
    torch.testing.assert_close(first.weight, again.weight, rtol=0, atol=0)
    assert not torch.equal(first.weight, other.weight)


def test_variance_scaling_scale_is_never_above_one():
    assert initializers.variance_scaling_scale(0, 1) == 1.0
    assert initializers.variance_scaling_scale(3, 5) == 0.25


def test_an_unknown_initializer_name_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError, match=r"weight_init_type='He' is not an initializer type; expected one of"):
        initializers.check_initializer_type("He", "InnerProduct fc1", "weight_init_type")


@pytest.mark.device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_generator_gives_the_same_weights_on_cuda():
    cpu = draw(InnerProduct, [(4, 30)], seed=3, num_output=20)
    cuda = InnerProduct([(4, 30)], num_output=20).cuda()
    cuda.reset_parameters(torch.Generator().manual_seed(3))
    torch.testing.assert_close(cuda.weight.cpu(), cpu.weight, rtol=0, atol=0)
