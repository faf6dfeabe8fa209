"""Sparse model folders and sparse optimizer-state files (formats spec §6).

A sparse model `<prefix><i>_sparse_<iter>.model/` is a folder of three headerless files whose row n belong
together: `key` (int64, always — uint32 keys are zero-extended), `slot_id` (uint64, LocalizedSlot hash and
OneHot embeddings only) and `emb_vector` (float32 rows of `embedding_vec_size`). Folders are written with
`atomic_directory`, so a crash never leaves a half-written model under the final name.

The sparse optimizer-state file `<prefix><i>_opt_sparse_<iter>.model` is a raw dump: for each state (Adam: m, v;
AdaGrad / Nesterov: accm; MomentumSGD: momentum; SGD: none), for each rank in rank order, the whole
`[capacity, embedding_vec_size]` block, float32 or fp16 under mixed precision (§6.4). Row order and capacity
are the caller's business (hash insertion order, capacity from the workspace, formats spec §8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctrflow.storage import filesystems
from ctrflow.storage.binary_arrays import FLOAT16, FLOAT32, INT64, UINT64, read_whole, to_float_array, to_integer_array

KEY_FILE = "key"
SLOT_ID_FILE = "slot_id"
VECTOR_FILE = "emb_vector"


@dataclass(slots=True)
class SparseModel:
    """The content of one sparse model folder.

    Args:
        keys: int64 `[rows]`.
        vectors: float32 `[rows, embedding_vec_size]`.
        slot_ids: uint64 `[rows]` for LocalizedSlot / OneHot embeddings, None for DistributedSlot.
    """

    keys: np.ndarray
    vectors: np.ndarray
    slot_ids: np.ndarray | None = None


def _join(url: str, name: str) -> str:
    return f"{url.rstrip('/')}/{name}"


def write_sparse_model(
    url: str,
    keys: Any,
    vectors: Any,
    slot_ids: Any | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write (or replace) the sparse model folder `url`.

    Args:
        url: the folder, e.g. `sparse_model_dir_name("wdl", 0, 1000)` under some directory.
        keys: integer keys `[rows]` (int64 on disk; uint32 zero-extended, uint64 bit pattern kept).
        vectors: float rows `[rows, embedding_vec_size]` (float32 on disk, also under mixed precision).
        slot_ids: slot index of each row `[rows]`, only for LocalizedSlot / OneHot embeddings.
    """
    key_array = to_integer_array(keys, INT64, "sparse model keys")
    vector_array = to_float_array(vectors, FLOAT32, "sparse model vectors")
    if vector_array.ndim != 2 or vector_array.shape[0] != key_array.size:
        raise ValueError(
            f"Sparse model {url}: vectors must have shape [rows, embedding_vec_size] with one row per key; "
            f"received {key_array.size} keys and vectors of shape {tuple(vector_array.shape)}."
        )
    slot_array = None
    if slot_ids is not None:
        slot_array = to_integer_array(slot_ids, UINT64, "sparse model slot ids")
        if slot_array.size != key_array.size:
            raise ValueError(
                f"Sparse model {url}: received {slot_array.size} slot ids for {key_array.size} keys; "
                "pass one slot id per key."
            )
    with filesystems.atomic_directory(url, storage_options) as folder:
        _write_file(_join(folder, KEY_FILE), key_array, storage_options)
        if slot_array is not None:
            _write_file(_join(folder, SLOT_ID_FILE), slot_array, storage_options)
        _write_file(_join(folder, VECTOR_FILE), vector_array, storage_options)


def _write_file(url: str, array: np.ndarray, storage_options: Mapping[str, Any] | None) -> None:
    with filesystems.open_file(url, "wb", storage_options) as handle:
        handle.write(array.tobytes())


