"""`hugectr.tools`: the synthetic data generator (semantics spec §10.2, formats spec §4).

`DataGeneratorParams` takes v3.5's keywords and defaults (fields read/write, as in v3.5) plus two
ctrflow-only keywords placed last: `teacher_labels=False` (labels drawn from a known logistic teacher, so
that learning is measurable; v3.5 writes uniform noise) and `seed=0`. `DataGenerator(params).generate()`
translates onto `ctrflow.readers.generator.generate(GeneratorConfig(...))` and returns its report.
"""

from __future__ import annotations

from typing import Any, Literal

from .argument_validation import (
    Argument,
    FacadeObject,
    bind_arguments,
    boolean,
    enum_member,
    instance_of,
    integer,
    list_of,
    number,
    string,
)
from .enums import POWER_LAW_ALPHA, Check_t, DataReaderType_t, Distribution_t, PowerLaw_t

FORMATS: dict[DataReaderType_t, Literal["norm", "raw", "parquet"]] = {
    DataReaderType_t.Norm: "norm",
    DataReaderType_t.Raw: "raw",
    DataReaderType_t.Parquet: "parquet",
}
DISTRIBUTIONS: dict[Distribution_t, Literal["power_law", "uniform"]] = {
    Distribution_t.PowerLaw: "power_law",
    Distribution_t.Uniform: "uniform",
}


class DataGeneratorParams(FacadeObject):
    """What to generate (formats spec §4.1); fields are read/write, each checked on assignment, and the rules
    across fields are checked again by `generate()`.

    `nnz_array=[]` means one key per slot. `alpha` is used only with `PowerLaw_t.Specific` (must be > 0 and
    not 1). `num_files`, `eval_num_files`, `num_samples_per_file` apply to Norm and Parquet; `num_samples`,
    `eval_num_samples` and `float_label_dense` to Raw. Raw always writes without checksums.
    """

    __slots__ = ()
    _owner = "DataGeneratorParams"
    _writable = True
    _signature = (
        Argument("format", enum_member(DataReaderType_t, list(FORMATS))),
        Argument("label_dim", integer(1)),
        Argument("dense_dim", integer(0)),
        Argument("num_slot", integer(1)),
        Argument("i64_input_key", boolean()),
        Argument("source", string()),
        Argument("eval_source", string()),
        Argument("slot_size_array", list_of(integer(1))),
        Argument("nnz_array", list_of(integer(1)), []),
        Argument("check_type", enum_member(Check_t), Check_t.Sum),
        Argument("dist_type", enum_member(Distribution_t), Distribution_t.PowerLaw),
        Argument("power_law_type", enum_member(PowerLaw_t), PowerLaw_t.Specific),
        Argument("alpha", number(), 1.2),
        Argument("num_files", integer(1), 128),
        Argument("eval_num_files", integer(1), 32),
        Argument("num_samples_per_file", integer(1), 40960),
        Argument("num_samples", integer(1), 5242880),
        Argument("eval_num_samples", integer(1), 1310720),
        Argument("float_label_dense", boolean(), False),
        Argument("teacher_labels", boolean(), False),
        Argument("seed", integer(0), 0),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        owner, num_slot = self._owner, values["num_slot"]
        for name in ("slot_size_array", "nnz_array"):
            if name == "nnz_array" and not values[name]:
                continue
            if len(values[name]) != num_slot:
                raise ValueError(
                    f"{owner}: {name} needs one entry per slot (num_slot={num_slot}), received "
                    f"{len(values[name])} entries: {values[name]}"
                )
        if not values["source"] or not values["eval_source"]:
            raise ValueError(
                f"{owner}: source and eval_source must name the file lists (Norm, Parquet) or files (Raw) to write, "
                f"received source={values['source']!r}, eval_source={values['eval_source']!r}"
            )
        alpha = values["alpha"]
        specific = values["power_law_type"] == PowerLaw_t.Specific
        if values["dist_type"] == Distribution_t.PowerLaw and specific and (alpha <= 0 or abs(alpha - 1.0) < 1e-6):
            raise ValueError(f"{owner}: alpha must be > 0 and not 1 for PowerLaw_t.Specific, received {alpha}")

    @property
    def resolved_alpha(self) -> float:
        """The power-law exponent: fixed by Long / Medium / Short, the `alpha` field for Specific."""
        return POWER_LAW_ALPHA.get(self._values["power_law_type"], self._values["alpha"])


class DataGenerator:
    """Writes a synthetic dataset as described by a `DataGeneratorParams`.

    Args:
        data_generator_params: what to generate.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = bind_arguments(
            "DataGenerator", (Argument("data_generator_params", instance_of(DataGeneratorParams)),), args, kwargs
        )
        self.data_generator_params: DataGeneratorParams = values["data_generator_params"]

    def generate(self) -> Any:
        """Generate the training and evaluation data; returns the generator's report."""
        from ctrflow.readers.generator import GeneratorConfig, generate

        params = self.data_generator_params
        params.validate()
        values = params.kwargs
        file_format = FORMATS[values["format"]]
        config = GeneratorConfig(
            format=file_format,
            label_dim=values["label_dim"],
            dense_dim=values["dense_dim"],
            num_slot=values["num_slot"],
            i64_input_key=values["i64_input_key"],
            source=values["source"],
            eval_source=values["eval_source"],
            slot_size_array=tuple(values["slot_size_array"]),
            nnz_array=tuple(values["nnz_array"] or [1] * values["num_slot"]),
            # formats spec §4.1: Raw output never carries checksums.
            check_type="sum" if values["check_type"] == Check_t.Sum and file_format != "raw" else "none",
            dist_type=DISTRIBUTIONS[values["dist_type"]],
            alpha=params.resolved_alpha,
            num_files=values["num_files"],
            eval_num_files=values["eval_num_files"],
            num_samples_per_file=values["num_samples_per_file"],
            num_samples=values["num_samples"],
            eval_num_samples=values["eval_num_samples"],
            float_label_dense=values["float_label_dense"],
            teacher_labels=values["teacher_labels"],
            seed=values["seed"],
            progress=True,
        )
        return generate(config)

    def __repr__(self) -> str:
        return f"DataGenerator({self.data_generator_params!r})"


__all__ = ["DataGenerator", "DataGeneratorParams"]
