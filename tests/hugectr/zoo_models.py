"""The model zoo of `test_model_zoo.py`: small versions of HugeCTR's sample models, written with the facade.

Each `add_*` function adds one model's Input, embeddings, dense layers and losses to a `hugectr.Model`,
layer for layer as HugeCTR's samples build them (DeepFM, DIN, NCF, DLRM) or in their style (MMoE, GRU,
BatchNorm), scaled down so that a few dozen steps run in about a second on a CPU. `generate_data`
writes a teacher-labelled Norm dataset for them and `new_model` makes the model around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

BATCH = 64
L = hugectr.Layer_t
D = hugectr.DenseLayer


def generate_data(
    root: str, *, slot_sizes: Sequence[int], dense_dim: int, label_dim: int = 1, seed: int = 11
) -> tuple[str, str]:
    """A Norm dataset with teacher labels (2 training files, 1 evaluation file, 6 batches each)."""
    params = DataGeneratorParams(
        format=hugectr.DataReaderType_t.Norm, label_dim=label_dim, dense_dim=dense_dim, num_slot=len(slot_sizes),
        i64_input_key=False, source=f"{root}/file_list.txt", eval_source=f"{root}/file_list_test.txt",
        slot_size_array=list(slot_sizes), num_files=2, eval_num_files=1, num_samples_per_file=BATCH * 6,
        teacher_labels=True, seed=seed,
    )  # fmt: skip
    DataGenerator(params).generate()
    return f"{root}/file_list.txt", f"{root}/file_list_test.txt"


def new_model(data: tuple[str, str], *, lr: float = 0.01, **solver: Any) -> hugectr.Model:
    """An empty model over `data` (Adam, batch 64, seed 1); `solver` overrides CreateSolver keywords."""
    train, evaluation = data
    settings = {"seed": 1, "batchsize": BATCH, "batchsize_eval": BATCH, "max_eval_batches": 4, "lr": lr,
                "vvgpu": [[0]], "repeat_dataset": True, **solver}  # fmt: skip
    return hugectr.Model(
        hugectr.CreateSolver(**settings),
        hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Norm, source=[train],
                                 eval_source=evaluation, check_type=hugectr.Check_t.Sum, num_workers=1),
        hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam),
    )  # fmt: skip


def _input(model: hugectr.Model, dense_dim: int, sparse: Sequence[tuple[str, int]], **labels: Any) -> None:
    params = [hugectr.DataReaderSparseParam(name, 1, True, slots) for name, slots in sparse]
    labels = labels or {"label_dim": 1, "label_name": "label"}
    model.add(hugectr.Input(**labels, dense_dim=dense_dim, dense_name="dense", data_reader_sparse_param_array=params))


def _embedding(model: hugectr.Model, name: str, bottom: str, vec_size: int) -> None:
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=vec_size, combiner="sum",
                                      sparse_embedding_name=name, bottom_name=bottom))  # fmt: skip


def _mlp(model: hugectr.Model, bottom: str, prefix: str, widths: Sequence[int], activation: Any = L.ReLU) -> str:
    """InnerProduct + activation per hidden width, then an InnerProduct to one logit; returns the logit."""
    for index, width in enumerate(widths):
        model.add(D(layer_type=L.InnerProduct, bottom_names=[bottom], top_names=[f"{prefix}_fc{index}"],
                    num_output=width))  # fmt: skip
        extra = {"elu_alpha": 0.2, "eps": 1e-8} if activation == L.PReLU_Dice else {}
        model.add(D(layer_type=activation, bottom_names=[f"{prefix}_fc{index}"], top_names=[f"{prefix}_act{index}"],
                    **extra))  # fmt: skip
        bottom = f"{prefix}_act{index}"
    model.add(D(layer_type=L.InnerProduct, bottom_names=[bottom], top_names=[f"{prefix}_logit"], num_output=1))
    return f"{prefix}_logit"


def _bce(model: hugectr.Model, logit: str, label: str = "label", top: str = "loss") -> None:
    model.add(D(layer_type=L.BinaryCrossEntropyLoss, bottom_names=[logit, label], top_names=[top]))


# ---------------------------------------------------------------------------------------------- DeepFM
DEEPFM_SLOTS = 4
DEEPFM_DENSE = 3
DEEPFM_VEC = 4  # FM factor width; the embedding is one wider, its last column the "wide" (first-order) weight


def add_deepfm(model: hugectr.Model) -> None:
    """HugeCTR's samples/deepfm: an embedding of width V+1 split into FM factors and a one-dim wide part."""
    s, d, v = DEEPFM_SLOTS, DEEPFM_DENSE, DEEPFM_VEC
    _input(model, d, [("data1", s)])
    _embedding(model, "sparse_embedding1", "data1", v + 1)
    model.add(D(layer_type=L.Reshape, bottom_names=["sparse_embedding1"], top_names=["reshape1"], leading_dim=v + 1))
    model.add(D(layer_type=L.Slice, bottom_names=["reshape1"], top_names=["slice11", "slice12"],
                ranges=[(0, v), (v, v + 1)]))  # fmt: skip
    model.add(D(layer_type=L.Reshape, bottom_names=["slice11"], top_names=["reshape2"], leading_dim=s * v))
    model.add(D(layer_type=L.Reshape, bottom_names=["slice12"], top_names=["reshape3"], leading_dim=s))
    model.add(D(layer_type=L.Slice, bottom_names=["dense"], top_names=["slice21", "slice22"], ranges=[(0, d), (0, d)]))
    model.add(D(layer_type=L.WeightMultiply, bottom_names=["slice21"], top_names=["weight_multiply1"],
                weight_dims=[d, v]))  # fmt: skip
    model.add(D(layer_type=L.WeightMultiply, bottom_names=["slice22"], top_names=["weight_multiply2"],
                weight_dims=[d, 1]))  # fmt: skip
    model.add(D(layer_type=L.Concat, bottom_names=["reshape2", "weight_multiply1"], top_names=["concat1"]))
    width = (s + d) * v
    model.add(D(layer_type=L.Slice, bottom_names=["concat1"], top_names=["slice31", "slice32"],
                ranges=[(0, width), (0, width)]))  # fmt: skip
    deep = _mlp_with_dropout(model, "slice31")
    model.add(D(layer_type=L.FmOrder2, bottom_names=["slice32"], top_names=["fmorder2"], out_dim=v))
    model.add(D(layer_type=L.ReduceSum, bottom_names=["fmorder2"], top_names=["reducesum1"], axis=1))
    model.add(D(layer_type=L.Concat, bottom_names=["reshape3", "weight_multiply2"], top_names=["concat2"]))
    model.add(D(layer_type=L.ReduceSum, bottom_names=["concat2"], top_names=["reducesum2"], axis=1))
    model.add(D(layer_type=L.Add, bottom_names=[deep, "reducesum1", "reducesum2"], top_names=["add"]))
    _bce(model, "add")


