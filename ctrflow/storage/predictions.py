"""`export_predictions` text files (formats spec §9).

v3.5 appends each value of the last evaluated batch with `ostream << float` (printf `%g`: 6 significant digits,
`0.123457`, `1e-07`, `1`) followed by one space, never a newline; predictions and labels go to two files.
Which rows and values to write (post-activation, `current_eval_batchsize × label_dim`) is the caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ctrflow.storage import filesystems
from ctrflow.storage.binary_arrays import FLOAT32, to_float_array


def format_float(value: float) -> str:
    """`value` as C++ `std::ostream << float` prints it by default (printf `%g` of the widened float)."""
    widened = float(np.float32(value))
    if math.isnan(widened):
        return "-nan" if math.copysign(1.0, widened) < 0 else "nan"  # glibc spelling
    return f"{widened:g}"


def predictions_text(values: Any, name: str = "values") -> str:
    """Each value of `values` (flattened row-major) followed by one space."""
    array = to_float_array(values, FLOAT32, name).reshape(-1)
    return "".join(format_float(v) + " " for v in array.tolist())


def _append(url: str, text: str, storage_options: Mapping[str, Any] | None) -> None:
    data = text.encode("ascii")
    fs, path = filesystems.resolve(url, storage_options)
    if filesystems.protocol_of(url) in ("s3", "s3a", "gs", "gcs", "abfs", "az"):
        # Object stores cannot append in place: rewrite the object with the new text added.
        previous = fs.cat_file(path) if fs.exists(path) else b""
        fs.pipe_file(path, previous + data)
        return
    with filesystems.open_file(url, "ab", storage_options) as handle:
        handle.write(data)


def append_predictions(
    pred_url: str,
    label_url: str,
    predictions: Any,
    labels: Any,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Append `predictions` to `pred_url` and `labels` to `label_url` in v3.5's text format.

    Both are `[rows, label_dim]` (or flat) float arrays of the same size; a size mismatch is a ValueError.
    """
    prediction_text = predictions_text(predictions, "predictions")
    label_text = predictions_text(labels, "labels")
    num_predictions = to_float_array(predictions, FLOAT32, "predictions").size
    num_labels = to_float_array(labels, FLOAT32, "labels").size
    if num_predictions != num_labels:
        raise ValueError(
            f"append_predictions received {num_predictions} predictions but {num_labels} labels; "
            "pass the predictions and labels of the same evaluated rows."
        )
    _append(pred_url, prediction_text, storage_options)
    _append(label_url, label_text, storage_options)
