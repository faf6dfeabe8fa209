"""Tests of ctrflow.storage.graph_json: nlohmann's exact text, builders and the parser (formats spec §7)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrflow.storage import graph_json
from ctrflow.storage.graph_layers import FP32_LAYER_TYPES, LAYER_TYPES, MP_LAYER_TYPES

# Written by hand from formats spec §7.1-§7.4: sorted keys, 2-space indent, floats widened from C++ float.
EXPECTED_SMALL_GRAPH = """{
  "layers": [
    {
      "dense": {
        "dense_dim": 13,
        "top": "dense"
      },
      "label": {
        "label_dim": 1,
        "top": "click"
      },
      "sparse": [
        {
          "is_fixed_length": false,
          "nnz_per_slot": [
            2,
            1
          ],
          "slot_num": 2,
          "top": "data1",
          "type": "DistributedSlot"
        }
      ],
      "type": "Data"
    },
    {
      "bottom": "data1",
      "optimizer": {
        "adam_hparam": {
          "beta1": 0.8999999761581421,
          "beta2": 0.9990000128746033,
          "epsilon": 1.0000000116860974e-07
        },
        "type": "Adam",
        "update_type": "Global"
      },
      "sparse_embedding_hparam": {
        "combiner": "sum",
        "embedding_vec_size": 16,
        "max_vocabulary_size_global": 409600,
        "workspace_size_per_gpu_in_mb": 75
      },
      "top": "sparse_embedding1",
      "type": "DistributedSlotSparseEmbeddingHash"
    },
    {
      "bn_param": {
        "eps": 9.999999747378752e-06,
        "factor": 1.0
      },
      "bottom": "dense",
      "top": "bn1",
      "type": "BatchNorm"
    },
    {
      "bottom": [
        "bn1",
        "sparse_embedding1"
      ],
      "top": "concat1",
      "type": "Concat"
    },
    {
      "bottom": "concat1",
      "fc_param": {
        "num_output": 1,
        "weight_init": "XavierUniform"
      },
      "top": "fc1",
      "type": "InnerProduct"
    },
    {
      "bottom": "fc1",
      "rate": 0.5,
      "top": "dropout1",
      "type": "Dropout"
    },
    {
      "bottom": [
        "dropout1",
        "click"
      ],
      "lambda": 0.10000000149011612,
      "regularizer": "L2",
      "top": "loss",
      "type": "BinaryCrossEntropyLoss"
    }
  ],
  "model_name": "wdl"
}"""


def _small_graph():
    return graph_json.graph(
        [
            graph_json.data_layer(
                ["click", "zlabel"], [1, 3], "dense", 13,
                [{"top": "data1", "nnz_per_slot": [2, 1], "is_fixed_length": False, "slot_num": 2}],
            ),
            graph_json.embedding_layer(
                "DistributedSlotSparseEmbeddingHash", "data1", "sparse_embedding1", 75, 409600, 16, "sum", [],
                {"optimizer_type": "Adam", "update_type": "Global", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7},
            ),
            graph_json.dense_layer("BatchNorm", ["dense"], ["bn1"], {"factor": 1.0, "eps": 1e-5}),
            graph_json.dense_layer("Concat", ["bn1", "sparse_embedding1"], ["concat1"]),
            graph_json.dense_layer("InnerProduct", ["concat1"], ["fc1"], {"weight_init_type": "XavierUniform"}),
            graph_json.dense_layer("Dropout", ["fc1"], ["dropout1"], {"dropout_rate": 0.5}),
            graph_json.dense_layer(
                "BinaryCrossEntropyLoss", ["dropout1", "click"], ["loss"],
                {"use_regularizer": True, "regularizer_type": "L2", "lambda": 0.1},
            ),
        ],
        model_name="wdl",
    )  # fmt: skip


def test_small_graph_text_matches_hand_written_nlohmann_output():
    assert graph_json.dumps(_small_graph()) == EXPECTED_SMALL_GRAPH


def test_model_name_is_omitted_when_empty():
    assert graph_json.dumps(graph_json.graph([], "")) == '{\n  "layers": []\n}'


def test_float_fields_print_as_widened_doubles():
    assert graph_json.widen(1e-5) == 9.999999747378752e-06
    text = graph_json.dumps({"a": graph_json.widen(0.9), "b": graph_json.widen(1.0), "c": graph_json.widen(1e-7)})
    assert text == '{\n  "a": 0.8999999761581421,\n  "b": 1.0,\n  "c": 1.0000000116860974e-07\n}'


def test_scalars_empty_containers_and_unicode_follow_nlohmann():
    value = {"z": [], "y": {}, "x": 'é\n"', "w": True, "v": 1e15, "u": -2.5e15, "t": 1e16, "s": 1e-05, "r": 7}
    expected = (
        '{\n  "r": 7,\n  "s": 1e-05,\n  "t": 1e+16,\n  "u": -2.5e+15,\n  "v": 1e+15,\n  "w": true,\n'
        '  "x": "é\\n\\"",\n  "y": {},\n  "z": []\n}'
    )
    assert graph_json.dumps(value) == expected
    assert graph_json.dumps({"n": float("nan"), "i": np.int64(3)}) == '{\n  "i": 3,\n  "n": null\n}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not 1e15 <= abs(x) < 1e16),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=10,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_text_equals_python_sorted_indented_json_outside_the_1e15_band(value):
    assert graph_json.dumps({"v": value}) == json.dumps({"v": value}, indent=2, sort_keys=True, ensure_ascii=False)


def test_only_the_alphabetically_first_label_is_written():
    layer = graph_json.data_layer(["zeta", "alpha"], [2, 5], "dense", 0, [])
    assert layer["label"] == {"label_dim": 5, "top": "alpha"}
    assert layer["sparse"] == []


def test_every_optimizer_writes_its_own_hyperparameters():
    def optimizer(**o):
        return graph_json.embedding_layer("LocalizedSlotSparseEmbeddingHash", "d", "e", 1, 2, 4, "mean", [3, 4], o)[
            "optimizer"
        ]

    assert optimizer(optimizer_type="SGD", update_type="Local", atomic_update=False) == {
        "type": "SGD", "update_type": "Local", "sgd_hparam": {"atomic_update": False}}  # fmt: skip
    assert optimizer(optimizer_type="AdaGrad", update_type="LazyGlobal")["adagrad_hparam"] == {
        "initial_accu_value": 0.0, "epsilon": 1.0000000116860974e-07}  # fmt: skip
    assert optimizer(optimizer_type="MomentumSGD", momentum_factor=0.9)["momentum_sgd_hparam"] == {
        "momentum_factor": 0.8999999761581421}  # fmt: skip
    assert optimizer(optimizer_type="Nesterov", momentum_factor=0.5)["nesterov_hparam"] == {"momentum_factor": 0.5}
    with pytest.raises(ValueError, match="optimizer_type 'Ftrl' is not one of"):
        optimizer(optimizer_type="Ftrl")


def test_embedding_hparams_write_slot_sizes_and_hybrid_fields():
    hybrid = graph_json.embedding_layer(
        "HybridSparseEmbedding", "d", "e", 10, 20, 128, "sum", [5, 6], {"optimizer_type": "SGD"},
        {"max_num_frequent_categories": 2, "max_num_infrequent_samples": -1, "p_dup_max": 0.01,
         "max_all_reduce_bandwidth": 1.3e11, "max_all_to_all_bandwidth": 1.9e11, "efficiency_bandwidth_ratio": 1.0,
         "communication_type": "IB_NVLink_Hier", "hybrid_embedding_type": "Distributed"},
    )  # fmt: skip
    hparam = hybrid["sparse_embedding_hparam"]
    assert hparam["slot_size_array"] == [5, 6]
    assert hparam["communication_type"] == "IB_NVLink_Hierarchical"
    assert '"max_all_reduce_bandwidth": 130000000000.0' in graph_json.dumps(hybrid)
    parsed = graph_json.parse_graph(graph_json.dumps(graph_json.graph([_small_graph()["layers"][0], hybrid])))
    assert parsed.embeddings[0]["hybrid_embedding_param"]["communication_type"] == "IB_NVLink_Hier"
    assert parsed.embeddings[0]["slot_size_array"] == [5, 6]
    with pytest.raises(ValueError, match="needs hybrid_embedding_param"):
        graph_json.embedding_layer("HybridSparseEmbedding", "d", "e", 1, 1, 1, "sum", [], {})


# One representative, non-default parameter set per dense layer type.
LAYER_PARAMS = {
    "BatchNorm": {"factor": 0.99, "eps": 1e-3, "gamma_init_type": "Zero", "beta_init_type": "Uniform"},
    "Dropout": {"dropout_rate": 0.3},
    "ELU": {"elu_alpha": 0.7},
    "InnerProduct": {"num_output": 64, "weight_init_type": "XavierNorm", "bias_init_type": "Zero"},
    "FusedInnerProduct": {"num_output": 8, "pos_type": "Head", "act_type": "Non"},
    "MultiCross": {"num_layers": 3, "bias_init_type": "Uniform"},
    "Reshape": {"leading_dim": 416, "time_step": 0},
    "Slice": {"ranges": [(0, 10), (5, 15)]},
    "WeightMultiply": {"weight_dims": [26, 16], "weight_init_type": "XavierUniform"},
    "FmOrder2": {"out_dim": 10},
    "ReduceSum": {"axis": 1},
    "ReduceMean": {"axis": 2},
    "Gather": {"indices": [0, 3, 2]},
    "GRU": {"num_output": 36, "batchsize": 64, "SeqLength": 10, "vector_size": 36, "weight_init_type": "Uniform"},
    "PReLU_Dice": {"elu_alpha": 0.2, "eps": 1e-8},
    "Scale": {"axis": 1, "factor": 3.0},
    "MultiCrossEntropyLoss": {"target_weight_vec": [0.3, 0.7], "use_regularizer": True, "lambda": 0.01},
    "BinaryCrossEntropyLoss": {"use_regularizer": True, "regularizer_type": "L1", "lambda": 1e-4},
    "CrossEntropyLoss": {},
}


@pytest.mark.parametrize("layer_type", sorted(LAYER_TYPES - {"ReLUHalf"}))
def test_every_dense_layer_type_round_trips_through_text(layer_type):
    mixed = layer_type not in FP32_LAYER_TYPES
    tops = ["t1", "t2"] if layer_type == "Slice" else ["t1"]
    layer = graph_json.dense_layer(layer_type, ["b1", "b2"], tops, LAYER_PARAMS.get(layer_type, {}), mixed)
    assert layer["type"] == layer_type
    data = graph_json.data_layer(["label"], [1], "dense", 3, [])
    parsed = graph_json.parse_graph(graph_json.dumps(graph_json.graph([data, layer])))
    [kwargs] = parsed.dense_layers
    assert kwargs["layer_type"] == layer_type and kwargs["bottom_names"] == ["b1", "b2"] and kwargs["top_names"] == tops
    params = {k: v for k, v in kwargs.items() if k not in ("layer_type", "bottom_names", "top_names")}
    assert graph_json.dense_layer(layer_type, kwargs["bottom_names"], tops, params, mixed) == layer
    for key, value in LAYER_PARAMS.get(layer_type, {}).items():
        expected = [graph_json.widen(v) for v in value] if key == "target_weight_vec" else value
        assert params[key] == (graph_json.widen(expected) if isinstance(expected, float) else expected)


def test_dense_layer_text_uses_hugectr_keys():
    fused = graph_json.dense_layer("FusedInnerProduct", ["a"], ["b"], LAYER_PARAMS["FusedInnerProduct"], True)
    assert fused == {"type": "FusedInnerProduct", "bottom": "a", "top": "b", "fc_param": {"num_output": 8},
                     "position": "Head", "activation": "None"}  # fmt: skip
    prelu = graph_json.dense_layer("PReLU_Dice", ["a"], ["b"], {"elu_alpha": 0.2, "eps": 1e-8})
    assert prelu["prelu_dice_param"] == {"alpha": 0.20000000298023224, "eps": 9.99999993922529e-09}
    selected = graph_json.dense_layer("Reshape", ["a"], ["b"], {"selected": True, "selected_slots": [0, 2]})
    assert selected == {"type": "Reshape", "bottom": "a", "top": "b", "selected": [0, 2]}
    plain_loss = graph_json.dense_layer("MultiCrossEntropyLoss", ["a", "l"], ["loss"])
    assert plain_loss == {"type": "MultiCrossEntropyLoss", "bottom": ["a", "l"], "top": "loss"}


def test_missing_precision_map_entries_are_written_as_empty_type():
    assert set(MP_LAYER_TYPES - FP32_LAYER_TYPES) == {"FusedInnerProduct"}
    assert graph_json.dense_layer("CrossEntropyLoss", ["a", "l"], ["loss"], mixed_precision=True)["type"] == ""
    assert graph_json.dense_layer("FusedInnerProduct", ["a"], ["b"], mixed_precision=False)["type"] == ""
    assert graph_json.dense_layer("ReLUHalf", ["a"], ["b"])["type"] == ""
    assert (
        graph_json.dense_layer("MultiCross", ["a"], ["b"], {"num_layers": 1}, mixed_precision=True)["type"]
        == "MultiCross"
    )


def test_parser_reads_prelu_dice_alpha_from_either_key_and_empty_target_weight():
    text = json.dumps({"layers": [
        graph_json.data_layer(["l"], [2], "d", 1, []),
        {"type": "PReLU_Dice", "bottom": "a", "top": "b", "prelu_dice_param": {"elu_alpha": 0.25, "eps": 0.5}},
        {"type": "PReLU_Dice", "bottom": "b", "top": "c", "prelu_dice_param": {"alpha": 0.75, "eps": 0.5}},
        {"type": "MultiCrossEntropyLoss", "bottom": ["c", "l"], "top": "loss"},
    ]})  # fmt: skip
    parsed = graph_json.parse_graph(text)
    assert [layer.get("elu_alpha") for layer in parsed.dense_layers[:2]] == [0.25, 0.75]
    assert parsed.dense_layers[2]["target_weight_vec"] == []
    assert parsed.dense_layers[2]["use_regularizer"] is False


def test_parser_returns_input_embedding_and_dense_descriptions():
    parsed = graph_json.parse_graph(EXPECTED_SMALL_GRAPH)
    assert (parsed.model_name, parsed.label_name, parsed.label_dim, parsed.dense_name, parsed.dense_dim) == (
        "wdl", "click", 1, "dense", 13)  # fmt: skip
    assert parsed.sparse_inputs == [{"sparse_name": "data1", "nnz_per_slot": [2, 1], "is_fixed_length": False,
                                     "slot_num": 2}]  # fmt: skip
    [embedding] = parsed.embeddings
    assert embedding["sparse_embedding_name"] == "sparse_embedding1" and embedding["bottom_name"] == "data1"
    assert embedding["optimizer"]["beta1"] == graph_json.widen(0.9)
    assert [layer["layer_type"] for layer in parsed.dense_layers] == [
        "BatchNorm", "Concat", "InnerProduct", "Dropout", "BinaryCrossEntropyLoss"]  # fmt: skip
    assert parsed.dense_layers[2]["weight_init_type"] == "XavierUniform"
    assert parsed.dense_layers[4]["lambda"] == graph_json.widen(0.1)


def test_parser_accepts_integer_nnz_and_fixed_length_and_missing_optimizer():
    text = json.dumps({"layers": [
        {"type": "Data", "label": {"top": "l", "label_dim": 1}, "dense": {"top": "d", "dense_dim": 2},
         "sparse": [{"top": "s", "type": "DistributedSlot", "nnz_per_slot": 2, "is_fixed_length": 1, "slot_num": 3}]},
        {"type": "LocalizedSlotSparseEmbeddingOneHot", "bottom": "s", "top": "e",
         "sparse_embedding_hparam": {"embedding_vec_size": 8, "combiner": "mean", "slot_size_array": [1, 2, 3]}},
    ]})  # fmt: skip
    parsed = graph_json.parse_graph(text)
    assert parsed.sparse_inputs[0]["nnz_per_slot"] == [2, 2, 2] and parsed.sparse_inputs[0]["is_fixed_length"] is True
    assert parsed.embeddings[0]["optimizer"] is None and parsed.embeddings[0]["workspace_size_per_gpu_in_mb"] == 0
    assert parsed.model_name == ""


def test_parser_errors_name_the_layer_and_the_problem():
    data = graph_json.data_layer(["l"], [1], "d", 1, [])
    with pytest.raises(ValueError, match='first layer must have "type": "Data"'):
        graph_json.parse_graph(json.dumps({"layers": [{"type": "ReLU"}]}))
    with pytest.raises(ValueError, match="not valid JSON"):
        graph_json.parse_graph("{")
    with pytest.raises(ValueError, match=r'layers\[1\]: "type" is ""'):
        graph_json.parse_graph(json.dumps({"layers": [data, {"type": "", "bottom": "a", "top": "b"}]}))
    with pytest.raises(ValueError, match=r"layers\[1\] \(InnerProduct\): missing key 'fc_param'"):
        graph_json.parse_graph(json.dumps({"layers": [data, {"type": "InnerProduct", "bottom": "a", "top": "b"}]}))
    bad_init = {"type": "MultiCross", "bottom": "a", "top": "b", "mc_param": {"num_layers": 1, "weight_init": "He"}}
    with pytest.raises(ValueError, match="no such initializer 'He'"):
        graph_json.parse_graph(json.dumps({"layers": [data, bad_init]}))


def test_builder_rejects_unknown_arguments_types_and_enum_names():
    with pytest.raises(ValueError, match="unknown DenseLayer argument 'alpha'"):
        graph_json.dense_layer("ELU", ["a"], ["b"], {"alpha": 1.0})
    with pytest.raises(TypeError, match="num_output expects int, received float"):
        graph_json.dense_layer("InnerProduct", ["a"], ["b"], {"num_output": 2.5})
    with pytest.raises(ValueError, match="weight_init_type='He' is not one of"):
        graph_json.dense_layer("InnerProduct", ["a"], ["b"], {"weight_init_type": "He"})
    with pytest.raises(ValueError, match="Unknown dense layer type 'Linear'"):
        graph_json.dense_layer("Linear", ["a"], ["b"])
    with pytest.raises(TypeError, match="non-empty list of tensor names"):
        graph_json.dense_layer("ReLU", "a", ["b"])  # type: ignore[arg-type]


def test_builder_checks_list_elements():
    with pytest.raises(TypeError, match=r"ranges expects list, received list \[\(0, 1, 2\)\]"):
        graph_json.dense_layer("Slice", ["a"], ["b", "c"], {"ranges": [(0, 1, 2)]})
    with pytest.raises(TypeError, match="indices expects list"):
        graph_json.dense_layer("Gather", ["a"], ["b"], {"indices": [0.5]})
