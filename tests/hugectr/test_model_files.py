"""The model lifecycle through files: snapshots, URLs, a new process, HugeCTR-written files, fine-tuning."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import fsspec
import numpy as np
import pytest
import torch

import hugectr

from .conftest import evaluate_auc as evaluate
from .conftest import small_model


def trained(norm_data, steps: int = 20, **kwargs) -> hugectr.Model:
    model = small_model(norm_data, **kwargs)
    model.compile()
    model.fit(max_iter=steps, display=0, eval_interval=0, snapshot=0)
    return model


def test_fit_writes_snapshots_at_each_interval(norm_data, tmp_path):
    model = small_model(norm_data)
    model.compile()
    model.fit(max_iter=11, display=0, eval_interval=0, snapshot=5, snapshot_prefix=f"{tmp_path}/snap")
    names = set(os.listdir(tmp_path))
    for iteration in (5, 10):
        assert {f"snap_dense_{iteration}.model", f"snap0_sparse_{iteration}.model"} <= names
    assert "snap_dense_0.model" not in names


def test_a_model_reloaded_in_a_new_process_evaluates_to_the_same_auc(norm_data, tmp_path):
    model = trained(norm_data, model_name="small")
    expected = evaluate(model)
    model.graph_to_json(f"{tmp_path}/small.json")
    model.save_params_to_files(f"{tmp_path}/small", 20)
    train, evaluation = norm_data
    script = textwrap.dedent(f"""
        import hugectr
        solver = hugectr.CreateSolver(seed=1, batchsize=64, batchsize_eval=64, max_eval_batches=4, vvgpu=[[0]])
        reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Norm, source=[{train!r}],
                                          eval_source={evaluation!r}, check_type=hugectr.Check_t.Sum, num_workers=1)
        model = hugectr.Model(solver, reader, hugectr.CreateOptimizer())
        model.construct_from_json(graph_config_file="{tmp_path}/small.json", include_dense_network=True)
        model.compile()
        model.load_dense_weights("{tmp_path}/small_dense_20.model")
        model.load_sparse_weights(["{tmp_path}/small0_sparse_20.model"])
        for _ in range(4):
            model.eval()
        print("AUC", dict(model.get_eval_metrics())["AUC"])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    auc = float(result.stdout.strip().splitlines()[-1].split()[1])
    assert auc == pytest.approx(expected, abs=1e-7)


def test_snapshots_go_to_any_fsspec_url(norm_data):
    model = trained(norm_data, steps=5)
    model.save_params_to_files("memory://ctrflow-test/run", 5)
    fs = fsspec.filesystem("memory")
    assert fs.exists("/ctrflow-test/run_dense_5.model")
    assert fs.exists("/ctrflow-test/run0_sparse_5.model/emb_vector")
    copy = small_model(norm_data)
    copy.compile()
    copy.load_dense_weights("memory://ctrflow-test/run_dense_5.model")
    copy.load_sparse_weights({"emb": "memory://ctrflow-test/run0_sparse_5.model"})
    copy.load_dense_optimizer_states("memory://ctrflow-test/run_opt_dense_5.model")
    copy.load_sparse_optimizer_states({"emb": "memory://ctrflow-test/run0_opt_sparse_5.model"})
    assert evaluate(copy) == pytest.approx(evaluate(model), abs=1e-7)
    assert copy.runner.dense_optimizer.step_count == model.runner.dense_optimizer.step_count == 5


def test_a_dense_file_written_as_hugectr_lays_it_out_loads_into_the_layers(norm_data, tmp_path):
    model = small_model(norm_data)
    model.compile()
    shapes = [tuple(p.shape) for p in model.network.dense_parameters()]
    # formats spec §5.2: fc1 W [19, 8] then b [8]; BatchNorm gamma [8], beta [8]; logit W [8, 1], b [1]
    assert shapes == [(19, 8), (8,), (8,), (8,), (8, 1), (1,)]
    values = np.random.default_rng(0).standard_normal(sum(int(np.prod(s)) for s in shapes)).astype(np.float32)
    values.tofile(tmp_path / "hugectr_dense_0.model")
    model.load_dense_weights(str(tmp_path / "hugectr_dense_0.model"))
    fc1_weight = model.network.dense_parameters()[0]
    np.testing.assert_array_equal(fc1_weight.detach().cpu().numpy(), values[: 19 * 8].reshape(19, 8))
    with torch.no_grad():
        x = torch.ones(1, 19, device=fc1_weight.device)
        # y = x·W + b with W stored [in, out]: the transpose of torch.nn.Linear.weight
        expected = x.cpu().numpy() @ values[: 19 * 8].reshape(19, 8) + values[19 * 8 : 19 * 8 + 8]
        np.testing.assert_allclose(model.network.dense_layers()[2](x).cpu().numpy(), expected, rtol=1e-5)


def test_a_short_dense_file_is_refused_with_both_sizes(norm_data, tmp_path):
    model = small_model(norm_data)
    model.compile()
    np.zeros(10, dtype=np.float32).tofile(tmp_path / "short.model")
    with pytest.raises(ValueError, match=r"40 bytes"):
        model.load_dense_weights(str(tmp_path / "short.model"))


def test_loaded_embeddings_carry_a_new_dense_network(norm_data, tmp_path):
    model = trained(norm_data, model_name="small")
    model.graph_to_json(f"{tmp_path}/small.json")
    model.save_params_to_files(f"{tmp_path}/small", 20)
    tuned = small_model(norm_data, layers=False)
    tuned.construct_from_json(graph_config_file=f"{tmp_path}/small.json", include_dense_network=False)
    L, D = hugectr.Layer_t, hugectr.DenseLayer
    tuned.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat2"], leading_dim=16))
    tuned.add(D(layer_type=L.InnerProduct, bottom_names=["flat2"], top_names=["logit2"], num_output=1))
    tuned.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit2", "label"], top_names=["loss"]))
    tuned.compile()
    tuned.load_sparse_weights([f"{tmp_path}/small0_sparse_20.model"])
    tuned.freeze_embedding()
    tuned.fit(max_iter=10, display=0, eval_interval=0, snapshot=0)
    assert 0.0 <= evaluate(tuned) <= 1.0
    _keys, vectors, _ = tuned.network.embed.embeddings["emb"].dump()
    saved = np.fromfile(f"{tmp_path}/small0_sparse_20.model/emb_vector", dtype=np.float32).reshape(-1, 4)
    np.testing.assert_array_equal(vectors.cpu().numpy()[: len(saved)], saved)


def test_reset_learning_rate_scheduler_restarts_the_schedule(norm_data):
    model = small_model(norm_data)
    model.compile()
    scheduler = model.get_learning_rate_scheduler()
    assert scheduler.get_next() == pytest.approx(0.01)
    model.reset_learning_rate_scheduler(base_lr=0.1, warmup_steps=4)
    scheduler = model.get_learning_rate_scheduler()
    assert [round(scheduler.get_next(), 6) for _ in range(5)] == [0.025, 0.05, 0.075, 0.1, 0.1]
