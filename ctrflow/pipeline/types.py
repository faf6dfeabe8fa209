"""Contracts of the graph planner: nodes, tensors and the planner's errors.

The graph is a list of nodes in the order the user added them. Each node names its bottom and top
tensors; the planner resolves names to tensors, infers shapes as nodes are added, validates the whole
graph at compile time and turns it into stages (`ctrflow.stages`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

NodeKind = Literal["input", "embedding", "layer"]
TensorKind = Literal["label", "dense", "sparse", "embedding", "tensor", "loss"]
Shape = tuple[int, ...]


class GraphError(ValueError):
    """The graph is wired wrongly: the message names the layer and tensor and says how to fix it."""


class PlanError(ValueError):
    """The planner cannot place the model: the message gives the numbers (needed vs available) and options."""


@dataclass(slots=True)
class TensorInfo:
    """A named tensor of the graph (shape includes the nominal batch dimension)."""

    name: str
    kind: TensorKind
    shape: Shape
    producer: int  # index of the node that makes it


@dataclass(slots=True)
class Node:
    """One step of the graph.

    Args:
        kind: "input" (the data), "embedding" (a sparse embedding) or "layer" (a dense layer or loss).
        type_name: HugeCTR's name of the node type ("Data", "DistributedSlotSparseEmbeddingHash",
            "InnerProduct", ...).
        bottoms: names of the tensors it reads.
        tops: names of the tensors it makes.
        params: the node's hyper-parameters (layer kwargs, or the embedding config under "config").
        auto: inserted by the planner (auto Slice for a branching tensor), not by the user.
        module: the built torch module (dense layers and losses).
    """

    kind: NodeKind
    type_name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    auto: bool = False
    module: torch.nn.Module | None = None

    @property
    def display_name(self) -> str:
        return self.tops[0] if self.tops else self.type_name
