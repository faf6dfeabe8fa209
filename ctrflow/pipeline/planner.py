"""The planner: turns a finalized graph into the stages of one rank, on one device.

It decides the device, builds one embedding per table (the distributed form when the run has several
ranks), checks that the tables fit the device's memory (a `PlanError` with the numbers otherwise),
initialises dense weights from the seed in graph order, and wires the stages:

    InputStage ─► EmbedStage ─► DenseStage ─► LossStage ─► MetricsStage
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ctrflow.dense.types import Layer, Loss
from ctrflow.embedding.types import EmbeddingConfig
from ctrflow.pipeline.graph import Graph
from ctrflow.pipeline.types import PlanError
from ctrflow.stages import DenseStage, EmbedStage, InputStage, LossHead, LossStage, MetricsStage, Wiring
from ctrflow.stages.inputs import BATCH_KEY
from ctrflow.stages.types import Environment

EmbeddingFactory = Callable[[EmbeddingConfig, torch.device, torch.Generator, int, int], nn.Module]


def default_embedding_factory(
    config: EmbeddingConfig, device: torch.device, generator: torch.Generator, rank: int, world_size: int
) -> nn.Module:
    """One table: `SparseEmbedding` on a single rank, `DistributedSparseEmbedding` across ranks."""
    if world_size > 1:
        from ctrflow.embedding.distributed import DistributedSparseEmbedding

        return DistributedSparseEmbedding(config, device=device, generator=generator, rank=rank, world_size=world_size)
    from ctrflow.embedding import SparseEmbedding

    # under autocast the pooled vectors come out in the autocast dtype, as HugeCTR's fp16 embedding output
    return SparseEmbedding(
        config, device=device, generator=generator, rank=rank, world_size=world_size, autocast_output=True
    )


class Network(nn.Module):
    """The stages of one rank, run in order over an environment."""

    def __init__(
        self,
        inputs: InputStage,
        embed: EmbedStage,
        dense: DenseStage,
        loss: LossStage,
        metrics: MetricsStage,
    ) -> None:
        super().__init__()
        self.inputs, self.embed, self.dense, self.loss, self.metrics = inputs, embed, dense, loss, metrics

    def forward(self, env: Environment) -> Environment:
        self.inputs(env)
        self.embed(env)
        self.dense(env)
        self.loss(env)
        return env

    def run(self, batch: object) -> Environment:
        return self.forward({BATCH_KEY: batch})

    def dense_layers(self) -> list[Layer]:
        return [layer for layer in self.dense.layers if isinstance(layer, Layer)]

    def dense_parameters(self) -> list[nn.Parameter]:
        """Dense weights in HugeCTR's dense-file order (formats spec §5.2)."""
        return [p for layer in self.dense_layers() for p in layer.parameters()]


@dataclass(slots=True)
class Planner:
    """Builds a `Network` from a graph.

    Args:
        device: "cpu", "cuda", "cuda:N" or None (CUDA when available, else CPU).
        embedding_factory: builds one table; swap it in tests or for other engines.
        memory_limit_bytes: memory the tables may take; None reads the device's free memory.
    """

    device: str | None = None
    embedding_factory: EmbeddingFactory = default_embedding_factory
    memory_limit_bytes: int | None = None

    def resolve_device(self) -> torch.device:
        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise PlanError(f"device {self.device!r} was asked for but CUDA is not available; use device='cpu'.")
        return device

    def plan(
        self,
        graph: Graph,
        *,
        seed: int,
        metrics: Sequence[str] = ("AUC",),
        label_weights: dict[str, float] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> Network:
        nodes = graph.finalize()
        device = self.resolve_device()
        self.check_memory([n.params["config"] for n in graph.embeddings], device, world_size)
        generator = torch.Generator().manual_seed(seed)
        tables = {
            node.tops[0]: self.embedding_factory(node.params["config"], device, generator, rank, world_size)
            for node in graph.embeddings
        }
        dense_nodes = [n for n in nodes if n.kind == "layer" and not isinstance(n.module, Loss)]
        loss_nodes = [n for n in nodes if n.kind == "layer" and isinstance(n.module, Loss)]
        dense = DenseStage(
            [n.module for n in dense_nodes if isinstance(n.module, Layer)],
            [Wiring(n.bottoms, n.tops) for n in dense_nodes],
        )
        dense.reset_parameters(generator)
        weights = label_weights or {}
        heads = [
            LossHead(
                prediction=n.bottoms[0],
                label=n.bottoms[1],
                top=n.tops[0] if n.tops else n.bottoms[1],
                weight=weights.get(n.bottoms[1], 1.0),
                regularizer=str(n.params.get("regularizer_type", "L1")) if n.params.get("use_regularizer") else None,
                lam=float(n.params.get("lambda", 0.0)),
            )
            for n in loss_nodes
        ]
        loss = LossStage([n.module for n in loss_nodes if isinstance(n.module, Loss)], heads)
        network = Network(
            InputStage(graph.label_names, graph.label_dims, graph.dense_name),
            EmbedStage(tables),
            dense,
            loss,
            MetricsStage(metrics),
        ).to(device)
        loss.set_regularized(iter(network.dense_parameters()))
        return network

    def check_memory(self, configs: Sequence[EmbeddingConfig], device: torch.device, world_size: int) -> None:
        """Raise a PlanError when the tables with their optimizer states cannot fit."""
        need = sum(
            c.capacity_per_rank(world_size) * c.embedding_vec_size * 4 * (1 + c.optimizer.state_copies) for c in configs
        )
        have = self.memory_limit_bytes if self.memory_limit_bytes is not None else _free_memory(device)
        if need > have:
            detail = ", ".join(
                f"{c.name}: {c.capacity_per_rank(world_size):,} rows x {c.embedding_vec_size}" for c in configs
            )
            raise PlanError(
                f"The embedding tables need {_size(need)} per rank with their optimizer states but "
                f"{device} has {_size(have)} available ({detail}). Lower workspace_size_per_gpu_in_mb, "
                "use an optimizer with fewer states (SGD keeps none), or run on more ranks (vvgpu)."
            )


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count} B"


def _free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2**62
