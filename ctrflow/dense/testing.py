"""Contract harness for dense layers: `run_layer_test` (as Keras' `run_layer_test`).

Built-in and third-party layers (registered through the `ctrflow.layers` entry points) use it in their
tests. It builds the layer, checks that its config survives a JSON round trip, runs forward and backward
on random inputs, checks output shapes, dtypes and finite gradients, optionally compares outputs and
every gradient with a float64 reference, and checks that one optimizer step changes the weights.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ctrflow.dense.optimizers import SGD
from ctrflow.dense.types import Layer, Shape

Reference = Callable[..., torch.Tensor | Sequence[torch.Tensor]]


def run_layer_test(
    layer_cls: type[Layer],
    input_shapes: Sequence[Shape],
    config: dict[str, Any],
    *,
    expected_output_shapes: Sequence[Shape] | None = None,
    reference: Reference | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
    expected_output_dtypes: Sequence[torch.dtype] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    seed: int = 0,
) -> Layer:
    """Build `layer_cls(input_shapes, **config)` and check the layer contract; returns the layer.

    Args:
        layer_cls: the layer class.
        input_shapes: bottom shapes, batch dimension first.
        config: the layer's keyword arguments.
        expected_output_shapes: if given, must equal `layer.output_shapes`.
        reference: `reference(layer64, *inputs64)` computing the outputs in float64 from a float64 copy of
            the layer (read its weights, never call its forward); outputs and the gradients of inputs and
            weights are compared with it.
        inputs: bottoms to use instead of standard-normal float32 tensors of `input_shapes`.
        expected_output_dtypes: output dtypes (default: the first input's dtype).
        rtol, atol: tolerances of the float32-vs-float64 comparison.
        seed: seeds the weight initialisation, the random inputs and the upstream gradients.
    """
    generator = torch.Generator().manual_seed(seed)
    layer = layer_cls(input_shapes, name="under_test", **config)
    layer.reset_parameters(generator)
    _check_config_round_trip(layer, input_shapes, config)
    if expected_output_shapes is not None:
        expected = [tuple(s) for s in expected_output_shapes]
        _require(layer.output_shapes == expected, f"output_shapes {layer.output_shapes} != expected {expected}")
    bottoms = [t.detach().clone() for t in inputs] if inputs is not None else _random_inputs(input_shapes, generator)
    bottoms = [t.requires_grad_(t.is_floating_point()) for t in bottoms]
    reference_layer = copy.deepcopy(layer).double() if reference is not None else None
    outputs = _as_tuple(layer(*bottoms))
    _check_outputs(layer, outputs, bottoms, expected_output_dtypes)
    # float32-representable upstream gradients, so pure data movement gives bit-exact gradients
    cotangents = [torch.randn(o.shape, generator=generator).double() for o in outputs]
    grads = _backward(layer, outputs, bottoms, cotangents)
    for label, grad in grads.items():
        _require(bool(torch.isfinite(grad).all()), f"gradient of {label} is not finite")
    if reference is not None and reference_layer is not None:
        _compare_with_reference(reference, reference_layer, bottoms, outputs, cotangents, grads, rtol, atol)
    _check_training_step(layer)
    return layer


def _random_inputs(input_shapes: Sequence[Shape], generator: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn(tuple(shape), generator=generator) for shape in input_shapes]


def _as_tuple(result: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (result,) if isinstance(result, torch.Tensor) else tuple(result)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(f"run_layer_test: {message}")


def _check_config_round_trip(layer: Layer, input_shapes: Sequence[Shape], config: dict[str, Any]) -> None:
    saved = layer.get_config()
    restored_config = json.loads(json.dumps(saved))  # configs must be JSON-serialisable
    given = json.loads(json.dumps(config))
    for key, value in given.items():
        _require(restored_config.get(key) == value, f"get_config()[{key!r}] = {saved.get(key)!r}, passed {value!r}")
    clone = type(layer).from_config(input_shapes, restored_config, name=layer.name)
    _require(clone.get_config() == saved, f"config changed in the round trip: {clone.get_config()} != {saved}")
    _require(clone.output_shapes == layer.output_shapes, "rebuilt layer has other output shapes")
    shapes = [tuple(p.shape) for p in layer.parameters()]
    _require([tuple(p.shape) for p in clone.parameters()] == shapes, "rebuilt layer has other weight shapes")


def _check_outputs(
    layer: Layer,
    outputs: tuple[torch.Tensor, ...],
    bottoms: Sequence[torch.Tensor],
    dtypes: Sequence[torch.dtype] | None,
) -> None:
    _require(len(outputs) == len(layer.output_shapes), f"{len(outputs)} outputs, {len(layer.output_shapes)} declared")
    default = bottoms[0].dtype
    for index, output in enumerate(outputs):
        declared = layer.output_shapes[index]
        _require(
            tuple(output.shape) == declared, f"output {index} has shape {tuple(output.shape)}, declared {declared}"
        )
        want = dtypes[index] if dtypes is not None else default
        _require(output.dtype == want, f"output {index} has dtype {output.dtype}, expected {want}")


def _backward(
    layer: Layer,
    outputs: tuple[torch.Tensor, ...],
    bottoms: Sequence[torch.Tensor],
    cotangents: Sequence[torch.Tensor],
) -> dict[str, torch.Tensor]:
    terms = [(o.double() * c).sum() for o, c in zip(outputs, cotangents, strict=True) if o.requires_grad]
    if not terms:
        return {}
    sources = [(f"input {i}", t) for i, t in enumerate(bottoms) if t.requires_grad]
    sources += [(f"weight {n}", p) for n, p in layer.named_parameters() if p.requires_grad]
    found = torch.autograd.grad(torch.stack(terms).sum(), [s for _, s in sources], allow_unused=True)
    grads = {label: g for (label, _), g in zip(sources, found, strict=True) if g is not None}
    for name, param in layer.named_parameters():
        if f"weight {name}" in grads:
            param.grad = grads[f"weight {name}"].detach().clone()
    return grads


def _compare_with_reference(
    reference: Reference,
    reference_layer: Layer,
    bottoms: Sequence[torch.Tensor],
    outputs: tuple[torch.Tensor, ...],
    cotangents: Sequence[torch.Tensor],
    grads: dict[str, torch.Tensor],
    rtol: float,
    atol: float,
) -> None:
    bottoms64 = [t.detach().double().requires_grad_(True) if t.is_floating_point() else t.detach() for t in bottoms]
    expected = _as_tuple(reference(reference_layer, *bottoms64))
    _require(len(expected) == len(outputs), f"reference gave {len(expected)} outputs, layer {len(outputs)}")
    for index, (got, want) in enumerate(zip(outputs, expected, strict=True)):
        torch.testing.assert_close(got.detach().double(), want.detach(), rtol=rtol, atol=atol, msg=f"output {index}")
    if not grads:
        return
    terms = [(e * c).sum() for e, c, o in zip(expected, cotangents, outputs, strict=True) if o.requires_grad]
    sources = {f"input {i}": t for i, t in enumerate(bottoms64) if t.requires_grad}
    sources.update({f"weight {n}": p for n, p in reference_layer.named_parameters() if p.requires_grad})
    labels = [label for label in grads if label in sources]
    found = torch.autograd.grad(torch.stack(terms).sum(), [sources[label] for label in labels], allow_unused=True)
    for label, want_grad in zip(labels, found, strict=True):
        want = torch.zeros_like(sources[label]) if want_grad is None else want_grad
        torch.testing.assert_close(grads[label].double(), want, rtol=rtol, atol=atol, msg=f"gradient of {label}")


def _check_training_step(layer: Layer) -> None:
    trainable = [p for p in layer.parameters() if p.requires_grad]
    if not trainable:
        return
    with_grad = [p for p in trainable if p.grad is not None and bool(p.grad.abs().sum() > 0)]
    _require(bool(with_grad), "no trainable weight received a non-zero gradient")
    before = [p.detach().clone() for p in with_grad]
    SGD(with_grad, lr=0.1).step()
    changed = any(not torch.equal(b, p.detach()) for b, p in zip(before, with_grad, strict=True))
    _require(changed, "one SGD step did not change any weight")
