"""Reshape, Concat, Slice, FusedReshapeConcat(General), Gather: shapes, values, gradients, errors."""

import math

import pytest
import torch

from ctrflow.dense.layers import Concat, FusedReshapeConcat, FusedReshapeConcatGeneral, Gather, Reshape, Slice
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# pure data movement: results must be exact; gradients of overlapping reads are sums of two values
EXACT = {"rtol": 0.0, "atol": 0.0}
SUMS = {"rtol": 1e-6, "atol": 1e-6}


def counting(*shape: int) -> torch.Tensor:
    """0, 1, 2, ... in `shape`, requiring grad: where each value lands is visible by eye."""
    return torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape).requires_grad_()


def gradient_of_sum(layer, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """How many times each input element is read: the gradient of the sum of every output."""
    outputs = layer(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    sum(out.sum() for out in outputs).backward()
    return [x.grad for x in inputs]


def test_reshape_to_leading_dim_uses_every_element():
    layer = run_layer_test(
        Reshape,
        [(4, 3, 2)],
        {"leading_dim": 6},
        expected_output_shapes=[(4, 6)],
        reference=lambda layer, x: x.reshape(-1, 6),
        **EXACT,
    )
    assert layer(counting(4, 3, 2)).tolist() == torch.arange(24.0).reshape(4, 6).tolist()


def test_reshape_with_time_step_gives_a_3d_top():
    layer = run_layer_test(
        Reshape,
        [(4, 12)],
        {"leading_dim": 3, "time_step": 2},
        expected_output_shapes=[(8, 2, 3)],
        reference=lambda layer, x: x.reshape(-1, 2, 3),
        **EXACT,
    )
    assert layer(counting(4, 12)).tolist() == torch.arange(48.0).reshape(8, 2, 3).tolist()


def test_reshape_computes_rows_from_the_real_batch():
    layer = Reshape([(4, 3, 2)], leading_dim=6)
    assert layer(torch.randn(9, 3, 2)).shape == (9, 6)


def test_reshape_selected_slots_keeps_them_in_the_listed_order_and_sums_repeated_gradients():
    layer = run_layer_test(
        Reshape,
        [(4, 5, 3)],
        {"selected": True, "selected_slots": [3, 0, 3]},
        expected_output_shapes=[(4, 9)],
        reference=lambda layer, x: torch.cat([x[:, 3], x[:, 0], x[:, 3]], dim=1),
        **SUMS,
    )
    x = counting(4, 5, 3)
    assert layer(x)[0].tolist() == [9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 9.0, 10.0, 11.0]
    (grad,) = gradient_of_sum(layer, x)
    assert grad[0].tolist() == [[1.0] * 3, [0.0] * 3, [0.0] * 3, [2.0] * 3, [0.0] * 3]


def test_reshape_selected_with_no_slots_flattens_all_slots():
    layer = Reshape([(4, 5, 3)], selected=True)
    assert layer.output_shapes == [(4, 15)]


def test_reshape_rejects_a_leading_dim_that_does_not_divide_the_elements():
    with pytest.raises(LayerError, match=r'Reshape "r": cannot reshape 24 input elements .* leading_dim=5'):
        Reshape([(4, 6)], name="r", leading_dim=5)


def test_reshape_rejects_a_selected_slot_out_of_range():
    with pytest.raises(LayerError, match=r"selected slot 5 is out of range for an input with 5 slots"):
        Reshape([(4, 5, 3)], selected=True, selected_slots=[5])


def test_concat_joins_widths():
    layer = run_layer_test(
        Concat,
        [(4, 2), (4, 3), (4, 1)],
        {},
        expected_output_shapes=[(4, 6)],
        reference=lambda layer, *xs: torch.cat(xs, dim=1),
        **EXACT,
    )
    a, b, c = counting(4, 2), counting(4, 3) + 10, counting(4, 1) + 100
    assert layer(a, b, c)[1].tolist() == [2.0, 3.0, 13.0, 14.0, 15.0, 101.0]


def test_concat_rejects_3d_bottoms_and_unequal_heights():
    with pytest.raises(LayerError, match=r"bottom 1 has shape \[4, 2, 2\] \(3-D\), expected a 2-D tensor"):
        Concat([(4, 2), (4, 2, 2)])
    with pytest.raises(LayerError, match=r"all the input tensors must have the same height"):
        Concat([(4, 2), (5, 2)])


def test_slice_with_overlapping_ranges_sums_the_gradients():
    layer = run_layer_test(
        Slice,
        [(4, 6)],
        {"ranges": [[0, 4], [2, 6]]},
        expected_output_shapes=[(4, 4), (4, 4)],
        reference=lambda layer, x: (x[:, 0:4], x[:, 2:6]),
        **SUMS,
    )
    (grad,) = gradient_of_sum(layer, counting(4, 6))
    assert grad[0].tolist() == [1.0, 1.0, 2.0, 2.0, 1.0, 1.0]


def test_slice_with_one_range_returns_a_tensor():
    out = Slice([(4, 6)], ranges=[(1, 3)])(torch.randn(4, 6))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (4, 2)


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([[3, 3]], r"range \[3, 3\] is not a \(start, end\) pair with 0 <= start < end <= 6"),
        ([[0, 7]], r"range \[0, 7\] is not a \(start, end\) pair"),
        ([[2, 4], [0, 5]], r"a range cannot be out-order nor included in another"),
        ([[0, 5], [1, 4]], r"a range cannot be out-order nor included in another"),
        ([], r"ranges=\[\] is empty"),
    ],
)
def test_slice_rejects_bad_ranges(ranges, message):
    with pytest.raises(LayerError, match=message):
        Slice([(4, 6)], ranges=ranges)


