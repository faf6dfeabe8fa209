"""Tests of ctrflow.storage.dense_files against byte layouts built by hand from formats spec §5."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from ctrflow.storage import dense_files, filesystems


def _write_bytes(url, data, storage_options=None):
    with filesystems.open_file(url, "wb", storage_options) as handle:
        handle.write(data)


def _read_bytes(url, storage_options=None):
    with filesystems.open_file(url, "rb", storage_options) as handle:
        return handle.read()


def test_file_names_follow_hugectr_snapshot_naming():
    assert dense_files.dense_file_name("wdl", 1000) == "wdl_dense_1000.model"
    assert dense_files.dense_optimizer_file_name("wdl", 1000) == "wdl_opt_dense_1000.model"
    assert dense_files.non_trainable_file_name("wdl", 1000) == "wdl_dense_1000.model.ntp.json"
    assert dense_files.sparse_model_dir_name("wdl", 0, 1000) == "wdl0_sparse_1000.model"
    assert dense_files.sparse_optimizer_file_name("wdl", 1, 1000) == "wdl1_opt_sparse_1000.model"
    assert dense_files.optimizer_steps_file_name("wdl", 1000) == "wdl_opt_dense_1000.model.steps.json"
    assert dense_files.dense_file_name("/a/b") == "/a/b_dense_0.model"


def test_dense_weights_are_a_float32_concatenation_in_layer_order(tmp_path):
    # InnerProduct 2 -> 3: W [in=2, out=3] row-major then b [3]; then BatchNorm gamma [2], beta [2].
    weight = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    bias = torch.tensor([0.5, -0.5, 0.25], dtype=torch.float64)
    gamma, beta = torch.ones(2, dtype=torch.bfloat16), np.zeros(2)
    url = str(tmp_path / "m_dense_0.model")
    dense_files.write_dense_weights(url, [weight, bias, gamma, beta])
    expected = struct.pack("<13f", 1, 2, 3, 4, 5, 6, 0.5, -0.5, 0.25, 1, 1, 0, 0)
    assert _read_bytes(url) == expected


def test_hugectr_written_dense_weights_read_as_float32(tmp_path):
    url = str(tmp_path / "hugectr_dense_0.model")
    _write_bytes(url, struct.pack("<4f", 0.1, -2.0, 3.5, 1e-7))
    weights = dense_files.read_dense_weights(url, 4)
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, np.array([0.1, -2.0, 3.5, 1e-7], dtype=np.float32))


def test_short_dense_weight_file_names_expected_and_found_bytes(tmp_path):
    url = str(tmp_path / "short_dense_0.model")
    _write_bytes(url, b"\x00" * 8)
    with pytest.raises(ValueError, match=r"short_dense_0.model.*has 8 bytes, expected 12 bytes"):
        dense_files.read_dense_weights(url, 3)


def test_dense_weight_file_with_extra_bytes_is_refused(tmp_path):
    url = str(tmp_path / "long_dense_0.model")
    _write_bytes(url, b"\x00" * 16)
    with pytest.raises(ValueError, match="has 16 bytes, expected 12 bytes"):
        dense_files.read_dense_weights(url, 3)


def test_integer_tensors_are_not_weights(tmp_path):
    with pytest.raises(TypeError, match=r"dense weights\[0\].*dtype int64"):
        dense_files.write_dense_weights(str(tmp_path / "x"), [torch.arange(3)])
    with pytest.raises(ValueError, match="non-negative integer"):
        dense_files.read_dense_weights(str(tmp_path / "x"), -1)


def test_dense_weights_round_trip_on_every_file_system(root):
    url = root.join(dense_files.dense_file_name("model", 10))
    tensors = [np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32), np.arange(8, dtype=np.float32)]
    dense_files.write_dense_weights(url, tensors, storage_options=root.storage_options)
    back = dense_files.read_dense_weights(url, 136, storage_options=root.storage_options)
    np.testing.assert_array_equal(back, np.concatenate([t.reshape(-1) for t in tensors]))


def test_adam_states_are_m_then_v_in_float32(tmp_path):
    url = str(tmp_path / "m_opt_dense_0.model")
    m = [np.array([[1.0, 2.0]]), np.array([3.0])]  # per-layer tensors in weight-file order
    v = np.array([4.0, 5.0, 6.0])
    dense_files.write_dense_optimizer_states(url, [m, v])
    assert _read_bytes(url) == struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    states = dense_files.read_dense_optimizer_states(url, count_per_state=3, num_states=2)
    np.testing.assert_array_equal(states, [[1, 2, 3], [4, 5, 6]])


def test_mixed_precision_states_are_fp16(tmp_path):
    url = str(tmp_path / "m_opt_dense_0.model")
    dense_files.write_dense_optimizer_states(url, [torch.tensor([0.5, -1.0, 65504.0])], half=True)
    assert _read_bytes(url) == struct.pack("<3e", 0.5, -1.0, 65504.0)
    states = dense_files.read_dense_optimizer_states(url, 3, 1, half=True)
    assert states.dtype == np.float32
    np.testing.assert_array_equal(states, [[0.5, -1.0, 65504.0]])


def test_sgd_writes_an_empty_optimizer_file(tmp_path):
    url = str(tmp_path / "m_opt_dense_0.model")
    dense_files.write_dense_optimizer_states(url, [])
    assert _read_bytes(url) == b""
    assert dense_files.read_dense_optimizer_states(url, 100, 0).shape == (0, 100)


def test_optimizer_state_size_mismatch_is_reported(tmp_path):
    url = str(tmp_path / "m_opt_dense_0.model")
    _write_bytes(url, struct.pack("<3e", 1, 2, 3))
    with pytest.raises(ValueError, match=r"has 6 bytes, expected 12 bytes"):
        dense_files.read_dense_optimizer_states(url, 3, 2, half=True)
    with pytest.raises(ValueError, match=r"same parameters; received sizes \[2, 3\]"):
        dense_files.write_dense_optimizer_states(url, [np.zeros(2), np.zeros(3)])


def test_batchnorm_statistics_text_matches_hugectr_exactly():
    text = dense_files.non_trainable_params_text(
        [(np.array([0.5, -1.25]), np.array([1.0, 0.1234567])), (torch.tensor([2.0]), torch.tensor([1e-7]))]
    )
    expected = (
        "{\n"
        '  "layers": [\n'
        "    {\n"
        '      "type": "BatchNorm",\n'
        '      "mean": [0.500000, -1.250000],\n'
        '      "var": [1.000000, 0.123457]\n'
        "    },\n"
        "    {\n"
        '      "type": "BatchNorm",\n'
        '      "mean": [2.000000],\n'
        '      "var": [0.000000]\n'
        "    }\n"
        "  ]\n"
        "}\n"
    )
    assert text == expected


def test_batchnorm_statistics_round_trip_including_non_finite_values(root):
    url = root.join(dense_files.non_trainable_file_name("model", 0))
    layers = [(np.array([1.5, float("nan")]), np.array([float("inf"), 2.0]))]
    dense_files.write_non_trainable_params(url, layers, storage_options=root.storage_options)
    assert b'"mean": [1.500000, nan]' in _read_bytes(url, root.storage_options)
    [(mean, var)] = dense_files.read_non_trainable_params(url, storage_options=root.storage_options)
    assert mean[0] == 1.5 and np.isnan(mean[1])
    np.testing.assert_array_equal(var, [np.inf, 2.0])


def test_batchnorm_statistics_need_a_layer_and_a_valid_file(tmp_path):
    with pytest.raises(ValueError, match="no BatchNorm layers"):
        dense_files.non_trainable_params_text([])
    url = str(tmp_path / "bad.ntp.json")
    _write_bytes(url, b'{"layers": [{"type": "ReLU"}]}')
    with pytest.raises(ValueError, match=r"bad.ntp.json: layer 0 must be"):
        dense_files.read_non_trainable_params(url)


def test_optimizer_steps_side_file_round_trips_and_is_optional(root):
    url = root.join(dense_files.optimizer_steps_file_name("model", 5))
    assert dense_files.read_optimizer_steps(url, root.storage_options) is None
    dense_files.write_optimizer_steps(url, {"dense": 5, "sparse0": 5}, root.storage_options)
    assert dense_files.read_optimizer_steps(url, root.storage_options) == {"dense": 5, "sparse0": 5}


def test_optimizer_steps_file_rejects_foreign_content(tmp_path):
    url = str(tmp_path / "steps.json")
    _write_bytes(url, b'{"steps": {"dense": 1}}')
    with pytest.raises(ValueError, match=r"ctrflow\.optimizer_steps"):
        dense_files.read_optimizer_steps(url)
    with pytest.raises(ValueError, match="non-negative integer"):
        dense_files.write_optimizer_steps(url, {"dense": -3})
