"""hugectr.Model: compile, summary, fit (both modes), the low-level API, files and their errors."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest
import torch

import hugectr

from .conftest import BATCH, SLOT_SIZES, add_layers, small_model
from .conftest import evaluate_auc as evaluate


def compiled(norm_data, **kwargs):
    model = small_model(norm_data, **kwargs)
    model.compile()
    return model


def test_summary_prints_hugectr_table(norm_data, capsys):
    model = small_model(norm_data)
    model.summary()
    out = capsys.readouterr().out
    assert "===Model Summary===" in out
    assert re.search(r"label {35}Dense {25}Sparse", out)
    assert re.search(r"\(None, 1\) {31}\(None, 3\)", out)
    assert re.search(r"DistributedSlotSparseEmbeddingHash {6}data1 {25}emb {27}\(None, 4, 4\)", out)
    assert re.search(r"BinaryCrossEntropyLoss {18}logit {25}loss", out)


def test_fit_logs_hugectr_lines_and_learns(norm_data, capsys):
    model = compiled(norm_data)
    model.fit(max_iter=11, display=5, eval_interval=10, snapshot=0)
    out = capsys.readouterr().out
    assert "Use non-epoch mode with number of iterations: 11" in out
    assert re.search(r"Iter: 5 Time\(5 iters\): [0-9.e-]+s Loss: [0-9.e-]+ lr:0\.01", out)
    assert re.search(r"Evaluation, AUC: 0\.[0-9]+", out)
    assert "Finish 11 iterations with batchsize: 64 in" in out


def test_training_lowers_the_loss_on_teacher_data(norm_data):
    model = compiled(norm_data)
    model.start_data_reading()
    losses = []
    for _ in range(60):
        model.set_learning_rate(model.get_learning_rate_scheduler().get_next())
        assert model.train()
        losses.append(model.get_current_loss())
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_fit_before_compile_says_what_to_call(norm_data):
    model = small_model(norm_data)
    with pytest.raises(RuntimeError, match=r"Cannot start the training process before calling Model.compile\(\)"):
        model.fit(max_iter=2)


def test_fit_rejects_unknown_keywords_listing_the_valid_ones(norm_data):
    model = compiled(norm_data)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'max_iters'.*valid keywords: num_epochs, "):
        model.fit(max_iters=2)


def test_non_epoch_mode_needs_iterations(norm_data):
    with pytest.raises(ValueError, match=r"Require max_iter>0 under non-epoch mode"):
        compiled(norm_data).fit(max_iter=0)


def test_epoch_mode_runs_whole_passes(norm_data, capsys):
    model = compiled(norm_data, repeat=False)
    model.fit(num_epochs=2, display=0, eval_interval=0, snapshot=0)
    out = capsys.readouterr().out
    assert "Use epoch mode with number of epochs: 2" in out
    assert "-----------------------------------Epoch 1-----------------------------------" in out
    # 2 files x 6 batches per epoch, plus the final empty train() call of each epoch
    assert "Finish 2 epochs 26 global iterations with batchsize 64" in out


def test_low_level_eval_returns_metrics_in_hugectr_order(norm_data):
    model = compiled(norm_data, metrics_spec={hugectr.MetricsType.HitRate: 0.8, hugectr.MetricsType.AUC: 1.0,
                                              hugectr.MetricsType.AverageLoss: 0.0})  # fmt: skip
    model.start_data_reading()
    assert model.eval()
    names = [name for name, _ in model.get_eval_metrics()]
    assert names == ["AUC", "AverageLoss", "HitRate"]


def test_saved_model_reloads_from_json_to_the_same_auc(norm_data, tmp_path):
    model = compiled(norm_data, model_name="small")
    model.fit(max_iter=20, display=0, eval_interval=0, snapshot=0)
    before = evaluate(model)
    model.graph_to_json(f"{tmp_path}/small.json")
    model.save_params_to_files(f"{tmp_path}/small", 20)
    files = sorted(os.listdir(tmp_path))
    assert {"small0_sparse_20.model", "small0_opt_sparse_20.model", "small_dense_20.model",
            "small_opt_dense_20.model", "small_dense_20.model.ntp.json"} <= set(files)  # fmt: skip
    parameters = model.network.dense_parameters()
    assert os.path.getsize(f"{tmp_path}/small_dense_20.model") == 4 * sum(p.numel() for p in parameters)
    keys = np.fromfile(f"{tmp_path}/small0_sparse_20.model/key", dtype=np.int64)
    assert keys.max() < sum(SLOT_SIZES) and len(set(keys.tolist())) == len(keys)

    reloaded = small_model(norm_data, model_name="small", layers=False)
    reloaded.construct_from_json(graph_config_file=f"{tmp_path}/small.json", include_dense_network=True)
    reloaded.compile()
    reloaded.load_dense_weights(f"{tmp_path}/small_dense_20.model")
    reloaded.load_sparse_weights({"emb": f"{tmp_path}/small0_sparse_20.model"})
    assert evaluate(reloaded) == pytest.approx(before, abs=1e-7)


def test_load_sparse_weights_needs_one_file_per_embedding(norm_data):
    model = compiled(norm_data)
    with pytest.raises(ValueError, match=r"should be equal to the number of embeddings: received 2 file\(s\) for 1"):
        model.load_sparse_weights(["a", "b"])


def test_unknown_embedding_name_is_named(norm_data):
    model = compiled(norm_data)
    with pytest.raises(ValueError, match=r"No such embedding name: nope; embeddings: emb"):
        model.freeze_embedding("nope")


def test_frozen_embedding_stays_bit_identical_while_dense_trains(norm_data):
    model = compiled(norm_data)
    model.fit(max_iter=3, display=0, eval_interval=0, snapshot=0)
    table = model.network.embed.embeddings["emb"]
    keys_before, vectors_before, _ = table.dump()
    dense_before = [p.detach().clone() for p in model.network.dense_parameters()]
    model.freeze_embedding()
    model.fit(max_iter=5, display=0, eval_interval=0, snapshot=0)
    keys_after, vectors_after, _ = table.dump()
    known = {int(k): i for i, k in enumerate(keys_after)}
    rows = torch.tensor([known[int(k)] for k in keys_before])
    assert torch.equal(vectors_after[rows], vectors_before)
    assert any(not torch.equal(a, b) for a, b in zip(dense_before, model.network.dense_parameters(), strict=True))


def test_export_predictions_appends_the_last_eval_batch(norm_data, tmp_path):
    model = compiled(norm_data)
    model.start_data_reading()
    model.eval()
    model.export_predictions(f"{tmp_path}/pred", f"{tmp_path}/label")
    predictions = (tmp_path / "pred").read_text()
    labels = (tmp_path / "label").read_text()
    assert predictions.endswith(" ") and "\n" not in predictions
    values = [float(v) for v in predictions.split()]
    assert len(values) == BATCH and all(0.0 < v < 1.0 for v in values)
    assert set(labels.split()) <= {"0", "1"}


def test_compile_loss_weights_must_name_labels(norm_data):
    model = small_model(norm_data)
    with pytest.raises(ValueError, match=r"Label name not found: click"):
        model.compile(loss_names=["click"], loss_weights=[1.0])


def test_embedding_training_cache_is_reported_as_not_built(norm_data):
    with pytest.raises(NotImplementedError, match="embedding training cache"):
        small_model(norm_data).get_incremental_model()


def test_cache_eval_data_replays_batches_kept_on_the_device(norm_data):
    train, evaluation = norm_data
    model = hugectr.Model(
        hugectr.CreateSolver(seed=1, batchsize=BATCH, batchsize_eval=BATCH, max_eval_batches=4, vvgpu=[[0]]),
        hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Norm, source=[train],
                                 eval_source=evaluation, check_type=hugectr.Check_t.Sum, num_workers=1,
                                 cache_eval_data=2),
        hugectr.CreateOptimizer(),
    )  # fmt: skip
    add_layers(model)
    model.compile()
    reader = model.get_data_reader_eval()
    first = [reader.next_batch() for _ in range(2)]
    again = [reader.next_batch() for _ in range(2)]
    assert all(a is b for a, b in zip(first, again, strict=True))  # replayed from the device, not re-read
    assert reader.is_started()


@pytest.fixture(scope="module")
def raw_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    from hugectr.tools import DataGenerator, DataGeneratorParams

    root = tmp_path_factory.mktemp("raw_async")
    params = DataGeneratorParams(
        format=hugectr.DataReaderType_t.Raw, label_dim=1, dense_dim=3, num_slot=len(SLOT_SIZES), i64_input_key=False,
        source=f"{root}/train.bin", eval_source=f"{root}/eval.bin", slot_size_array=SLOT_SIZES,
        num_samples=BATCH * 10, eval_num_samples=BATCH * 4, teacher_labels=True, seed=2,
    )  # fmt: skip
    DataGenerator(params).generate()
    return f"{root}/train.bin", f"{root}/eval.bin"


def raw_async_model(raw_data, aligned_type) -> hugectr.Model:
    train, evaluation = raw_data
    model = hugectr.Model(
        hugectr.CreateSolver(seed=1, batchsize=BATCH, batchsize_eval=BATCH, max_eval_batches=4, vvgpu=[[0]],
                             is_dlrm=True),
        hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[train],
                                 eval_source=evaluation, check_type=hugectr.Check_t.Non, num_samples=BATCH * 10,
                                 eval_num_samples=BATCH * 4, slot_size_array=SLOT_SIZES,
                                 async_param=hugectr.AsyncParam(4, 4, 512000, 2, 512, True, aligned_type)),
        hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD),
    )  # fmt: skip
    L, D = hugectr.Layer_t, hugectr.DenseLayer
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=3, dense_name="dense",
                            data_reader_sparse_param_array=[
                                hugectr.DataReaderSparseParam("data1", 1, True, len(SLOT_SIZES))]))  # fmt: skip
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.HybridSparseEmbedding,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1",
                                      slot_size_array=SLOT_SIZES))  # fmt: skip
    model.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat"], leading_dim=16))
    model.add(D(layer_type=L.Concat, bottom_names=["flat", "dense"], top_names=["x"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["x"], top_names=["logit"], num_output=1))
    model.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit", "label"], top_names=["loss"]))
    model.compile()
    return model


def test_the_raw_async_reader_of_dlrm_scripts_reads_raw_files(raw_data):
    model = raw_async_model(raw_data, hugectr.Alignment_t.Non)
    model.start_data_reading()
    for _ in range(12):  # past the end of the 10 training batches: repeat mode wraps
        model.set_learning_rate(0.1)
        assert model.train()
        assert math.isfinite(model.get_current_loss())
    assert 0.0 <= evaluate(model) <= 1.0


def test_the_solver_seed_makes_dropout_runs_repeat_exactly(norm_data):
    def losses() -> list[float]:
        model = small_model(norm_data, layers=False, seed=123)
        L, D = hugectr.Layer_t, hugectr.DenseLayer
        model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=3, dense_name="dense",
                                data_reader_sparse_param_array=[
                                    hugectr.DataReaderSparseParam("data1", 1, True, len(SLOT_SIZES))]))  # fmt: skip
        model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                          workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                          sparse_embedding_name="emb", bottom_name="data1"))  # fmt: skip
        model.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat"], leading_dim=16))
        model.add(D(layer_type=L.Dropout, bottom_names=["flat"], top_names=["drop"], dropout_rate=0.5))
        model.add(D(layer_type=L.InnerProduct, bottom_names=["drop"], top_names=["logit"], num_output=1))
        model.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit", "label"], top_names=["loss"]))
        model.compile()
        model.start_data_reading()
        result = []
        for _ in range(5):
            model.set_learning_rate(0.01)
            model.train()
            result.append(model.get_current_loss())
        return result

    torch.manual_seed(999)  # whatever the process's generator holds, the solver seed decides
    first = losses()
    torch.manual_seed(1)
    assert losses() == first
