"""Loss layers against hand-written float64 formulas: values, gradients, valid rows, errors."""

import math

import pytest
import torch

from ctrflow.dense.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MultiCrossEntropyLoss
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError

# a mean of a few float32 log terms: ~1e-7 relative; 1e-5 leaves margin
RTOL, ATOL = 1e-5, 1e-6


def bce_reference(layer, x, y):
    # semantics spec §2.1: the two stable branches of BCE-with-logits
    per_row = torch.where(x >= 0, x * (1 - y) + torch.log1p(torch.exp(-x)), -x * y + torch.log1p(torch.exp(x)))
    return per_row.sum() / x.shape[0]


def test_bce_matches_the_spec_formula_with_soft_labels():
    label = torch.rand(6, 1, generator=torch.Generator().manual_seed(1))
    pred = torch.randn(6, 1) * 4
    run_layer_test(
        BinaryCrossEntropyLoss,
        [(6, 1), (6, 1)],
        {},
        inputs=[pred, label],
        expected_output_shapes=[()],
        reference=bce_reference,
        rtol=RTOL,
        atol=ATOL,
    )
    # logit 0 with label 0.5 costs ln 2; logit 2 with label 1 costs ln(1 + e^-2)
    loss = BinaryCrossEntropyLoss([(2, 1), (2, 1)])
    value = loss(torch.tensor([[0.0], [2.0]]), torch.tensor([[0.5], [1.0]]))
    assert value.item() == pytest.approx((math.log(2.0) + math.log1p(math.exp(-2.0))) / 2, rel=1e-6)


def test_bce_gradient_is_sigmoid_minus_label_over_batch():
    x = torch.tensor([[0.5], [-2.0], [3.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0], [0.0], [0.3]], dtype=torch.float64)
    BinaryCrossEntropyLoss([(3, 1), (3, 1)])(x, y).backward()
    torch.testing.assert_close(x.grad, (torch.sigmoid(x.detach()) - y) / 3, check_dtype=False)


def test_bce_excludes_padded_rows_beyond_num_valid():
    loss = BinaryCrossEntropyLoss([(4, 1), (4, 1)])
    x = torch.tensor([[1.0], [-1.0], [50.0], [50.0]])
    y = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    expected = math.log1p(math.exp(-1.0))
    assert loss(x, y, num_valid=2).item() == pytest.approx(expected, rel=1e-6)


def test_bce_predict_is_the_sigmoid():
    loss = BinaryCrossEntropyLoss([(2, 1), (2, 1)])
    torch.testing.assert_close(loss.predict(torch.tensor([[0.0], [2.0]])), torch.sigmoid(torch.tensor([[0.0], [2.0]])))


def test_bce_needs_width_one():
    with pytest.raises(LayerError, match=r"the feature dimension of BCE loss input should be 1"):
        BinaryCrossEntropyLoss([(4, 2), (4, 1)])


def test_loss_needs_exactly_two_bottoms():
    with pytest.raises(LayerError, match=r'BinaryCrossEntropyLoss "loss": expects 2 bottom tensor\(s\), received 1'):
        BinaryCrossEntropyLoss([(4, 1)], name="loss")


def ce_reference(layer, x, y):
    classes = (y[:, 0] >= 0.5).long()
    log_p = x - torch.logsumexp(x, dim=1, keepdim=True)
    return -log_p[torch.arange(x.shape[0]), classes].sum() / x.shape[0]


def test_cross_entropy_reads_a_class_index_label():
    label = torch.tensor([[0.0], [1.0], [0.2], [0.9], [1.0]])
    run_layer_test(
        CrossEntropyLoss,
        [(5, 2), (5, 1)],
        {},
        inputs=[torch.randn(5, 2), label],
        reference=ce_reference,
        rtol=RTOL,
        atol=ATOL,
    )
    # label 1.0 → class 1 (p = 3/4), label 0.2 → class 0 (p = 1/2)
    loss = CrossEntropyLoss([(2, 2), (2, 1)])
    value = loss(torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]]), torch.tensor([[1.0], [0.2]]))
    assert value.item() == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, rel=1e-6)


def test_cross_entropy_predict_is_the_softmax_and_width_must_be_two():
    loss = CrossEntropyLoss([(2, 2), (2, 1)])
    x = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    torch.testing.assert_close(loss.predict(x), torch.softmax(x, dim=1))
    with pytest.raises(LayerError, match=r"the feature dimension of CE loss input should be 2"):
        CrossEntropyLoss([(2, 3), (2, 1)])


def multi_ce_reference(layer, x, y):
    weights = torch.tensor(layer.params["target_weight_vec"], dtype=x.dtype)
    per = torch.clamp(x, min=0) - x * y + torch.log1p(torch.exp(-x.abs()))
    per = torch.where(y < -0.5, torch.zeros_like(per), per * weights)
    return per.sum() / (x.shape[0] * x.shape[1])


def test_multi_cross_entropy_weights_columns_and_masks_but_counts_masked_labels():
    label = torch.tensor([[1.0, 0.0, -1.0], [0.0, -1.0, 1.0], [1.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    run_layer_test(
        MultiCrossEntropyLoss,
        [(4, 3), (4, 3)],
        {"target_weight_vec": [1.0, 0.5, 2.0]},
        inputs=[torch.randn(4, 3), label],
        reference=multi_ce_reference,
        rtol=RTOL,
        atol=ATOL,
    )
    # logits 0 cost ln 2 each; weights 1 and 2; the -1 label is masked but still counted: (1 + 1 + 2) ln 2 / 4
    loss = MultiCrossEntropyLoss([(2, 2), (2, 2)], target_weight_vec=[1.0, 2.0])
    value = loss(torch.zeros(2, 2), torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
    assert value.item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_multi_cross_entropy_masked_elements_get_no_gradient():
    x = torch.zeros(2, 2, requires_grad=True)
    y = torch.tensor([[1.0, -1.0], [-1.0, 0.0]])
    MultiCrossEntropyLoss([(2, 2), (2, 2)], target_weight_vec=[1.0, 1.0])(x, y).backward()
    assert x.grad[0, 1] == 0 and x.grad[1, 0] == 0
    assert x.grad[0, 0] == pytest.approx((0.5 - 1.0) / 4)


def test_multi_cross_entropy_needs_one_weight_per_column():
    with pytest.raises(LayerError, match=r"target_weight_vec=\[\] does not have one weight per prediction column"):
        MultiCrossEntropyLoss([(4, 3), (4, 3)])


def test_regularizer_settings_are_not_loss_arguments():
    # the model reads use_regularizer / regularizer_type / lambda and adds regularization_term itself
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'use_regularizer'"):
        BinaryCrossEntropyLoss([(4, 1), (4, 1)], use_regularizer=True)


def test_loss_rejects_num_valid_past_the_batch():
    with pytest.raises(LayerError, match=r"num_valid=5 for a batch of 4 rows"):
        BinaryCrossEntropyLoss([(4, 1), (4, 1)])(torch.zeros(4, 1), torch.zeros(4, 1), num_valid=5)
