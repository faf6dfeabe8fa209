"""Interaction's Triton kernels against its torch path: forward values and both input gradients.

The interpreter tests run on CPU tensors in a process started with TRITON_INTERPRET=1 (scripts/test.sh runs
them so); the CUDA tests compare the compiled kernels with the torch path on the same device.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from ctrflow.dense.layers import Interaction

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton")
interpreted = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1", reason="needs TRITON_INTERPRET=1 in the test process's environment"
)
on_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SHAPES = [(4, 26, 128), (3, 4, 5), (2, 1, 16), (5, 40, 20)]  # (batch, slots, width): DLRM's, odd, tiny, n > 32


def inputs(batch: int, slots: int, width: int, device: str, dtype: torch.dtype = torch.float32):
    generator = torch.Generator().manual_seed(batch * 1000 + slots * 10 + width)
    dense = torch.randn(batch, width, generator=generator).to(device, dtype).requires_grad_()
    emb = torch.randn(batch, slots, width, generator=generator).to(device, dtype).requires_grad_()
    grad = torch.randn(batch, width + (slots + 1) * slots // 2 + 1, generator=generator).to(device, dtype)
    return dense, emb, grad


def forward_backward(run, dense, emb, grad):
    dense.grad = emb.grad = None
    out = run(dense, emb)
    out.backward(grad)
    return out.detach(), dense.grad, emb.grad


def float64_reference(dense, emb, grad):
    """The torch path of a CPU layer in float64."""
    copies = [t.detach().double().cpu().requires_grad_() for t in (dense, emb)]
    layer = Interaction([tuple(dense.shape), tuple(emb.shape)])
    return forward_backward(layer._torch, *copies, grad.double().cpu())


def assert_close(results, reference, rtol: float, atol: float) -> None:
    for name, got, want in zip(("output", "dense grad", "emb grad"), results, reference, strict=True):
        torch.testing.assert_close(got.double().cpu(), want, rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


@needs_triton
@interpreted
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_interpreted_kernels_equal_the_float64_reference(shape):
    from ctrflow.dense.layers.interaction_kernel import DotInteraction

    dense, emb, grad = inputs(*shape, "cpu")
    results = forward_backward(DotInteraction.apply, dense, emb, grad)
    assert_close(results, float64_reference(dense, emb, grad), rtol=1e-5, atol=1e-4)
    assert torch.count_nonzero(results[0][:, -1]) == 0


@needs_triton
@interpreted
def test_interpreted_kernels_handle_an_empty_batch():
    from ctrflow.dense.layers.interaction_kernel import DotInteraction

    dense, emb, grad = inputs(0, 3, 8, "cpu")
    out, grad_dense, grad_emb = forward_backward(DotInteraction.apply, dense, emb, grad)
    assert out.shape == (0, 8 + 6 + 1) and grad_dense.shape == (0, 8) and grad_emb.shape == (0, 3, 8)


@pytest.mark.device
@needs_triton
@on_cuda
@pytest.mark.parametrize("shape", SHAPES)
def test_cuda_layer_in_float32_equals_the_float64_reference(shape):
    batch, slots, width = shape
    layer = Interaction([(batch, width), (batch, slots, width)]).cuda()
    dense, emb, grad = inputs(*shape, "cuda")
    results = forward_backward(layer, dense, emb, grad)
    assert_close(results, float64_reference(dense, emb, grad), rtol=1e-5, atol=1e-4)


@pytest.mark.device
@needs_triton
@on_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_layer_under_autocast_is_as_close_to_float64_as_the_torch_path(dtype, monkeypatch):
    batch, slots, width = 64, 26, 128
    layer = Interaction([(batch, width), (batch, slots, width)]).cuda()
    dense, emb, grad = inputs(batch, slots, width, "cuda", dtype)
    reference = float64_reference(dense, emb, grad)
    with torch.autocast("cuda", dtype=dtype):
        kernel = forward_backward(layer, dense, emb, grad)
        monkeypatch.setenv("CTRFLOW_DISABLE_TRITON", "1")
        torch_path = forward_backward(layer, dense, emb, grad)
    assert kernel[0].dtype == torch_path[0].dtype == dtype
    for got, plain, want in zip(kernel, torch_path, reference, strict=True):
        kernel_error = (got.double().cpu() - want).abs().max()
        torch_error = (plain.double().cpu() - want).abs().max()
        assert kernel_error <= torch_error * 1.01 + 1e-6, (kernel_error, torch_error)
