"""RawAsync with `AsyncParam(aligned_type=...)`: v3.5 pads the dense tensor to a multiple of 8 under
`Alignment_t.Auto` (zero columns after the records' dense values) and leaves it as is under `Alignment_t.Non`."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable

import pytest
import torch

import hugectr

from .conftest import BATCH, SLOT_SIZES

AUTO, NON = hugectr.Alignment_t.Auto, hugectr.Alignment_t.Non
TRAIN_BATCHES, EVAL_BATCHES = 6, 2
RawFiles = Callable[[int], tuple[str, str]]


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory: pytest.TempPathFactory) -> RawFiles:
    """Teacher-labelled Raw train / eval files with a given dense_dim, generated once per width."""
    made: dict[int, tuple[str, str]] = {}

    def files(dense_dim: int) -> tuple[str, str]:
        if dense_dim not in made:
            from hugectr.tools import DataGenerator, DataGeneratorParams

            root = tmp_path_factory.mktemp(f"raw_dense_{dense_dim}")
            params = DataGeneratorParams(
                format=hugectr.DataReaderType_t.Raw, label_dim=1, dense_dim=dense_dim, num_slot=len(SLOT_SIZES),
                i64_input_key=False, source=f"{root}/train.bin", eval_source=f"{root}/eval.bin",
                slot_size_array=SLOT_SIZES, num_samples=BATCH * TRAIN_BATCHES,
                eval_num_samples=BATCH * EVAL_BATCHES, teacher_labels=True, seed=3,
            )  # fmt: skip
            DataGenerator(params).generate()
            made[dense_dim] = (f"{root}/train.bin", f"{root}/eval.bin")
        return made[dense_dim]

    return files


def dlrm_model(raw_files: RawFiles, dense_dim: int, aligned_type, *, shuffle: bool = False) -> hugectr.Model:
    """A small DLRM-like model: the dense input feeds the bottom MLP's InnerProduct "fc1" directly."""
    train, evaluation = raw_files(dense_dim)
    model = hugectr.Model(
        hugectr.CreateSolver(seed=1, batchsize=BATCH, batchsize_eval=BATCH, max_eval_batches=EVAL_BATCHES,
                             lr=0.5, vvgpu=[[0]], is_dlrm=True,
                             use_cuda_graph=False),  # on CUDA, a graph's warm-up runs would reach the test's hook
        hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[train],
                                 eval_source=evaluation, check_type=hugectr.Check_t.Non,
                                 num_samples=BATCH * TRAIN_BATCHES, eval_num_samples=BATCH * EVAL_BATCHES,
                                 slot_size_array=SLOT_SIZES,
                                 async_param=hugectr.AsyncParam(4, 4, 512000, 2, 512, shuffle, aligned_type)),
        hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD),
    )  # fmt: skip
    L, D = hugectr.Layer_t, hugectr.DenseLayer
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=dense_dim, dense_name="dense",
                            data_reader_sparse_param_array=[
                                hugectr.DataReaderSparseParam("data1", 1, True, len(SLOT_SIZES))]))  # fmt: skip
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))  # fmt: skip
    model.add(D(layer_type=L.InnerProduct, bottom_names=["dense"], top_names=["fc1"], num_output=4))
    model.add(D(layer_type=L.ReLU, bottom_names=["fc1"], top_names=["relu1"]))
    model.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat"], leading_dim=16))
    model.add(D(layer_type=L.Concat, bottom_names=["flat", "relu1"], top_names=["x"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["x"], top_names=["logit"], num_output=1))
    model.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit", "label"], top_names=["loss"]))
    model.compile()
    return model


def first_inner_product(model: hugectr.Model) -> torch.nn.Module:
    return next(layer for layer in model.network.dense_layers() if layer.layer_type == "InnerProduct")


def dense_inputs_of_fc1(model: hugectr.Model, steps: int) -> list[torch.Tensor]:
    """What "fc1" receives over `steps` training steps, then over the evaluation batches."""
    seen: list[torch.Tensor] = []
    hook = first_inner_product(model).register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().cpu()))
    model.start_data_reading()
    for _ in range(steps):
        assert model.train()
    for _ in range(EVAL_BATCHES):  # repeat mode: the evaluation source wraps, so count its batches
        assert model.eval()
    hook.remove()
    return seen


# ------------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize(
    ("dense_dim", "aligned_type", "network_width"),
    [(13, AUTO, 16), (13, NON, 13), (16, AUTO, 16), (16, NON, 16)],
    ids=["13-auto", "13-non", "16-auto", "16-non"],
)
def test_auto_pads_the_network_dense_width_to_a_multiple_of_8(raw_files, dense_dim, aligned_type, network_width):
    model = dlrm_model(raw_files, dense_dim, aligned_type)
    assert model.graph.tensors["dense"].shape == (BATCH, network_width)
    assert tuple(first_inner_product(model).weight.shape) == (network_width, 4)  # y = x·W: W is [in, out]
    assert model.graph.data_spec.dense_dim == dense_dim  # the records are parsed with the given width
    batch = model.get_data_reader_train().next_batch()
    assert tuple(batch.dense.shape) == (BATCH, network_width)


