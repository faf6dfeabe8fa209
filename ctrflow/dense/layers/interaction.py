"""DLRM's dot-product feature interaction: Interaction (semantics spec §1.4).

Bottoms are `[dense [B, d], emb [B, S, d]]`. With n = S + 1 and Z = [dense; emb₁ … emb_S] (n × d per
sample), the top row is `[dense, (Z·Zᵀ)[i, j] for i > j (torch.tril_indices(n, n, -1) order), 0]`, of
width `d + n(n−1)/2 + 1`. The final padding element is always 0 (v3.5 leaves it uninitialised in
float32).
On CUDA the layer runs the fused kernels of `interaction_kernel` (Gram matrix, triangle and concat in one
pass each way); the torch code here is their reference and the path everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ctrflow.dense.argument_validation import require_rank
from ctrflow.dense.types import Layer, Shape
from ctrflow.embedding.kernel_choice import use_triton


class Interaction(Layer):
    """Pairwise dot products of the dense vector and the embedding vectors.

    v3.5's mixed-precision graphs give Interaction two tops (`["interaction1", "interaction1_grad"]`),
    the second being a gradient buffer for a FusedInnerProduct Head; here it is an alias of the first.

    Args:
        num_tops: 1 or 2, the number of top names the graph gives this layer (not a `DenseLayer` kwarg:
            HugeCTR reads it from `top_names`).
    """

    layer_type = "Interaction"
    min_inputs = 2
    max_inputs = 2
    pair_rows: torch.Tensor
    pair_cols: torch.Tensor
    pair_index: torch.Tensor

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", num_tops: int = 1) -> None:
        super().__init__(input_shapes, name=name, num_tops=num_tops)
        batch, dense_dim = require_rank(self, 0, (2,))
        emb_batch, num_slots, vec = require_rank(self, 1, (3,))
        if vec != dense_dim or emb_batch != batch:
            raise self.fail(
                f"dense bottom {list(self.input_shapes[0])} and embedding bottom {list(self.input_shapes[1])} "
                "disagree; the input tensors' widths (and batch) must be the same",
                "Make the bottom MLP's last num_output equal the embedding_vec_size.",
            )
        if num_tops not in (1, 2) or isinstance(num_tops, bool):
            raise self.fail(f"num_tops={num_tops!r}, expected 1 or 2", "Give Interaction one or two top names.")
        n = num_slots + 1
        self.num_features = n
        rows, cols = torch.tril_indices(n, n, offset=-1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        # the pairs as positions in the flattened n × n Gram matrix: index_select's backward is an index_add_
        # over distinct positions, where gram[:, rows, cols] would backpropagate through a sorting index_put_
        self.register_buffer("pair_index", rows * n + cols, persistent=False)
        width = dense_dim + n * (n - 1) // 2 + 1
        self.output_shapes = [(batch, width)] * num_tops

    def forward(self, dense: torch.Tensor, emb: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        out = self._kernel(dense, emb) if use_triton(emb) else self._torch(dense, emb)
        return out if len(self.output_shapes) == 1 else (out, out)

    def _kernel(self, dense: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        from ctrflow.dense.layers import interaction_kernel

        if not interaction_kernel.fits(self.num_features, emb.shape[2]):
            return self._torch(dense, emb)
        return interaction_kernel.dot_interaction(dense, emb)

    def _torch(self, dense: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        features = torch.cat([dense.unsqueeze(1).to(emb.dtype), emb], dim=1)
        gram = torch.bmm(features, features.transpose(1, 2))
        pairs = gram.flatten(1).index_select(1, self.pair_index)
        pad = torch.zeros((dense.shape[0], 1), dtype=pairs.dtype, device=pairs.device)
        return torch.cat([dense.to(pairs.dtype), pairs, pad], dim=1)
