"""Layers that move values without arithmetic (semantics spec §1.4): Reshape, Concat, Slice,
FusedReshapeConcat, FusedReshapeConcatGeneral, Gather.

Shapes are checked at build time against the nominal batch; at run time every reshape is computed
from the real input, so evaluation batches of another size work. Gradients are the true ones: where
two outputs read the same input element (overlapping Slice ranges, repeated Reshape slots or Gather
indices) the gradients are summed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ctrflow.dense.argument_validation import require_int, require_int_list, require_rank
from ctrflow.dense.types import Layer, Shape


class Reshape(Layer):
    """Reshape, or select slots of a `[B, S, V]` embedding output.

    * `selected=False`, `time_step=0`: all N input elements become `[N/leading_dim, leading_dim]`.
    * `time_step>0`: `[N/(leading_dim·time_step), time_step, leading_dim]`.
    * `selected=True`: input `[B, S, V]` becomes `[B, len(selected_slots)·V]` holding the listed slots in
      order (all slots when the list is empty).

    Args:
        leading_dim: innermost output width.
        time_step: middle output dimension for a 3-D result (0 = 2-D result).
        selected: select slots instead of a plain reshape.
        selected_slots: slot indices to keep.
    """

    layer_type = "Reshape"
    slot_index: torch.Tensor

    def __init__(
        self,
        input_shapes: Sequence[Shape],
        *,
        name: str = "",
        leading_dim: int = 1,
        time_step: int = 0,
        selected: bool = False,
        selected_slots: Sequence[int] = (),
    ) -> None:
        slots = list(selected_slots) if isinstance(selected_slots, (list, tuple)) else selected_slots
        super().__init__(
            input_shapes,
            name=name,
            leading_dim=leading_dim,
            time_step=time_step,
            selected=selected,
            selected_slots=slots,
        )
        self.leading_dim = require_int(self, "leading_dim", leading_dim, 1)
        self.time_step = require_int(self, "time_step", time_step, 0)
        self.selected = bool(selected)
        self.selected_slots = require_int_list(self, "selected_slots", slots)
        self.register_buffer("slot_index", torch.tensor(self.selected_slots, dtype=torch.long), persistent=False)
        self.output_shapes = [self._selected_shape() if self.selected else self._plain_shape()]

    def _selected_shape(self) -> Shape:
        batch, num_slots, vec = require_rank(self, 0, (3,))
        for slot in self.selected_slots:
            if not 0 <= slot < num_slots:
                raise self.fail(
                    f"selected slot {slot} is out of range for an input with {num_slots} slots",
                    f"Pick slots in [0, {num_slots - 1}].",
                )
        kept = len(self.selected_slots) or num_slots
        return (batch, kept * vec)

    def _plain_shape(self) -> Shape:
        total = math.prod(self.input_shapes[0])
        block = self.leading_dim * max(self.time_step, 1)
        if block > total or total % block:
            raise self.fail(
                f"cannot reshape {total} input elements (shape {list(self.input_shapes[0])}) into rows of "
                f"leading_dim={self.leading_dim} x time_step={self.time_step}",
                "Choose leading_dim (and time_step) whose product divides the input's element count.",
            )
        if self.time_step:
            return (total // block, self.time_step, self.leading_dim)
        return (total // block, self.leading_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.selected:
            if self.selected_slots:
                x = x.index_select(1, self.slot_index)
            return x.reshape(x.shape[0], -1)
        if self.time_step:
            return x.reshape(-1, self.time_step, self.leading_dim)
        return x.reshape(-1, self.leading_dim)


class Concat(Layer):
    """Concatenate 2-D bottoms `[B, wᵢ]` along the width: `[B, Σ wᵢ]`."""

    layer_type = "Concat"
    max_inputs = None

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        for index in range(len(self.input_shapes)):
            require_rank(self, index, (2,))
        batch = self.input_shapes[0][0]
        heights = [shape[0] for shape in self.input_shapes]
        if any(h != batch for h in heights):
            raise self.fail(
                f"bottoms have heights {heights}; all the input tensors must have the same height",
                "Concatenate tensors of one batch size.",
            )
        self.output_shapes = [(batch, sum(shape[1] for shape in self.input_shapes))]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=1)


class Slice(Layer):
    """Copy column ranges `[a, b)` of a 2-D bottom into one top each; ranges may overlap.

    Args:
        ranges: list of `(start, end)` pairs, non-decreasing in both start and end.
    """

    layer_type = "Slice"

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", ranges: Sequence[Sequence[int]] = ()) -> None:
        pairs = [list(r) for r in ranges] if isinstance(ranges, (list, tuple)) else ranges
        super().__init__(input_shapes, name=name, ranges=pairs)
        batch, width = require_rank(self, 0, (2,))
        self.ranges = self._check_ranges(pairs, width)
        self.output_shapes = [(batch, end - start) for start, end in self.ranges]

    def _check_ranges(self, pairs: object, width: int) -> list[tuple[int, int]]:
        if not isinstance(pairs, list) or not pairs:
            raise self.fail(f"ranges={pairs!r} is empty or not a list", "Pass ranges as a list of (start, end) pairs.")
        checked: list[tuple[int, int]] = []
        for pair in pairs:
            values = require_int_list(self, "ranges", pair)
            if len(values) != 2 or not 0 <= values[0] < values[1] <= width:
                raise self.fail(
                    f"range {pair} is not a (start, end) pair with 0 <= start < end <= {width} (the input width)",
                    "Fix the range bounds.",
                )
            if checked and (values[0] < checked[-1][0] or values[1] < checked[-1][1]):
                raise self.fail(
                    f"range {pair} comes after {list(checked[-1])}; a range cannot be out-order nor included in "
                    "another",
                    "List ranges with non-decreasing starts and ends.",
                )
            checked.append((values[0], values[1]))
        return checked

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outputs = tuple(x[:, start:end] for start, end in self.ranges)
        return outputs[0] if len(outputs) == 1 else outputs


class FusedReshapeConcat(Layer):
    """Concatenate `[B, S, Vₖ]` bottoms on the last dim to C `[B, S, W]`, then split off the last slot.

    Tops: `item = C[:, :S−1]` as `[B·(S−1), W]` and `ad = C[:, S−1]` as `[B, W]` (DIN's history items and
    the target ad).
    """

    layer_type = "FusedReshapeConcat"
    max_inputs = None
    num_outputs = 2

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "") -> None:
        super().__init__(input_shapes, name=name)
        self.batch, self.num_slots, self.width = self._check_inputs()
        self.output_shapes = self._shapes()

    def _check_inputs(self) -> tuple[int, int, int]:
        for index in range(len(self.input_shapes)):
            require_rank(self, index, (3,))
        batch, num_slots = self.input_shapes[0][:2]
        for index, shape in enumerate(self.input_shapes):
            if shape[:2] != (batch, num_slots):
                raise self.fail(
                    f"bottom {index} has shape {list(shape)} but bottom 0 starts with [{batch}, {num_slots}]",
                    "All bottoms must share the batch and slot dimensions.",
                )
        return batch, num_slots, sum(shape[2] for shape in self.input_shapes)

    def _shapes(self) -> list[Shape]:
        if self.num_slots < 2:
            raise self.fail(
                f"the bottoms have {self.num_slots} slot(s), expected at least 2 (history items plus the ad)",
                "Use FusedReshapeConcatGeneral for a single slot.",
            )
        return [(self.batch * (self.num_slots - 1), self.width), (self.batch, self.width)]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        combined = torch.cat(inputs, dim=2)
        items = combined[:, :-1, :].reshape(-1, combined.shape[2])
        return items, combined[:, -1, :]


class FusedReshapeConcatGeneral(FusedReshapeConcat):
    """Concatenate `[B, S, Vₖ]` bottoms on the last dim and reshape to `[B·S, W]`."""

    layer_type = "FusedReshapeConcatGeneral"
    num_outputs = 1

    def _shapes(self) -> list[Shape]:
        return [(self.batch * self.num_slots, self.width)]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        combined = torch.cat(inputs, dim=2)
        return combined.reshape(-1, combined.shape[2])


class Gather(Layer):
    """Pick rows (the first dimension) of a 2-D bottom `[R, W]`: top `[len(indices), W]`.

    Args:
        indices: row indices, each in `[0, R)`; repeats allowed.
    """

    layer_type = "Gather"
    row_index: torch.Tensor

    def __init__(self, input_shapes: Sequence[Shape], *, name: str = "", indices: Sequence[int] = ()) -> None:
        values = list(indices) if isinstance(indices, (list, tuple)) else indices
        super().__init__(input_shapes, name=name, indices=values)
        rows, width = require_rank(self, 0, (2,))
        self.indices = require_int_list(self, "indices", values)
        if not self.indices:
            raise self.fail("indices is empty", "Pass the row indices to gather.")
        bad = [i for i in self.indices if not 0 <= i < rows]
        if bad:
            raise self.fail(
                f"index {bad[0]} is out of range for an input of {rows} rows", f"Use indices in [0, {rows - 1}]."
            )
        self.register_buffer("row_index", torch.tensor(self.indices, dtype=torch.long), persistent=False)
        self.output_shapes = [(len(self.indices), width)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(0, self.row_index)
