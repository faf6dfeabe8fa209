"""Every dense layer through the facade: HugeCTR's sample models compile, train and evaluate on teacher data.

The models are in `zoo_models.py`. Each trains for a few dozen steps of 64 samples with the low-level API,
must lower its loss and evaluate above chance, and reloads from its graph JSON and files. The tests after
the zoo check what the models rely on: loss weights and target weights steer the gradients of multi-task
heads, mixed precision runs in half precision (bf16 on the CPU), GRU trains, BatchNorm evaluates with its running
statistics, the AUC target stops `fit()` early, and the metrics asked for in `metrics_spec` are reported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import hugectr
from ctrflow.pipeline.types import GraphError

from . import zoo_models as zoo
from .conftest import small_model

STEPS = 60
WINDOW = 10


@pytest.fixture(scope="module")
def single_label_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return zoo.generate_data(str(tmp_path_factory.mktemp("zoo_single")), slot_sizes=[50, 40, 30, 20], dense_dim=3)


@pytest.fixture(scope="module")
def two_label_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = str(tmp_path_factory.mktemp("zoo_two_labels"))
    return zoo.generate_data(root, slot_sizes=[50, 40, 30, 20], dense_dim=3, label_dim=2)


@pytest.fixture(scope="module")
def din_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return zoo.generate_data(str(tmp_path_factory.mktemp("zoo_din")), slot_sizes=zoo.DIN_SLOT_SIZES, dense_dim=0)


@pytest.fixture(scope="module")
def ncf_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return zoo.generate_data(str(tmp_path_factory.mktemp("zoo_ncf")), slot_sizes=zoo.NCF_SLOT_SIZES, dense_dim=1)


def build(
    data: tuple[str, str], add: Callable[..., None], *, solver: dict[str, Any] | None = None, **options: Any
) -> hugectr.Model:
    model = zoo.new_model(data, **(solver or {}))
    add(model, **options)
    return model


def train(model: hugectr.Model, steps: int = STEPS) -> list[float]:
    """`steps` low-level training steps; the reported loss of each."""
    model.start_data_reading()
    losses = []
    for _ in range(steps):
        model.set_learning_rate(model.get_learning_rate_scheduler().get_next())
        assert model.train()
        losses.append(model.get_current_loss())
    return losses


def assert_learns(losses: list[float]) -> None:
    assert all(math.isfinite(v) for v in losses), losses
    first, last = np.mean(losses[:WINDOW]), np.mean(losses[-WINDOW:])
    assert last < 0.9 * first, f"loss did not fall: first {WINDOW} steps {first:.4f}, last {WINDOW} {last:.4f}"


def evaluate(model: hugectr.Model, batches: int = 4) -> dict[str, float]:
    model.get_data_reader_eval().set_source("")
    for _ in range(batches):
        assert model.eval()
    return dict(model.get_eval_metrics())


def layer(model: hugectr.Model, name: str) -> torch.nn.Module:
    """The built dense layer whose first top is `name`."""
    assert model.network is not None
    layers = {module.name: module for module in model.network.dense_layers()}
    return layers[name]


def cpu64(tensor: torch.Tensor) -> torch.Tensor:
    """A float64 CPU copy: the reference computations run there whatever the model's device."""
    return tensor.detach().to("cpu", torch.float64)


def weights_of(model: hugectr.Model, *names: str) -> list[torch.Tensor]:
    return [p.detach().clone() for name in names for p in layer(model, name).parameters()]