def test_the_summary_shows_the_padded_dense_tensor_as_v35_does(raw_files, capsys):
    dlrm_model(raw_files, 13, AUTO).summary()
    out = capsys.readouterr().out
    assert re.search(r"\(None, 1\) {31}\(None, 16\)", out)  # v3.5 prints the reader's tensor shapes
    assert re.search(r"InnerProduct {28}dense {25}fc1 {27}\(None, 4\)", out)


def test_the_graph_json_input_keeps_the_given_dense_dim_and_rebuilds_the_padded_network(raw_files, tmp_path):
    model = dlrm_model(raw_files, 13, AUTO)
    model.graph_to_json(f"{tmp_path}/dlrm.json")
    with open(f"{tmp_path}/dlrm.json") as handle:
        data_layer = next(layer for layer in json.load(handle)["layers"] if layer["type"] == "Data")
    assert data_layer["dense"]["dense_dim"] == 13
    train, evaluation = raw_files(13)
    rebuilt = hugectr.Model(
        hugectr.CreateSolver(seed=1, batchsize=BATCH, batchsize_eval=BATCH, vvgpu=[[0]], is_dlrm=True),
        hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[train],
                                 eval_source=evaluation, check_type=hugectr.Check_t.Non, slot_size_array=SLOT_SIZES,
                                 async_param=hugectr.AsyncParam(4, 4, 512000, 2, 512, False, AUTO)),
        hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD),
    )  # fmt: skip
    rebuilt.construct_from_json(graph_config_file=f"{tmp_path}/dlrm.json", include_dense_network=True)
    rebuilt.compile()
    assert tuple(first_inner_product(rebuilt).weight.shape) == (16, 4)


# ------------------------------------------------------------------------------------------- correctness
def test_padded_columns_are_zero_and_the_others_hold_the_records(raw_files):
    steps = TRAIN_BATCHES + 2  # past the end of the training file: the repeat pass is padded too
    padded = dense_inputs_of_fc1(dlrm_model(raw_files, 13, AUTO), steps)
    plain = dense_inputs_of_fc1(dlrm_model(raw_files, 13, NON), steps)
    assert len(padded) == len(plain) == steps + EVAL_BATCHES
    for wide, narrow in zip(padded, plain, strict=True):
        assert wide.shape == (BATCH, 16) and narrow.shape == (BATCH, 13)
        assert torch.equal(wide[:, :13], narrow)  # the same float32 values, copied
        assert torch.count_nonzero(wide[:, 13:]) == 0
    assert any(torch.count_nonzero(n) for n in plain)  # the comparison is not between zeros


def test_an_auto_padded_model_trains_with_shuffled_batches(raw_files):
    model = dlrm_model(raw_files, 13, AUTO, shuffle=True)
    schedule = model.get_learning_rate_scheduler()
    model.start_data_reading()
    losses = []
    for _ in range(4 * TRAIN_BATCHES):
        model.set_learning_rate(schedule.get_next())  # the low-level API's loop, as in v3.5's samples
        assert model.train()
        losses.append(model.get_current_loss())
    assert all(math.isfinite(loss) for loss in losses)
    early, late = sum(losses[:TRAIN_BATCHES]), sum(losses[-TRAIN_BATCHES:])  # one epoch each
    assert late < early, losses


# ------------------------------------------------------------------------------------------- round trips
def test_saved_padded_parameters_load_into_a_new_model_with_the_same_predictions(raw_files, tmp_path):
    model = dlrm_model(raw_files, 13, AUTO)
    model.start_data_reading()
    for _ in range(TRAIN_BATCHES):
        model.set_learning_rate(0.5)
        assert model.train()
    model.save_params_to_files(f"{tmp_path}/dlrm", 6)
    # v3.5's dense file layout: fc1's weight has 16 input rows
    num_floats = sum(p.numel() for p in model.network.dense_parameters())
    assert num_floats == 16 * 4 + 4 + (16 + 4) * 1 + 1
    assert os.path.getsize(f"{tmp_path}/dlrm_dense_6.model") == 4 * num_floats
    copy = dlrm_model(raw_files, 13, AUTO)
    copy.load_dense_weights(f"{tmp_path}/dlrm_dense_6.model")
    copy.load_sparse_weights([f"{tmp_path}/dlrm0_sparse_6.model"])
    for trained in (model, copy):
        trained.get_data_reader_eval().set_source("")
        assert trained.eval()
    (expected, _), (received, _) = (next(iter(m.last_eval.values())) for m in (model, copy))
    torch.testing.assert_close(received, expected, rtol=0, atol=0)  # same weights, same inputs: bit-equal
