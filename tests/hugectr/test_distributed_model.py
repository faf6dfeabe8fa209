"""The same HugeCTR script on 1 rank and on 2 ranks (dask workers, gloo): same weights, portable snapshots.

Each run reads the same global batches; with 2 ranks every rank takes half of each batch, embeddings
are split over the ranks and dense gradients are all-reduced. Initial embedding vectors depend only on
(seed, key), so both runs start alike and must end alike within float tolerance. Hash embeddings read
Norm data (keys unique across slots); the one-hot table reads Raw data (per-slot ids), as in HugeCTR.
"""

from __future__ import annotations

import numpy as np
import pytest

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

pytestmark = pytest.mark.slow
SLOT_SIZES = [50, 40, 30, 20]
KINDS = {
    "distributed": hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
    "localized": hugectr.Embedding_t.LocalizedSlotSparseEmbeddingHash,
    "one_hot": hugectr.Embedding_t.LocalizedSlotSparseEmbeddingOneHot,
}


@pytest.fixture(scope="module")
def raw_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("raw")
    params = DataGeneratorParams(
        format=hugectr.DataReaderType_t.Raw, label_dim=1, dense_dim=3, num_slot=len(SLOT_SIZES), i64_input_key=False,
        source=f"{root}/train.bin", eval_source=f"{root}/eval.bin", slot_size_array=SLOT_SIZES,
        num_samples=64 * 12, eval_num_samples=64 * 4, float_label_dense=True, teacher_labels=True, seed=3,
    )  # fmt: skip
    DataGenerator(params).generate()
    return f"{root}/train.bin", f"{root}/eval.bin"


def reader_params(data: tuple[str, str], kind: str) -> hugectr.DataReaderParams:
    train, evaluation = data
    if kind != "one_hot":
        return hugectr.DataReaderParams(
            data_reader_type=hugectr.DataReaderType_t.Norm,
            source=[train],
            eval_source=evaluation,
            check_type=hugectr.Check_t.Sum,
            num_workers=1,
        )
    return hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Raw, source=[train],
                                    eval_source=evaluation, check_type=hugectr.Check_t.Non, num_samples=64 * 12,
                                    eval_num_samples=64 * 4, float_label_dense=True, num_workers=1)  # fmt: skip


def model(data: tuple[str, str], vvgpu: list[list[int]], kind: str) -> hugectr.Model:
    solver = hugectr.CreateSolver(seed=1, batchsize=64, batchsize_eval=64, max_eval_batches=4, lr=0.01, vvgpu=vvgpu)
    reader = reader_params(data, kind)
    result = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam))
    L, D = hugectr.Layer_t, hugectr.DenseLayer
    result.add(
        hugectr.Input(
            label_dim=1,
            label_name="label",
            dense_dim=3,
            dense_name="dense",
            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 4)],
        )
    )
    result.add(hugectr.SparseEmbedding(embedding_type=KINDS[kind], workspace_size_per_gpu_in_mb=1,
                                       embedding_vec_size=4, combiner="sum", sparse_embedding_name="emb",
                                       bottom_name="data1", slot_size_array=SLOT_SIZES))  # fmt: skip
    result.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat"], leading_dim=16))
    result.add(D(layer_type=L.Concat, bottom_names=["flat", "dense"], top_names=["x"]))
    result.add(D(layer_type=L.InnerProduct, bottom_names=["x"], top_names=["fc1"], num_output=8))
    result.add(D(layer_type=L.ReLU, bottom_names=["fc1"], top_names=["relu1"]))
    result.add(D(layer_type=L.InnerProduct, bottom_names=["relu1"], top_names=["logit"], num_output=1))
    result.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit", "label"], top_names=["loss"]))
    result.compile()
    return result


def sparse_rows(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    keys = np.fromfile(f"{prefix}0_sparse_10.model/key", dtype=np.int64)
    vectors = np.fromfile(f"{prefix}0_sparse_10.model/emb_vector", dtype=np.float32).reshape(-1, 4)
    order = np.argsort(keys)
    return keys[order], vectors[order]


def evaluate(target: hugectr.Model) -> float:
    for _ in range(4):
        target.eval()
    return dict(target.get_eval_metrics())["AUC"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_two_ranks_train_to_the_weights_of_one_rank_and_their_snapshot_loads_on_one(
    norm_data, raw_data, tmp_path, kind
):
    data = raw_data if kind == "one_hot" else norm_data
    single = model(data, [[0]], kind)
    single.fit(max_iter=10, display=0, eval_interval=0, snapshot=0)
    single.save_params_to_files(f"{tmp_path}/one", 10)
    double = model(data, [[0, 1]], kind)
    double.fit(max_iter=10, display=0, eval_interval=0, snapshot=0)
    double.save_params_to_files(f"{tmp_path}/two", 10)
    double_auc = evaluate(double)
    dense_one = np.fromfile(f"{tmp_path}/one_dense_10.model", dtype=np.float32)
    dense_two = np.fromfile(f"{tmp_path}/two_dense_10.model", dtype=np.float32)
    # float32, summation order differs between 1 and 2 ranks
    np.testing.assert_allclose(dense_two, dense_one, atol=1e-5)
    keys_one, vectors_one = sparse_rows(f"{tmp_path}/one")
    keys_two, vectors_two = sparse_rows(f"{tmp_path}/two")
    np.testing.assert_array_equal(keys_two, keys_one)
    np.testing.assert_allclose(vectors_two, vectors_one, atol=1e-5)

    reloaded = model(data, [[0]], kind)
    reloaded.load_dense_weights(f"{tmp_path}/two_dense_10.model")
    reloaded.load_sparse_weights([f"{tmp_path}/two0_sparse_10.model"])
    reloaded.load_sparse_optimizer_states([f"{tmp_path}/two0_opt_sparse_10.model"])
    assert evaluate(reloaded) == pytest.approx(double_auc, abs=1e-6)
    # Adam's m and v saved by 2 ranks, rerouted to 1 rank, equal those the 1-rank run built key by key
    expected, loaded = states_by_key(single), states_by_key(reloaded)
    assert expected.keys() == loaded.keys()
    for key, states in expected.items():
        np.testing.assert_allclose(loaded[key], states, atol=1e-6)


def states_by_key(target: hugectr.Model) -> dict[int, np.ndarray]:
    table = target.network.embed.embeddings["emb"]
    keys = table.dump()[0].numpy()
    states = np.stack([s[: len(keys)].numpy() for s in table.optimizer_states()], axis=1)
    return {int(k): states[i] for i, k in enumerate(keys) if np.any(states[i])}