def read_sparse_model(
    url: str,
    embedding_vec_size: int | None = None,
    with_slot_ids: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> SparseModel:
    """Read the sparse model folder `url`, checking that its files agree.

    Args:
        url: the folder.
        embedding_vec_size: the width of each row; inferred from the file sizes when None (needs ≥ 1 key).
        with_slot_ids: True requires `slot_id`, False ignores it, None reads it when present.

    Raises:
        FileNotFoundError: the folder or one of its required files is missing.
        ValueError: a size is not a multiple of its element / row size, or the files disagree on the row count.
    """
    if not filesystems.isdir(url, storage_options):
        raise FileNotFoundError(f"Sparse model folder {url} does not exist; expected a folder with key and emb_vector.")
    keys = read_whole(_join(url, KEY_FILE), INT64, "sparse key", storage_options)
    vector_url = _join(url, VECTOR_FILE)
    vectors = read_whole(vector_url, FLOAT32, "embedding vector", storage_options)
    width = _row_width(url, keys.size, vectors.size, embedding_vec_size)
    slot_ids = None
    slot_url = _join(url, SLOT_ID_FILE)
    if with_slot_ids or (with_slot_ids is None and filesystems.exists(slot_url, storage_options)):
        slot_ids = read_whole(slot_url, UINT64, "slot id", storage_options)
        if slot_ids.size != keys.size:
            raise ValueError(
                f"{slot_url}: {slot_ids.size} slot ids ({slot_ids.size * 8} bytes) but {_join(url, KEY_FILE)} has "
                f"{keys.size} keys ({keys.size * 8} bytes); the files must have one row each per key."
            )
    return SparseModel(keys=keys, vectors=vectors.reshape(keys.size, width), slot_ids=slot_ids)


def _row_width(url: str, num_keys: int, num_values: int, embedding_vec_size: int | None) -> int:
    vector_url = _join(url, VECTOR_FILE)
    if embedding_vec_size is None:
        if num_keys == 0:
            if num_values:
                raise ValueError(f"{vector_url}: {num_values * 4} bytes of vectors but no keys in {url}/key.")
            return 0
        embedding_vec_size, remainder = divmod(num_values, num_keys)
        if remainder or embedding_vec_size == 0:
            raise ValueError(
                f"{vector_url}: {num_values * 4} bytes is not a whole number of rows for the {num_keys} keys "
                f"({num_keys * 8} bytes) in {url}/key; the files do not belong together."
            )
        return embedding_vec_size
    if isinstance(embedding_vec_size, bool) or not isinstance(embedding_vec_size, int) or embedding_vec_size <= 0:
        raise ValueError(f"embedding_vec_size must be a positive integer, received {embedding_vec_size!r}.")
    row_bytes = 4 * embedding_vec_size
    if num_values % embedding_vec_size:
        raise ValueError(
            f"{vector_url}: {num_values * 4} bytes is not a multiple of the row size {row_bytes} bytes "
            f"(embedding_vec_size {embedding_vec_size}); check embedding_vec_size."
        )
    if num_values // embedding_vec_size != num_keys:
        raise ValueError(
            f"{vector_url}: {num_values // embedding_vec_size} rows ({num_values * 4} bytes) but {url}/key has "
            f"{num_keys} keys ({num_keys * 8} bytes); the files must have one row each per key."
        )
    return embedding_vec_size


def write_sparse_optimizer_states(
    url: str,
    states: Sequence[Sequence[Any]],
    half: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write the sparse optimizer-state file: `states[s][rank]` blocks `[capacity, vec]`, state-major (§6.4).

    An empty `states` (SGD) writes a 0-byte file. All blocks must have the same shape.
    """
    dtype = FLOAT16 if half else FLOAT32
    shape = None
    with filesystems.atomic_write(url, "wb", storage_options) as handle:
        for state_index, per_rank in enumerate(states):
            for rank, block in enumerate(per_rank):
                array = to_float_array(block, dtype, f"sparse optimizer state {state_index}, rank {rank}")
                if array.ndim != 2 or (shape is not None and array.shape != shape):
                    raise ValueError(
                        f"Sparse optimizer state {state_index}, rank {rank}: expected a [capacity, "
                        f"embedding_vec_size] block{' of shape ' + str(shape) if shape else ''}, received shape "
                        f"{tuple(array.shape)}. Every state of every rank covers the whole table capacity."
                    )
                shape = array.shape
                handle.write(array.tobytes())


def read_sparse_optimizer_states(
    url: str,
    num_states: int,
    num_ranks: int,
    capacity: int,
    embedding_vec_size: int,
    half: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Read the sparse optimizer-state file block by block; returns float32 `[states, ranks, capacity, vec]`.

    The file must hold exactly `num_states · num_ranks · capacity · vec` values (v3.5 accepts extra bytes; a
    different size means another workspace size or GPU count, whose rows would not line up).
    """
    for name, value in (("num_states", num_states), ("num_ranks", num_ranks), ("capacity", capacity)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, received {value!r}.")
    if isinstance(embedding_vec_size, bool) or not isinstance(embedding_vec_size, int) or embedding_vec_size <= 0:
        raise ValueError(f"embedding_vec_size must be a positive integer, received {embedding_vec_size!r}.")
    dtype = FLOAT16 if half else FLOAT32
    block_values = capacity * embedding_vec_size
    expected = num_states * num_ranks * block_values * dtype.itemsize
    found = filesystems.file_size(url, storage_options)
    if found != expected:
        raise ValueError(
            f"{url}: sparse optimizer-state file has {found} bytes, expected {expected} bytes ({num_states} states "
            f"× {num_ranks} ranks × {capacity} rows × {embedding_vec_size} × {dtype.itemsize} B). The capacity "
            "follows workspace_size_per_gpu_in_mb and the GPU count; use the values the model was saved with."
        )
    result = np.empty((num_states, num_ranks, capacity, embedding_vec_size), dtype=np.float32)
    with filesystems.open_file(url, "rb", storage_options) as handle:
        for state in range(num_states):
            for rank in range(num_ranks):
                offset = (state * num_ranks + rank) * block_values * dtype.itemsize
                data = handle.read(block_values * dtype.itemsize)
                if len(data) != block_values * dtype.itemsize:
                    raise ValueError(f"{url}: file ended at byte offset {offset + len(data)} while reading it.")
                result[state, rank] = np.frombuffer(data, dtype=dtype).reshape(capacity, embedding_vec_size)
    return result
