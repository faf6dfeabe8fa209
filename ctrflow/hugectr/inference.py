"""`hugectr.inference`: parameters of inference and of the hierarchical parameter server (semantics spec §10.2,
§9.2).

`VolatileDatabaseParams`, `PersistentDatabaseParams` (keyword `backend`; the document's `type` is accepted as
an alias), `UpdateSourceParams`, `InferenceParams` and `ParameterServerConfig` record and check one call, with
v3.5's keywords and defaults. Their attributes are read-only, as in v3.5 (the document's `params.x = ...` style
does not work there either). `InferenceModel`, `CreateInferenceSession`, `InferenceSession` and `HPS` live in
`inference_model.py`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from .argument_validation import (
    Argument,
    FacadeObject,
    boolean,
    enum_member,
    instance_of,
    integer,
    list_of,
    number,
    string,
)
from .enums import (
    DatabaseHashMapAlgorithm_t,
    DatabaseOverflowPolicy_t,
    DatabaseType_t,
    DataReaderType_t,
    UpdateSourceType_t,
)

_VOLATILE_TYPES = [
    DatabaseType_t.disabled,
    DatabaseType_t.hash_map,
    DatabaseType_t.parallel_hash_map,
    DatabaseType_t.redis_cluster,
]
_UPDATE_FILTERS = Argument("update_filters", list_of(string()), [".+"])


def default_num_partitions() -> int:
    """v3.5's default partition count: min(16, hardware threads)."""
    return min(16, os.cpu_count() or 1)


