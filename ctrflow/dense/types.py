"""Contracts of the dense side: the layer, loss and metric plugins that the graph planner wires up.

A dense layer is a `torch.nn.Module` built from the shapes of its inputs. Shapes include the batch
dimension, taken at the nominal (per-rank) batch size the graph was built with; at run time layers
must work for any batch size (evaluation batches differ), so they compute reshapes from the actual
input tensor, not from the build-time shape.

Weights are registered in HugeCTR's dense-file order and layout (formats spec §5.2): concatenating
`layer.parameters()` of every layer, in graph order, flattened row-major as float32, is exactly the
`_dense_<iter>.model` file. InnerProduct therefore stores its weight as `[in, out]`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

Shape = tuple[int, ...]


class LayerError(ValueError):
    """A layer was configured or wired wrongly; the message names the layer and the fix."""


class Layer(nn.Module, abc.ABC):
    """Base class of every dense layer.

    Subclasses set `layer_type` (HugeCTR's `Layer_t` name, which is also the registry name) and the
    accepted input count, validate their inputs in `__init__` (raising `LayerError` whose message names
    the layer) and set `self.output_shapes`.

    Args:
        input_shapes: shapes of the bottom tensors, batch dimension first.
        name: the layer's name in the graph, used in error messages (usually its first top).
        **params: the layer's own hyper-parameters, exactly those `get_config` returns.
    """

    layer_type: ClassVar[str] = ""
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    num_outputs: ClassVar[int] = 1

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", **params: Any) -> None:
        super().__init__()
        self.name = name or self.layer_type
        self.input_shapes: list[Shape] = [tuple(int(d) for d in s) for s in input_shapes]
        self.params: dict[str, Any] = dict(params)
        self.output_shapes: list[Shape] = []
        self._check_input_count()

    def _check_input_count(self) -> None:
        n = len(self.input_shapes)
        hi = self.max_inputs
        if n < self.min_inputs or (hi is not None and n > hi):
            want = (
                f"{self.min_inputs}"
                if hi == self.min_inputs
                else (f"at least {self.min_inputs}" if hi is None else f"{self.min_inputs} to {hi}")
            )
            raise LayerError(
                f'{self.layer_type} "{self.name}": expects {want} bottom tensor(s), received {n}. '
                f"Change bottom_names to list {want} tensor(s)."
            )

    def fail(self, what: str, fix: str) -> LayerError:
        """Build the layer's error: `<Type> "<name>": <what>. <fix>`."""
        return LayerError(f'{self.layer_type} "{self.name}": {what}. {fix}')

    def reset_parameters(self, generator: torch.Generator) -> None:
        """(Re)initialise weights with the layer's initialisers (semantics spec §1.3) from `generator`."""

    def get_config(self) -> dict[str, Any]:
        """The hyper-parameters this layer was built with (JSON-serialisable)."""
        return dict(self.params)

    @classmethod
    def from_config(cls, input_shapes: Sequence[Shape], config: dict[str, Any], name: str = "") -> Layer:
        return cls(input_shapes, name=name, **config)


class Loss(Layer):
    """A loss layer: bottoms are `[prediction, label]`; `forward` returns the mean loss (a scalar).

    `predict(prediction)` turns the prediction tensor into what metrics and inference report (for
    BinaryCrossEntropyLoss the sigmoid probability).
    """

    min_inputs = 2
    max_inputs = 2

    @abc.abstractmethod
    def predict(self, prediction: torch.Tensor) -> torch.Tensor: ...


class Metric(abc.ABC):
    """An evaluation metric accumulated over batches; `result()` finalises and resets (HugeCTR's rule)."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def update(self, prediction: torch.Tensor, label: torch.Tensor, loss: float) -> None: ...

    @abc.abstractmethod
    def result(self) -> float: ...
