"""Interaction as two Triton kernels for CUDA tensors (imported lazily: triton is an extra).

The torch path of `Interaction` makes a batch of n × n Gram matrices with `bmm` (tiny tiles that run far
below bandwidth), gathers the lower triangles and concatenates: five passes over memory, and as many back.
Here one program per sample holds Z = [dense; emb₁ … emb_S] (n × d) in registers:

* forward: G = Z·Zᵀ with `tl.dot` (float32 accumulation); the program writes `[dense, G[i, j] for i > j, 0]`
  in `torch.tril_indices` order, so the Gram matrix never reaches memory.
* backward: with P the symmetric n × n matrix holding each pair's output gradient at (i, j) and (j, i),
  dZ = P·Z; the dense row adds the gradient of the output's first d columns (the pass-through).

Float32 inputs multiply in IEEE float32 unless `torch.backends.cuda.matmul.allow_tf32` is on, as torch's
`bmm` does. `Interaction`'s torch path is the reference these kernels are tested against.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl


@triton.jit
def _load_features(dense_ptr, emb_ptr, sample, n, d, N: tl.constexpr, D: tl.constexpr):
    """Z of one sample as an N × D tile (rows ≥ n and columns ≥ d are zero)."""
    rows = tl.arange(0, N)[:, None]
    cols = tl.arange(0, D)[None, :]
    in_cols = cols < d
    from_emb = (rows >= 1) & (rows < n) & in_cols
    emb = tl.load(emb_ptr + sample * (n - 1) * d + (rows - 1) * d + cols, mask=from_emb, other=0)
    dense = tl.load(dense_ptr + sample * d + cols + rows * 0, mask=(rows == 0) & in_cols, other=0)
    return tl.where(rows == 0, dense, emb)


@triton.jit
def _forward_kernel(dense_ptr, emb_ptr, out_ptr, n, d, width, N: tl.constexpr, D: tl.constexpr,
                    PRECISION: tl.constexpr):  # fmt: skip
    sample = tl.program_id(0).to(tl.int64)
    z = _load_features(dense_ptr, emb_ptr, sample, n, d, N, D)
    gram = tl.dot(z, tl.trans(z), input_precision=PRECISION)
    out_row = out_ptr + sample * width
    i = tl.arange(0, N)[:, None]
    j = tl.arange(0, N)[None, :]
    tl.store(out_row + d + i * (i - 1) // 2 + j, gram.to(out_ptr.dtype.element_ty), mask=(j < i) & (i < n))
    cols = tl.arange(0, D)
    tl.store(out_row + cols, tl.load(dense_ptr + sample * d + cols, mask=cols < d), mask=cols < d)
    tl.store(out_row + width - 1, tl.zeros((), dtype=out_ptr.dtype.element_ty))


@triton.jit
def _backward_kernel(grad_ptr, dense_ptr, emb_ptr, grad_dense_ptr, grad_emb_ptr, n, d, width, N: tl.constexpr,
                     D: tl.constexpr, PRECISION: tl.constexpr):  # fmt: skip
    sample = tl.program_id(0).to(tl.int64)
    z = _load_features(dense_ptr, emb_ptr, sample, n, d, N, D)
    grad_row = grad_ptr + sample * width
    i = tl.arange(0, N)[:, None]
    j = tl.arange(0, N)[None, :]
    high = tl.maximum(i, j)
    pairs = tl.load(grad_row + d + high * (high - 1) // 2 + tl.minimum(i, j), mask=(i != j) & (high < n), other=0)
    grad_z = tl.dot(pairs.to(z.dtype), z, input_precision=PRECISION)
    rows = tl.arange(0, N)[:, None]
    cols = tl.arange(0, D)[None, :]
    target = grad_emb_ptr + sample * (n - 1) * d + (rows - 1) * d + cols
    tl.store(target, grad_z.to(grad_emb_ptr.dtype.element_ty), mask=(rows >= 1) & (rows < n) & (cols < d))
    columns = tl.arange(0, D)
    first = tl.sum(tl.where(rows == 0, grad_z, 0.0), axis=0)
    passed = tl.load(grad_row + columns, mask=columns < d, other=0).to(tl.float32)
    tl.store(grad_dense_ptr + sample * d + columns, (first + passed).to(grad_dense_ptr.dtype.element_ty),
             mask=columns < d)  # fmt: skip


def _tiles(n: int, d: int) -> tuple[int, int]:
    return max(16, triton.next_power_of_2(n)), max(16, triton.next_power_of_2(d))


def fits(num_features: int, width: int) -> bool:
    """Whether one sample's features fit a program's registers (DLRM: 27 × 128)."""
    rows, cols = _tiles(num_features, width)
    return rows * cols <= 64 * 256


def _precision(tensor: torch.Tensor) -> str:
    """`tl.dot`'s input precision: IEEE float32 as torch's matmuls unless TF32 is allowed (halves: ignored)."""
    return "ieee" if tensor.dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32 else "tf32"


class DotInteraction(torch.autograd.Function):
    """`[dense, lower triangle of Z·Zᵀ, 0]` for `dense` [B, d] and `emb` [B, S, d] of one dtype."""

    @staticmethod
    def forward(ctx: Any, dense: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        dense, emb = dense.contiguous(), emb.contiguous()
        batch, slots, d = emb.shape
        n = slots + 1
        width = d + n * (n - 1) // 2 + 1
        out = torch.empty((batch, width), dtype=emb.dtype, device=emb.device)
        rows, cols = _tiles(n, d)
        if batch:
            precision = _precision(emb)
            _forward_kernel[(batch,)](dense, emb, out, n, d, width, N=rows, D=cols, PRECISION=precision, num_warps=4)
        ctx.save_for_backward(dense, emb)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dense, emb = ctx.saved_tensors
        grad = grad.contiguous()
        batch, slots, d = emb.shape
        n = slots + 1
        grad_dense, grad_emb = torch.empty_like(dense), torch.empty_like(emb)
        rows, cols = _tiles(n, d)
        if batch:
            _backward_kernel[(batch,)](
                grad, dense, emb, grad_dense, grad_emb, n, d, grad.shape[1], N=rows, D=cols, PRECISION=_precision(emb),
                num_warps=4,
            )  # fmt: skip
        return grad_dense, grad_emb


def dot_interaction(dense: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Interaction's output by the kernels, in the dtype torch's path would give (autocast's on CUDA)."""
    dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else emb.dtype
    with torch.autocast("cuda", enabled=False):
        return DotInteraction.apply(dense.to(dtype), emb.to(dtype))
