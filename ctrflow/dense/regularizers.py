"""L1 / L2 weight regularisation of the dense network (semantics spec §2.4).

`regularization_term` returns HugeCTR's `rterm` as a differentiable tensor; the model adds it to the
loss, so autograd hands every dense weight (γ/β, biases and GRU weights included) its regularisation
gradient. v3.5 sums all weights into `rterm` but only gives the gradient to layers that accumulate
into their weight gradient (docs/compatibility.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

REGULARIZER_TYPES: tuple[str, ...] = ("L1", "L2")


def regularization_term(weights: Iterable[torch.Tensor], kind: str, lam: float, batch_size: int) -> torch.Tensor:
    """`λ/(2B)·Σ w²` for "L2", `λ/B·Σ |w|` for "L1", summed over every tensor in `weights`.

    Args:
        weights: the dense weights (e.g. `model.parameters()`).
        kind: "L1" or "L2".
        lam: λ, >= 0.
        batch_size: B, the per-rank batch size of the loss's input.

    Returns:
        A float32 scalar tensor (0 when `weights` is empty) connected to every weight.
    """
    if kind not in REGULARIZER_TYPES:
        raise ValueError(f"regularization_term: kind={kind!r} is not a regularizer type; expected 'L1' or 'L2'.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"regularization_term: batch_size={batch_size!r}, expected a positive int (the batch size).")
    if lam < 0:
        raise ValueError(f"regularization_term: lambda={lam} is negative; pass lambda >= 0.")
    total: torch.Tensor | None = None
    for weight in weights:
        value = weight.float()
        part = (value * value).sum() if kind == "L2" else value.abs().sum()
        total = part if total is None else total + part
    if total is None:
        return torch.zeros((), dtype=torch.float32)
    scale = lam / (2.0 * batch_size) if kind == "L2" else lam / batch_size
    return total * scale