def _mlp_with_dropout(model: hugectr.Model, bottom: str) -> str:
    for index, width in enumerate((16, 16)):
        model.add(D(layer_type=L.InnerProduct, bottom_names=[bottom], top_names=[f"fc{index}"], num_output=width))
        model.add(D(layer_type=L.ReLU, bottom_names=[f"fc{index}"], top_names=[f"relu{index}"]))
        model.add(D(layer_type=L.Dropout, bottom_names=[f"relu{index}"], top_names=[f"dropout{index}"],
                    dropout_rate=0.1))  # fmt: skip
        bottom = f"dropout{index}"
    model.add(D(layer_type=L.InnerProduct, bottom_names=[bottom], top_names=["fc_deep"], num_output=1))
    return "fc_deep"


# ------------------------------------------------------------------------------------------------- DIN
DIN_HISTORY = 4  # behaviour sequence length T; each item slot group has T history slots + 1 candidate slot
DIN_VEC = 4
DIN_SLOT_SIZES = [30] + [20] * (DIN_HISTORY + 1) + [8] * (DIN_HISTORY + 1)  # user, goods, categories


def add_din(model: hugectr.Model) -> None:
    """HugeCTR's samples/din (din_try.py) attention unit: the candidate item attends over the history."""
    t, w = DIN_HISTORY, 2 * DIN_VEC  # w: good and category vectors side by side
    _input(model, 0, [("UserID", 1), ("GoodID", t + 1), ("CateID", t + 1)])
    for name, bottom in (("user", "UserID"), ("good", "GoodID"), ("cate", "CateID")):
        _embedding(model, f"sparse_embedding_{name}", bottom, DIN_VEC)
    model.add(D(layer_type=L.FusedReshapeConcat, bottom_names=["sparse_embedding_good", "sparse_embedding_cate"],
                top_names=["item_his_em", "item"]))  # fmt: skip
    model.add(D(layer_type=L.Slice, bottom_names=["item"], top_names=["item1", "item2"], ranges=[(0, w)] * 2))
    his = [f"item_his{i}" for i in range(1, 6)]
    model.add(D(layer_type=L.Slice, bottom_names=["item_his_em"], top_names=his, ranges=[(0, w)] * 5))
    # attention score of every (candidate, history item) pair
    model.add(D(layer_type=L.Scale, bottom_names=["item1"], top_names=["scale_item"], axis=1, factor=t))
    scaled = ["scale_item1", "scale_item2", "scale_item3"]
    model.add(D(layer_type=L.Slice, bottom_names=["scale_item"], top_names=scaled, ranges=[(0, w)] * 3))
    model.add(D(layer_type=L.Sub, bottom_names=["scale_item1", his[0]], top_names=["sub_ih"]))
    model.add(D(layer_type=L.ElementwiseMultiply, bottom_names=["scale_item2", his[1]], top_names=["mul_ih"]))
    model.add(D(layer_type=L.Concat, bottom_names=["scale_item3", his[2], "sub_ih", "mul_ih"],
                top_names=["concat_i_h"]))  # fmt: skip
    model.add(D(layer_type=L.InnerProduct, bottom_names=["concat_i_h"], top_names=["fc_att1"], num_output=8))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["fc_att1"], top_names=["fc_att2"], num_output=1))
    model.add(D(layer_type=L.Reshape, bottom_names=["fc_att2"], top_names=["score"], leading_dim=t))
    model.add(D(layer_type=L.Softmax, bottom_names=["score"], top_names=["attention"]))
    # attention-weighted sum of the history: [B, 1, T] x [B, T, W]
    model.add(D(layer_type=L.Reshape, bottom_names=["attention"], top_names=["attention_3d"], leading_dim=t,
                time_step=1))  # fmt: skip
    model.add(D(layer_type=L.Reshape, bottom_names=[his[3]], top_names=["his_3d"], leading_dim=w, time_step=t))
    model.add(D(layer_type=L.MatrixMultiply, bottom_names=["attention_3d", "his_3d"], top_names=["attended_3d"]))
    model.add(D(layer_type=L.Reshape, bottom_names=["attended_3d"], top_names=["attended"], leading_dim=w))
    # plain sum pooling of the history
    model.add(D(layer_type=L.Reshape, bottom_names=[his[4]], top_names=["his_sum_3d"], leading_dim=w, time_step=t))
    model.add(D(layer_type=L.ReduceSum, bottom_names=["his_sum_3d"], top_names=["pooled_3d"], axis=1))
    model.add(D(layer_type=L.Reshape, bottom_names=["pooled_3d"], top_names=["pooled"], leading_dim=w))
    model.add(D(layer_type=L.Reshape, bottom_names=["sparse_embedding_user"], top_names=["user"], leading_dim=DIN_VEC))
    model.add(D(layer_type=L.Concat, bottom_names=["user", "pooled", "attended", "item2"], top_names=["concat_din"]))
    _bce(model, _mlp(model, "concat_din", "din", (16, 8), activation=L.PReLU_Dice))


