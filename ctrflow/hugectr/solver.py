"""`hugectr.CreateSolver(...) -> Solver`: the training resources and schedule of a v3.5 script.

Every keyword and default of semantics spec §10.2 is accepted, including the misspelt `kafka_brockers` and
`data_source_params`. The checks are v3.5's (§4.4 mixed precision, §5 learning-rate schedule, the DLRM-only
options) plus plain range checks; the `Solver`'s attributes are read-only, as in v3.5.
"""

from __future__ import annotations

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
from .data import DataSourceParams
from .enums import AllReduceAlgo, DeviceLayout, LrPolicy_t, MetricsType

MIXED_PRECISION_SCALERS = (128.0, 256.0, 512.0, 1024.0)
_DLRM_ONLY = ("use_holistic_cuda_graph", "use_overlapped_pipeline", "grouped_all_reduce")


def _vvgpu(owner: str, name: str, value: Any) -> list[list[int]]:
    """A non-empty list of non-empty lists of device ids (one list per node)."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        raise TypeError(
            f"{owner}: {name} must be a list of per-node device lists, received {list(value)!r}; "
            f"write [{list(value)!r}] for one node"
        )
    node_list = list_of(list_of(integer(0), min_length=1), min_length=1)
    return node_list(owner, name, value)


def _metrics_spec(owner: str, name: str, value: Any) -> dict[MetricsType, float]:
    """A dict from MetricsType to its threshold."""
    if not isinstance(value, dict):
        raise TypeError(
            f"{owner}: {name} must be a dict such as {{MetricsType.AUC: 1.0}}, received {value!r} "
            f"({type(value).__name__})"
        )
    key_check, threshold = enum_member(MetricsType), number()
    return {key_check(owner, f"{name} key", k): threshold(owner, f"{name}[{k}]", v) for k, v in value.items()}


def _data_source_params(owner: str, name: str, value: Any) -> DataSourceParams:
    """A DataSourceParams; None (the default) gives a fresh DataSourceParams() per solver, as it is mutable."""
    if value is None:
        return DataSourceParams()
    checked: DataSourceParams = instance_of(DataSourceParams)(owner, name, value)
    return checked


class Solver(FacadeObject):
    """The solver of a HugeCTR model (semantics spec §10.2); build it with `CreateSolver(...)`."""

    __slots__ = ()
    _owner = "CreateSolver"
    _signature = (
        Argument("model_name", string(), ""),
        Argument("seed", integer(0, 2**64 - 1), 0),
        Argument("lr_policy", enum_member(LrPolicy_t), LrPolicy_t.fixed),
        Argument("lr", number(0.0), 0.001),
        Argument("warmup_steps", integer(1), 1),
        Argument("decay_start", integer(0), 0),
        Argument("decay_steps", integer(1), 1),
        Argument("decay_power", number(1.0), 2.0),
        Argument("end_lr", number(0.0), 0.0),
        Argument("max_eval_batches", integer(0), 100),
        Argument("batchsize_eval", integer(1), 2048),
        Argument("batchsize", integer(1), 2048),
        Argument("vvgpu", _vvgpu, [[0]]),
        Argument("repeat_dataset", boolean(), True),
        Argument("use_mixed_precision", boolean(), False),
        Argument("enable_tf32_compute", boolean(), False),
        Argument("scaler", number(0.0, exclusive_minimum=True), 1.0),
        Argument("metrics_spec", _metrics_spec, {MetricsType.AUC: 1.0}),
        Argument("i64_input_key", boolean(), False),
        Argument("use_algorithm_search", boolean(), True),
        Argument("use_cuda_graph", boolean(), True),
        Argument("async_mlp_wgrad", boolean(), False),
        Argument("gen_loss_summary", boolean(), True),
        Argument("overlap_lr", boolean(), False),
        Argument("overlap_init_wgrad", boolean(), False),
        Argument("overlap_ar_a2a", boolean(), False),
        Argument("device_layout", enum_member(DeviceLayout), DeviceLayout.LocalFirst),
        Argument("use_holistic_cuda_graph", boolean(), False),
        Argument("use_overlapped_pipeline", boolean(), False),
        Argument("all_reduce_algo", enum_member(AllReduceAlgo), AllReduceAlgo.NCCL),
        Argument("grouped_all_reduce", boolean(), False),
        Argument("num_iterations_statistics", integer(0), 20),
        Argument("is_dlrm", boolean(), False),
        Argument("kafka_brockers", string(), ""),
        Argument("data_source_params", _data_source_params, None),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        owner = self._owner
        if values["use_mixed_precision"]:
            if values["scaler"] not in MIXED_PRECISION_SCALERS:
                raise ValueError(
                    f"{owner}: scaler must be one of 128, 256, 512, 1024 when use_mixed_precision=True, "
                    f"received {values['scaler']}"
                )
            if values["enable_tf32_compute"]:
                raise ValueError(
                    f"{owner}: use_mixed_precision and enable_tf32_compute are mutually exclusive; "
                    "set one of them to False"
                )
        for name in _DLRM_ONLY:
            if values[name] and not values["is_dlrm"]:
                raise ValueError(f"{owner}: {name}=True is restricted to DLRM use; set is_dlrm=True or turn it off")
        for name in ("use_holistic_cuda_graph", "async_mlp_wgrad"):
            if values[name] and values["use_cuda_graph"]:
                raise ValueError(f"{owner}: Must turn off local cuda graph when {name}=True; set use_cuda_graph=False")

    @property
    def num_gpus(self) -> int:
        """Total device count over all nodes (G of the semantics spec)."""
        return sum(len(node) for node in self._values["vvgpu"])


def CreateSolver(*args: Any, **kwargs: Any) -> Solver:
    """Create a `Solver` from v3.5's keywords (semantics spec §10.2); see `Solver` for the checks."""
    return Solver(*args, **kwargs)
