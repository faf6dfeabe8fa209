"""DCN on generated Norm data, written only against the HugeCTR v3.5 Python API.

Runs unchanged under HugeCTR v3.5 and under ctrflow (`import hugectr` is ctrflow's facade). Sizes are
small so that it finishes in a few minutes on a laptop CPU; raise them for a real run.
"""

from mpi4py import MPI  # noqa: F401  (HugeCTR scripts start with it; ctrflow needs no MPI)

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

SLOT_SIZES = [2000, 1000, 500, 300, 200, 4000, 100, 50, 3000, 1500, 800, 700, 60,
              90, 2500, 400, 30, 20, 1200, 650, 350, 150, 75, 5000, 45, 10]  # fmt: skip

data_generator_params = DataGeneratorParams(
    format=hugectr.DataReaderType_t.Norm,
    label_dim=1,
    dense_dim=13,
    num_slot=26,
    i64_input_key=False,
    source="./dcn_norm/file_list.txt",
    eval_source="./dcn_norm/file_list_test.txt",
    slot_size_array=SLOT_SIZES,
    check_type=hugectr.Check_t.Sum,
    dist_type=hugectr.Distribution_t.PowerLaw,
    power_law_type=hugectr.PowerLaw_t.Short,
    num_files=8,
    eval_num_files=2,
    num_samples_per_file=8192,
)
DataGenerator(data_generator_params).generate()

solver = hugectr.CreateSolver(
    max_eval_batches=16,
    batchsize_eval=1024,
    batchsize=1024,
    lr=0.001,
    vvgpu=[[0]],
    repeat_dataset=True,
)
reader = hugectr.DataReaderParams(
    data_reader_type=hugectr.DataReaderType_t.Norm,
    source=["./dcn_norm/file_list.txt"],
    eval_source="./dcn_norm/file_list_test.txt",
    check_type=hugectr.Check_t.Sum,
    num_workers=2,
)
optimizer = hugectr.CreateOptimizer(
    optimizer_type=hugectr.Optimizer_t.Adam,
    update_type=hugectr.Update_t.Global,
    beta1=0.9,
    beta2=0.999,
    epsilon=0.0001,
)
model = hugectr.Model(solver, reader, optimizer)
model.add(
    hugectr.Input(
        label_dim=1,
        label_name="label",
        dense_dim=13,
        dense_name="dense",
        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 26)],
    )
)
model.add(
    hugectr.SparseEmbedding(
        embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
        workspace_size_per_gpu_in_mb=16,
        embedding_vec_size=16,
        combiner="sum",
        sparse_embedding_name="sparse_embedding1",
        bottom_name="data1",
        optimizer=optimizer,
    )
)
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Reshape, bottom_names=["sparse_embedding1"],
                             top_names=["reshape1"], leading_dim=416))  # fmt: skip
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Concat, bottom_names=["reshape1", "dense"],
                             top_names=["concat1"]))  # fmt: skip
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.MultiCross, bottom_names=["concat1"],
                             top_names=["multicross1"], num_layers=6))  # fmt: skip
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=["concat1"],
                             top_names=["fc1"], num_output=256))  # fmt: skip
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.ReLU, bottom_names=["fc1"], top_names=["relu1"]))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Dropout, bottom_names=["relu1"],
                             top_names=["dropout1"], dropout_rate=0.5))  # fmt: skip
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Concat, bottom_names=["dropout1", "multicross1"],
                             top_names=["concat2"]))  # fmt: skip
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=["concat2"],
                             top_names=["fc2"], num_output=1))  # fmt: skip
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.BinaryCrossEntropyLoss, bottom_names=["fc2", "label"],
                             top_names=["loss"]))  # fmt: skip
model.compile()
model.summary()
model.graph_to_json(graph_config_file="dcn.json")
model.fit(max_iter=600, display=100, eval_interval=300, snapshot=600, snapshot_prefix="dcn")