def add_din_parquet_sample(model: hugectr.Model) -> None:
    """HugeCTR's samples/din/din_parquet.py as written: no explicit Slices (tensors read by several layers
    are branched by the automatic Slices), attention by Scale(axis=0) + ElementwiseMultiply + ReduceSum."""
    t, v = DIN_HISTORY, DIN_VEC
    w = 2 * v
    _input(model, 0, [("UserID", 1), ("GoodID", t + 1), ("CateID", t + 1)])
    for name, bottom in (("user", "UserID"), ("good", "GoodID"), ("cate", "CateID")):
        _embedding(model, f"sparse_embedding_{name}", bottom, v)
    his, item = "FusedReshapeConcat_item_his_em", "FusedReshapeConcat_item"
    model.add(D(layer_type=L.FusedReshapeConcat, bottom_names=["sparse_embedding_good", "sparse_embedding_cate"],
                top_names=[his, item]))  # fmt: skip
    model.add(D(layer_type=L.Scale, bottom_names=[item], top_names=["Scale_item"], axis=1, factor=t))
    model.add(D(layer_type=L.Sub, bottom_names=["Scale_item", his], top_names=["sub_ih"]))
    model.add(D(layer_type=L.ElementwiseMultiply, bottom_names=["Scale_item", his], top_names=["ElementwiseMul_i"]))
    model.add(D(layer_type=L.Concat, bottom_names=["Scale_item", his, "sub_ih", "ElementwiseMul_i"],
                top_names=["concat_i_h"]))  # fmt: skip
    model.add(D(layer_type=L.InnerProduct, bottom_names=["concat_i_h"], top_names=["fc_att_i2"], num_output=8))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["fc_att_i2"], top_names=["fc_att_i3"], num_output=1))
    model.add(D(layer_type=L.Reshape, bottom_names=["fc_att_i3"], top_names=["reshape_score"], leading_dim=t))
    model.add(D(layer_type=L.Softmax, bottom_names=["reshape_score"], top_names=["softmax_att_i"]))
    model.add(D(layer_type=L.Scale, bottom_names=["softmax_att_i"], top_names=["Scale_i"], axis=0, factor=w))
    model.add(D(layer_type=L.Reshape, bottom_names=[his], top_names=["reshape_item_his"], leading_dim=t * w))
    model.add(D(layer_type=L.ElementwiseMultiply, bottom_names=["Scale_i", "reshape_item_his"],
                top_names=["ElementwiseMul_ih"]))  # fmt: skip
    model.add(D(layer_type=L.ReduceSum, bottom_names=["ElementwiseMul_ih"], top_names=["reduce_ih"], axis=1))
    model.add(D(layer_type=L.Reshape, bottom_names=[his], top_names=["reshape_his"], leading_dim=w, time_step=t))
    model.add(D(layer_type=L.ReduceMean, bottom_names=["reshape_his"], top_names=["reduce_item_his"], axis=1))
    model.add(D(layer_type=L.Reshape, bottom_names=["reduce_item_his"], top_names=["reshape_reduce_item_his"],
                leading_dim=w))  # fmt: skip
    model.add(D(layer_type=L.Reshape, bottom_names=["sparse_embedding_user"], top_names=["reshape_user"],
                leading_dim=v))  # fmt: skip
    model.add(D(layer_type=L.Concat, bottom_names=["reshape_user", "reshape_reduce_item_his", "reduce_ih", item],
                top_names=["concat_din_i"]))  # fmt: skip
    _bce(model, _mlp(model, "concat_din_i", "din", (16, 8), activation=L.PReLU_Dice))


