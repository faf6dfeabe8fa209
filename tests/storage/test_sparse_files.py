"""Tests of ctrflow.storage.sparse_files against byte layouts built by hand from formats spec §6."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from ctrflow.storage import filesystems, sparse_files


def _write_bytes(url, data, storage_options=None):
    with filesystems.open_file(url, "wb", storage_options) as handle:
        handle.write(data)


def _read_bytes(url, storage_options=None):
    with filesystems.open_file(url, "rb", storage_options) as handle:
        return handle.read()


def _hugectr_folder(folder, keys, vectors, slot_ids=None):
    _write_bytes(f"{folder}/key", struct.pack(f"<{len(keys)}q", *keys))
    flat = [v for row in vectors for v in row]
    _write_bytes(f"{folder}/emb_vector", struct.pack(f"<{len(flat)}f", *flat))
    if slot_ids is not None:
        _write_bytes(f"{folder}/slot_id", struct.pack(f"<{len(slot_ids)}Q", *slot_ids))


def test_sparse_model_folder_has_int64_keys_uint64_slots_float32_rows(tmp_path):
    url = str(tmp_path / "wdl0_sparse_0.model")
    keys = np.array([7, 0xFFFFFFFF, 3], dtype=np.uint32)  # uint32 keys are zero-extended
    vectors = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float16)
    sparse_files.write_sparse_model(url, keys, vectors, slot_ids=[0, 1, 1])
    assert sorted(filesystems.listdir(url)) == ["emb_vector", "key", "slot_id"]
    assert _read_bytes(f"{url}/key") == struct.pack("<3q", 7, 4294967295, 3)
    assert _read_bytes(f"{url}/slot_id") == struct.pack("<3Q", 0, 1, 1)
    assert _read_bytes(f"{url}/emb_vector") == struct.pack("<6f", 1, 2, 3, 4, 5, 6)


def test_distributed_model_has_no_slot_id_and_negative_keys_keep_their_bits(tmp_path):
    url = str(tmp_path / "m0_sparse_0.model")
    sparse_files.write_sparse_model(url, torch.tensor([-1, 5]), np.zeros((2, 1), dtype=np.float32))
    assert filesystems.listdir(url) == ["emb_vector", "key"]
    assert _read_bytes(f"{url}/key") == struct.pack("<2q", -1, 5)


def test_hugectr_written_folder_reads_back(tmp_path):
    folder = tmp_path / "h0_sparse_100.model"
    folder.mkdir()
    _hugectr_folder(str(folder), [10, 20], [[0.5, 1.5, 2.5], [-1.0, 0.0, 1.0]], slot_ids=[3, 4])
    model = sparse_files.read_sparse_model(str(folder), embedding_vec_size=3)
    assert model.keys.dtype == np.int64 and model.slot_ids is not None and model.slot_ids.dtype == np.uint64
    np.testing.assert_array_equal(model.keys, [10, 20])
    np.testing.assert_array_equal(model.slot_ids, [3, 4])
    np.testing.assert_array_equal(model.vectors, [[0.5, 1.5, 2.5], [-1.0, 0.0, 1.0]])


def test_row_width_is_inferred_and_slot_ids_are_optional(tmp_path):
    folder = tmp_path / "h0_sparse_0.model"
    folder.mkdir()
    _hugectr_folder(str(folder), [1, 2], [[1, 2, 3, 4], [5, 6, 7, 8]])
    model = sparse_files.read_sparse_model(str(folder))
    assert model.vectors.shape == (2, 4) and model.slot_ids is None
    with pytest.raises(FileNotFoundError, match="slot_id"):
        sparse_files.read_sparse_model(str(folder), with_slot_ids=True)


def test_key_file_not_a_multiple_of_eight_bytes_names_file_and_size(tmp_path):
    folder = tmp_path / "bad0_sparse_0.model"
    folder.mkdir()
    _write_bytes(f"{folder}/key", b"\x00" * 12)
    _write_bytes(f"{folder}/emb_vector", b"\x00" * 16)
    with pytest.raises(ValueError, match=r"bad0_sparse_0.model/key: sparse key file has 12 bytes.*multiple of 8"):
        sparse_files.read_sparse_model(str(folder), 2)


def test_row_count_mismatch_names_both_files_and_sizes(tmp_path):
    folder = tmp_path / "bad0_sparse_0.model"
    folder.mkdir()
    _hugectr_folder(str(folder), [1, 2, 3], [[1.0, 2.0], [3.0, 4.0]], slot_ids=[0, 0, 0])
    with pytest.raises(ValueError, match=r"emb_vector: 2 rows \(16 bytes\) but .*key has 3 keys \(24 bytes\)"):
        sparse_files.read_sparse_model(str(folder), 2)
    with pytest.raises(ValueError, match="not a whole number of rows"):
        sparse_files.read_sparse_model(str(folder))
    with pytest.raises(ValueError, match="not a multiple of the row size 12 bytes"):
        sparse_files.read_sparse_model(str(folder), 3)


def test_slot_id_count_mismatch_is_reported(tmp_path):
    folder = tmp_path / "bad0_sparse_0.model"
    folder.mkdir()
    _hugectr_folder(str(folder), [1, 2], [[1.0], [2.0]], slot_ids=[0])
    with pytest.raises(ValueError, match=r"slot_id: 1 slot ids \(8 bytes\) but .*2 keys \(16 bytes\)"):
        sparse_files.read_sparse_model(str(folder), 1)


def test_writer_rejects_inconsistent_arrays():
    with pytest.raises(ValueError, match=r"received 2 keys and vectors of shape \(3, 4\)"):
        sparse_files.write_sparse_model("memory://bad/m0_sparse_0.model", [1, 2], np.zeros((3, 4)))
    with pytest.raises(ValueError, match="received 1 slot ids for 2 keys"):
        sparse_files.write_sparse_model("memory://bad/m0_sparse_0.model", [1, 2], np.zeros((2, 4)), [0])
    with pytest.raises(TypeError, match="integer keys"):
        sparse_files.write_sparse_model("memory://bad/m0_sparse_0.model", [1.5], np.zeros((1, 4)))
    assert not filesystems.exists("memory://bad/m0_sparse_0.model")


def test_rewriting_a_folder_drops_files_of_the_old_model(root):
    url = root.join("m0_sparse_0.model")
    sparse_files.write_sparse_model(url, [1], np.ones((1, 2)), [0], storage_options=root.storage_options)
    sparse_files.write_sparse_model(url, [2, 3], np.ones((2, 2)), storage_options=root.storage_options)
    model = sparse_files.read_sparse_model(url, 2, storage_options=root.storage_options)
    assert model.slot_ids is None
    np.testing.assert_array_equal(model.keys, [2, 3])


def test_sparse_model_round_trips_on_every_file_system(root):
    url = root.join("m0_sparse_7.model")
    rng = np.random.default_rng(1)
    keys = rng.integers(-(2**62), 2**62, size=50)
    vectors = rng.standard_normal((50, 16)).astype(np.float32)
    slots = rng.integers(0, 26, size=50).astype(np.uint64)
    sparse_files.write_sparse_model(url, keys, vectors, slots, storage_options=root.storage_options)
    model = sparse_files.read_sparse_model(url, 16, storage_options=root.storage_options)
    np.testing.assert_array_equal(model.keys, keys)
    np.testing.assert_array_equal(model.vectors, vectors)
    np.testing.assert_array_equal(model.slot_ids, slots)


def test_optimizer_state_file_is_state_major_then_rank_then_rows(tmp_path):
    url = str(tmp_path / "m0_opt_sparse_0.model")
    # Adam on 2 ranks, capacity 2, vec 1: m(rank0), m(rank1), v(rank0), v(rank1).
    m = [np.array([[1.0], [2.0]]), np.array([[3.0], [4.0]])]
    v = [np.array([[5.0], [6.0]]), np.array([[7.0], [8.0]])]
    sparse_files.write_sparse_optimizer_states(url, [m, v])
    assert _read_bytes(url) == struct.pack("<8f", 1, 2, 3, 4, 5, 6, 7, 8)
    states = sparse_files.read_sparse_optimizer_states(url, 2, 2, 2, 1)
    assert states.shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(states.reshape(-1), np.arange(1, 9))


def test_mixed_precision_sparse_states_are_fp16_and_sgd_is_empty(tmp_path):
    url = str(tmp_path / "m0_opt_sparse_0.model")
    sparse_files.write_sparse_optimizer_states(url, [[torch.tensor([[0.25, -2.0]])]], half=True)
    assert _read_bytes(url) == struct.pack("<2e", 0.25, -2.0)
    np.testing.assert_array_equal(
        sparse_files.read_sparse_optimizer_states(url, 1, 1, 1, 2, half=True), [[[[0.25, -2.0]]]]
    )
    sparse_files.write_sparse_optimizer_states(url, [])
    assert _read_bytes(url) == b""
    assert sparse_files.read_sparse_optimizer_states(url, 0, 4, 1000, 16).shape == (0, 4, 1000, 16)


def test_sparse_state_file_of_another_capacity_is_refused(tmp_path):
    url = str(tmp_path / "m0_opt_sparse_0.model")
    _write_bytes(url, b"\x00" * 40)
    with pytest.raises(ValueError, match=r"has 40 bytes, expected 48 bytes \(1 states × 2 ranks × 3 rows"):
        sparse_files.read_sparse_optimizer_states(url, 1, 2, 3, 2)
    with pytest.raises(ValueError, match="has 40 bytes, expected 32 bytes"):
        sparse_files.read_sparse_optimizer_states(url, 1, 1, 4, 2)


def test_mismatched_state_blocks_leave_no_file(tmp_path):
    url = str(tmp_path / "m0_opt_sparse_0.model")
    with pytest.raises(
        ValueError, match=r"rank 1: expected a \[capacity, embedding_vec_size\] block of shape \(2, 2\)"
    ):
        sparse_files.write_sparse_optimizer_states(url, [[np.zeros((2, 2)), np.zeros((3, 2))]])
    assert not filesystems.exists(url)


def test_sparse_states_round_trip_on_every_file_system(root):
    url = root.join("m0_opt_sparse_3.model")
    rng = np.random.default_rng(2)
    blocks = [[rng.standard_normal((8, 4)).astype(np.float32) for _ in range(2)] for _ in range(2)]
    sparse_files.write_sparse_optimizer_states(url, blocks, storage_options=root.storage_options)
    back = sparse_files.read_sparse_optimizer_states(url, 2, 2, 8, 4, storage_options=root.storage_options)
    np.testing.assert_array_equal(back, np.array(blocks))
