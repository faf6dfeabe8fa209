"""A training process for the resume test: trains over a file list, optionally from a snapshot, and
prints the loss of every step as JSON on its last line.

    python resume_worker.py TRAIN_LIST EVAL_LIST [--load PREFIX ITER] [--save PREFIX ITER]
"""

from __future__ import annotations

import argparse
import json
import sys

import hugectr

parser = argparse.ArgumentParser()
parser.add_argument("train")
parser.add_argument("evaluation")
parser.add_argument("--load", nargs=2)
parser.add_argument("--save", nargs=2)
args = parser.parse_args()

model = hugectr.Model(
    hugectr.CreateSolver(seed=9, batchsize=64, batchsize_eval=64, lr=0.01, vvgpu=[[0]], repeat_dataset=False),
    hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Norm, source=[args.train],
                             eval_source=args.evaluation, check_type=hugectr.Check_t.Sum, num_workers=1),
    hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam, update_type=hugectr.Update_t.Global),
)  # fmt: skip
L, D = hugectr.Layer_t, hugectr.DenseLayer
model.add(
    hugectr.Input(
        label_dim=1,
        label_name="label",
        dense_dim=3,
        dense_name="dense",
        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 4)],
    )
)
model.add(
    hugectr.SparseEmbedding(
        embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
        workspace_size_per_gpu_in_mb=1,
        embedding_vec_size=4,
        combiner="sum",
        sparse_embedding_name="emb",
        bottom_name="data1",
    )
)
model.add(D(layer_type=L.Reshape, bottom_names=["emb"], top_names=["flat"], leading_dim=16))
model.add(D(layer_type=L.Concat, bottom_names=["flat", "dense"], top_names=["x"]))
model.add(D(layer_type=L.InnerProduct, bottom_names=["x"], top_names=["fc1"], num_output=8))
model.add(D(layer_type=L.ReLU, bottom_names=["fc1"], top_names=["relu1"]))
model.add(D(layer_type=L.InnerProduct, bottom_names=["relu1"], top_names=["logit"], num_output=1))
model.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=["logit", "label"], top_names=["loss"]))  # fmt: skip
model.compile()
if args.load:
    prefix, iteration = args.load
    model.load_dense_weights(f"{prefix}_dense_{iteration}.model")
    model.load_dense_optimizer_states(f"{prefix}_opt_dense_{iteration}.model")
    model.load_sparse_weights([f"{prefix}0_sparse_{iteration}.model"])
    model.load_sparse_optimizer_states([f"{prefix}0_opt_sparse_{iteration}.model"])
model.get_data_reader_train().set_source(args.train)
losses = []
while True:
    model.set_learning_rate(0.01)
    if not model.train():
        break
    losses.append(model.get_current_loss())
if args.save:
    model.save_params_to_files(args.save[0], int(args.save[1]))
sys.stdout.write("\n" + json.dumps(losses) + "\n")
