"""Interaction: output layout against an explicit float64 double loop, padding, two tops, errors."""

import pytest
import torch

from ctrflow.dense.layers import Interaction
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# dot products of length d=4 in float32: a few ulps of values ~4; 1e-5 relative
RTOL, ATOL = 1e-5, 1e-5


def interaction_reference(layer, dense, emb):
    features = [dense] + [emb[:, s] for s in range(emb.shape[1])]
    columns = [dense]
    for i in range(1, len(features)):
        for j in range(i):
            columns.append((features[i] * features[j]).sum(dim=1, keepdim=True))
    columns.append(torch.zeros(dense.shape[0], 1, dtype=dense.dtype))
    return torch.cat(columns, dim=1)


def test_interaction_is_dense_then_lower_triangle_dot_products_then_zero_pad():
    run_layer_test(
        Interaction,
        [(3, 4), (3, 5, 4)],
        {},
        expected_output_shapes=[(3, 4 + 15 + 1)],
        reference=interaction_reference,
        rtol=RTOL,
        atol=ATOL,
    )


def test_interaction_with_two_tops_returns_the_same_tensor_twice():
    layer = run_layer_test(
        Interaction,
        [(3, 4), (3, 2, 4)],
        {"num_tops": 2},
        expected_output_shapes=[(3, 8), (3, 8)],
    )
    first, second = layer(torch.randn(3, 4), torch.randn(3, 2, 4))
    assert second is first


def test_interaction_pad_element_is_zero():
    out = Interaction([(2, 3), (2, 4, 3)])(torch.randn(2, 3), torch.randn(2, 4, 3))
    assert torch.count_nonzero(out[:, -1]) == 0


def test_interaction_needs_equal_widths():
    with pytest.raises(LayerError, match=r"the input tensors' widths \(and batch\) must be the same"):
        Interaction([(3, 4), (3, 5, 8)])


def test_interaction_accepts_only_one_or_two_tops():
    with pytest.raises(LayerError, match=r"num_tops=3, expected 1 or 2"):
        Interaction([(3, 4), (3, 5, 4)], num_tops=3)


def test_interaction_output_and_gradients_equal_the_advanced_index_gather_in_float64():
    # the layer gathers the pairs with one flat index_select; the original formulation (an advanced-index
    # gather of the lower triangle) must give the same values and the same input gradients, bit for bit
    generator = torch.Generator().manual_seed(0)
    dense = torch.randn(6, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    emb = torch.randn(6, 26, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(6, 8 + 27 * 26 // 2 + 1, dtype=torch.float64, generator=generator)
    layer = Interaction([(6, 8), (6, 26, 8)])
    out = layer(dense, emb)
    (out * weight).sum().backward()
    grads = dense.grad.clone(), emb.grad.clone()
    dense.grad = emb.grad = None

    features = torch.cat([dense.unsqueeze(1), emb], dim=1)
    gram = torch.bmm(features, features.transpose(1, 2))
    rows, cols = torch.tril_indices(27, 27, offset=-1)
    expected = torch.cat([dense, gram[:, rows, cols], torch.zeros(6, 1, dtype=torch.float64)], dim=1)
    (expected * weight).sum().backward()
    assert torch.equal(out, expected)
    assert torch.equal(grads[0], dense.grad)
    assert torch.equal(grads[1], emb.grad)
