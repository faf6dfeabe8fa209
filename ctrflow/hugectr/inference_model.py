"""`hugectr.inference.InferenceModel` / `InferenceSession`: v3.5's offline inference over ctrflow's.

The embedding lookups use an in-process hash map (v3.5's default volatile database). Redis cluster,
RocksDB and Kafka update sources are not built yet: asking for them raises NotImplementedError.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ctrflow.hugectr.argument_validation import Argument, any_value, bind_arguments
from ctrflow.hugectr.translation import plain
from ctrflow.inference.model import InferenceConfig
from ctrflow.inference.model import InferenceModel as _Engine

_PREDICT = (
    Argument("num_batches", any_value()),
    Argument("source", any_value()),
    Argument("data_reader_type", any_value()),
    Argument("check_type", any_value()),
    Argument("slot_size_array", any_value(), []),
)
_READERS = {"Norm": "norm", "Parquet": "parquet"}


def _engine(model_config_path: str, params: Any) -> _Engine:
    volatile = plain(params.volatile_db.type) if hasattr(params.volatile_db, "type") else "parallel_hash_map"
    persistent = plain(getattr(params.persistent_db, "backend", "disabled"))
    if volatile not in ("hash_map", "parallel_hash_map", "disabled") or persistent != "disabled":
        raise NotImplementedError(
            f"InferenceParams asks for volatile_db={volatile}, persistent_db={persistent}: ctrflow serves from an "
            "in-process hash map only so far (Redis cluster and RocksDB are not built yet). Use the defaults."
        )
    if plain(params.update_source.type) != "null":
        raise NotImplementedError("Kafka update sources are not built in ctrflow yet; use UpdateSourceParams().")
    devices = list(params.deployed_devices)
    if int(params.max_batchsize) % max(len(devices), 1):
        raise ValueError(
            f"max_batchsize {params.max_batchsize} must be divisible by the {len(devices)} deployed_devices {devices}."
        )
    config = InferenceConfig(
        max_batchsize=int(params.max_batchsize),
        dense_model_file=params.dense_model_file,
        sparse_model_files=list(params.sparse_model_files),
        i64_input_key=bool(params.i64_input_key),
        default_value_for_each_table=list(params.default_value_for_each_table),
    )
    return _Engine(model_config_path, config)


class InferenceModel:
    """`InferenceModel(model_config_path, inference_params)` with `predict` and `evaluate`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = bind_arguments(
            "InferenceModel",
            (Argument("model_config_path", any_value()), Argument("inference_params", any_value())),
            args,
            kwargs,
        )
        self._engine = _engine(values["model_config_path"], values["inference_params"])

    def _call(self, method: str, args: Any, kwargs: Any) -> tuple[int, str, Any, str, list[int]]:
        values = bind_arguments(f"{type(self).__name__}.{method}", _PREDICT, args, kwargs)
        reader = plain(values["data_reader_type"])
        if reader not in _READERS:
            raise ValueError(f"{method}(): data_reader_type must be Norm or Parquet, received {reader}.")
        check = "sum" if plain(values["check_type"]) == "Sum" else "none"
        return int(values["num_batches"]), values["source"], _READERS[reader], check, list(values["slot_size_array"])

    def predict(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """Predictions `(num_batches · max_batchsize, label_dim)`, float32, in dataset order."""
        num_batches, source, kind, check, slots = self._call("predict", args, kwargs)
        return self._engine.predict(num_batches, source, kind, check, slots)  # type: ignore[arg-type]

    def evaluate(self, *args: Any, **kwargs: Any) -> float:
        """AUC over `num_batches` batches."""
        num_batches, source, kind, check, slots = self._call("evaluate", args, kwargs)
        return self._engine.evaluate(num_batches, source, kind, check, slots)  # type: ignore[arg-type]


class InferenceSession(InferenceModel):
    """v3.5's single-device session: `predict` returns 1-D when label_dim is 1."""

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 3 and not isinstance(args[1], str):
            raise NotImplementedError(
                "InferenceSession.predict(dense_feature, embeddingcolumns, row_ptrs) is not built in ctrflow yet; "
                "use predict(num_batches, source, data_reader_type, check_type)."
            )
        result = super().predict(*args, **kwargs)
        return result.reshape(-1) if result.shape[1] == 1 else result

    def refresh_embedding_cache(self) -> None:
        """No device cache sits in front of the hash map yet, so there is nothing to refresh."""


def CreateInferenceSession(model_config_path: str, inference_params: Any) -> InferenceSession:
    return InferenceSession(model_config_path, inference_params)


class HPS:
    """v3.5's standalone hierarchical parameter server — not built in ctrflow yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "hugectr.inference.HPS is not built in ctrflow yet; InferenceModel serves embeddings from an "
            "in-process hash map."
        )
