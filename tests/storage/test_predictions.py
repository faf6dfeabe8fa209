"""Tests of ctrflow.storage.predictions: v3.5's export_predictions text (formats spec §9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctrflow.storage import filesystems, predictions


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.123456789, "0.123457"), (1e-7, "1e-07"), (1.0, "1"), (0.0, "0"), (-0.25, "-0.25"), (100000.0, "100000"),
        (1234567.0, "1.23457e+06"), (0.0001, "0.0001"), (0.00001234, "1.234e-05"), (float("inf"), "inf"),
        (float("nan"), "nan"), (-float("nan"), "-nan"),
    ],
)  # fmt: skip
def test_values_print_like_cpp_ostream_float(value, text):
    assert predictions.format_float(value) == text


def test_values_are_appended_with_one_space_each_and_no_newline(root):
    pred_url, label_url = root.join("pred.txt"), root.join("label.txt")
    options = root.storage_options
    predictions.append_predictions(
        pred_url, label_url, torch.tensor([[0.5], [0.25]]), np.array([[1.0], [0.0]]), options
    )
    predictions.append_predictions(pred_url, label_url, np.array([0.1234567]), [1.0], options)
    with filesystems.open_file(pred_url, "rb", options) as handle:
        assert handle.read() == b"0.5 0.25 0.123457 "
    with filesystems.open_file(label_url, "rb", options) as handle:
        assert handle.read() == b"1 0 1 "


def test_multi_label_rows_are_written_row_major(tmp_path):
    pred, label = str(tmp_path / "p"), str(tmp_path / "l")
    predictions.append_predictions(pred, label, np.array([[0.1, 0.2], [0.3, 0.4]]), np.zeros((2, 2)))
    assert (tmp_path / "p").read_text() == "0.1 0.2 0.3 0.4 "


def test_prediction_and_label_counts_must_match(tmp_path):
    with pytest.raises(ValueError, match="received 3 predictions but 2 labels"):
        predictions.append_predictions(str(tmp_path / "p"), str(tmp_path / "l"), np.zeros(3), np.zeros(2))
    assert not (tmp_path / "p").exists()
