"""Acceptance: a DCN trained through the facade matches a plain-PyTorch DCN on the same batches.

Both read the same teacher-labelled Norm files in the same order, with Adam (lr 1e-3) on the dense
weights and on the embedding (Update_t.Global, i.e. dense Adam over the table, which is what
`torch.optim.Adam` does on a dense embedding gradient). Initial weights differ (each framework draws
its own), so the AUCs are compared within 0.01, not bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hugectr
from ctrflow.dense.metrics import roc_auc
from ctrflow.readers import make_reader
from ctrflow.readers.types import DataSpec, ReaderOptions, SparseInputSpec
from hugectr.tools import DataGenerator, DataGeneratorParams

SLOT_SIZES = [400, 300, 200, 100, 500, 50, 250, 150]
SLOTS, DENSE, VEC, BATCH, STEPS, EVAL_BATCHES = len(SLOT_SIZES), 4, 8, 512, 300, 16


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, float]:
    root = tmp_path_factory.mktemp("dcn")
    params = DataGeneratorParams(
        format=hugectr.DataReaderType_t.Norm, label_dim=1, dense_dim=DENSE, num_slot=SLOTS, i64_input_key=False,
        source=f"{root}/file_list.txt", eval_source=f"{root}/file_list_test.txt", slot_size_array=SLOT_SIZES,
        check_type=hugectr.Check_t.Sum, power_law_type=hugectr.PowerLaw_t.Short, num_files=4, eval_num_files=1,
        num_samples_per_file=BATCH * 80, teacher_labels=True, seed=11,
    )  # fmt: skip
    report = DataGenerator(params).generate()
    return f"{root}/file_list.txt", f"{root}/file_list_test.txt", report.teacher_auc_eval


def facade_auc(train: str, evaluation: str) -> float:
    solver = hugectr.CreateSolver(seed=3, batchsize=BATCH, batchsize_eval=BATCH, max_eval_batches=EVAL_BATCHES,
                                  lr=0.001, vvgpu=[[0]], repeat_dataset=True)  # fmt: skip
    reader = hugectr.DataReaderParams(
        data_reader_type=hugectr.DataReaderType_t.Norm,
        source=[train],
        eval_source=evaluation,
        check_type=hugectr.Check_t.Sum,
        num_workers=1,
    )
    optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam, update_type=hugectr.Update_t.Global)
    model = hugectr.Model(solver, reader, optimizer)
    model.add(
        hugectr.Input(
            label_dim=1,
            label_name="label",
            dense_dim=DENSE,
            dense_name="dense",
            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, SLOTS)],
        )
    )
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=VEC, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))  # fmt: skip
    L, D = hugectr.Layer_t, hugectr.DenseLayer
    model.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat"], leading_dim=SLOTS * VEC))
    model.add(D(layer_type=L.Concat, bottom_names=["flat", "dense"], top_names=["x0"]))
    model.add(D(layer_type=L.MultiCross, bottom_names=["x0"], top_names=["cross"], num_layers=2))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["x0"], top_names=["fc1"], num_output=64))
    model.add(D(layer_type=L.ReLU, bottom_names=["fc1"], top_names=["relu1"]))
    model.add(D(layer_type=L.Concat, bottom_names=["relu1", "cross"], top_names=["both"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["both"], top_names=["logit"], num_output=1))
    model.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit", "label"], top_names=["loss"]))
    model.compile()
    model.fit(max_iter=STEPS, display=0, eval_interval=0, snapshot=0)
    for _ in range(EVAL_BATCHES):
        model.eval()
    return dict(model.get_eval_metrics())["AUC"]


class PlainDCN(nn.Module):
    """The same architecture in plain PyTorch."""

    def __init__(self) -> None:
        super().__init__()
        width = SLOTS * VEC + DENSE
        self.table = nn.Embedding(sum(SLOT_SIZES), VEC)
        nn.init.uniform_(self.table.weight, -0.05, 0.05)
        self.cross_w = nn.ParameterList([nn.Parameter(torch.randn(width) / width**0.5) for _ in range(2)])
        self.cross_b = nn.ParameterList([nn.Parameter(torch.zeros(width)) for _ in range(2)])
        self.fc1 = nn.Linear(width, 64)
        self.out = nn.Linear(64 + width, 1)

    def forward(self, keys: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        x0 = torch.cat([self.table(keys).reshape(len(keys), -1), dense], dim=1)
        x = x0
        for w, b in zip(self.cross_w, self.cross_b, strict=True):
            x = x0 * (x @ w).unsqueeze(1) + x + b
        return self.out(torch.cat([torch.relu(self.fc1(x0)), x], dim=1)).squeeze(1)


def plain_auc(train: str, evaluation: str) -> float:
    torch.manual_seed(3)
    spec = DataSpec(1, DENSE, (SparseInputSpec("data1", SLOTS, (1,) * SLOTS, True),))
    model = PlainDCN()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)
    reader = make_reader("norm", train, spec, ReaderOptions(batch_size=BATCH, num_workers=1))
    for _, batch in zip(range(STEPS), reader, strict=False):
        keys = batch.sparse["data1"].keys.view(-1, SLOTS)
        loss = nn.functional.binary_cross_entropy_with_logits(model(keys, batch.dense), batch.label[:, 0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predictions, labels = [], []
    with torch.no_grad():
        evaluation_reader = make_reader("norm", evaluation, spec, ReaderOptions(batch_size=BATCH, num_workers=1))
        for _, batch in zip(range(EVAL_BATCHES), evaluation_reader, strict=False):
            predictions.append(torch.sigmoid(model(batch.sparse["data1"].keys.view(-1, SLOTS), batch.dense)))
            labels.append(batch.label[:, 0])
    return roc_auc(torch.cat(predictions), torch.cat(labels))


def test_facade_dcn_reaches_the_auc_of_a_plain_pytorch_dcn_on_the_same_batches(data):
    train, evaluation, teacher = data
    ours, theirs = facade_auc(train, evaluation), plain_auc(train, evaluation)
    assert theirs > 0.5 + (teacher - 0.5) * 0.6, f"the reference did not learn: {theirs} vs teacher {teacher}"
    assert abs(ours - theirs) < 0.01, f"facade AUC {ours:.4f}, plain PyTorch AUC {theirs:.4f}"
