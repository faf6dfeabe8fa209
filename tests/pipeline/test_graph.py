"""The named-tensor graph: shape inference, compile() validation messages, auto-slices."""

from __future__ import annotations

import pytest

from ctrflow.embedding.types import EmbeddingConfig
from ctrflow.pipeline.graph import Graph
from ctrflow.pipeline.types import GraphError
from ctrflow.readers.types import SparseInputSpec


def dcn_input(graph: Graph) -> None:
    graph.add_input(["label"], [1], "dense", 13, [SparseInputSpec("data1", 26, (1,) * 26)])


def dcn_embedding(graph: Graph, bottom: str = "data1") -> None:
    graph.add_embedding(EmbeddingConfig("sparse_embedding1", bottom, "distributed", 26, 16, "sum", 8))


def dcn_graph(batch_size: int = 4) -> Graph:
    graph = Graph(batch_size)
    dcn_input(graph)
    dcn_embedding(graph)
    graph.add_layer("Reshape", ["sparse_embedding1"], ["reshape1"], {"leading_dim": 416})
    graph.add_layer("Concat", ["reshape1", "dense"], ["concat1"], {})
    graph.add_layer("MultiCross", ["concat1"], ["multicross1"], {"num_layers": 2})
    graph.add_layer("InnerProduct", ["concat1"], ["fc1"], {"num_output": 8})
    graph.add_layer("ReLU", ["fc1"], ["relu1"], {})
    graph.add_layer("Concat", ["relu1", "multicross1"], ["concat2"], {})
    graph.add_layer("InnerProduct", ["concat2"], ["fc2"], {"num_output": 1})
    graph.add_layer("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"], {})
    return graph


def test_shapes_are_inferred_as_layers_are_added():
    graph = dcn_graph(batch_size=4)
    assert graph.tensors["sparse_embedding1"].shape == (4, 26, 16)
    assert graph.tensors["reshape1"].shape == (4, 416)
    assert graph.tensors["concat1"].shape == (4, 429)
    assert graph.tensors["concat2"].shape == (4, 437)


def test_a_tensor_read_by_two_layers_gets_an_auto_slice_before_its_first_reader():
    graph = dcn_graph()
    nodes = graph.finalize()
    types = [n.type_name for n in nodes]
    slice_index = types.index("Slice")
    assert nodes[slice_index].auto
    assert nodes[slice_index].tops == ("concat1_slice0", "concat1_slice1")
    assert nodes[slice_index + 1].type_name == "MultiCross"
    assert nodes[slice_index + 1].bottoms == ("concat1_slice0",)
    assert next(n for n in nodes if n.type_name == "InnerProduct").bottoms == ("concat1_slice1",)


def test_undefined_bottom_names_the_layer_the_tensor_and_the_fix():
    graph = Graph(2)
    dcn_input(graph)
    with pytest.raises(
        GraphError,
        match=r'InnerProduct "fc2": bottom "relu9" is not defined; defined tensors: '
        r'label, dense\. Add the layer that produces "relu9" before "fc2"',
    ):
        graph.add_layer("InnerProduct", ["relu9"], ["fc2"], {"num_output": 1})


def test_duplicate_top_is_rejected_with_the_producer_named():
    graph = dcn_graph()
    with pytest.raises(GraphError, match=r'ReLU "fc1": top "fc1" already exists \(made by InnerProduct "fc1"\)'):
        graph.add_layer("ReLU", ["fc2"], ["fc1"], {})


def test_incompatible_shapes_are_reported_by_the_layer():
    graph = Graph(2)
    dcn_input(graph)
    dcn_embedding(graph)
    with pytest.raises(GraphError, match=r'InnerProduct "fc1"'):
        graph.add_layer("InnerProduct", ["sparse_embedding1"], ["fc1"], {"num_output": 4})


def test_a_layer_before_the_input_is_rejected():
    graph = Graph(2)
    with pytest.raises(GraphError, match=r"has no Input yet\. Add hugectr\.Input"):
        graph.add_layer("ReLU", ["dense"], ["relu1"], {})


def test_the_input_must_come_first():
    graph = dcn_graph()
    with pytest.raises(GraphError, match="the input must be added first and only once"):
        dcn_input(graph)


def test_an_embedding_must_read_a_sparse_input():
    graph = Graph(2)
    dcn_input(graph)
    with pytest.raises(GraphError, match=r'bottom "dense" is a dense tensor, not a sparse input; sparse inputs: data1'):
        dcn_embedding(graph, bottom="dense")


def test_a_dense_layer_cannot_read_keys():
    graph = Graph(2)
    dcn_input(graph)
    with pytest.raises(GraphError, match=r'bottom "data1" is a sparse input.*Add a SparseEmbedding'):
        graph.add_layer("ReLU", ["data1"], ["relu1"], {})


def test_compile_without_a_loss_says_how_to_add_one():
    graph = Graph(2)
    dcn_input(graph)
    dcn_embedding(graph)
    graph.add_layer("Reshape", ["sparse_embedding1"], ["reshape1"], {"leading_dim": 416})
    with pytest.raises(GraphError, match="the model has no loss layer"):
        graph.finalize()


def test_compile_of_an_empty_model_names_what_is_missing():
    graph = Graph(2)
    with pytest.raises(GraphError, match="the model has no Input"):
        graph.finalize()


def test_unknown_layer_type_suggests_close_names():
    graph = Graph(2)
    dcn_input(graph)
    with pytest.raises(ValueError, match=r"Unknown layer type 'InnerProdukt'\. Did you mean InnerProduct"):
        graph.add_layer("InnerProdukt", ["dense"], ["fc1"], {})
