"""The native DSL: symbolic tensors, callable layers, training on generated data."""

from __future__ import annotations

import pytest

import ctrflow as cf
from ctrflow.readers import GeneratorConfig, generate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> cf.data:
    root = tmp_path_factory.mktemp("dsl")
    config = GeneratorConfig(
        format="norm", label_dim=1, dense_dim=2, num_slot=3, i64_input_key=False,
        source=f"{root}/file_list.txt", eval_source=f"{root}/file_list_test.txt", slot_size_array=(30, 20, 10),
        num_files=2, eval_num_files=1, num_samples_per_file=2048, teacher_labels=True, seed=3, progress=False,
    )  # fmt: skip
    report = generate(config)
    assert report.teacher_auc_eval is not None
    return cf.data.Norm(config.source, eval_source=config.eval_source, num_workers=1)


def build() -> tuple[cf.Input, object]:
    x = cf.Input(label=("label", 1), dense=("dense", 2), sparse={"keys": cf.Sparse(slots=3, nnz=1, fixed_length=True)})
    emb = cf.Embedding(x["keys"], dim=4, workspace_mb=1)
    h = cf.layers.Concat()([cf.layers.Reshape(12)(emb), x["dense"]])
    logit = cf.layers.InnerProduct(1)(cf.layers.ReLU()(cf.layers.InnerProduct(16)(h)))
    return x, cf.losses.BinaryCrossEntropyLoss()(logit, x["label"])


def test_symbolic_tensors_carry_inferred_shapes():
    x = cf.Input(label=("label", 1), dense=("dense", 2), sparse={"keys": cf.Sparse(slots=3)})
    emb = cf.Embedding(x["keys"], dim=4, workspace_mb=1)
    assert emb.shape == (1, 3, 4)
    assert cf.layers.Reshape(12)(emb).shape == (1, 12)


def test_first_positional_argument_is_the_first_hyper_parameter():
    x = cf.Input(label=("label", 1), dense=("dense", 5), sparse={"keys": cf.Sparse(slots=1)})
    assert cf.layers.InnerProduct(7)(x["dense"]).shape == (1, 7)


def test_unknown_layer_names_suggest_registered_ones():
    with pytest.raises(ValueError, match="Did you mean InnerProduct"):
        cf.layers.InnerProdukt(3)


def test_dsl_model_learns_the_teacher(dataset):
    x, loss = build()
    model = cf.Model(x, loss, optimizer=cf.optim.Adam(lr=0.01))
    history = model.fit(dataset, batch_size=256, max_iter=60, eval_interval=30, eval_batches=4)
    assert [step for step, _ in history] == [30, 60]
    assert history[-1][1] > 0.6
