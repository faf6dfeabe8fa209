"""Weight initialisers of the dense layers (semantics spec §1.3).

HugeCTR picks one `Initializer_t` per weight tensor ("Default", "Uniform", "XavierNorm", "XavierUniform",
"Zero") and each layer family maps those names onto its own formulas. This module holds the building
blocks (uniform, normal, HugeCTR's variance-scaling "fan_avg") and one function per layer family that
fills a tensor in place. Every draw comes from the `torch.Generator` handed to
`Layer.reset_parameters`, so a seeded generator makes initialisation reproducible.

The "normal" variants follow v3.5 exactly: a plain, untruncated normal whose σ is divided by
0.87962566103423978 (v3.5 passes ±2σ truncation bounds to its generator and ignores them).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

INITIALIZER_TYPES: tuple[str, ...] = ("Default", "Uniform", "XavierNorm", "XavierUniform", "Zero")

# semantics spec §1.3: σ of the "truncated" normal is inflated by this constant, yet nothing is truncated
TRUNCATED_NORMAL_STD_CORRECTION = 0.87962566103423978


def check_initializer_type(value: object, layer: str, kwarg: str) -> str:
    """Return `value` if it names an `Initializer_t`, else raise a `ValueError` naming the layer and kwarg."""
    if not isinstance(value, str) or value not in INITIALIZER_TYPES:
        raise ValueError(
            f"{layer}: {kwarg}={value!r} is not an initializer type; expected one of "
            f"{', '.join(INITIALIZER_TYPES)}. Pass the Initializer_t name as a string."
        )
    return value


def uniform_(tensor: torch.Tensor, limit: float, generator: torch.Generator) -> torch.Tensor:
    """Fill `tensor` from U(-limit, +limit)."""
    return _fill(tensor, lambda t: t.uniform_(-limit, limit, generator=generator), generator)


def normal_(tensor: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Fill `tensor` from N(0, std²)."""
    return _fill(tensor, lambda t: t.normal_(0.0, std, generator=generator), generator)


def variance_scaling_scale(fan_in: float, fan_out: float) -> float:
    """HugeCTR's "fan_avg" scale: 1 / max(1, (fan_in + fan_out) / 2)."""
    return 1.0 / max(1.0, (fan_in + fan_out) / 2.0)


def variance_scaling_uniform_(
    tensor: torch.Tensor, fan_in: float, fan_out: float, generator: torch.Generator
) -> torch.Tensor:
    """U(±sqrt(3·scale)), scale = 1 / max(1, (fan_in + fan_out) / 2)."""
    return uniform_(tensor, math.sqrt(3.0 * variance_scaling_scale(fan_in, fan_out)), generator)


def variance_scaling_normal_(
    tensor: torch.Tensor, fan_in: float, fan_out: float, generator: torch.Generator
) -> torch.Tensor:
    """N(0, sqrt(scale)/0.8796…), untruncated as in v3.5."""
    std = math.sqrt(variance_scaling_scale(fan_in, fan_out)) / TRUNCATED_NORMAL_STD_CORRECTION
    return normal_(tensor, std, generator)


def fully_connected_weight_(
    tensor: torch.Tensor, kind: str, fan_in: int, fan_out: int, generator: torch.Generator
) -> torch.Tensor:
    """InnerProduct / FusedInnerProduct weight `[in, out]`."""
    if kind == "Zero":
        return _zero(tensor)
    if kind == "Uniform":  # v3.5: ±1/(in+out), no square root
        return uniform_(tensor, 1.0 / (fan_in + fan_out), generator)
    if kind == "XavierUniform":
        return variance_scaling_uniform_(tensor, fan_in, fan_out, generator)
    return variance_scaling_normal_(tensor, fan_in, fan_out, generator)  # Default and XavierNorm


def fully_connected_bias_(tensor: torch.Tensor, kind: str, fan_out: int, generator: torch.Generator) -> torch.Tensor:
    """InnerProduct / FusedInnerProduct bias `[out]`."""
    if kind == "Zero":
        return _zero(tensor)
    if kind == "Uniform":
        return uniform_(tensor, 1.0 / fan_out, generator)
    if kind == "XavierUniform":
        return variance_scaling_uniform_(tensor, 0, fan_out, generator)
    if kind == "XavierNorm":
        return variance_scaling_normal_(tensor, 0, fan_out, generator)
    return normal_(tensor, math.sqrt(1.0 / fan_out), generator)  # Default: plain N(0, 1/out)


def multi_cross_weight_(tensor: torch.Tensor, kind: str, dim: int, generator: torch.Generator) -> torch.Tensor:
    """MultiCross w_l `[D]`: every type but Zero is VS-Uniform(D, D)."""
    if kind == "Zero":
        return _zero(tensor)
    return variance_scaling_uniform_(tensor, dim, dim, generator)


def multi_cross_bias_(tensor: torch.Tensor) -> torch.Tensor:
    """MultiCross b_l `[D]`: always zero."""
    return _zero(tensor)


def weight_multiply_(
    tensor: torch.Tensor, kind: str, num_slots: int, vec_size: int, generator: torch.Generator
) -> torch.Tensor:
    """WeightMultiply W `[S, V]` with fan_in = S, fan_out = S·V."""
    fan_in, fan_out = num_slots, num_slots * vec_size
    if kind == "Zero":
        return _zero(tensor)
    if kind == "Uniform":
        return uniform_(tensor, 1.0 / (fan_in + fan_out), generator)
    if kind == "XavierNorm":
        return variance_scaling_normal_(tensor, fan_in, fan_out, generator)
    return variance_scaling_uniform_(tensor, fan_in, fan_out, generator)  # Default and XavierUniform


def batch_norm_gamma_(tensor: torch.Tensor, kind: str) -> torch.Tensor:
    """BatchNorm γ: 1, or 0 for Zero (Uniform / Xavier fall back to Default in v3.5)."""
    with torch.no_grad():
        return tensor.fill_(0.0 if kind == "Zero" else 1.0)


def batch_norm_beta_(tensor: torch.Tensor) -> torch.Tensor:
    """BatchNorm β: always 0."""
    return _zero(tensor)


def recurrent_(tensor: torch.Tensor, kind: str, hidden_size: int, generator: torch.Generator) -> torch.Tensor:
    """GRU weights and biases: U(±1/sqrt(H)) (torch's GRU rule), 0 for Zero.

    v3.5 initialises every GRU weight to 0, which makes all hidden units identical forever; ctrflow
    uses the standard recurrent initialisation instead (docs/compatibility.md).
    """
    if kind == "Zero":
        return _zero(tensor)
    return uniform_(tensor, 1.0 / math.sqrt(hidden_size), generator)


def _zero(tensor: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return tensor.zero_()


def _fill(
    tensor: torch.Tensor, draw: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator
) -> torch.Tensor:
    # draw on the generator's device in float32, then copy: the same seed gives the same weights on any device
    values = draw(torch.empty(tensor.shape, dtype=torch.float32, device=generator.device))
    with torch.no_grad():
        return tensor.copy_(values)
