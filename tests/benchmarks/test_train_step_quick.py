"""Smoke test of `benchmarks/train_step.py --quick`: every model runs on both engines (no speed asserted)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_step.py"


def _load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_step_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["dlrm", "dcn", "wdl"])
def test_quick_run_prints_a_row_per_engine_with_finite_positive_throughput(
    model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    benchmark = _load_benchmark()
    rows = benchmark.main(["--quick", "--model", model])
    printed = capsys.readouterr().out
    assert [row.config for row in rows] == [f"{model} fp32 sgd"]
    for row in rows:
        assert row.config in printed
        for engine in ("ctrflow", "plain"):
            samples = row.samples_per_second(engine)
            assert math.isfinite(samples) and samples > 0, (engine, row)


def test_quick_end_to_end_reads_raw_files_and_adam_runs_both_update_types() -> None:
    benchmark = _load_benchmark()
    rows = benchmark.main(["--quick", "--optimizer", "adam-local", "adam-global", "--end-to-end", "--steps", "2"])
    configs = [row.config for row in rows]
    assert "dlrm fp32 adam-local end-to-end Raw" in configs
    assert "dlrm fp32 adam-global" in configs
    assert all(row.samples_per_second(engine) > 0 for row in rows for engine in ("ctrflow", "plain"))
