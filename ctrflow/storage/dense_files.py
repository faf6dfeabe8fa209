"""Dense model files (formats spec §5): weights, optimizer states, BatchNorm running statistics, file names.

* `<prefix>_dense_<iter>.model`: float32 concatenation, in layer order, of every trainable tensor (row-major;
  InnerProduct W is `[in, out]`, the transpose of `torch.nn.Linear.weight` — the caller transposes).
* `<prefix>_opt_dense_<iter>.model`: the optimizer states one after the other (Adam m then v), float32, or
  fp16 under mixed precision; SGD writes a 0-byte file.
* `<prefix>_dense_<iter>.model.ntp.json`: BatchNorm running mean/var as text with `%f` numbers.
* `<prefix>_opt_dense_<iter>.model.steps.json`: ctrflow's own side file with optimizer step counters, which
  HugeCTR never saves (formats spec §11.11) and v3.5 ignores; without it training resumes bias correction at t=1.

The functions work on plain arrays and tensors; the model decides which tensors, in which order.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ctrflow.storage import filesystems
from ctrflow.storage.binary_arrays import FLOAT16, FLOAT32, read_bytes, read_exact, to_float_array

STEPS_FORMAT = "ctrflow.optimizer_steps"


def dense_file_name(prefix: str, iteration: int = 0) -> str:
    """`<prefix>_dense_<iter>.model` (formats spec §5.1)."""
    return f"{prefix}_dense_{int(iteration)}.model"


def dense_optimizer_file_name(prefix: str, iteration: int = 0) -> str:
    """`<prefix>_opt_dense_<iter>.model` (formats spec §5.1)."""
    return f"{prefix}_opt_dense_{int(iteration)}.model"


def non_trainable_file_name(prefix: str, iteration: int = 0) -> str:
    """`<prefix>_dense_<iter>.model.ntp.json`, the BatchNorm running statistics (formats spec §5.1)."""
    return dense_file_name(prefix, iteration) + ".ntp.json"


def sparse_model_dir_name(prefix: str, index: int, iteration: int = 0) -> str:
    """`<prefix><i>_sparse_<iter>.model`, a folder; no separator between prefix and index (formats spec §5.1)."""
    return f"{prefix}{int(index)}_sparse_{int(iteration)}.model"


def sparse_optimizer_file_name(prefix: str, index: int, iteration: int = 0) -> str:
    """`<prefix><i>_opt_sparse_<iter>.model`, a file (formats spec §5.1)."""
    return f"{prefix}{int(index)}_opt_sparse_{int(iteration)}.model"


def optimizer_steps_file_name(prefix: str, iteration: int = 0) -> str:
    """`<prefix>_opt_dense_<iter>.model.steps.json`: ctrflow's step counters next to the dense optimizer file."""
    return dense_optimizer_file_name(prefix, iteration) + ".steps.json"


