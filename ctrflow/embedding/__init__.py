"""The embedding engine: key index, table shards, pooled lookup, sparse optimizers, sharding.

`SparseEmbedding` is the module a model uses; `EmbeddingShard` plus `sharding` are the per-rank pieces
the distributed embed stage builds on.
"""

from ctrflow.embedding.key_index import KeyIndex
from ctrflow.embedding.shard import EmbeddingShard
from ctrflow.embedding.sharding import (
    ShardRequest,
    assemble_outputs,
    key_ranks,
    route_batch,
    slot_ranks,
    split_output_grad,
)
from ctrflow.embedding.sparse_embedding import SparseEmbedding
from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig

__all__ = [
    "EmbeddingConfig",
    "EmbeddingShard",
    "KeyIndex",
    "ShardRequest",
    "SparseEmbedding",
    "SparseOptimizerConfig",
    "assemble_outputs",
    "key_ranks",
    "route_batch",
    "slot_ranks",
    "split_output_grad",
]
