"""AUC (exact, ties), AverageLoss and HitRate: accumulation over batches, valid rows, reset on result()."""

import math

import numpy as np
import pytest
import torch

from ctrflow.dense.metrics import AUC, METRICS, AverageLoss, HitRate, roc_auc


def brute_force_auc(pred, label):
    # every (positive, negative) pair: 1 if ranked right, 1/2 on a tie
    pos, neg = pred[label == 1], pred[label == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_over_several_batches_equals_the_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 6, 300) / 5.0  # only six distinct scores: many ties
    label = rng.integers(0, 2, 300).astype(np.float64)
    metric = AUC()
    for start in range(0, 300, 64):
        metric.update(torch.tensor(pred[start : start + 64]).reshape(-1, 1), torch.tensor(label[start : start + 64]))
    assert metric.result() == pytest.approx(brute_force_auc(pred, label), abs=1e-12)


def test_auc_counts_only_valid_rows():
    metric = AUC()
    pred = torch.tensor([[0.9], [0.1], [0.0], [1.0]])
    label = torch.tensor([[1.0], [0.0], [1.0], [0.0]])  # the two padded rows would invert the ranking
    metric.update(pred, label, num_valid=2)
    assert metric.result() == 1.0


def test_auc_result_resets_and_one_class_gives_nan():
    metric = AUC()
    metric.update(torch.tensor([0.2, 0.8]), torch.tensor([0.0, 1.0]))
    assert metric.result() == 1.0
    metric.update(torch.tensor([0.2, 0.8]), torch.tensor([1.0, 1.0]))
    assert math.isnan(metric.result())


def test_roc_auc_is_kept_and_agrees_with_the_metric():
    pred, label = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0.0, 0.0, 1.0, 1.0])
    assert roc_auc(pred, label) == pytest.approx(0.75)


def test_average_loss_is_the_mean_of_batch_losses_and_resets():
    metric = AverageLoss()
    for loss in (0.5, 0.7, 0.9):
        metric.update(torch.zeros(2), torch.zeros(2), loss)
    assert metric.result() == pytest.approx(0.7)
    assert math.isnan(metric.result())


def test_hit_rate_counts_labels_equal_to_one_among_predictions_above_point_eight():
    metric = HitRate()
    metric.update(torch.tensor([0.9, 0.85, 0.8, 0.95]), torch.tensor([1.0, 0.0, 1.0, 1.0]))
    metric.update(torch.tensor([0.99, 0.1]), torch.tensor([0.5, 1.0]))
    # checked: 0.9, 0.85, 0.95, 0.99 (0.8 is not > 0.8); hits: 0.9, 0.95
    assert metric.result() == pytest.approx(2 / 4)
    assert math.isnan(metric.result())


def test_hit_rate_ignores_padded_rows():
    metric = HitRate()
    metric.update(torch.tensor([0.9, 0.95]), torch.tensor([1.0, 0.0]), num_valid=1)
    assert metric.result() == 1.0


def test_metrics_registry_uses_hugectr_names():
    assert {"AUC": AUC, "AverageLoss": AverageLoss, "HitRate": HitRate} == METRICS


def test_num_valid_past_the_batch_is_rejected():
    with pytest.raises(ValueError, match=r"AUC: num_valid=3 for a batch of 2 rows"):
        AUC().update(torch.zeros(2), torch.zeros(2), num_valid=3)


def test_auc_of_a_two_column_prediction_reads_the_first_b_values_as_v35_does():
    # CrossEntropyLoss predictions [B, 2] against labels [B, 1]: v3.5 pairs the first B flattened values
    prediction = torch.tensor([[0.2, 0.8], [0.9, 0.1]])
    label = torch.tensor([[0.0], [1.0]])
    metric = AUC()
    metric.update(prediction.reshape(-1), label.reshape(-1))
    assert metric.result() == roc_auc(np.array([0.2, 0.8]), np.array([0.0, 1.0]))