MIXED_PRECISION = {"use_mixed_precision": True, "scaler": 1024}
# name: (data fixture, model builder, builder options, CreateSolver overrides)
ZOO: dict[str, tuple[str, Callable[..., None], dict[str, Any], dict[str, Any]]] = {
    "deepfm": ("single_label_data", zoo.add_deepfm, {}, {}),
    "din": ("din_data", zoo.add_din, {}, {}),
    "din-parquet-sample": ("din_data", zoo.add_din_parquet_sample, {}, {}),
    "mmoe-two-bce-losses": ("two_label_data", zoo.add_mmoe, {}, {}),
    "mmoe-multi-cross-entropy": ("two_label_data", zoo.add_mmoe, {"target_weight_vec": [1.0, 0.5]}, {}),
    "neumf": ("ncf_data", zoo.add_neumf, {}, {}),
    "dlrm-fp32": ("single_label_data", zoo.add_dlrm, {}, {}),
    "dlrm-mixed-precision": ("single_label_data", zoo.add_dlrm, {}, MIXED_PRECISION),
    "gru": ("single_label_data", zoo.add_gru, {}, {}),
    "batchnorm": ("single_label_data", zoo.add_batchnorm, {}, {}),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_compiles_learns_and_evaluates_above_chance(name, request):
    fixture, add, options, solver = ZOO[name]
    model = build(request.getfixturevalue(fixture), add, solver=solver, **options)
    model.compile()
    assert_learns(train(model))
    # the held-out split: the teacher's AUC is about 0.8, chance is 0.5
    assert evaluate(model)["AUC"] > 0.6


# formats spec §7.2: v3.5's graph JSON keeps only the alphabetically first label of a multi-label Input,
# so the two-label MMoE cannot be rebuilt from its JSON; every other zoo model can.
ROUND_TRIP = [name for name in ZOO if name != "mmoe-two-bce-losses"]


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_zoo_model_reloads_from_json_and_files_to_the_same_auc(name, request, tmp_path):
    fixture, add, options, solver = ZOO[name]
    data, solver = request.getfixturevalue(fixture), {**solver, "model_name": "zoo"}
    model = build(data, add, solver=solver, **options)
    model.compile()
    train(model, 10)
    before = evaluate(model)["AUC"]
    model.graph_to_json(f"{tmp_path}/zoo.json")
    model.save_params_to_files(f"{tmp_path}/zoo", 10)

    reloaded = zoo.new_model(data, **solver)
    reloaded.construct_from_json(graph_config_file=f"{tmp_path}/zoo.json", include_dense_network=True)
    reloaded.compile()
    reloaded.load_dense_weights(f"{tmp_path}/zoo_dense_10.model")
    num_embeddings = len(reloaded.graph.embeddings)
    reloaded.load_sparse_weights([f"{tmp_path}/zoo{i}_sparse_10.model" for i in range(num_embeddings)])
    assert evaluate(reloaded)["AUC"] == pytest.approx(before, abs=1e-7)


# ------------------------------------------------------------------------------------------- multi-task
TOWER_LAYERS = {task: (f"tower_{task}_fc0", f"tower_{task}_logit") for task in zoo.MMOE_TASKS}


def towers_of(model: hugectr.Model) -> dict[str, list[torch.Tensor]]:
    return {task: weights_of(model, *names) for task, names in TOWER_LAYERS.items()}


def moved(before: list[torch.Tensor], after: list[torch.Tensor]) -> list[bool]:
    return [not torch.equal(a, b) for a, b in zip(before, after, strict=True)]


@pytest.mark.parametrize(("weights", "like_tower_moves"), [([1.0, 0.0], False), ([1.0, 1.0], True)])
def test_compile_loss_weights_scale_each_heads_gradients(two_label_data, weights, like_tower_moves):
    model = build(two_label_data, zoo.add_mmoe)
    model.compile(loss_names=list(zoo.MMOE_TASKS), loss_weights=weights)
    before = towers_of(model)
    losses = train(model, 20)
    assert all(math.isfinite(v) for v in losses)
    after = towers_of(model)
    assert all(moved(before["click"], after["click"]))
    assert moved(before["like"], after["like"]) == [like_tower_moves] * len(before["like"])


def test_loss_weights_scale_the_reported_loss(two_label_data):
    def first_loss(weights: list[float]) -> float:
        model = build(two_label_data, zoo.add_mmoe)
        model.compile(loss_names=list(zoo.MMOE_TASKS), loss_weights=weights)
        return train(model, 1)[0]

    # same seed, same first batch: the unweighted head losses are identical in every run
    like, both, like_tripled = first_loss([0.0, 1.0]), first_loss([1.0, 1.0]), first_loss([1.0, 3.0])
    assert like > 0.1
    assert like_tripled - both == pytest.approx(2.0 * like, rel=1e-5)


def test_zero_target_weight_leaves_that_columns_tower_unchanged(two_label_data):
    model = build(two_label_data, zoo.add_mmoe, target_weight_vec=[1.0, 0.0])
    model.compile()
    before = towers_of(model)
    train(model, 20)
    after = towers_of(model)
    assert all(moved(before["click"], after["click"]))
    assert not any(moved(before["like"], after["like"]))


def test_two_label_input_gives_each_loss_its_own_column(two_label_data):
    model = build(two_label_data, zoo.add_mmoe)
    model.compile()
    model.start_data_reading()
    assert model.eval()
    assert set(model.last_eval) == {"click", "like"}
    for prediction, label in model.last_eval.values():
        assert prediction.shape == label.shape == (zoo.BATCH, 1)
    # teacher labels are independent draws per column, so the columns differ somewhere
    assert not torch.equal(model.last_eval["click"][1], model.last_eval["like"][1])


# ------------------------------------------------------------------------------------- mixed precision
def test_dlrm_mixed_precision_runs_the_fused_layers_in_half_precision_and_matches_fp32(single_label_data):
    dtypes: dict[bool, set[torch.dtype]] = {}
    first_losses: dict[bool, float] = {}
    for mixed in (False, True):
        model = build(single_label_data, zoo.add_dlrm, solver={**MIXED_PRECISION, "use_mixed_precision": mixed})
        model.compile()
        seen: set[torch.dtype] = set()
        handles = [layer(model, name).register_forward_hook(record_dtype(seen)) for name in ("fc1", "fc4", "fc6")]
        first_losses[mixed] = train(model, 1)[0]
        for handle in handles:
            handle.remove()
        dtypes[mixed] = seen
    half = torch.float16 if model.device.type == "cuda" else torch.bfloat16  # runners.py: fp16 needs CUDA
    assert dtypes == {False: {torch.float32}, True: {half}}
    # same seed, same first batch: bf16 (8-bit mantissa) moves the loss by well under 2 %
    assert first_losses[True] == pytest.approx(first_losses[False], rel=2e-2)


def record_dtype(seen: set[torch.dtype]) -> Callable[..., None]:
    def hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        seen.add(output.dtype)

    return hook


# ------------------------------------------------------------------------------------------------- GRU
def test_gru_weights_receive_gradients(single_label_data):
    model = build(single_label_data, zoo.add_gru)
    model.compile()
    gru = layer(model, "gru")
    before = {name: p.detach().clone() for name, p in gru.named_parameters()}
    train(model, 5)
    changed = {name for name, p in gru.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"weight_ih", "weight_hh", "bias"}  # hx is v3.5's unused stored state


# ------------------------------------------------------------------------------------------- BatchNorm
def test_batchnorm_evaluation_normalises_with_running_statistics(single_label_data, tmp_path):
    model = build(single_label_data, zoo.add_batchnorm)
    model.compile()
    train(model, 30)
    bn, head = layer(model, "bn1"), layer(model, "logit")
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    seen: dict[str, torch.Tensor] = {}
    handle = bn.register_forward_hook(lambda m, inputs, output: seen.update(x=inputs[0], y=output))
    model.get_data_reader_eval().set_source("")
    assert model.eval()
    handle.remove()
    model.export_predictions(f"{tmp_path}/pred", f"{tmp_path}/label")
    predictions = torch.tensor([float(v) for v in (tmp_path / "pred").read_text().split()], dtype=torch.float64)

    x = cpu64(seen["x"])
    gamma, beta, running_mean, running_var = map(cpu64, (bn.gamma, bn.beta, bn.running_mean, bn.running_var))
    with_running = gamma * (x - running_mean) / torch.sqrt(running_var + bn.eps) + beta
    mean, variance = x.mean(dim=0), x.var(dim=0, unbiased=False)
    with_batch = gamma * (x - mean) / torch.sqrt(variance + bn.eps) + beta

    def predict(normalised: torch.Tensor) -> torch.Tensor:
        logit = torch.relu(normalised) @ cpu64(head.weight) + cpu64(head.bias)
        return torch.sigmoid(logit).reshape(-1)

    # float32 layer vs float64 reference; predictions are printed with 6 significant digits
    torch.testing.assert_close(cpu64(seen["y"]), with_running, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(predictions, predict(with_running), rtol=0, atol=2e-6)
    assert (with_running - with_batch).abs().max() > 0.05
    assert (predictions - predict(with_batch)).abs().max() > 1e-3


# ------------------------------------------------------------------------------------- fit and metrics
def test_fit_stops_early_once_auc_passes_its_target(norm_data, capsys):
    model = small_model(norm_data, metrics_spec={hugectr.MetricsType.AUC: 0.55})
    model.compile()
    model.fit(max_iter=300, display=0, eval_interval=5, snapshot=0)
    out = capsys.readouterr().out
    hit = re.search(r"Hit target accuracy AUC 0\.550000 at (\d+) / 300 iterations", out)
    assert hit, out[-2000:]
    assert 0 < int(hit.group(1)) < 300
    assert "Finish 300 iterations" not in out
    auc_lines = re.findall(r"Evaluation, AUC: ([0-9.e-]+)", out)
    assert float(auc_lines[-1]) > 0.55
    assert all(float(value) <= 0.55 for value in auc_lines[:-1])


def test_hit_rate_and_average_loss_are_reported_when_asked_for(norm_data, tmp_path):
    spec = {hugectr.MetricsType.AUC: 1.0, hugectr.MetricsType.AverageLoss: 0.0, hugectr.MetricsType.HitRate: 0.8}
    model = small_model(norm_data, metrics_spec=spec)
    model.compile()
    train(model, STEPS)
    model.get_data_reader_eval().set_source("")
    assert model.eval()
    metrics = dict(model.get_eval_metrics())
    assert list(metrics) == ["AUC", "AverageLoss", "HitRate"]
    model.export_predictions(f"{tmp_path}/pred", f"{tmp_path}/label")
    prediction = np.array((tmp_path / "pred").read_text().split(), dtype=np.float64)
    label = np.array((tmp_path / "label").read_text().split(), dtype=np.float64)
    confident = prediction > 0.8
    assert confident.any(), "no prediction above HitRate's 0.8 threshold; train longer"
    assert metrics["HitRate"] == pytest.approx(float(np.mean(label[confident] == 1.0)))
    # AverageLoss of one batch is its BCE (no regulariser); predictions carry 6 significant digits
    bce = -np.mean(label * np.log(prediction) + (1.0 - label) * np.log(1.0 - prediction))
    assert metrics["AverageLoss"] == pytest.approx(bce, rel=1e-4)


def test_metrics_not_asked_for_are_absent(norm_data):
    model = small_model(norm_data, metrics_spec={hugectr.MetricsType.AverageLoss: 0.0})
    model.compile()
    model.start_data_reading()
    assert model.eval()
    metrics = model.get_eval_metrics()
    assert [name for name, _ in metrics] == ["AverageLoss"]
    assert math.isfinite(metrics[0][1])


def test_a_multi_label_graph_json_says_why_it_cannot_be_rebuilt(two_label_data, tmp_path):
    model = zoo.new_model(two_label_data)
    zoo.add_mmoe(model)
    model.graph_to_json(f"{tmp_path}/mmoe.json")
    rebuilt = zoo.new_model(two_label_data)
    with pytest.raises(GraphError, match=r"keeps only one label .* cannot be rebuilt from it"):
        rebuilt.construct_from_json(graph_config_file=f"{tmp_path}/mmoe.json", include_dense_network=True)
