"""The planner: stages wired from a graph, seeded initialisation, memory checks."""

from __future__ import annotations

import pytest
import torch

from ctrflow.pipeline.planner import Planner
from ctrflow.pipeline.types import PlanError
from ctrflow.readers.types import Batch, SparseBatch

from .test_graph import dcn_graph


def batch(rows: int = 4) -> Batch:
    keys = torch.arange(rows * 26) % 50
    offsets = torch.arange(rows * 26 + 1)
    return Batch(torch.ones(rows, 1), torch.rand(rows, 13), {"data1": SparseBatch(keys, offsets, 26)})


def test_the_same_seed_gives_the_same_dense_weights():
    first = Planner(device="cpu").plan(dcn_graph(), seed=5).dense_parameters()
    second = Planner(device="cpu").plan(dcn_graph(), seed=5).dense_parameters()
    third = Planner(device="cpu").plan(dcn_graph(), seed=6).dense_parameters()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, third, strict=True))


def test_a_planned_network_runs_any_batch_size():
    network = Planner(device="cpu").plan(dcn_graph(batch_size=4), seed=1)
    for rows in (4, 7):
        env = network.run(batch(rows))
        assert env["fc2"].shape == (rows, 1)
        assert torch.isfinite(env["__objective__"])


def test_tables_that_do_not_fit_raise_a_plan_error_with_the_numbers():
    with pytest.raises(
        PlanError,
        match=r"need 8\.00 MiB per rank .* but cpu has 1000 B available "
        r"\(sparse_embedding1: 43,690 rows x 16\)",
    ):
        Planner(device="cpu", memory_limit_bytes=1000).plan(dcn_graph(), seed=1)


def test_asking_for_cuda_without_it_is_a_plan_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(PlanError, match="CUDA is not available; use device='cpu'"):
        Planner(device="cuda").plan(dcn_graph(), seed=1)


def test_stage_configs_round_trip():
    network = Planner(device="cpu").plan(dcn_graph(), seed=1)
    rebuilt = type(network.dense).from_config(network.dense.get_config())
    assert [layer.layer_type for layer in rebuilt.layers] == [layer.layer_type for layer in network.dense.layers]
    assert rebuilt.get_config() == network.dense.get_config()
    metrics = type(network.metrics).from_config(network.metrics.get_config())
    assert metrics.names == network.metrics.names
