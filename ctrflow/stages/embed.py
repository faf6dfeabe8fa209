"""The embed stage: every sparse embedding of the model, and their sparse optimizer updates.

Forward looks up and pools each table's keys (`[batch, slots, vec]`); the backward pass captures
per-row gradients inside each embedding, and `step()` applies the sparse optimizers to the touched rows
after the dense backward, as HugeCTR does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig
from ctrflow.stages.types import Environment, Stage


class EmbedStage(Stage):
    """Runs the model's embeddings in the order they were added.

    Args:
        embeddings: the embedding modules (`SparseEmbedding` or its distributed form) by output name.
    """

    stage_name = "embed"

    def __init__(self, embeddings: dict[str, nn.Module]) -> None:
        super().__init__()
        self.tables = nn.ModuleDict(embeddings)
        self.embeddings: dict[str, Any] = dict(embeddings)  # typed view of self.tables: config, step(), dump()

    def forward(self, env: Environment) -> None:
        for name, table in self.embeddings.items():
            config: EmbeddingConfig = table.config
            env[name] = table(env[config.bottom])

    def announce_step(self, lr: float) -> None:
        """The coming training step's learning rate, for tables that start their update early."""
        for table in self.embeddings.values():
            announce = getattr(table, "announce_step", None)
            if announce is not None:
                announce(lr)

    def overlaps_whole_table_pass(self) -> bool:
        """Whether a table runs a pass over all its rows beside each training step (a Global update)."""
        return any(getattr(table, "overlaps_whole_table_pass", False) for table in self.embeddings.values())

    def step(self, lr: float, grad_scale: float = 1.0) -> None:
        """Apply each table's sparse optimizer to the rows its last backward touched."""
        for table in self.embeddings.values():
            table.step(lr, grad_scale=grad_scale)

    def get_config(self) -> dict[str, Any]:
        return {"embeddings": [dataclasses.asdict(t.config) for t in self.embeddings.values()]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EmbedStage:
        from ctrflow.embedding import SparseEmbedding

        tables: dict[str, nn.Module] = {}
        for item in config["embeddings"]:
            fields = dict(item)
            fields["optimizer"] = SparseOptimizerConfig(**fields["optimizer"])
            fields["slot_size_array"] = tuple(fields["slot_size_array"])
            embedding_config = EmbeddingConfig(**fields)
            tables[embedding_config.name] = SparseEmbedding(embedding_config, generator=torch.Generator())
        return cls(tables)