# ------------------------------------------------------------------------------------------------ MMoE
MMOE_TASKS = ("click", "like")
MMOE_EXPERTS = 3
MMOE_EXPERT_DIM = 8


def add_mmoe(model: hugectr.Model, target_weight_vec: Sequence[float] | None = None) -> None:
    """Multi-gate mixture of experts over the shared input, one tower per task.

    Without `target_weight_vec`: a two-label Input (`label_dims`/`label_names`) and one
    BinaryCrossEntropyLoss per label. With it: one two-column label "label" and a MultiCrossEntropyLoss
    over both towers' logits.
    """
    e, h, tasks = MMOE_EXPERTS, MMOE_EXPERT_DIM, MMOE_TASKS
    labels = {"label_dim": 2, "label_name": "label"} if target_weight_vec else {
        "label_dims": [1] * len(tasks), "label_names": list(tasks)}  # fmt: skip
    _input(model, 3, [("data1", 4)], **labels)
    _embedding(model, "sparse_embedding1", "data1", 4)
    model.add(D(layer_type=L.Reshape, bottom_names=["sparse_embedding1"], top_names=["flat"], leading_dim=16))
    model.add(D(layer_type=L.Concat, bottom_names=["flat", "dense"], top_names=["shared"]))
    for index in range(e):
        model.add(D(layer_type=L.InnerProduct, bottom_names=["shared"], top_names=[f"expert{index}_fc"],
                    num_output=h))  # fmt: skip
        model.add(D(layer_type=L.ReLU, bottom_names=[f"expert{index}_fc"], top_names=[f"expert{index}"]))
    model.add(D(layer_type=L.Concat, bottom_names=[f"expert{i}" for i in range(e)], top_names=["experts"]))
    model.add(D(layer_type=L.Slice, bottom_names=["experts"], top_names=[f"experts_{t}" for t in tasks],
                ranges=[(0, e * h)] * len(tasks)))  # fmt: skip
    model.add(D(layer_type=L.InnerProduct, bottom_names=["shared"], top_names=["gates"], num_output=e * len(tasks)))
    model.add(D(layer_type=L.Slice, bottom_names=["gates"], top_names=[f"gate_{t}_logit" for t in tasks],
                ranges=[(i * e, (i + 1) * e) for i in range(len(tasks))]))  # fmt: skip
    for task in tasks:
        model.add(D(layer_type=L.Softmax, bottom_names=[f"gate_{task}_logit"], top_names=[f"gate_{task}"]))
        model.add(D(layer_type=L.Reshape, bottom_names=[f"gate_{task}"], top_names=[f"gate_{task}_3d"],
                    leading_dim=e, time_step=1))  # fmt: skip
        model.add(D(layer_type=L.Reshape, bottom_names=[f"experts_{task}"], top_names=[f"experts_{task}_3d"],
                    leading_dim=h, time_step=e))  # fmt: skip
        model.add(D(layer_type=L.MatrixMultiply, bottom_names=[f"gate_{task}_3d", f"experts_{task}_3d"],
                    top_names=[f"mixture_{task}_3d"]))  # fmt: skip
        model.add(D(layer_type=L.Reshape, bottom_names=[f"mixture_{task}_3d"], top_names=[f"mixture_{task}"],
                    leading_dim=h))  # fmt: skip
        logit = _mlp(model, f"mixture_{task}", f"tower_{task}", (8,))
        if not target_weight_vec:
            _bce(model, logit, task, f"loss_{task}")
    if target_weight_vec:
        model.add(D(layer_type=L.Concat, bottom_names=[f"tower_{t}_logit" for t in tasks], top_names=["logits"]))
        model.add(D(layer_type=L.MultiCrossEntropyLoss, bottom_names=["logits", "label"], top_names=["loss"],
                    target_weight_vec=list(target_weight_vec)))  # fmt: skip


