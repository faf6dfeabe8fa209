"""Which kernels run: Triton for CUDA tensors when triton imports, plain torch everywhere else.

The torch path is the reference and runs on every device; `CTRFLOW_DISABLE_TRITON=1` forces it on CUDA
(to compare the two paths on one machine, or to work around a kernel problem).
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch


@functools.cache
def _triton_importable() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_triton(tensor: torch.Tensor) -> bool:
    """True for CUDA tensors when triton is installed and not disabled by CTRFLOW_DISABLE_TRITON=1."""
    if not tensor.is_cuda or os.environ.get("CTRFLOW_DISABLE_TRITON") == "1":
        return False
    return _triton_importable()
