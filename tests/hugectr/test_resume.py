"""Resume: stop, reload a snapshot in a new process, continue — the loss trajectory of an uninterrupted run.

The uninterrupted process trains over files [f0, f1]; the interrupted one trains over [f0] and saves a
snapshot; a third process loads it (dense and sparse weights and optimizer states, with ctrflow's step
counters) and trains over [f1]. Same data order, so the losses must match step for step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from ctrflow.readers import read_file_list, write_file_list

WORKER = os.path.join(os.path.dirname(__file__), "resume_worker.py")


def run(*args: str) -> list[float]:
    result = subprocess.run([sys.executable, WORKER, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_resumed_run_continues_the_uninterrupted_loss_trajectory(norm_data, tmp_path):
    train, evaluation = norm_data
    files = read_file_list(train)
    assert len(files) == 2
    first, second = str(tmp_path / "first.txt"), str(tmp_path / "second.txt")
    write_file_list(first, files[:1])
    write_file_list(second, files[1:])
    uninterrupted = run(train, evaluation)
    head = run(first, evaluation, "--save", str(tmp_path / "snap"), "6")
    tail = run(second, evaluation, "--load", str(tmp_path / "snap"), "6")
    assert len(head) == len(tail) == 6 and len(uninterrupted) == 12
    np.testing.assert_allclose(head, uninterrupted[:6], rtol=1e-6)
    # float32 through a file round trip: identical weights and states, identical arithmetic
    np.testing.assert_allclose(tail, uninterrupted[6:], rtol=1e-5)
