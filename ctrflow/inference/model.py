"""Offline inference: a trained model rebuilt from its graph JSON and files, predicting over a dataset.

The graph JSON (formats spec §7) gives the Input, the embeddings and the dense network; the dense file
(§5.2) and the sparse model folders (§6.1) give the weights. Embedding lookups go to an in-process hash
map (HugeCTR's default volatile database) holding every key of the sparse files; a key missing from it
reads as the table's default value. Loss layers become their prediction (BCE → sigmoid), as in v3.5
(semantics spec §9.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ctrflow.dense.metrics import roc_auc
from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig
from ctrflow.pipeline.graph import Graph
from ctrflow.pipeline.planner import Network, Planner
from ctrflow.pipeline.runners import LocalRunner
from ctrflow.readers import Loader, make_reader
from ctrflow.readers.types import ReaderKind, ReaderOptions, SparseInputSpec
from ctrflow.storage import dense_files, filesystems, graph_json, sparse_files

_KINDS = {
    "DistributedSlotSparseEmbeddingHash": "distributed",
    "LocalizedSlotSparseEmbeddingHash": "localized",
    "LocalizedSlotSparseEmbeddingOneHot": "one_hot",
    "HybridSparseEmbedding": "hybrid",
}


@dataclass(slots=True)
class InferenceConfig:
    """What an inference model needs (the fields of v3.5's `InferenceParams` that matter here).

    Args:
        max_batchsize: rows per prediction batch.
        dense_model_file: the `_dense_<iter>.model` file.
        sparse_model_files: one sparse model folder per embedding, in graph order.
        i64_input_key: the dataset's key width.
        device: "cpu", "cuda", ... or None for the best available.
        default_value_for_each_table: the vector value of keys missing from a table.
    """

    max_batchsize: int
    dense_model_file: str
    sparse_model_files: Sequence[str]
    i64_input_key: bool = False
    device: str | None = None
    default_value_for_each_table: Sequence[float] = field(default_factory=lambda: [0.0])


class InferenceModel:
    """A trained model for prediction and evaluation over Norm / Parquet datasets."""

    def __init__(self, model_config_path: str, config: InferenceConfig) -> None:
        if config.max_batchsize < 1:
            raise ValueError(f"max_batchsize must be at least 1, received {config.max_batchsize}.")
        with filesystems.open_file(model_config_path, "rb") as handle:
            description = graph_json.parse_graph(handle.read().decode("utf-8"))
        self.config = config
        self.graph = _build_graph(description, config.max_batchsize)
        tables = [n.params["config"] for n in self.graph.embeddings]
        if len(config.sparse_model_files) != len(tables):
            raise ValueError(
                f"The model has {len(tables)} embedding(s) but {len(config.sparse_model_files)} sparse model "
                "file(s) were given; pass one sparse model folder per embedding, in graph order."
            )
        self.network: Network = Planner(device=config.device).plan(self.graph, seed=1)
        self.runner = LocalRunner(self.network, None)
        self._load(config)

    def _load(self, config: InferenceConfig) -> None:
        parameters = self.network.dense_parameters()
        count = sum(p.numel() for p in parameters)
        flat = torch.from_numpy(dense_files.read_dense_weights(config.dense_model_file, count))
        offset = 0
        with torch.no_grad():
            for parameter in parameters:
                parameter.copy_(flat[offset : offset + parameter.numel()].view_as(parameter))
                offset += parameter.numel()
        defaults = list(config.default_value_for_each_table)
        for index, (table, path) in enumerate(zip(self.network.embed.embeddings.values(), config.sparse_model_files,
                                                  strict=True)):  # fmt: skip
            stored = sparse_files.read_sparse_model(path, embedding_vec_size=table.config.embedding_vec_size)
            slot_ids = None if stored.slot_ids is None else torch.from_numpy(stored.slot_ids.astype(np.int64))
            table.load(torch.from_numpy(stored.keys), torch.from_numpy(stored.vectors), slot_ids)
            default = defaults[index] if index < len(defaults) else defaults[-1]
            if default != 0.0:
                raise NotImplementedError(
                    f"default_value_for_each_table[{index}]={default}: only 0.0 (HugeCTR's default) is built; "
                    "missing keys read as zero vectors."
                )
        self.network.eval()

    def predict(self, num_batches: int, source: str, kind: ReaderKind = "norm", check: str = "sum",
                slot_size_array: Sequence[int] = ()) -> np.ndarray:  # fmt: skip
        """Predictions `[num_batches · max_batchsize, label_dim]` in dataset order (the source repeats)."""
        predictions, _labels = self._run(num_batches, source, kind, check, slot_size_array)
        return predictions

    def evaluate(self, num_batches: int, source: str, kind: ReaderKind = "norm", check: str = "sum",
                 slot_size_array: Sequence[int] = ()) -> float:  # fmt: skip
        """AUC of the predictions over `num_batches` batches."""
        predictions, labels = self._run(num_batches, source, kind, check, slot_size_array)
        return roc_auc(predictions, labels)

    def _run(self, num_batches: int, source: str, kind: ReaderKind, check: str,
             slot_size_array: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        if num_batches < 1:
            raise ValueError(f"num_batches must be at least 1, received {num_batches}.")
        if self.graph.data_spec is None:
            raise ValueError("The model has no Input.")
        options = ReaderOptions(
            batch_size=self.config.max_batchsize, key_type="i64" if self.config.i64_input_key else "i32",
            check="sum" if check == "sum" else "none", repeat=True, num_workers=1,
            slot_size_array=tuple(slot_size_array),
        )  # fmt: skip
        loader = Loader(make_reader(kind, source, self.graph.data_spec, options), self.runner.device)
        outputs, labels = [], []
        try:
            for _, batch in zip(range(num_batches), loader, strict=False):
                heads = self.runner.predict(batch)
                first = sorted(heads)[0]
                outputs.append(heads[first].reshape(batch.size, -1).cpu().numpy())
                labels.append(batch.label[: batch.size].cpu().numpy())
        finally:
            loader.close()
        return np.concatenate(outputs).astype(np.float32), np.concatenate(labels)


def _build_graph(description: graph_json.GraphDescription, batch_size: int) -> Graph:
    graph = Graph(batch_size)
    sparse = [
        SparseInputSpec(s["sparse_name"], s["slot_num"], tuple(s["nnz_per_slot"]), bool(s["is_fixed_length"]))
        for s in description.sparse_inputs
    ]
    graph.add_input([description.label_name], [description.label_dim], description.dense_name,
                    description.dense_dim, sparse)  # fmt: skip
    slots = {s.name: s.num_slots for s in sparse}
    for item in description.embeddings:
        graph.add_embedding(
            EmbeddingConfig(
                name=item["sparse_embedding_name"],
                bottom=item["bottom_name"],
                kind=_KINDS[item["embedding_type"]],  # type: ignore[arg-type]
                num_slots=slots[item["bottom_name"]],
                embedding_vec_size=int(item["embedding_vec_size"]),
                combiner=item["combiner"],
                workspace_size_per_gpu_in_mb=int(item["workspace_size_per_gpu_in_mb"]),
                slot_size_array=tuple(item.get("slot_size_array") or ()),
                optimizer=SparseOptimizerConfig("sgd"),
            )
        )
    for layer in description.dense_layers:
        params = {k: v for k, v in layer.items() if k not in ("layer_type", "bottom_names", "top_names")}
        graph.add_layer(layer["layer_type"], layer["bottom_names"], layer["top_names"], params)
    return graph
