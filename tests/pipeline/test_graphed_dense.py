"""CUDA graphs of the dense and loss stages: when a capture happens, the eager fallback, and on CUDA the
same training as the eager step."""

from __future__ import annotations

import logging

import pytest
import torch

from ctrflow.dense.optimizers import SGD
from ctrflow.pipeline import graphed_dense
from ctrflow.pipeline.graphed_dense import GraphedDense
from ctrflow.pipeline.planner import Planner
from ctrflow.pipeline.runners import LocalRunner
from ctrflow.readers.types import Batch, SparseBatch

from .test_graph import dcn_graph


def batch(rows: int = 4, seed: int = 0, device: str = "cpu", valid: int | None = None) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    keys = torch.randint(0, 50, (rows * 26,), generator=generator)
    offsets = torch.arange(rows * 26 + 1)
    label = torch.randint(0, 2, (rows, 1), generator=generator).float()
    dense = torch.rand(rows, 13, generator=generator)
    return Batch(label, dense, {"data1": SparseBatch(keys, offsets, 26)}, rows if valid is None else valid).to(device)


def embedded(network, data: Batch) -> dict:
    env = {"__batch__": data}
    network.inputs(env)
    network.embed(env)
    return env


class CountingCapture:
    """Stands in for `torch.cuda.make_graphed_callables` on the CPU: returns the module, counts captures."""

    def __init__(self) -> None:
        self.captures = 0

    def __call__(self, module, samples, **options):
        self.captures += 1
        assert options == {"num_warmup_iters": 3, "allow_unused_input": True}
        assert sum(s.requires_grad for s in samples) == 1  # the embedding's output; dense and label need none
        return module


def test_one_capture_per_signature_and_a_new_one_when_it_changes(monkeypatch):
    capture = CountingCapture()
    monkeypatch.setattr(graphed_dense.torch.cuda, "make_graphed_callables", capture)
    network = Planner(device="cpu").plan(dcn_graph(batch_size=4), seed=1)
    graphed = GraphedDense(network.dense, network.loss, network.dense_parameters)
    for seed in range(3):
        env = embedded(network, batch(seed=seed))
        assert graphed(env)
        eager = embedded(network, batch(seed=seed))
        network.dense(eager)
        network.loss(eager)
        torch.testing.assert_close(env["__objective__"], eager["__objective__"], rtol=0, atol=0)
        torch.testing.assert_close(env["__reported_loss__"], eager["__reported_loss__"], rtol=0, atol=0)
    assert capture.captures == 1
    assert graphed(embedded(network, batch(valid=3)))  # the valid-row count is part of the signature
    assert capture.captures == 2
    weight = network.dense_parameters()[0]
    weight.data = weight.data.clone()  # new storage: the captured graph would read the old one
    assert graphed(embedded(network, batch()))
    assert capture.captures == 3


def test_a_failed_capture_falls_back_to_eager_once_with_the_reason(monkeypatch, caplog):
    def refuse(module, samples, **options):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(graphed_dense.torch.cuda, "make_graphed_callables", refuse)
    network = Planner(device="cpu").plan(dcn_graph(batch_size=4), seed=1)
    graphed = GraphedDense(network.dense, network.loss, network.dense_parameters)
    with caplog.at_level(logging.WARNING, logger="ctrflow"):
        assert not graphed(embedded(network, batch()))
        assert not graphed(embedded(network, batch(seed=1)))
    assert graphed.disabled_reason == "RuntimeError: CUDA error: operation not permitted when stream is capturing"
    assert [r.message.count("run eagerly from now on") for r in caplog.records] == [1]


def test_cuda_graph_is_ignored_on_the_cpu():
    network = Planner(device="cpu").plan(dcn_graph(batch_size=4), seed=1)
    runner = LocalRunner(network, SGD(network.dense_parameters(), lr=0.1), cuda_graph=True)
    assert runner.graphed_dense is None
    runner.train_step(batch())
    assert runner.last_loss > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_graphed_training_matches_eager_training_on_cuda(mixed_precision):
    def train(cuda_graph: bool) -> tuple[list[float], list[torch.Tensor], dict[str, torch.Tensor]]:
        network = Planner(device="cuda").plan(dcn_graph(batch_size=64), seed=3)
        runner = LocalRunner(network, SGD(network.dense_parameters(), lr=0.1), mixed_precision=mixed_precision,
                             autocast_dtype=torch.bfloat16, cuda_graph=cuda_graph)  # fmt: skip
        runner.set_learning_rate(0.1)
        losses = []
        for step in range(6):  # step 4 is a short batch, which runs eagerly
            runner.train_step(batch(64, seed=step, device="cuda", valid=40 if step == 4 else None))
            losses.append(runner.last_loss)
        tables = {name: value.cpu() for name, value in network.embed.state_dict().items()}
        return losses, [p.detach().cpu() for p in network.dense_parameters()], tables

    graphed_losses, graphed_weights, graphed_tables = train(True)
    eager_losses, eager_weights, eager_tables = train(False)
    # the same kernels on the same inputs; only cuBLAS's choice of algorithm under capture may differ
    torch.testing.assert_close(graphed_losses, eager_losses, rtol=1e-5, atol=0)
    for graphed, eager in zip(graphed_weights, eager_weights, strict=True):
        torch.testing.assert_close(graphed, eager, rtol=1e-5, atol=1e-7)
    assert graphed_tables.keys() == eager_tables.keys() and graphed_tables["tables.sparse_embedding1.keys"].numel()
    for name, eager in eager_tables.items():
        torch.testing.assert_close(graphed_tables[name], eager, rtol=1e-5, atol=1e-7)