class VolatileDatabaseParams(FacadeObject):
    """The volatile (CPU memory or Redis) database of the parameter server (semantics spec §9.2)."""

    __slots__ = ()
    _owner = "VolatileDatabaseParams"
    _signature = (
        Argument("type", enum_member(DatabaseType_t, _VOLATILE_TYPES), DatabaseType_t.parallel_hash_map),
        Argument("address", string(), "127.0.0.1:7000"),
        Argument("user_name", string(), "default"),
        Argument("password", string(), ""),
        Argument("algorithm", enum_member(DatabaseHashMapAlgorithm_t), DatabaseHashMapAlgorithm_t.phm),
        Argument("num_partitions", integer(1), default_num_partitions()),
        Argument("max_get_batch_size", integer(1), 10000),
        Argument("max_set_batch_size", integer(1), 10000),
        Argument("refresh_time_after_fetch", boolean(), False),
        Argument("overflow_margin", integer(1, 2**64 - 1), 2**64 - 1),
        Argument("overflow_policy", enum_member(DatabaseOverflowPolicy_t), DatabaseOverflowPolicy_t.evict_oldest),
        Argument("overflow_resolution_target", number(0.0, 1.0, exclusive_minimum=True), 0.8),
        Argument("initial_cache_rate", number(0.0, 1.0), 1.0),
        Argument("cache_missed_embeddings", boolean(), False),
        _UPDATE_FILTERS,
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        if values["overflow_resolution_target"] >= 1.0:
            raise ValueError(
                f"{self._owner}: overflow_resolution_target must be in ]0, 1[, received "
                f"{values['overflow_resolution_target']}"
            )


class PersistentDatabaseParams(FacadeObject):
    """The persistent (RocksDB) database of the parameter server; keyword `backend` (document: `type`)."""

    __slots__ = ()
    _owner = "PersistentDatabaseParams"
    _aliases = {"type": "backend"}
    _signature = (
        Argument(
            "backend",
            enum_member(DatabaseType_t, [DatabaseType_t.disabled, DatabaseType_t.rocks_db]),
            DatabaseType_t.disabled,
        ),
        Argument("path", string(), os.path.join(tempfile.gettempdir(), "rocksdb")),
        Argument("num_threads", integer(1), 16),
        Argument("read_only", boolean(), False),
        Argument("max_get_batch_size", integer(1), 10000),
        Argument("max_set_batch_size", integer(1), 10000),
        _UPDATE_FILTERS,
    )


class UpdateSourceParams(FacadeObject):
    """The source of online model updates (Kafka) for the parameter server."""

    __slots__ = ()
    _owner = "UpdateSourceParams"
    _signature = (
        Argument("type", enum_member(UpdateSourceType_t), UpdateSourceType_t.null),
        Argument("brokers", string(), "127.0.0.1:9092"),
        Argument("poll_timeout_ms", integer(0), 500),
        Argument("max_receive_buffer_size", integer(1), 2000),
        Argument("max_batch_size", integer(1), 1000),
        Argument("failure_backoff_ms", integer(0), 50),
    )


def _default_of(cls: type[FacadeObject]) -> Any:
    def check(owner: str, name: str, value: Any) -> Any:
        return cls() if value is None else instance_of(cls)(owner, name, value)

    return check


_DATABASES = (
    Argument("volatile_db", _default_of(VolatileDatabaseParams), None),
    Argument("persistent_db", _default_of(PersistentDatabaseParams), None),
    Argument("update_source", _default_of(UpdateSourceParams), None),
)


class InferenceParams(FacadeObject):
    """Everything an inference session needs besides the model graph (semantics spec §10.2)."""

    __slots__ = ()
    _owner = "InferenceParams"
    _signature = (
        Argument("model_name", string()),
        Argument("max_batchsize", integer(1)),
        Argument("hit_rate_threshold", number(0.0, 1.0)),
        Argument("dense_model_file", string()),
        Argument("sparse_model_files", list_of(string())),
        Argument("device_id", integer(0), 0),
        Argument("use_gpu_embedding_cache", boolean()),
        Argument("cache_size_percentage", number(0.0, 1.0)),
        Argument("i64_input_key", boolean()),
        Argument("use_mixed_precision", boolean(), False),
        Argument("scaler", number(0.0, exclusive_minimum=True), 1.0),
        Argument("use_algorithm_search", boolean(), True),
        Argument("use_cuda_graph", boolean(), True),
        Argument("number_of_worker_buffers_in_pool", integer(1), 2),
        Argument("number_of_refresh_buffers_in_pool", integer(1), 1),
        Argument("cache_refresh_percentage_per_iteration", number(0.0, 1.0), 0.1),
        Argument("deployed_devices", list_of(integer(0), 1), [0]),
        Argument("default_value_for_each_table", list_of(number()), [0.0]),
        *_DATABASES,
        Argument("maxnum_des_feature_per_sample", integer(0), 20),
        Argument("refresh_delay", number(0.0), 0.0),
        Argument("refresh_interval", number(0.0), 0.0),
        Argument("maxnum_catfeature_query_per_table_per_sample", list_of(integer(0)), [26]),
        Argument("embedding_vecsize_per_table", list_of(integer(1)), [128]),
        Argument("embedding_table_names", list_of(string()), [""]),
    )


def _dict_of_lists(item: Any) -> Any:
    as_list = list_of(item)

    def check(owner: str, name: str, value: Any) -> dict[str, list[Any]]:
        if not isinstance(value, dict):
            raise TypeError(f"{owner}: {name} must be a dict from model name to a list, received {value!r}")
        return {string()(owner, f"{name} key", k): as_list(owner, f"{name}[{k!r}]", v) for k, v in value.items()}

    return check


class ParameterServerConfig(FacadeObject):
    """The configuration of a standalone HPS: per model, its tables' names, widths and key counts."""

    __slots__ = ()
    _owner = "ParameterServerConfig"
    _signature = (
        Argument("emb_table_name", _dict_of_lists(string())),
        Argument("embedding_vec_size", _dict_of_lists(integer(1))),
        Argument("max_feature_num_per_sample_per_emb_table", _dict_of_lists(integer(0))),
        Argument("inference_params_array", list_of(instance_of(InferenceParams))),
        *_DATABASES,
    )


from .inference_model import HPS, CreateInferenceSession, InferenceModel, InferenceSession  # noqa: E402

__all__ = [
    "HPS",
    "CreateInferenceSession",
    "DataReaderType_t",
    "DatabaseHashMapAlgorithm_t",
    "DatabaseOverflowPolicy_t",
    "DatabaseType_t",
    "InferenceModel",
    "InferenceParams",
    "InferenceSession",
    "ParameterServerConfig",
    "PersistentDatabaseParams",
    "UpdateSourceParams",
    "UpdateSourceType_t",
    "VolatileDatabaseParams",
]
