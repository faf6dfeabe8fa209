"""ctrflow: train and serve recommender models with huge embedding tables on PyTorch.

The native API is a small DSL (`ctrflow.Input`, `ctrflow.Embedding`, `ctrflow.layers`, `ctrflow.Model`);
HugeCTR v3.5 scripts run unchanged through `import hugectr` (the facade in `ctrflow.hugectr`).
Submodules load lazily so that `import ctrflow` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_DSL = {"Input", "Sparse", "Embedding", "Model", "layers", "losses", "data", "optim", "Tensor"}


def __getattr__(name: str) -> Any:
    if name in _DSL:
        from ctrflow.pipeline import dsl

        return getattr(dsl, name)
    raise AttributeError(f"module 'ctrflow' has no attribute {name!r}")
