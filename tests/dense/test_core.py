"""InnerProduct and FusedInnerProduct: shapes, float64 references, weight layout, position rules."""

import pytest
import torch

from ctrflow.dense.layers import FusedInnerProduct, InnerProduct
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# float32 layer vs float64 reference: a few ulps of accumulated rounding over K <= 16 products
RTOL, ATOL = 1e-5, 1e-5


def linear_reference(layer, x, *aliases):
    return x @ layer.weight + layer.bias


def test_inner_product_matches_x_times_w_plus_b_in_forward_and_backward():
    run_layer_test(
        InnerProduct,
        [(8, 5)],
        {"num_output": 3},
        expected_output_shapes=[(8, 3)],
        reference=linear_reference,
        rtol=RTOL,
        atol=ATOL,
    )


def test_inner_product_registers_weight_in_out_then_bias_as_in_the_dense_file():
    layer = InnerProduct([(4, 6)], num_output=2)
    names = [(n, tuple(p.shape)) for n, p in layer.named_parameters()]
    assert names == [("weight", (6, 2)), ("bias", (2,))]


def test_inner_product_works_for_another_batch_size_than_the_nominal_one():
    layer = InnerProduct([(4, 6)], num_output=2)
    assert layer(torch.randn(7, 6)).shape == (7, 2)


def test_inner_product_rejects_a_3d_bottom_naming_the_layer():
    with pytest.raises(LayerError, match=r'InnerProduct "fc1": bottom 0 has shape \[2, 3, 4\] \(3-D\)'):
        InnerProduct([(2, 3, 4)], name="fc1", num_output=2)


def test_inner_product_rejects_an_unknown_initializer_name():
    with pytest.raises(LayerError, match=r"weight_init_type='Gaussian' is not valid; expected one of Default"):
        InnerProduct([(2, 3)], num_output=2, weight_init_type="Gaussian")


def test_inner_product_rejects_a_zero_num_output():
    with pytest.raises(LayerError, match=r"num_output=0 is too small"):
        InnerProduct([(2, 3)], num_output=0)


def test_inner_product_rejects_two_bottoms():
    with pytest.raises(LayerError, match=r"expects 1 bottom tensor\(s\), received 2"):
        InnerProduct([(2, 3), (2, 3)], num_output=2)


def test_fused_inner_product_is_relu_of_the_affine_map():
    run_layer_test(
        FusedInnerProduct,
        [(8, 5)],
        {"num_output": 4},
        expected_output_shapes=[(8, 4)],
        reference=lambda layer, x: torch.relu(x @ layer.weight + layer.bias),
        rtol=RTOL,
        atol=ATOL,
    )


def test_fused_inner_product_tail_without_activation_is_affine():
    shapes = [(8, 5), (8, 5), (8, 5), (1, 5)]
    run_layer_test(
        FusedInnerProduct,
        shapes,
        {"num_output": 1, "pos_type": "Tail", "act_type": "Non"},
        expected_output_shapes=[(8, 1)],
        reference=linear_reference,
        rtol=RTOL,
        atol=ATOL,
    )


def test_fused_inner_product_head_gives_four_tops_out_mask_drelu_db():
    layer = run_layer_test(
        FusedInnerProduct,
        [(8, 5), (8, 5)],
        {"num_output": 3, "pos_type": "Head", "num_tops": 4},
        expected_output_shapes=[(8, 3), (8, 3), (8, 3), (1, 3)],
    )
    out, mask, drelu, db = layer(torch.randn(8, 5), torch.randn(8, 5))
    torch.testing.assert_close(mask, (out > 0).float())
    torch.testing.assert_close(drelu, out)
    assert torch.count_nonzero(db) == 0


def test_fused_inner_product_head_ignores_its_second_bottom():
    layer = FusedInnerProduct([(4, 5), (4, 5)], num_output=3, pos_type="Head")
    x = torch.randn(4, 5)
    torch.testing.assert_close(layer(x, torch.randn(4, 5))[0], layer(x, torch.zeros(4, 5))[0])


def test_fused_inner_product_body_takes_the_four_tops_of_a_head():
    head = FusedInnerProduct([(4, 5)], num_output=3, pos_type="Head", num_tops=4)
    body = FusedInnerProduct(head.output_shapes, num_output=2, pos_type="Body", num_tops=4)
    tail = FusedInnerProduct(body.output_shapes, num_output=1, pos_type="Tail", act_type="Non")
    out = tail(*body(*head(torch.randn(4, 5))))
    assert out.shape == (4, 1)


def test_fused_inner_product_without_activation_must_be_the_tail():
    with pytest.raises(LayerError, match=r"the layer without activation function must be the last layer in MLP"):
        FusedInnerProduct([(4, 5)], num_output=3, pos_type="Head", act_type="Non")


def test_fused_inner_product_short_form_chains_single_tensors():
    head = FusedInnerProduct([(4, 5), (4, 5)], num_output=3, pos_type="Head")
    body = FusedInnerProduct(head.output_shapes, num_output=2, pos_type="Body")
    tail = FusedInnerProduct(body.output_shapes, num_output=1, pos_type="Tail", act_type="Non")
    x = torch.randn(4, 5)
    expected = torch.relu(torch.relu(x @ head.weight + head.bias) @ body.weight + body.bias) @ tail.weight + tail.bias
    torch.testing.assert_close(tail(body(head(x, x))), expected)


@pytest.mark.parametrize(
    ("shapes", "config", "message"),
    [
        ([(4, 5)] * 3, {"pos_type": "Body"}, r'pos_type="Body" received 3 bottom\(s\), expected 1 or 4'),
        ([(4, 5)], {"pos_type": "Tail", "num_tops": 4}, r'pos_type="Tail" received 4 top\(s\), expected 1'),
        ([(4, 5)], {"pos_type": "Non", "num_tops": 4}, r"position and dimension of bottom and top layer aren't"),
    ],
)
def test_fused_inner_product_rejects_tensor_counts_of_no_position(shapes, config, message):
    with pytest.raises(LayerError, match=message):
        FusedInnerProduct(shapes, num_output=3, **config)


def test_fused_inner_product_rejects_an_unknown_position():
    with pytest.raises(LayerError, match=r"pos_type='Middle' is not valid"):
        FusedInnerProduct([(4, 5)], num_output=3, pos_type="Middle")


def test_fused_inner_product_runs_under_bfloat16_autocast():
    layer = FusedInnerProduct([(4, 8)], num_output=16)
    x = torch.randn(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16
    # bfloat16 keeps 8 mantissa bits: relative error ~4e-3 per product, ~2e-2 after the sum of 8
    torch.testing.assert_close(y.float(), torch.relu(x @ layer.weight + layer.bias), rtol=3e-2, atol=3e-2)
