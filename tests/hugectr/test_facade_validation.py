"""Keywords, defaults, positional calls and error messages of the `hugectr` facade's parameter objects."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import types
from typing import Any

import pytest

import hugectr
from ctrflow.embedding.types import SparseOptimizerConfig

H = hugectr
SPARSE = [H.DataReaderSparseParam("data1", 1, True, 26)]

# Every keyword with its default, in pybind order (semantics spec §10.2, §4.1, §1.2, §3.1; formats spec §4.1).
SOLVER_DEFAULTS: dict[str, Any] = {
    "model_name": "", "seed": 0, "lr_policy": H.LrPolicy_t.fixed, "lr": 0.001, "warmup_steps": 1,
    "decay_start": 0, "decay_steps": 1, "decay_power": 2.0, "end_lr": 0.0, "max_eval_batches": 100,
    "batchsize_eval": 2048, "batchsize": 2048, "vvgpu": [[0]], "repeat_dataset": True,
    "use_mixed_precision": False, "enable_tf32_compute": False, "scaler": 1.0,
    "metrics_spec": {H.MetricsType.AUC: 1.0}, "i64_input_key": False, "use_algorithm_search": True,
    "use_cuda_graph": True, "async_mlp_wgrad": False, "gen_loss_summary": True, "overlap_lr": False,
    "overlap_init_wgrad": False, "overlap_ar_a2a": False, "device_layout": H.DeviceLayout.LocalFirst,
    "use_holistic_cuda_graph": False, "use_overlapped_pipeline": False, "all_reduce_algo": H.AllReduceAlgo.NCCL,
    "grouped_all_reduce": False, "num_iterations_statistics": 20, "is_dlrm": False, "kafka_brockers": "",
}  # fmt: skip
OPTIMIZER_DEFAULTS: dict[str, Any] = {
    "optimizer_type": H.Optimizer_t.Adam, "update_type": H.Update_t.Global, "beta1": 0.9, "beta2": 0.999,
    "epsilon": 1e-7, "initial_accu_value": 0.0, "momentum_factor": 0.0, "atomic_update": True,
}  # fmt: skip
DENSE_DEFAULTS: dict[str, Any] = {
    "factor": 1.0, "eps": 1e-5, "gamma_init_type": H.Initializer_t.Default,
    "beta_init_type": H.Initializer_t.Default, "dropout_rate": 0.5, "elu_alpha": 1.0, "num_output": 1,
    "weight_init_type": H.Initializer_t.Default, "bias_init_type": H.Initializer_t.Default, "num_layers": 0,
    "leading_dim": 1, "time_step": 0, "batchsize": 1, "SeqLength": 1, "vector_size": 1, "selected": False,
    "selected_slots": [], "ranges": [], "indices": [], "weight_dims": [], "out_dim": 0, "axis": 1,
    "target_weight_vec": [], "use_regularizer": False, "regularizer_type": H.Regularizer_t.L1, "lambda": 0.0,
    "pos_type": H.FcPosition_t.Non, "act_type": H.Activation_t.Relu,
}  # fmt: skip
READER_DEFAULTS: dict[str, Any] = {
    "keyset": [], "cache_eval_data": 0, "num_samples": 0, "eval_num_samples": 0, "float_label_dense": False,
    "num_workers": 12, "slot_size_array": [],
}  # fmt: skip
ASYNC_DEFAULTS = (16, 4, 512000, 4, 512, False, H.Alignment_t.Non)
HYBRID_DEFAULTS = (1, -1, 0.01, 1.3e11, 1.9e11, 1.0, False, False, H.CommunicationType.NVLink_SingleNode,
                   H.HybridEmbeddingType.Distributed)  # fmt: skip
GENERATOR_DEFAULTS: dict[str, Any] = {
    "nnz_array": [], "check_type": H.Check_t.Sum, "dist_type": H.Distribution_t.PowerLaw,
    "power_law_type": H.PowerLaw_t.Specific, "alpha": 1.2, "num_files": 128, "eval_num_files": 32,
    "num_samples_per_file": 40960, "num_samples": 5242880, "eval_num_samples": 1310720,
    "float_label_dense": False, "teacher_labels": False, "seed": 0,
}  # fmt: skip
VOLATILE_DEFAULTS: dict[str, Any] = {
    "type": H.DatabaseType_t.parallel_hash_map, "address": "127.0.0.1:7000", "user_name": "default",
    "password": "", "algorithm": H.DatabaseHashMapAlgorithm_t.phm, "num_partitions": min(16, os.cpu_count() or 1),
    "max_get_batch_size": 10000, "max_set_batch_size": 10000, "refresh_time_after_fetch": False,
    "overflow_margin": 2**64 - 1, "overflow_policy": H.DatabaseOverflowPolicy_t.evict_oldest,
    "overflow_resolution_target": 0.8, "initial_cache_rate": 1.0, "cache_missed_embeddings": False,
    "update_filters": [".+"],
}  # fmt: skip
PERSISTENT_DEFAULTS: dict[str, Any] = {
    "backend": H.DatabaseType_t.disabled, "path": os.path.join(tempfile.gettempdir(), "rocksdb"),
    "num_threads": 16, "read_only": False, "max_get_batch_size": 10000, "max_set_batch_size": 10000,
    "update_filters": [".+"],
}  # fmt: skip
UPDATE_SOURCE_DEFAULTS: dict[str, Any] = {
    "type": H.UpdateSourceType_t.null, "brokers": "127.0.0.1:9092", "poll_timeout_ms": 500,
    "max_receive_buffer_size": 2000, "max_batch_size": 1000, "failure_backoff_ms": 50,
}  # fmt: skip
INFERENCE_DEFAULTS: dict[str, Any] = {
    "device_id": 0, "use_mixed_precision": False, "scaler": 1.0, "use_algorithm_search": True,
    "use_cuda_graph": True, "number_of_worker_buffers_in_pool": 2, "number_of_refresh_buffers_in_pool": 1,
    "cache_refresh_percentage_per_iteration": 0.1, "deployed_devices": [0], "default_value_for_each_table": [0.0],
    "maxnum_des_feature_per_sample": 20, "refresh_delay": 0.0, "refresh_interval": 0.0,
    "maxnum_catfeature_query_per_table_per_sample": [26], "embedding_vecsize_per_table": [128],
    "embedding_table_names": [""],
}  # fmt: skip


def reader(**overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "data_reader_type": H.DataReaderType_t.Norm,
        "source": ["./file_list.txt"],
        "eval_source": "./file_list_test.txt",
        "check_type": H.Check_t.Sum,
    }
    return H.DataReaderParams(**{**kwargs, **overrides})


def generator_params(**overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "format": H.DataReaderType_t.Norm, "label_dim": 1, "dense_dim": 13, "num_slot": 2, "i64_input_key": False,
        "source": "./data/file_list.txt", "eval_source": "./data/file_list_test.txt", "slot_size_array": [10, 20],
    }  # fmt: skip
    return H.tools.DataGeneratorParams(**{**kwargs, **overrides})


def inference_params(**overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "model_name": "wdl", "max_batchsize": 64, "hit_rate_threshold": 0.5, "dense_model_file": "d.model",
        "sparse_model_files": ["s0.model"], "use_gpu_embedding_cache": False, "cache_size_percentage": 0.5,
        "i64_input_key": False,
    }  # fmt: skip
    return H.inference.InferenceParams(**{**kwargs, **overrides})


# ------------------------------------------------------------------------------------------ keywords, defaults


@pytest.mark.parametrize(
    ("build", "defaults"),
    [
        (lambda: H.CreateSolver(), SOLVER_DEFAULTS),
        (lambda: H.CreateOptimizer(), OPTIMIZER_DEFAULTS),
        (lambda: H.DenseLayer(H.Layer_t.ReLU, ["a"], ["b"]), DENSE_DEFAULTS),
        (lambda: reader(), READER_DEFAULTS),
        (lambda: generator_params(), GENERATOR_DEFAULTS),
        (lambda: H.inference.VolatileDatabaseParams(), VOLATILE_DEFAULTS),
        (lambda: H.inference.PersistentDatabaseParams(), PERSISTENT_DEFAULTS),
        (lambda: H.inference.UpdateSourceParams(), UPDATE_SOURCE_DEFAULTS),
        (lambda: inference_params(), INFERENCE_DEFAULTS),
        (lambda: H.data.DataSourceParams(), {"use_hdfs": False, "namenode": "localhost", "port": 9000}),
    ],
    ids=["solver", "optimizer", "dense", "reader", "generator", "volatile", "persistent", "update", "inference", "ds"],
)
def test_every_documented_default_is_stored_as_an_attribute_and_in_kwargs(build: Any, defaults: dict) -> None:
    obj = build()
    for name, value in defaults.items():
        assert getattr(obj, name) == value, name
        assert obj.kwargs[name] == value, name


def test_solver_keywords_are_v35_s_in_pybind_order() -> None:
    assert list(H.CreateSolver().kwargs) == [*SOLVER_DEFAULTS, "data_source_params"]


def test_dense_layer_keywords_are_v35_s_in_pybind_order() -> None:
    assert list(H.DenseLayer(H.Layer_t.ReLU, ["a"], ["b"]).kwargs) == ["layer_type", "bottom_names", "top_names",
                                                                       *DENSE_DEFAULTS]  # fmt: skip


def test_solver_default_data_source_params_is_a_fresh_object() -> None:
    first, second = H.CreateSolver(), H.CreateSolver()
    assert first.data_source_params.kwargs == {"use_hdfs": False, "namenode": "localhost", "port": 9000}
    assert first.kwargs["data_source_params"] is not second.kwargs["data_source_params"]


def test_async_and_hybrid_params_default_to_the_values_v35_passes() -> None:
    assert tuple(reader().async_param.kwargs.values()) == ASYNC_DEFAULTS
    embedding = H.SparseEmbedding(H.Embedding_t.DistributedSlotSparseEmbeddingHash, 10, 16, "sum", "e", "data1")
    assert tuple(embedding.hybrid_embedding_param.kwargs.values()) == HYBRID_DEFAULTS
    assert embedding.optimizer is None and embedding.slot_size_array == []


def test_solver_attributes_are_read_only() -> None:
    solver = H.CreateSolver()
    with pytest.raises(AttributeError, match="read-only"):
        solver.lr = 0.1
    solver.vvgpu.append([1])
    assert solver.vvgpu == [[0]]


def test_generator_and_data_source_fields_are_read_write_and_checked() -> None:
    params = generator_params()
    params.num_files = 4
    params.alpha = 0.5
    assert (params.num_files, params.alpha) == (4, 0.5)
    with pytest.raises(TypeError, match="num_files must be an integer"):
        params.num_files = "4"
    source = H.data.DataSourceParams()
    source.use_hdfs, source.namenode = True, "nn"
    assert source.url_of("/data/x") == "hdfs://nn:9000/data/x"
    assert source.url_of("s3://b/x") == "s3://b/x"


# --------------------------------------------------------------------------------------------- positional calls


def test_positional_calls_follow_pybind_order() -> None:
    solver = H.CreateSolver("m", 7, H.LrPolicy_t.fixed, 0.5)
    assert (solver.model_name, solver.seed, solver.lr) == ("m", 7, 0.5)
    params = H.DataReaderParams(H.DataReaderType_t.Raw, "train.bin", [], "val.bin", H.Check_t.Non)
    assert (params.source, params.eval_source, params.check_type) == (["train.bin"], "val.bin", H.Check_t.Non)
    opt = H.CreateOptimizer(H.Optimizer_t.SGD, H.Update_t.Local)
    assert (opt.optimizer_type, opt.update_type) == (H.Optimizer_t.SGD, H.Update_t.Local)
    assert H.AsyncParam(32, 4, 716800, 2, 512, True, H.Alignment_t.Non).io_block_size == 716800
    assert H.CreateHMemCache(2, 0.5, 3).kwargs == {"num_blocks": 2, "target_hit_rate": 0.5, "max_num_evict": 3}


def test_hybrid_embedding_param_accepts_the_documents_eight_argument_form() -> None:
    param = H.HybridEmbeddingParam(2, -1, 0.01, 1.3e11, 1.9e11, 1.0, H.CommunicationType.IB_NVLink_Hier,
                                   H.HybridEmbeddingType.Distributed)  # fmt: skip
    assert param.communication_type == H.CommunicationType.IB_NVLink_Hier
    assert param.use_train_precompute_indices is False


def test_too_many_positional_arguments_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"CreateHMemCache\(\) takes at most 3 positional arguments but 4"):
        H.CreateHMemCache(1, 0.5, 1, 9)


def test_a_keyword_repeating_a_positional_argument_is_rejected() -> None:
    with pytest.raises(TypeError, match="got multiple values for argument 'lr'"):
        H.CreateSolver("m", 0, H.LrPolicy_t.fixed, 0.1, lr=0.2)


# ------------------------------------------------------------------------------------- generic error messages


def test_unknown_keyword_names_it_and_lists_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"CreateSolver\(\) got an unexpected keyword argument 'batch_size'; "
                                        r"valid keywords: model_name, seed, .*Did you mean 'batchsize'"):  # fmt: skip
        H.CreateSolver(batch_size=16)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: H.DataReaderParams(source="a", eval_source="b", check_type=H.Check_t.Sum), "'data_reader_type'"),
        (lambda: H.SparseEmbedding(embedding_type=H.Embedding_t.DistributedSlotSparseEmbeddingHash),
         "'workspace_size_per_gpu_in_mb'"),
        (lambda: H.DenseLayer(layer_type=H.Layer_t.ReLU, bottom_names=["a"]), "'top_names'"),
        (lambda: H.CreateETC(), "'ps_types'"),
    ],
)  # fmt: skip
def test_missing_required_argument_is_named(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=f"missing required argument.*{message}"):
        call()


def test_wrong_enum_lists_the_valid_members() -> None:
    with pytest.raises(TypeError, match=r"optimizer_type must be a Optimizer_t member, received <Update_t.Local: 0>"
                                        r".*valid: Optimizer_t.Adam, Optimizer_t.AdaGrad"):  # fmt: skip
        H.CreateOptimizer(optimizer_type=H.Update_t.Local)
    with pytest.raises(TypeError, match="check_type must be a Check_t member, received 0"):
        reader(check_type=0)


def test_an_enum_member_outside_the_supported_subset_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=re.escape("format=DataReaderType_t.RawAsync is not supported here; valid: ")):
        generator_params(format=H.DataReaderType_t.RawAsync)
    with pytest.raises(ValueError, match=re.escape("backend=DatabaseType_t.hash_map is not supported")):
        H.inference.PersistentDatabaseParams(backend=H.DatabaseType_t.hash_map)


def test_wrong_types_are_type_errors_naming_the_argument() -> None:
    with pytest.raises(TypeError, match=r"CreateSolver: batchsize must be an integer, received 16.0 \(float\)"):
        H.CreateSolver(batchsize=16.0)
    with pytest.raises(TypeError, match="bottom_names must be a list, received 'a'"):
        H.DenseLayer(H.Layer_t.ReLU, "a", ["b"])
    with pytest.raises(TypeError, match="lr must be a number"):
        H.CreateSolver(lr="0.1")


# ------------------------------------------------------------------------------------------------- CreateSolver


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"use_mixed_precision": True, "scaler": 3.0},
         r"CreateSolver: scaler must be one of 128, 256, 512, 1024 when use_mixed_precision=True, received 3.0"),
        ({"use_mixed_precision": True, "scaler": 1024, "enable_tf32_compute": True}, "mutually exclusive"),
        ({"use_holistic_cuda_graph": True, "use_cuda_graph": False}, "use_holistic_cuda_graph=True is restricted"),
        ({"use_overlapped_pipeline": True}, "use_overlapped_pipeline=True is restricted to DLRM use"),
        ({"grouped_all_reduce": True}, "grouped_all_reduce=True is restricted to DLRM use"),
        ({"is_dlrm": True, "use_holistic_cuda_graph": True}, "Must turn off local cuda graph"),
        ({"async_mlp_wgrad": True}, "Must turn off local cuda graph when async_mlp_wgrad=True"),
        ({"batchsize": 0}, "batchsize must be >= 1, received 0"),
        ({"lr": -0.1}, "lr must be >= 0.0, received -0.1"),
        ({"warmup_steps": 0}, "warmup_steps must be >= 1"),
        ({"decay_steps": 0}, "decay_steps must be >= 1"),
        ({"decay_power": 0.5}, "decay_power must be >= 1.0"),
        ({"end_lr": -1.0}, "end_lr must be >= 0.0"),
        ({"vvgpu": []}, "vvgpu must hold at least 1 entries"),
        ({"vvgpu": [[]]}, r"vvgpu\[0\] must hold at least 1 entries"),
        ({"vvgpu": [0, 1]}, r"list of per-node device lists.*write \[\[0, 1\]\]"),
        ({"metrics_spec": {"AUC": 1.0}}, "metrics_spec key must be a MetricsType member"),
    ],
)  # fmt: skip
def test_create_solver_rejects_invalid_settings(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        H.CreateSolver(**kwargs)


def test_create_solver_accepts_mixed_precision_with_a_valid_scaler_and_dlrm_options() -> None:
    solver = H.CreateSolver(use_mixed_precision=True, scaler=1024, is_dlrm=True, use_cuda_graph=False,
                            use_holistic_cuda_graph=True, use_overlapped_pipeline=True, grouped_all_reduce=True,
                            vvgpu=[[0, 1], [2, 3]], kafka_brockers="k:9092")  # fmt: skip
    assert (solver.scaler, solver.num_gpus, solver.kafka_brockers) == (1024.0, 4, "k:9092")


# -------------------------------------------------------------------------------------------- CreateOptimizer


def test_lazy_global_with_a_non_adam_optimizer_is_rejected() -> None:
    with pytest.raises(ValueError, match=re.escape("lazy global update is only implemented for Adam, received "
                                                   "optimizer_type=Optimizer_t.SGD")):  # fmt: skip
        H.CreateOptimizer(optimizer_type=H.Optimizer_t.SGD, update_type=H.Update_t.LazyGlobal)


@pytest.mark.parametrize(
    ("optimizer", "update", "kind", "update_name"),
    [
        (H.Optimizer_t.Adam, H.Update_t.LazyGlobal, "adam", "lazy_global"),
        (H.Optimizer_t.AdaGrad, H.Update_t.Global, "adagrad", "global"),
        (H.Optimizer_t.MomentumSGD, H.Update_t.Local, "momentum_sgd", "local"),
        (H.Optimizer_t.Nesterov, H.Update_t.Local, "nesterov", "local"),
        (H.Optimizer_t.SGD, H.Update_t.Global, "sgd", "global"),
    ],
)
def test_optimizer_translates_onto_the_sparse_optimizer_config(optimizer: Any, update: Any, kind: str,
                                                               update_name: str) -> None:  # fmt: skip
    config = H.CreateOptimizer(optimizer, update, momentum_factor=0.9, atomic_update=False).to_sparse_optimizer_config()
    assert config == SparseOptimizerConfig(kind=kind, update_type=update_name, momentum_factor=0.9,  # type: ignore
                                           atomic_update=False)  # fmt: skip


def test_optimizer_betas_must_be_below_one() -> None:
    with pytest.raises(ValueError, match=re.escape("beta1 must be < 1, received 1.0")):
        H.CreateOptimizer(beta1=1.0)


# --------------------------------------------------------------------------------------- reader parameters


def test_reader_source_and_keyset_are_stored_as_lists() -> None:
    params = reader(source="list.txt", keyset="k.keyset")
    assert (params.source, params.keyset) == (["list.txt"], ["k.keyset"])
    assert reader(keyset="").keyset == []


@pytest.mark.parametrize("overrides", [{"source": ""}, {"source": []}, {"eval_source": ""}])
def test_empty_source_or_eval_source_gives_the_v35_message(overrides: dict) -> None:
    with pytest.raises(ValueError, match="The data source for training and evaluation should be specified"):
        reader(**overrides)


def test_sparse_param_repeats_an_int_nnz_per_slot_and_checks_list_length() -> None:
    assert H.DataReaderSparseParam("d", 2, False, 3).nnz_per_slot == [2, 2, 2]
    assert H.DataReaderSparseParam("d", [1, 2, 3], False, 3).to_sparse_input_spec().nnz_per_slot == (1, 2, 3)
    with pytest.raises(ValueError, match=r"slot num != nnz_per_slot.size\(\): slot_num is 3 but nnz_per_slot has 2"):
        H.DataReaderSparseParam("d", [1, 2], False, 3)
    with pytest.raises(ValueError, match="slot_num must be >= 1, received 0"):
        H.DataReaderSparseParam("d", 1, False, 0)


# ------------------------------------------------------------------------------------------------------ layers


def test_input_single_label_form_stores_both_spellings() -> None:
    inp = H.Input(label_dim=1, label_name="label", dense_dim=13, dense_name="dense",
                  data_reader_sparse_param_array=SPARSE)  # fmt: skip
    assert (inp.label_dim, inp.label_names, inp.label_weights, inp.is_multi_label) == (1, ["label"], [1.0], False)
    assert H.Input(1, "label", 13, "dense", SPARSE).dense_dim == 13


def test_input_multi_label_forms() -> None:
    two = H.Input(label_dims=[1, 2], label_names=["a", "b"], dense_dim=0, dense_name="dense",
                  data_reader_sparse_param_array=SPARSE)  # fmt: skip
    assert (two.label_dims, two.label_weights, two.is_multi_label) == ([1, 2], [1.0, 1.0], True)
    weighted = H.Input([1, 1], ["a", "b"], [0.3, 0.7], 4, "dense", SPARSE)
    assert weighted.label_weights == [0.3, 0.7]
    documented = H.Input(label_dim=[1, 1], label_name=["a", "b"], dense_dim=1, dense_name="d",
                         data_reader_sparse_param_array=SPARSE)  # fmt: skip
    assert documented.label_names == ["a", "b"]


def test_input_rejects_bad_label_settings() -> None:
    with pytest.raises(ValueError, match=r"each label dimension must be at least 1, received label_dims=\[1, 0\]"):
        H.Input([1, 0], ["a", "b"], 1, "d", SPARSE)
    with pytest.raises(ValueError, match="one entry per label, received 2 dims, 1 names"):
        H.Input([1, 1], ["a"], 1, "d", SPARSE)
    with pytest.raises(ValueError, match=r"sparse input names must be unique, received \['data1'\]"):
        H.Input(1, "label", 1, "d", SPARSE * 2)


def test_sparse_embedding_rejects_an_unknown_combiner() -> None:
    with pytest.raises(ValueError, match='SparseEmbedding "e": No such combiner type: max'):
        H.SparseEmbedding(H.Embedding_t.LocalizedSlotSparseEmbeddingHash, 10, 16, "max", "e", "data1")


def test_sparse_embedding_translates_to_an_embedding_config() -> None:
    embedding = H.SparseEmbedding(H.Embedding_t.LocalizedSlotSparseEmbeddingOneHot, 10, 8, "mean", "e", "data1",
                                  slot_size_array=[5, 6])  # fmt: skip
    config = embedding.to_embedding_config(2, H.CreateOptimizer(H.Optimizer_t.SGD))
    assert (config.kind, config.combiner, config.slot_size_array, config.optimizer.kind) == (
        "one_hot", "mean", (5, 6), "sgd")  # fmt: skip


def test_dense_layer_accepts_lambda_through_a_dict_and_exposes_it_twice() -> None:
    layer = H.DenseLayer(layer_type=H.Layer_t.BinaryCrossEntropyLoss, bottom_names=["fc", "label"],
                         top_names=["loss"], use_regularizer=True, regularizer_type=H.Regularizer_t.L2,
                         **{"lambda": 0.1})  # fmt: skip
    assert getattr(layer, "lambda") == layer.lambda_ == layer.kwargs["lambda"] == 0.1
    assert H.DenseLayer(H.Layer_t.Slice, ["a"], ["b", "c"], ranges=[(0, 2), [2, 4]]).ranges == [(0, 2), (2, 4)]


def test_dense_layer_checks_ranges_of_its_numbers() -> None:
    with pytest.raises(ValueError, match=re.escape("lambda must be >= 0.0, received -1.0")):
        H.DenseLayer(H.Layer_t.BinaryCrossEntropyLoss, ["a", "b"], ["l"], **{"lambda": -1})
    with pytest.raises(ValueError, match='DenseLayer "d": dropout_rate is the probability of zeroing and must be < 1'):
        H.DenseLayer(H.Layer_t.Dropout, ["a"], ["d"], dropout_rate=1.0)
    with pytest.raises(TypeError, match=r"ranges\[0\] must be a pair"):
        H.DenseLayer(H.Layer_t.Slice, ["a"], ["b"], ranges=[(0, 1, 2)])


def test_group_dense_layer_accepts_the_documents_bottom_name_keyword() -> None:
    group = H.GroupDenseLayer(group_layer_type=H.GroupLayer_t.GroupFusedInnerProduct, bottom_name=["dense"],
                              top_name_list=["fc1", "fc2"], num_outputs=[8, 4])  # fmt: skip
    assert group.bottom_name_list == ["dense"] and group.last_act_type == H.Activation_t.Relu


@pytest.mark.parametrize(
    ("tops", "outputs", "message"),
    [
        (["fc1"], [8], "There should be at least two layers for GroupDenseLayer"),
        (["fc1", "fc2", "fc3"], [8, 4], "received 3 top names and 2 num_outputs"),
    ],
)
def test_group_dense_layer_checks_its_layer_lists(tops: list, outputs: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        H.GroupDenseLayer(H.GroupLayer_t.GroupFusedInnerProduct, ["dense"], tops, outputs)


# ----------------------------------------------------------------------------------------------- training cache


def test_create_etc_accepts_the_documents_hcache_configs_keyword() -> None:
    cache = H.CreateHMemCache(2, 0.5, 3)
    params = H.CreateETC([H.TrainPSType_t.Staged, H.TrainPSType_t.Cached], ["a", "b"], ["/ssd"],
                         hcache_configs=[cache])  # fmt: skip
    assert params.hmem_cache_configs[0] is cache
    assert params.hmem_cache_config_of(0) is None and params.hmem_cache_config_of(1) is cache


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ps_types": [H.TrainPSType_t.Staged]}, "Must provide the path of sparse models"),
        ({"ps_types": [H.TrainPSType_t.Staged], "sparse_models": ["a", "b"]}, "Must specify the PS type for each"),
        ({"ps_types": [H.TrainPSType_t.Cached], "sparse_models": ["a"], "local_paths": ["/s"]},
         "Wrong hcache_configs: 0 hmem_cache_configs"),
        ({"ps_types": [H.TrainPSType_t.Cached], "sparse_models": ["a"], "hmem_cache_configs": [None]},
         "must be a HMemCacheConfig"),
        ({"ps_types": [H.TrainPSType_t.Cached], "sparse_models": ["a"],
          "hmem_cache_configs": [H.CreateHMemCache(1, 0.5, 1)]}, "needs local_paths"),
    ],
)  # fmt: skip
def test_create_etc_checks_what_needs_no_files(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        H.CreateETC(**kwargs)


def test_hmem_cache_hit_rate_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match=re.escape("target_hit_rate must be <= 1.0, received 1.5")):
        H.CreateHMemCache(1, 1.5, 0)


# ------------------------------------------------------------------------------------------------------- tools


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"slot_size_array": [10]}, r"slot_size_array needs one entry per slot \(num_slot=2\)"),
        ({"nnz_array": [1, 2, 3]}, "nnz_array needs one entry per slot"),
        ({"alpha": 1.0}, "alpha must be > 0 and not 1 for PowerLaw_t.Specific, received 1.0"),
        ({"alpha": -0.5}, "alpha must be > 0"),
    ],
)
def test_generator_params_follow_formats_spec_4_1(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generator_params(**overrides)


def test_generator_alpha_is_free_for_fixed_power_laws() -> None:
    assert generator_params(power_law_type=H.PowerLaw_t.Short, alpha=1.0).resolved_alpha == 1.3


def fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: Any) -> None:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_data_generator_translates_onto_the_reader_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    fake_module(monkeypatch, "ctrflow.readers.generator", GeneratorConfig=lambda **kw: kw,
                generate=lambda config: calls.append(config) or "report")  # fmt: skip
    params = generator_params(format=H.DataReaderType_t.Raw, power_law_type=H.PowerLaw_t.Medium, seed=5,
                              teacher_labels=True)  # fmt: skip
    assert H.tools.DataGenerator(params).generate() == "report"
    config = calls[0]
    assert (config["format"], config["check_type"], config["alpha"], config["dist_type"]) == (
        "raw", "none", 1.1, "power_law")  # fmt: skip
    assert (config["nnz_array"], config["slot_size_array"], config["seed"], config["teacher_labels"]) == (
        (1, 1), (10, 20), 5, True)  # fmt: skip


def test_data_generator_checks_fields_assigned_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_module(monkeypatch, "ctrflow.readers.generator", GeneratorConfig=dict, generate=lambda config: config)
    params = generator_params()
    params.num_slot = 3
    with pytest.raises(ValueError, match="slot_size_array needs one entry per slot"):
        H.tools.DataGenerator(params).generate()
    params.slot_size_array = [1, 2, 3]
    assert H.tools.DataGenerator(params).generate()["num_slot"] == 3


def test_data_source_moves_through_storage_with_an_hdfs_url(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_module(monkeypatch, "ctrflow.storage.data_source", move_to_local=lambda url, local: (url, local))
    source = H.data.DataSource(H.data.DataSourceParams(True, "namenode", 9001))
    assert source.move_to_local("data/train", "/tmp/train") == ("hdfs://namenode:9001/data/train", "/tmp/train")
    plain = H.data.DataSource(H.data.DataSourceParams())
    assert plain.move_to_local("data/train", "/tmp/train") == ("data/train", "/tmp/train")


# --------------------------------------------------------------------------------------------------- inference


def test_inference_params_need_their_required_arguments() -> None:
    with pytest.raises(TypeError, match="missing required argument 'use_gpu_embedding_cache'"):
        H.inference.InferenceParams("m", 1, 0.5, "d", ["s"], 0, cache_size_percentage=0.5, i64_input_key=False)
    params = inference_params(volatile_db=H.inference.VolatileDatabaseParams(type=H.DatabaseType_t.hash_map))
    assert params.volatile_db.type == H.DatabaseType_t.hash_map
    assert params.persistent_db.backend == H.DatabaseType_t.disabled


def test_database_params_check_their_ranges() -> None:
    with pytest.raises(ValueError, match=r"overflow_resolution_target must be in \]0, 1\["):
        H.inference.VolatileDatabaseParams(overflow_resolution_target=1.0)
    with pytest.raises(ValueError, match=re.escape("initial_cache_rate must be <= 1.0")):
        H.inference.VolatileDatabaseParams(initial_cache_rate=2.0)
    assert H.inference.PersistentDatabaseParams(type=H.DatabaseType_t.rocks_db).backend == H.DatabaseType_t.rocks_db


def test_parameter_server_config_takes_per_model_tables() -> None:
    config = H.inference.ParameterServerConfig({"wdl": ["t0"]}, {"wdl": [16]}, {"wdl": [26]}, [inference_params()])
    assert config.embedding_vec_size == {"wdl": [16]}
    with pytest.raises(TypeError, match="emb_table_name must be a dict from model name to a list"):
        H.inference.ParameterServerConfig(["t0"], {}, {}, [])
