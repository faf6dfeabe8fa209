"""`SparseEmbedding`: one table on one rank as an `nn.Module` (HugeCTR's `SparseEmbedding`).

`forward(batch)` turns a CSR `SparseBatch` into pooled vectors `[batch, slots, V]` (semantics spec §3.3):
training inserts unseen keys, `eval()` reads them as zeros (still counted by the mean combiner). The
output is connected to autograd through a zero-size input that requires grad; its backward only captures
the per-row gradient (deduplicated, never a dense table gradient), and `step(lr, grad_scale)` applies the
sparse optimizer to the captured rows, as the dense optimizer's step applies to dense weights.

Example:
    >>> config = EmbeddingConfig("emb", "data1", "distributed", num_slots=2, embedding_vec_size=4,
    ...                          workspace_size_per_gpu_in_mb=1, optimizer=SparseOptimizerConfig("sgd"))
    >>> embedding = SparseEmbedding(config)
    >>> out = embedding(batch)            # [B, 2, 4]
    >>> out.sum().backward()
    >>> embedding.step(lr=0.1)
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from ctrflow.embedding.one_hot_layout import check_one_hot_keys, offset_one_hot_keys
from ctrflow.embedding.pooled_lookup import (
    CapturedGradient,
    apply_captured,
    capture_gradient,
    lookup_rows,
    pooled_sum,
    splits_global_update,
    start_untouched_update,
)
from ctrflow.embedding.shard import EmbeddingShard
from ctrflow.embedding.types import EmbeddingConfig
from ctrflow.readers.types import SparseBatch

logger = logging.getLogger(__name__)

_STATE_FIELDS = ("keys", "vectors", "slot_ids", "prev_time", "step")


def _key_slots(offsets: torch.Tensor, num_slots: int, num_keys: int) -> torch.Tensor:
    """The slot of every key of a CSR batch (segments are sample-major: segment % num_slots)."""
    lengths = offsets[1:] - offsets[:-1]
    segments = torch.arange(offsets.numel() - 1, device=offsets.device)
    return torch.repeat_interleave(segments % num_slots, lengths, output_size=num_keys)


class _PooledLookup(torch.autograd.Function):
    """Pooled sums of the looked-up rows; backward hands the output gradient to the module's capture."""

    @staticmethod
    def forward(
        ctx: Any,
        anchor: torch.Tensor,
        owner: SparseEmbedding,
        rows: torch.Tensor,
        offsets: torch.Tensor,
        dtype: torch.dtype | None,
    ) -> torch.Tensor:
        ctx.owner = owner
        ctx.save_for_backward(rows, offsets)
        # one-hot rows of a checked batch are never -1 (forward runs world_size 1: every slot is local)
        return pooled_sum(owner.shard.weights, rows, offsets, dtype=dtype, rows_all_present=owner.shard.is_one_hot)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[None, None, None, None, None]:
        rows, offsets = ctx.saved_tensors
        owner: SparseEmbedding = ctx.owner
        if not owner.frozen:
            # fixed size: the capture's shapes do not depend on the keys, so the backward never waits
            captured = capture_gradient(rows, offsets, grad_output, owner.shard.capacity, fixed_size=True)
            owner._captured.append(captured)
        return None, None, None, None, None