# ------------------------------------------------------------------------------------------------- NCF
NCF_SLOT_SIZES = [60, 40]  # user, item
NCF_VEC = 8


def add_neumf(model: hugectr.Model) -> None:
    """HugeCTR's NCF sample in its NeuMF form: a GMF branch and an MLP branch over (user, item)."""
    v = NCF_VEC
    _input(model, 1, [("data", 2)])
    _embedding(model, "gmf_embedding", "data", v)
    _embedding(model, "mlp_embedding", "data", v)
    model.add(D(layer_type=L.Reshape, bottom_names=["gmf_embedding"], top_names=["reshape1"], leading_dim=2 * v))
    model.add(D(layer_type=L.Slice, bottom_names=["reshape1"], top_names=["gmf_user", "gmf_item"],
                ranges=[(0, v), (v, 2 * v)]))  # fmt: skip
    model.add(D(layer_type=L.ElementwiseMultiply, bottom_names=["gmf_user", "gmf_item"], top_names=["gmf"]))
    model.add(D(layer_type=L.Reshape, bottom_names=["mlp_embedding"], top_names=["reshape2"], leading_dim=2 * v))
    bottom = "reshape2"
    for index, width in enumerate((16, 8, 4)):
        model.add(D(layer_type=L.InnerProduct, bottom_names=[bottom], top_names=[f"fc{index}"], num_output=width))
        model.add(D(layer_type=L.ReLU, bottom_names=[f"fc{index}"], top_names=[f"relu{index}"]))
        bottom = f"relu{index}"
    model.add(D(layer_type=L.Concat, bottom_names=[bottom, "gmf"], top_names=["concat1"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["concat1"], top_names=["fc_out"], num_output=1))
    _bce(model, "fc_out")


# ------------------------------------------------------------------------------------------------ DLRM
DLRM_SLOTS = 4
DLRM_VEC = 8


def add_dlrm(model: hugectr.Model) -> None:
    """HugeCTR's DLRM: GroupFusedInnerProduct bottom and top MLPs around Interaction (the API doc example)."""
    _input(model, 3, [("data1", DLRM_SLOTS)])
    _embedding(model, "sparse_embedding1", "data1", DLRM_VEC)
    G = hugectr.GroupDenseLayer
    model.add(G(group_layer_type=hugectr.GroupLayer_t.GroupFusedInnerProduct, bottom_name=["dense"],
                top_name_list=["fc1", "fc2", "fc3"], num_outputs=[32, 16, DLRM_VEC],
                last_act_type=hugectr.Activation_t.Relu))  # fmt: skip
    model.add(D(layer_type=L.Interaction, bottom_names=["fc3", "sparse_embedding1"],
                top_names=["interaction1", "interaction1_grad"]))  # fmt: skip
    model.add(G(group_layer_type=hugectr.GroupLayer_t.GroupFusedInnerProduct,
                bottom_name_list=["interaction1", "interaction1_grad"], top_name_list=["fc4", "fc5", "fc6"],
                num_outputs=[32, 16, 1], last_act_type=hugectr.Activation_t.Non))  # fmt: skip
    _bce(model, "fc6")


# ------------------------------------------------------------------------------------------------- GRU
GRU_SLOTS = 4  # the sequence: one time step per slot
GRU_VEC = 4
GRU_HIDDEN = 8


def add_gru(model: hugectr.Model) -> None:
    """Slot embeddings as a sequence: Reshape → GRU → the last hidden state → logit.

    GRU reads its bottom sequence-major (`[T, N, C]`, semantics spec §1.4), so Gather reorders the
    batch-major rows of the Reshape first and picks the last time step of every sample after.
    """
    t, n = GRU_SLOTS, BATCH
    _input(model, 3, [("data1", t)])
    _embedding(model, "sparse_embedding1", "data1", GRU_VEC)
    model.add(D(layer_type=L.Reshape, bottom_names=["sparse_embedding1"], top_names=["rows"], leading_dim=GRU_VEC))
    sequence_major = [sample * t + step for step in range(t) for sample in range(n)]
    model.add(D(layer_type=L.Gather, bottom_names=["rows"], top_names=["sequence"], indices=sequence_major))
    model.add(D(layer_type=L.GRU, bottom_names=["sequence"], top_names=["gru"], num_output=GRU_HIDDEN, batchsize=n,
                SeqLength=t, vector_size=GRU_VEC))  # fmt: skip
    last_step = [(t - 1) * n + sample for sample in range(n)]
    model.add(D(layer_type=L.Gather, bottom_names=["gru"], top_names=["last_hidden"], indices=last_step))
    model.add(D(layer_type=L.Concat, bottom_names=["last_hidden", "dense"], top_names=["features"]))
    _bce(model, _mlp(model, "features", "head", (8,)))


# ------------------------------------------------------------------------------------------- BatchNorm
def add_batchnorm(model: hugectr.Model) -> None:
    """An MLP with BatchNorm between its hidden InnerProduct and ReLU."""
    _input(model, 3, [("data1", 4)])
    _embedding(model, "sparse_embedding1", "data1", 4)
    model.add(D(layer_type=L.Reshape, bottom_names=["sparse_embedding1"], top_names=["flat"], leading_dim=16))
    model.add(D(layer_type=L.Concat, bottom_names=["flat", "dense"], top_names=["x"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["x"], top_names=["fc1"], num_output=8))
    model.add(D(layer_type=L.BatchNorm, bottom_names=["fc1"], top_names=["bn1"]))
    model.add(D(layer_type=L.ReLU, bottom_names=["bn1"], top_names=["relu1"]))
    model.add(D(layer_type=L.InnerProduct, bottom_names=["relu1"], top_names=["logit"], num_output=1))
    _bce(model, "logit")
