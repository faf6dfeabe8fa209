"""Shared fixtures of the facade tests: a small teacher-labelled Norm dataset and a model builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

SLOT_SIZES = [50, 40, 30, 20]
BATCH = 64


@pytest.fixture(scope="session")
def norm_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("norm")
    params = DataGeneratorParams(
        format=hugectr.DataReaderType_t.Norm, label_dim=1, dense_dim=3, num_slot=len(SLOT_SIZES),
        i64_input_key=False, source=f"{root}/file_list.txt", eval_source=f"{root}/file_list_test.txt",
        slot_size_array=SLOT_SIZES, num_files=2, eval_num_files=1, num_samples_per_file=BATCH * 6,
        teacher_labels=True, seed=5,
    )  # fmt: skip
    DataGenerator(params).generate()
    return f"{root}/file_list.txt", f"{root}/file_list_test.txt"


def small_model(
    norm_data: tuple[str, str],
    *,
    optimizer: Any = None,
    repeat: bool = True,
    layers: bool = True,
    **solver: Any,
) -> hugectr.Model:
    """A small wide-and-deep style model over `norm_data` (not compiled)."""
    train, evaluation = norm_data
    settings = {"seed": 1, "batchsize": BATCH, "batchsize_eval": BATCH, "max_eval_batches": 4, "lr": 0.01,
                "vvgpu": [[0]], "repeat_dataset": repeat, **solver}  # fmt: skip
    model = hugectr.Model(
        hugectr.CreateSolver(**settings),
        hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Norm, source=[train],
                                 eval_source=evaluation, check_type=hugectr.Check_t.Sum, num_workers=1),
        optimizer or hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam),
    )  # fmt: skip
    if layers:
        add_layers(model)
    return model


def add_layers(model: hugectr.Model) -> None:
    L, D = hugectr.Layer_t, hugectr.DenseLayer
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=3, dense_name="dense",
                            data_reader_sparse_param_array=[
                                hugectr.DataReaderSparseParam("data1", 1, True, len(SLOT_SIZES))]))  # fmt: skip
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))  # fmt: skip
    model.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat"], leading_dim=16))
    model.add(D(layer_type=L.Concat, bottom_names=["flat", "dense"], top_names=["x"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["x"], top_names=["fc1"], num_output=8))
    model.add(D(layer_type=L.BatchNorm, bottom_names=["fc1"], top_names=["bn1"]))
    model.add(D(layer_type=L.ReLU, bottom_names=["bn1"], top_names=["relu1"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["relu1"], top_names=["logit"], num_output=1))
    model.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit", "label"], top_names=["loss"]))


def evaluate_auc(model: hugectr.Model, batches: int = 4) -> float:
    """AUC over the first `batches` evaluation batches (the evaluation source restarted first)."""
    model.get_data_reader_eval().set_source("")
    for _ in range(batches):
        model.eval()
    return dict(model.get_eval_metrics())["AUC"]


ModelFactory = Callable[..., hugectr.Model]
