"""The dense stage: the DAG of dense layers between the embeddings and the losses.

Layers run in graph order (HugeCTR's order, auto Slices included); each reads its bottoms from the
environment and writes its tops. A layer that returns one tensor for several tops (Interaction's
second top, FusedInnerProduct's mask tops) gives every top that tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ctrflow.dense.types import Layer, Shape
from ctrflow.stages.types import Environment, Stage


@dataclass(slots=True, frozen=True)
class Wiring:
    """Where one layer reads from and writes to."""

    bottoms: tuple[str, ...]
    tops: tuple[str, ...]


class DenseStage(Stage):
    """Runs dense layers in order.

    Args:
        layers: the built layers, in graph order.
        wiring: bottoms and tops of each layer, same order.
    """

    stage_name = "dense"

    def __init__(self, layers: Sequence[Layer], wiring: Sequence[Wiring]) -> None:
        super().__init__()
        if len(layers) != len(wiring):
            raise ValueError(f"DenseStage: {len(layers)} layers but {len(wiring)} wirings; give one wiring per layer.")
        self.layers = nn.ModuleList(layers)
        self._layers: list[Layer] = list(layers)  # typed view of self.layers
        self.wiring = list(wiring)

    def forward(self, env: Environment) -> None:
        for layer, wires in zip(self._layers, self.wiring, strict=True):
            outputs = layer(*(env[name] for name in wires.bottoms))
            if isinstance(outputs, torch.Tensor):
                outputs = (outputs,)
            for index, top in enumerate(wires.tops):
                env[top] = outputs[min(index, len(outputs) - 1)]

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Initialise every layer in order from one generator, so `Solver.seed` fixes the weights."""
        for layer in self._layers:
            layer.reset_parameters(generator)

    def get_config(self) -> dict[str, Any]:
        return {
            "layers": [
                {
                    "type": layer.layer_type,
                    "name": layer.name,
                    "input_shapes": [list(s) for s in layer.input_shapes],
                    "params": layer.get_config(),
                    "bottoms": list(w.bottoms),
                    "tops": list(w.tops),
                }
                for layer, w in zip(self._layers, self.wiring, strict=True)
            ]
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DenseStage:
        from ctrflow.pipeline.registry import LAYERS  # the registry owns plugin lookup

        layers: list[Layer] = []
        wiring: list[Wiring] = []
        for item in config["layers"]:
            shapes: list[Shape] = [tuple(s) for s in item["input_shapes"]]
            layer_cls: Any = LAYERS.get(item["type"])
            layers.append(layer_cls.from_config(shapes, item["params"], name=item["name"]))
            wiring.append(Wiring(tuple(item["bottoms"]), tuple(item["tops"])))
        return cls(layers, wiring)