def _flatten(tensors: Sequence[Any], dtype: np.dtype, name: str) -> np.ndarray:
    if isinstance(tensors, (str, bytes)) or not isinstance(tensors, Sequence):
        raise TypeError(f"{name}: expected a list of tensors, received {type(tensors).__name__}.")
    parts = [to_float_array(t, dtype, f"{name}[{i}]").reshape(-1) for i, t in enumerate(tensors)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def write_dense_weights(url: str, tensors: Sequence[Any], storage_options: Mapping[str, Any] | None = None) -> None:
    """Write the dense weight file: every tensor flattened row-major, float32, concatenated (§5.2)."""
    data = _flatten(tensors, FLOAT32, "dense weights")
    with filesystems.atomic_write(url, "wb", storage_options) as handle:
        handle.write(data.tobytes())


def read_dense_weights(url: str, expected_count: int, storage_options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Read `expected_count` float32 weights; a shorter or longer file is a ValueError.

    v3.5 zero-fills a short file and ignores extra bytes; both mean the file is for another model, so
    ctrflow refuses it rather than train from silently wrong weights.
    """
    _check_count(expected_count, "expected_count")
    return read_exact(url, FLOAT32, expected_count, "dense weight", storage_options)


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, received {value!r}.")


def write_dense_optimizer_states(
    url: str,
    states: Sequence[Any],
    half: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write the dense optimizer file: the states one after the other (§5.4).

    Args:
        url: destination.
        states: one entry per state in HugeCTR's order (Adam: m, v; AdaGrad / Nesterov: accum; MomentumSGD:
            momentum; SGD: none). Each entry is a tensor over all dense parameters in weight-file order, or a
            list of per-layer tensors in that order. All states must hold the same number of values.
        half: write fp16 (mixed precision) instead of float32.
    """
    dtype = FLOAT16 if half else FLOAT32
    blocks = []
    for index, state in enumerate(states):
        parts = state if isinstance(state, (list, tuple)) else [state]
        blocks.append(_flatten(parts, dtype, f"optimizer state {index}"))
    sizes = {block.size for block in blocks}
    if len(sizes) > 1:
        raise ValueError(
            f"Dense optimizer states must all cover the same parameters; received sizes "
            f"{[block.size for block in blocks]}. Pass one tensor per state over all dense weights."
        )
    with filesystems.atomic_write(url, "wb", storage_options) as handle:
        for block in blocks:
            handle.write(block.tobytes())


def read_dense_optimizer_states(
    url: str,
    count_per_state: int,
    num_states: int,
    half: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Read `num_states` states of `count_per_state` values each; returns float32 `[num_states, count_per_state]`.

    fp16 files (`half=True`) are widened to float32 exactly. Any file size other than the expected one is a
    ValueError that names the file and both sizes (SGD: `num_states=0`, a 0-byte file).
    """
    _check_count(count_per_state, "count_per_state")
    _check_count(num_states, "num_states")
    dtype = FLOAT16 if half else FLOAT32
    what = f"dense optimizer-state ({num_states} states, {'fp16' if half else 'float32'})"
    flat = read_exact(url, dtype, count_per_state * num_states, what, storage_options)
    return flat.astype(np.float32).reshape(num_states, count_per_state)


def _format_percent_f(value: float) -> str:
    # std::to_string(float) is printf("%f") of the value widened to double; glibc spells NaN "nan"/"-nan".
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return f"{value:f}"


def _float32_list(values: Any, name: str) -> list[float]:
    array = to_float_array(values, FLOAT32, name)
    if array.ndim != 1:
        array = array.reshape(-1)
    return [float(v) for v in array]


def non_trainable_params_text(layers: Sequence[tuple[Any, Any]]) -> str:
    """The exact `.ntp.json` text for BatchNorm layers given as `(running_mean, running_var)` pairs (§5.3)."""
    if not layers:
        raise ValueError(
            "non_trainable_params_text received no BatchNorm layers; HugeCTR writes the .ntp.json file only when "
            "the model has at least one BatchNorm layer. Skip the file instead."
        )
    blocks = []
    for index, (mean, var) in enumerate(layers):
        mean_text = ", ".join(_format_percent_f(v) for v in _float32_list(mean, f"BatchNorm {index} mean"))
        var_text = ", ".join(_format_percent_f(v) for v in _float32_list(var, f"BatchNorm {index} var"))
        blocks.append(
            f'    {{\n      "type": "BatchNorm",\n      "mean": [{mean_text}],\n      "var": [{var_text}]\n    }}'
        )
    return '{\n  "layers": [\n' + ",\n".join(blocks) + "\n  ]\n}\n"


def write_non_trainable_params(
    url: str, layers: Sequence[tuple[Any, Any]], storage_options: Mapping[str, Any] | None = None
) -> None:
    """Write the `.ntp.json` file of the model's BatchNorm layers, in train-network order (§5.3)."""
    text = non_trainable_params_text(layers)
    with filesystems.atomic_write(url, "wb", storage_options) as handle:
        handle.write(text.encode("utf-8"))


_NON_FINITE = re.compile(r"(?<![\w\"])(-?)(nan|inf)\b")


def read_non_trainable_params(
    url: str, storage_options: Mapping[str, Any] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read a `.ntp.json` file; returns one `(running_mean, running_var)` float32 pair per BatchNorm layer."""
    try:
        text = read_bytes(url, storage_options).decode("utf-8")
        document = json.loads(_NON_FINITE.sub(r'"\1\2"', text))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{url}: not a BatchNorm statistics (.ntp.json) file: {error}.") from error
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(layers, list):
        raise ValueError(f'{url}: expected an object with a "layers" list, received {type(document).__name__}.')
    result = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict) or layer.get("type") != "BatchNorm" or {"mean", "var"} - layer.keys():
            raise ValueError(f'{url}: layer {index} must be {{"type": "BatchNorm", "mean": [...], "var": [...]}}.')
        mean = np.array([float(v) for v in layer["mean"]], dtype=np.float32)
        var = np.array([float(v) for v in layer["var"]], dtype=np.float32)
        result.append((mean, var))
    return result


def write_optimizer_steps(url: str, steps: Mapping[str, int], storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ctrflow's optimizer step counters, e.g. `{"dense": 1000, "sparse0": 1000}`, as JSON."""
    clean = {}
    for name, step in steps.items():
        _check_count(step, f"optimizer step {name!r}")
        clean[str(name)] = int(step)
    text = json.dumps({"format": STEPS_FORMAT, "version": 1, "steps": clean}, indent=2, sort_keys=True)
    with filesystems.atomic_write(url, "wb", storage_options) as handle:
        handle.write(text.encode("utf-8"))


def read_optimizer_steps(url: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, int] | None:
    """The step counters in `url`, or None when there is no such file (a snapshot written by HugeCTR)."""
    if not filesystems.exists(url, storage_options):
        return None
    with filesystems.open_file(url, "rb", storage_options) as handle:
        raw = handle.read()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{url}: not a ctrflow optimizer-steps file: {error}.") from error
    if not isinstance(document, dict) or document.get("format") != STEPS_FORMAT:
        raise ValueError(f'{url}: expected a JSON object with "format": "{STEPS_FORMAT}".')
    steps = document.get("steps", {})
    if not isinstance(steps, dict) or not all(isinstance(v, int) for v in steps.values()):
        raise ValueError(f'{url}: "steps" must map names to integers, received {steps!r}.')
    return {str(k): int(v) for k, v in steps.items()}
