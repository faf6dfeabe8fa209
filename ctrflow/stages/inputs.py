"""The input stage: unpacks a `Batch` into the named tensors of the graph's Input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctrflow.readers.types import Batch
from ctrflow.stages.types import Environment, Stage

BATCH_KEY = "__batch__"
VALID_ROWS_KEY = "__valid_rows__"


class InputStage(Stage):
    """Names the label, dense and sparse parts of the batch in `env[BATCH_KEY]`.

    Several labels share one label matrix; its columns go to the label names in alphabetical order of
    the names, as HugeCTR assigns them (semantics spec §2.5).

    Args:
        label_names: the label tensor names as given to the Input.
        label_dims: their widths.
        dense_name: the dense tensor name.
    """

    stage_name = "inputs"

    def __init__(self, label_names: Sequence[str], label_dims: Sequence[int], dense_name: str) -> None:
        super().__init__()
        self.label_names = list(label_names)
        self.label_dims = list(label_dims)
        self.dense_name = dense_name
        self._columns: list[tuple[str, int, int]] = []
        start = 0
        for name, dim in sorted(zip(self.label_names, self.label_dims, strict=True)):
            self._columns.append((name, start, start + dim))
            start += dim

    def forward(self, env: Environment) -> None:
        batch: Batch = env[BATCH_KEY]
        for name, begin, end in self._columns:
            env[name] = batch.label[:, begin:end]
        env[self.dense_name] = batch.dense
        env.update(batch.sparse)
        env[VALID_ROWS_KEY] = batch.size

    def get_config(self) -> dict[str, Any]:
        return {"label_names": self.label_names, "label_dims": self.label_dims, "dense_name": self.dense_name}
