"""Suite-wide settings: TF32 off so float32 references compare exactly; deterministic seeds."""

from __future__ import annotations

import pytest
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