class SparseEmbedding(nn.Module):
    """One embedding table on one rank.

    Args:
        config: the embedding (kind, slots, vector size, combiner, workspace, optimizer).
        device: where rows and optimizer states live.
        generator: draws the initial row values; None seeds a new CPU generator from torch's global RNG.
        rank: this rank (the shard it holds).
        world_size: ranks the table is split over; `forward` needs 1 (multi-rank runs use the shard API
            with `sharding.route_batch` and collectives).
        output_dtype: dtype of the output (float32 by default, also under autocast).
        autocast_output: while autocast is enabled for the table's device, produce the output in the
            autocast dtype instead of `output_dtype`. The rows are still summed in float32 and rounded
            once, to the value `output.to(autocast dtype)` would have, but without the float32 output and
            its cast copies (forward and backward); the output gradient is widened to float32 as the
            update kernels read it. Off by default: a consumer that does not cast the embedding (a
            Concat with float32 inputs, for example) would see rounded values.
    """

    def __init__(
        self,
        config: EmbeddingConfig,
        *,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        rank: int = 0,
        world_size: int = 1,
        output_dtype: torch.dtype = torch.float32,
        autocast_output: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(config, EmbeddingConfig):
            raise TypeError(f"SparseEmbedding expects an EmbeddingConfig, received {type(config).__name__}.")
        if config.kind == "hybrid":
            logger.warning(
                'Embedding "%s": HybridSparseEmbedding runs as LocalizedSlotSparseEmbeddingOneHot in ctrflow '
                "(same rows and results; no DLRM-specific communication).",
                config.name,
            )
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        self.config = config
        self.output_dtype = output_dtype
        self.autocast_output = autocast_output
        self.frozen = False
        self.shard = EmbeddingShard(
            config,
            capacity=config.capacity_per_rank(world_size),
            device=device,
            generator=generator,
            rank=rank,
            world_size=world_size,
        )
        self._anchor = torch.zeros(0, device=device, requires_grad=True)
        self._captured: list[CapturedGradient] = []
        self._announced_lr: float | None = None
        self._side_stream: torch.cuda.Stream | None = None
        self._untouched_started = False

    @property
    def capacity(self) -> int:
        return self.shard.capacity

    @property
    def num_keys(self) -> int:
        return self.shard.num_keys

    def forward(self, batch: SparseBatch) -> torch.Tensor:
        self._check_batch(batch)
        device = self.shard.device
        keys, offsets = batch.keys.to(device), batch.offsets.to(device)
        key_slots = None
        if self.config.kind != "distributed":  # slots matter for one-hot offsets and localized slot ids
            key_slots = _key_slots(offsets, batch.num_slots, keys.numel())
        if self.shard.is_one_hot and key_slots is not None:
            # a CPU batch is checked before its copy (a ValueError naming the key), a device batch on the device
            checked = batch.keys.device.type == "cpu" and device.type != "cpu"
            if checked:
                cpu_slots = _key_slots(batch.offsets, batch.num_slots, batch.keys.numel())
                check_one_hot_keys(batch.keys, cpu_slots, self.config.slot_size_array, self.config.name)
            keys = offset_one_hot_keys(
                keys, key_slots, self.config.slot_size_array, self.config.name, check=not checked
            )
        insert = self.training and not self.frozen
        rows = lookup_rows(self.shard, keys, insert, key_slots)
        announced, self._announced_lr = self._announced_lr, None
        if insert and announced is not None and splits_global_update(self.shard):
            self._start_untouched_update(rows, announced)
        out_dtype = self._autocast_dtype()
        # the table is float32: keep autocast from lowering the sums, round once at the end
        with torch.autocast(device_type=device.type, enabled=False):
            sum_dtype = out_dtype if self.config.combiner == "sum" else None  # mean divides in float32 first
            pooled = _PooledLookup.apply(self._anchor, self, rows, offsets, sum_dtype)
            out = pooled.view(batch.batch_size, batch.num_slots, self.config.embedding_vec_size)
            if self.config.combiner == "mean":
                # semantics spec §3.3: divide only when nnz > 1; unseen keys still count
                nnz = (offsets[1:] - offsets[:-1]).view(batch.batch_size, batch.num_slots, 1)
                out = out / nnz.clamp(min=1).to(out.dtype)
        return out.to(out_dtype or self.output_dtype)

    def _autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype when the output should be produced in it (see `autocast_output`), else None."""
        device_type = self.shard.device.type
        if not self.autocast_output or not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)

    def announce_step(self, lr: float) -> None:
        """Tell the table the learning rate of the training step whose forward comes next.

        With Update_t.Global of Adam, MomentumSGD or Nesterov on CUDA, that forward then starts the
        zero-gradient update of every row its batch does not touch, on a side stream: those rows do not
        depend on this step's gradients, so the whole-table pass overlaps the rest of the step, and `step`
        updates only the touched rows. The step must then come with this `lr` after one forward and backward.
        Elsewhere announcing changes nothing.
        """
        self._announced_lr = None if self.frozen else float(lr)

    @property
    def overlaps_whole_table_pass(self) -> bool:
        """Whether announced steps run a pass over every row beside the step (see `announce_step`)."""
        return splits_global_update(self.shard)

    def _start_untouched_update(self, rows: torch.Tensor, lr: float) -> None:
        if self._untouched_started:
            raise RuntimeError(
                f'Embedding "{self.config.name}": a second training forward in an announced step; announce a '
                "step only before its single forward."
            )
        device = self.shard.device
        if self._side_stream is None:
            self._side_stream = torch.cuda.Stream(device)
        self._side_stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(self._side_stream):
            start_untouched_update(self.shard, rows, lr)
        rows.record_stream(self._side_stream)
        self._untouched_started = True

    def _join_untouched_update(self) -> bool:
        """Make the current stream wait for a started untouched-row pass; whether one was started."""
        started, self._untouched_started = self._untouched_started, False
        if started and self._side_stream is not None:
            torch.cuda.current_stream(self.shard.device).wait_stream(self._side_stream)
        return started

    def step(self, lr: float, grad_scale: float = 1.0) -> None:
        """Apply the sparse optimizer to the rows captured since the last step, then forget them.

        Args:
            lr: this step's learning rate (0 is HugeCTR's freeze: states still move, §3.7).
            grad_scale: multiplies the summed gradients (1 / loss scaler).
        """
        if not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(f'Embedding "{self.config.name}": lr must be a number >= 0, received {lr!r}.')
        captured, self._captured = self._captured, []
        untouched_done = self._join_untouched_update()
        if self.frozen:
            return
        apply_captured(self.shard, captured, float(lr), float(grad_scale), untouched_done=untouched_done)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop captured gradients without applying them."""
        super().zero_grad(set_to_none)
        self._captured = []
        self._join_untouched_update()

    # -- pass-throughs to the shard ------------------------------------------------------------------------

    def dump(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return self.shard.dump()

    def load(self, keys: torch.Tensor, vectors: torch.Tensor, slot_ids: torch.Tensor | None = None) -> None:
        self.shard.load(keys, vectors, slot_ids)

    def optimizer_states(self) -> list[torch.Tensor]:
        return self.shard.optimizer_states()

    def load_optimizer_states(self, states: list[torch.Tensor]) -> None:
        self.shard.load_optimizer_states(states)

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        state = self.shard.state_dict()
        for field in _STATE_FIELDS:
            value = state[field]
            if field == "step":
                value = torch.tensor(value, dtype=torch.int64)
            if value is not None:
                destination[prefix + field] = value
        tensors: list[torch.Tensor] = state["states"]  # type: ignore[assignment]
        for i, tensor in enumerate(tensors):
            destination[f"{prefix}state_{i}"] = tensor

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        names = [*_STATE_FIELDS, *(f"state_{i}" for i in range(len(self.shard.state_names)))]
        absent = [prefix + n for n in names if prefix + n not in state_dict and n != "slot_ids"]
        if absent:
            missing_keys.extend(absent)
            return
        self.shard.load_state_dict(
            {
                "keys": state_dict[prefix + "keys"],
                "vectors": state_dict[prefix + "vectors"],
                "slot_ids": state_dict.get(prefix + "slot_ids"),
                "states": [state_dict[f"{prefix}state_{i}"] for i in range(len(self.shard.state_names))],
                "prev_time": state_dict[prefix + "prev_time"],
                "step": int(state_dict[prefix + "step"]),
            }
        )

    def _check_batch(self, batch: SparseBatch) -> None:
        name = self.config.name
        if self.shard.world_size != 1:
            raise ValueError(
                f'Embedding "{name}": forward runs one rank of world_size 1, this module is rank '
                f"{self.shard.rank} of {self.shard.world_size}; use sharding.route_batch with the shard API."
            )
        if batch.num_slots != self.config.num_slots:
            raise ValueError(
                f'Embedding "{name}": input "{self.config.bottom}" should have {self.config.num_slots} slots, '
                f"received a batch with {batch.num_slots}."
            )
        if batch.keys.dtype != torch.int64 or batch.offsets.dtype != torch.int64:
            raise TypeError(
                f'Embedding "{name}": keys and offsets must be int64, received {batch.keys.dtype} and '
                f"{batch.offsets.dtype}; widen them with .long()."
            )
        if (batch.offsets.numel() - 1) % batch.num_slots != 0:
            raise ValueError(
                f'Embedding "{name}": offsets has {batch.offsets.numel()} entries, expected batch_size × '
                f"{batch.num_slots} + 1."
            )
