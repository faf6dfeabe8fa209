"""The plugin registry: built-ins, the decorator, entry points and clear errors."""

from __future__ import annotations

import pytest

from ctrflow.dense.layers import ReLU
from ctrflow.pipeline import registry
from ctrflow.pipeline.graph import Graph
from ctrflow.readers.types import SparseInputSpec


def test_every_hugectr_layer_type_is_registered():
    names = registry.LAYERS.names()
    for layer_type in ("InnerProduct", "MultiCross", "Interaction", "BinaryCrossEntropyLoss", "GRU", "PReLU_Dice"):
        assert layer_type in names


def test_built_in_stages_are_registered():
    assert {"inputs", "embed", "dense", "loss", "metrics"} <= set(registry.STAGES.names())


def test_a_decorated_third_party_layer_is_usable_in_a_graph():
    @registry.register_layer("DoubleReLU", override=True)
    class DoubleReLU(ReLU):
        layer_type = "DoubleReLU"

        def forward(self, x):
            return 2 * super().forward(x)

    graph = Graph(2)
    graph.add_input(["label"], [1], "dense", 3, [SparseInputSpec("k", 1, (1,))])
    node = graph.add_layer("DoubleReLU", ["dense"], ["out"], {})
    assert isinstance(node.module, DoubleReLU)
    assert graph.tensors["out"].shape == (2, 3)


def test_registering_a_taken_name_needs_override():
    with pytest.raises(ValueError, match=r"A layer named 'ReLU' is already registered"):
        registry.register_layer("ReLU")(type("Other", (ReLU,), {}))


def test_entry_points_are_read(monkeypatch):
    class EntryPoint:
        name = "FromEntryPoint"

        def load(self):
            return ReLU

    fresh = registry.Registry("layer", dict)
    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()] if group == "ctrflow.layers" else [])
    assert fresh.get("FromEntryPoint") is ReLU
