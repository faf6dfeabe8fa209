"""Smoke test of benchmarks/multi_gpu.py on CPU ranks (gloo): it runs and reports every row. No timing asserted."""

from __future__ import annotations

import importlib.util
import math
import pathlib

import pytest

pytestmark = pytest.mark.slow
PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "multi_gpu.py"


def test_quick_scaling_run_reports_baseline_strong_and_weak_rows():
    spec = importlib.util.spec_from_file_location("multi_gpu", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(["--quick"])
    assert [(mode, ranks) for mode, ranks, _batch, _f in rows] == [("baseline", 1), ("strong", 2), ("weak", 2)]
    for _mode, _ranks, _batch, figures in rows:
        assert math.isfinite(figures["samples_per_s"]) and figures["samples_per_s"] > 0