def test_fused_reshape_concat_splits_items_and_the_ad():
    def reference(layer, a, b):
        joined = torch.cat([a, b], dim=2)
        return joined[:, :-1].reshape(-1, 5), joined[:, -1]

    layer = run_layer_test(
        FusedReshapeConcat,
        [(3, 4, 2), (3, 4, 3)],
        {},
        expected_output_shapes=[(9, 5), (3, 5)],
        reference=reference,
        **EXACT,
    )
    items, ad = layer(counting(3, 4, 2), counting(3, 4, 3) + 100)
    assert items[0].tolist() == [0.0, 1.0, 100.0, 101.0, 102.0]
    assert ad[0].tolist() == [6.0, 7.0, 109.0, 110.0, 111.0]  # the last slot of sample 0


def test_fused_reshape_concat_general_flattens_batch_and_slots():
    layer = run_layer_test(
        FusedReshapeConcatGeneral,
        [(3, 4, 2), (3, 4, 3)],
        {},
        expected_output_shapes=[(12, 5)],
        reference=lambda layer, a, b: torch.cat([a, b], dim=2).reshape(-1, 5),
        **EXACT,
    )
    out = layer(counting(3, 4, 2), counting(3, 4, 3) + 100)
    assert out[5].tolist() == [10.0, 11.0, 115.0, 116.0, 117.0]  # sample 1, slot 1


def test_fused_reshape_concat_needs_matching_batch_and_slots():
    with pytest.raises(LayerError, match=r"bottom 1 has shape \[3, 5, 3\] but bottom 0 starts with \[3, 4\]"):
        FusedReshapeConcat([(3, 4, 2), (3, 5, 3)])
    with pytest.raises(LayerError, match=r"the bottoms have 1 slot\(s\), expected at least 2"):
        FusedReshapeConcat([(3, 1, 2)])


def test_gather_picks_rows_and_sums_gradients_of_repeated_indices():
    layer = run_layer_test(
        Gather,
        [(5, 3)],
        {"indices": [4, 0, 4]},
        expected_output_shapes=[(3, 3)],
        reference=lambda layer, x: x[[4, 0, 4]],
        **SUMS,
    )
    x = counting(5, 3)
    assert layer(x)[:, 0].tolist() == [12.0, 0.0, 12.0]
    (grad,) = gradient_of_sum(layer, x)
    assert grad[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0, 2.0]


def test_gather_index_out_of_range_is_rejected():
    with pytest.raises(LayerError, match=r'Gather "g": index 5 is out of range for an input of 5 rows'):
        Gather([(5, 3)], name="g", indices=[1, 5])
