"""ctrflow's main job, end to end on built-in data: generate, train a DCN, evaluate, save, reload, predict.

Everything goes through the HugeCTR v3.5 facade (`import hugectr`), plus one ctrflow option: the data
generator's teacher labels, drawn from a known logistic model so that learning is measurable (HugeCTR's
generator draws random labels). The teacher's own AUC is the ceiling a model can reach.

    python examples/main_job.py [--workdir runs/main_job] [--iterations 600]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np

import hugectr
from hugectr.inference import InferenceModel, InferenceParams
from hugectr.tools import DataGenerator, DataGeneratorParams

SLOTS = 26
SLOT_SIZES = [2000, 1000, 500, 300, 200, 4000, 100, 50, 3000, 1500, 800, 700, 60,
              90, 2500, 400, 30, 20, 1200, 650, 350, 150, 75, 5000, 45, 10]  # fmt: skip
BATCH = 1024


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def generate(workdir: str) -> object:
    params = DataGeneratorParams(
        format=hugectr.DataReaderType_t.Norm, label_dim=1, dense_dim=13, num_slot=SLOTS, i64_input_key=False,
        source=f"{workdir}/data/file_list.txt", eval_source=f"{workdir}/data/file_list_test.txt",
        slot_size_array=SLOT_SIZES, check_type=hugectr.Check_t.Sum, dist_type=hugectr.Distribution_t.PowerLaw,
        power_law_type=hugectr.PowerLaw_t.Short, num_files=16, eval_num_files=2, num_samples_per_file=16384,
        teacher_labels=True, seed=2024,
    )  # fmt: skip
    return DataGenerator(params).generate()


def build(workdir: str, iterations: int) -> hugectr.Model:
    solver = hugectr.CreateSolver(model_name="dcn", seed=7, max_eval_batches=32, batchsize_eval=BATCH,
                                  batchsize=BATCH, lr=0.001, vvgpu=[[0]], repeat_dataset=True)  # fmt: skip
    reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Norm,
                                      source=[f"{workdir}/data/file_list.txt"],
                                      eval_source=f"{workdir}/data/file_list_test.txt",
                                      check_type=hugectr.Check_t.Sum, num_workers=2)  # fmt: skip
    optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam, update_type=hugectr.Update_t.Global,
                                        beta1=0.9, beta2=0.999, epsilon=1e-7)  # fmt: skip
    return hugectr.Model(solver, reader, optimizer)


def add_dcn(model: hugectr.Model) -> None:
    L, T = hugectr.Layer_t, hugectr.DenseLayer
    model.add(
        hugectr.Input(
            label_dim=1,
            label_name="label",
            dense_dim=13,
            dense_name="dense",
            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, SLOTS)],
        )
    )
    model.add(
        hugectr.SparseEmbedding(
            embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
            workspace_size_per_gpu_in_mb=8,
            embedding_vec_size=16,
            combiner="sum",
            sparse_embedding_name="sparse_embedding1",
            bottom_name="data1",
        )
    )
    model.add(T(layer_type=L.Reshape, bottom_names=["sparse_embedding1"], top_names=["reshape1"], leading_dim=416))
    model.add(T(layer_type=L.Concat, bottom_names=["reshape1", "dense"], top_names=["concat1"]))
    model.add(T(layer_type=L.MultiCross, bottom_names=["concat1"], top_names=["multicross1"], num_layers=3))
    model.add(T(layer_type=L.InnerProduct, bottom_names=["concat1"], top_names=["fc1"], num_output=256))
    model.add(T(layer_type=L.ReLU, bottom_names=["fc1"], top_names=["relu1"]))
    model.add(T(layer_type=L.Dropout, bottom_names=["relu1"], top_names=["dropout1"], dropout_rate=0.2))
    model.add(T(layer_type=L.Concat, bottom_names=["dropout1", "multicross1"], top_names=["concat2"]))
    model.add(T(layer_type=L.InnerProduct, bottom_names=["concat2"], top_names=["fc2"], num_output=1))
    model.add(T(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["fc2", "label"], top_names=["loss"]))  # fmt: skip


def evaluate(model: hugectr.Model, batches: int) -> float:
    model.get_data_reader_eval().set_source("")
    for _ in range(batches):
        model.eval()
    return dict(model.get_eval_metrics())["AUC"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/main_job")
    parser.add_argument("--iterations", type=int, default=600)
    args = parser.parse_args()
    workdir, start = args.workdir.rstrip("/"), time.perf_counter()
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)

    step("1/5 Generate Norm data with teacher labels (16 x 16,384 training samples, 26 slots, 13 dense)")
    report = generate(workdir)
    ceiling = report.teacher_auc_eval
    print(f"teacher AUC on the evaluation files (the ceiling): {ceiling:.4f}")

    step(f"2/5 Train a DCN for {args.iterations} iterations of {BATCH} samples")
    model = build(workdir, args.iterations)
    add_dcn(model)
    model.compile()
    model.summary()
    model.fit(max_iter=args.iterations, display=100, eval_interval=args.iterations // 2, snapshot=0)
    trained_auc = evaluate(model, 32)
    print(f"evaluation AUC after training: {trained_auc:.4f} (teacher {ceiling:.4f})")

    step("3/5 Save the model in HugeCTR's formats")
    prefix = f"{workdir}/dcn"
    model.graph_to_json(f"{workdir}/dcn.json")
    model.save_params_to_files(prefix, args.iterations)
    for name in sorted(os.listdir(workdir)):
        if name.startswith("dcn"):
            print(f"  {workdir}/{name}")

    step("4/5 Reload from the JSON graph and the files in a new model, evaluate again")
    reloaded = build(workdir, args.iterations)
    reloaded.construct_from_json(graph_config_file=f"{workdir}/dcn.json", include_dense_network=True)
    reloaded.compile()
    reloaded.load_dense_weights(f"{prefix}_dense_{args.iterations}.model")
    reloaded.load_sparse_weights([f"{prefix}0_sparse_{args.iterations}.model"])
    reloaded_auc = evaluate(reloaded, 32)
    print(f"evaluation AUC of the reloaded model: {reloaded_auc:.4f} (trained model: {trained_auc:.4f})")

    step("5/5 Predict with hugectr.inference.InferenceModel")
    params = InferenceParams(
        model_name="dcn",
        max_batchsize=BATCH,
        hit_rate_threshold=1.0,
        dense_model_file=f"{prefix}_dense_{args.iterations}.model",
        sparse_model_files=[f"{prefix}0_sparse_{args.iterations}.model"],
        use_gpu_embedding_cache=False,
        cache_size_percentage=1.0,
        i64_input_key=False,
    )
    inference = InferenceModel(f"{workdir}/dcn.json", params)
    predictions = inference.predict(4, f"{workdir}/data/file_list_test.txt", hugectr.DataReaderType_t.Norm,
                                    hugectr.Check_t.Sum)  # fmt: skip
    inference_auc = inference.evaluate(32, f"{workdir}/data/file_list_test.txt", hugectr.DataReaderType_t.Norm,
                                       hugectr.Check_t.Sum)  # fmt: skip
    print(f"predictions: shape {predictions.shape}, first five {np.round(predictions[:5, 0], 4).tolist()}")
    print(f"inference AUC over 32 batches: {inference_auc:.4f}")

    print(f"\nDone in {time.perf_counter() - start:.1f}s: teacher AUC {ceiling:.4f}, trained {trained_auc:.4f}, "
          f"reloaded {reloaded_auc:.4f}, inference {inference_auc:.4f}. Files under {workdir}/.")  # fmt: skip
    if abs(reloaded_auc - trained_auc) > 1e-6:
        raise SystemExit("the reloaded model evaluates differently from the trained one")


if __name__ == "__main__":
    main()
