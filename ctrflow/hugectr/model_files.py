"""The facade model's files: snapshots, `load_*`, graph JSON and exported predictions.

Every path may be a URL (`ctrflow.storage.filesystems`); when `Solver.data_source_params.use_hdfs` is
set, plain paths are read and written on that HDFS, as in v3.5 (formats spec §10).
Layouts are HugeCTR v3.5's (formats spec §5-§7, §9); ctrflow adds a side file with the optimizer step
counters, which v3.5 loses and would ignore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ctrflow.dense import optimizers as dense_optimizers
from ctrflow.hugectr import state_routing
from ctrflow.hugectr.translation import from_names, plain
from ctrflow.pipeline.graph import EMBEDDING_TYPE_NAMES
from ctrflow.pipeline.types import GraphError
from ctrflow.storage import dense_files, filesystems, graph_json, sparse_files
from ctrflow.storage.binary_arrays import read_whole
from ctrflow.storage.graph_embeddings import embedding_layer
from ctrflow.storage.graph_layers import dense_layer_json
from ctrflow.storage.predictions import append_predictions

if TYPE_CHECKING:
    from ctrflow.hugectr.model import Model

STEPS_SUFFIX = ".steps.json"  # ctrflow's side file with an optimizer's step counter
# ctrflow's side file with the exact float32 BatchNorm running statistics (.ntp.json keeps 6 decimals)
STATISTICS_SUFFIX = ".ntp.f32"

_DENSE_OPTIMIZERS = {
    "Adam": ("Adam", ("beta1", "beta2", "epsilon")),
    "AdaGrad": ("AdaGrad", ("initial_accu_value", "epsilon")),
    "MomentumSGD": ("MomentumSGD", ("momentum_factor",)),
    "Nesterov": ("Nesterov", ("momentum_factor",)),
    "SGD": ("SGD", ()),
}


def dense_optimizer(opt_params: Any, parameters: list[torch.nn.Parameter]) -> dense_optimizers.DenseOptimizer | None:
    """The model's dense optimizer (semantics spec §4.2) over the dense weights, or None without any."""
    if not parameters:
        return None
    kind = plain(opt_params.optimizer_type)
    class_name, hyper = _DENSE_OPTIMIZERS["AdaGrad" if kind == "Adagrad" else kind]
    cls = getattr(dense_optimizers, class_name)
    return cls(parameters, lr=0.0, **{name: getattr(opt_params, name) for name in hyper})


def _url(model: Model, path: str) -> str:
    params = getattr(model.solver, "data_source_params", None)
    if params is not None and getattr(params, "use_hdfs", False) and "://" not in path:
        return f"hdfs://{params.namenode}:{params.port}/{path.lstrip('/')}"
    return path


def _network(model: Model, action: str) -> Any:
    if model.network is None or model.runner is None:
        raise RuntimeError(f"Cannot {action} before calling Model.compile().")
    return model.network


# ------------------------------------------------------------------------------------------ save
def save_params(model: Model, prefix: str, iteration: int) -> None:
    """`save_params_to_files(prefix, iter)`: sparse folders and states first, then dense (formats spec §5.1).

    Each optimizer-state file gets a `<file>.steps.json` beside it with the optimizer's step counter, which
    v3.5 does not save (so Adam's bias correction would restart) and ignores.
    """
    network = _network(model, "save the parameters")
    half = bool(model.solver.use_mixed_precision)
    writer = model.rank == 0  # several ranks: rank 0 writes what every rank gathered (formats spec §6.2, §6.4)
    for index, table in enumerate(network.embed.embeddings.values()):
        keys, vectors, slot_ids, states = _table_contents(table, model.world_size)
        if not writer:
            continue
        sparse_files.write_sparse_model(
            _url(model, dense_files.sparse_model_dir_name(prefix, index, iteration)),
            keys.cpu().numpy(),
            vectors.cpu().numpy(),
            None if slot_ids is None else slot_ids.cpu().numpy(),
        )
        states_url = _url(model, dense_files.sparse_optimizer_file_name(prefix, index, iteration))
        sparse_files.write_sparse_optimizer_states(states_url, states, half=half)
        dense_files.write_optimizer_steps(states_url + STEPS_SUFFIX, {"sparse": _sparse_step(table)})
    if not writer:
        return
    model.log.info("Dumping sparse weights to files, successful")
    model.log.info("Dumping sparse optimzer states to files, successful")
    parameters = network.dense_parameters()
    dense_files.write_dense_weights(_url(model, dense_files.dense_file_name(prefix, iteration)), parameters)
    model.log.info("Dumping dense weights to file, successful")
    optimizer = model.runner.dense_optimizer if model.runner is not None else None
    dense_states = optimizer.export_states(parameters) if optimizer is not None else []
    states_url = _url(model, dense_files.dense_optimizer_file_name(prefix, iteration))
    dense_files.write_dense_optimizer_states(states_url, list(dense_states), half=half)
    if optimizer is not None:
        dense_files.write_optimizer_steps(states_url + STEPS_SUFFIX, {"dense": optimizer.step_count})
    model.log.info("Dumping dense optimizer states to file, successful")
    statistics = _batch_norm_statistics(network)
    if statistics:
        url = _url(model, dense_files.non_trainable_file_name(prefix, iteration))
        dense_files.write_non_trainable_params(url, statistics)
        exact = np.concatenate([np.concatenate([mean, var]) for mean, var in statistics]).astype(np.float32)
        with filesystems.atomic_write(
            _url(model, dense_files.dense_file_name(prefix, iteration)) + STATISTICS_SUFFIX
        ) as out:
            out.write(exact.tobytes())
        model.log.info("Dumping untrainable weights to file, successful")


def _table_contents(table: Any, world_size: int) -> tuple[Any, Any, Any, list[list[np.ndarray]]]:
    """Keys, vectors, slot ids and the optimizer-state blocks of one table, over all ranks."""
    if world_size == 1:
        keys, vectors, slot_ids = table.dump()
        return keys, vectors, slot_ids, [[s.detach().cpu().numpy()] for s in table.optimizer_states()]
    keys, vectors, slot_ids = table.gather_dump()
    states = [s.detach().cpu().numpy() for s in table.gather_optimizer_states()]
    return keys, vectors, slot_ids, [list(np.split(state, world_size)) for state in states]


def _sparse_step(table: Any) -> int:
    shard = getattr(table, "shard", table)
    return int(getattr(shard, "step_count", 0))


def _batch_norm_statistics(network: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (layer.running_mean.detach().cpu().numpy(), layer.running_var.detach().cpu().numpy())
        for layer in network.dense_layers()
        if layer.layer_type == "BatchNorm"
    ]


# ------------------------------------------------------------------------------------------ load
def load_dense_weights(model: Model, path: str) -> None:
    network = _network(model, "load the dense weights")
    parameters = network.dense_parameters()
    count = sum(p.numel() for p in parameters)
    flat = torch.from_numpy(dense_files.read_dense_weights(_url(model, path), count))
    _scatter(flat, parameters)
    layers = [layer for layer in network.dense_layers() if layer.layer_type == "BatchNorm"]
    for layer, (mean, var) in zip(layers, _read_statistics(model, path, layers), strict=False):
        layer.running_mean.copy_(torch.from_numpy(mean))
        layer.running_var.copy_(torch.from_numpy(var))


def _read_statistics(model: Model, path: str, layers: list[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """BatchNorm running statistics saved beside a dense file: exact float32 if ctrflow wrote them, else the
    6-decimal `.ntp.json` (v3.5 writes it but never reads it), else none."""
    exact_url = _url(model, path + STATISTICS_SUFFIX)
    if filesystems.exists(exact_url):
        counts = [int(layer.running_mean.numel()) for layer in layers]
        values = read_whole(exact_url, np.dtype(np.float32), "BatchNorm statistics")
        if values.size != 2 * sum(counts):
            raise ValueError(
                f"{exact_url}: {values.size} values but the model's BatchNorm layers need {2 * sum(counts)}; "
                "the file belongs to another model."
            )
        result, offset = [], 0
        for count in counts:
            result.append((values[offset : offset + count], values[offset + count : offset + 2 * count]))
            offset += 2 * count
        return result
    text_url = _url(model, path + ".ntp.json")
    return dense_files.read_non_trainable_params(text_url) if filesystems.exists(text_url) else []


def load_dense_optimizer_states(model: Model, path: str) -> None:
    network = _network(model, "load the dense optimizer states")
    optimizer = model.runner.dense_optimizer if model.runner is not None else None
    if optimizer is None:
        return
    parameters = network.dense_parameters()
    count = sum(p.numel() for p in parameters)
    num_states = len(optimizer.export_states(parameters))
    states = dense_files.read_dense_optimizer_states(
        _url(model, path), count, num_states, half=bool(model.solver.use_mixed_precision)
    )
    steps = dense_files.read_optimizer_steps(_url(model, path) + STEPS_SUFFIX) or {}
    optimizer.import_states(parameters, [torch.from_numpy(s.copy()) for s in states], step=steps.get("dense", 0))


def _tables_for(model: Model, files: list[str] | dict[str, str], what: str) -> list[tuple[Any, str]]:
    tables = _network(model, f"load the {what}").embed.embeddings
    if isinstance(files, dict):
        unknown = [name for name in files if name not in tables]
        if unknown:
            raise ValueError(f"No such embedding name: {unknown[0]}; embeddings: {', '.join(tables)}.")
        return [(tables[name], path) for name, path in files.items()]
    files = list(files)
    if len(files) != len(tables):
        raise ValueError(
            f"The size of sparse {what} files should be equal to the number of embeddings: received "
            f"{len(files)} file(s) for {len(tables)} embedding(s) ({', '.join(tables)})."
        )
    return list(zip(tables.values(), files, strict=True))


def load_sparse_weights(model: Model, files: list[str] | dict[str, str]) -> None:
    for table, path in _tables_for(model, files, "embedding"):
        config = table.config
        stored = sparse_files.read_sparse_model(_url(model, path), embedding_vec_size=config.embedding_vec_size)
        slot_ids = None if stored.slot_ids is None else torch.from_numpy(stored.slot_ids.astype(np.int64))
        keys = torch.from_numpy(stored.keys)
        table.load(keys, torch.from_numpy(stored.vectors), slot_ids)
        # the file's key order tells which saved optimizer-state row belongs to which key (state_routing.py)
        model.loaded_keys[config.name] = (keys, slot_ids)


def load_sparse_optimizer_states(model: Model, files: list[str] | dict[str, str]) -> None:
    """Load sparse optimizer states saved by any number of ranks (formats spec §6.4).

    States saved by as many ranks as this run load block for block. Otherwise each key's saved row is found
    through the key order of the sparse model loaded with `load_sparse_weights` (see `state_routing.py`).
    """
    half = bool(model.solver.use_mixed_precision)
    for table, path in _tables_for(model, files, "optimizer state"):
        config, url = table.config, _url(model, path)
        num_states, width = len(table.optimizer_states()), config.embedding_vec_size
        if num_states == 0:
            continue
        ranks = state_routing.saved_world_size(config, filesystems.file_size(url), num_states, 2 if half else 4)
        capacity = config.capacity_per_rank(ranks)
        states = sparse_files.read_sparse_optimizer_states(url, num_states, ranks, capacity, width, half=half)
        if ranks == model.world_size:  # rank blocks in rank order; a shard picks its own
            table.load_optimizer_states([torch.from_numpy(s.reshape(-1, width).copy()) for s in states])
        else:
            _load_rerouted_states(model, table, states.reshape(num_states, ranks * capacity, width), ranks)
        steps = dense_files.read_optimizer_steps(url + STEPS_SUFFIX)
        if steps is not None:
            getattr(table, "shard", table).step_count = steps.get("sparse", 0)


def _load_rerouted_states(model: Model, table: Any, states: np.ndarray, saved_ranks: int) -> None:
    config = table.config
    if config.name not in model.loaded_keys:
        raise ValueError(
            f'Embedding "{config.name}": its optimizer states were saved by {saved_ranks} rank(s) and this run has '
            f"{model.world_size}; call load_sparse_weights with the sparse model saved with them first, so that "
            "each key's saved row can be found."
        )
    file_keys, file_slots = model.loaded_keys[config.name]
    rows = state_routing.saved_rows(config, file_keys, file_slots, saved_ranks)
    shard = getattr(table, "shard", None)
    my_keys = (shard if shard is not None else table).dump()[0].cpu()
    base = (shard if shard is not None else table).optimizer_states()
    local = state_routing.local_states(states, file_keys, rows, my_keys, base)
    (shard if shard is not None else table).load_optimizer_states(local)


def _scatter(flat: torch.Tensor, parameters: list[torch.nn.Parameter]) -> None:
    offset = 0
    with torch.no_grad():
        for parameter in parameters:
            count = parameter.numel()
            parameter.copy_(flat[offset : offset + count].view_as(parameter))
            offset += count


# ------------------------------------------------------------------------------------ graph JSON
def graph_to_json(model: Model, path: str) -> None:
    """`graph_to_json(file)`: formats spec §7, readable by v3.5 and by `construct_from_json`."""
    graph = model.graph
    graph.finalize()
    if graph.data_spec is None:
        raise GraphError("graph_to_json(): the model has no Input.")
    sparse = [
        {
            "top": s.name,
            "nnz_per_slot": list(s.nnz_per_slot),
            "is_fixed_length": s.is_fixed_length,
            "slot_num": s.num_slots,
        }
        for s in graph.data_spec.sparse
    ]
    layers = [
        graph_json.data_layer(
            list(graph.label_names), list(graph.label_dims), graph.dense_name, graph.data_spec.dense_dim, sparse
        )
    ]
    for node in graph.embeddings:
        config = node.params["config"]
        layers.append(
            embedding_layer(
                EMBEDDING_TYPE_NAMES[config.kind],
                config.bottom,
                config.name,
                config.workspace_size_per_gpu_in_mb,
                config.capacity_per_rank(model.world_size) * model.world_size,
                config.embedding_vec_size,
                config.combiner,
                list(config.slot_size_array),
                _optimizer_json(config.optimizer),
            )
        )
    mixed = bool(model.solver.use_mixed_precision)
    for node in graph.layers:
        layer = dense_layer_json(node.type_name, list(node.bottoms), list(node.tops), node.params, mixed)
        if layer["type"] == "":
            layer["type"] = node.type_name  # ctrflow runs every type in both precisions (docs/compatibility.md)
        layers.append(layer)
    text = graph_json.dumps(graph_json.graph(layers, model.solver.model_name))
    with filesystems.atomic_write(_url(model, path), "wb") as handle:
        handle.write(text.encode("utf-8"))


def _optimizer_json(config: Any) -> dict[str, Any]:
    names = {"adam": "Adam", "adagrad": "AdaGrad", "momentum_sgd": "MomentumSGD", "nesterov": "Nesterov", "sgd": "SGD"}
    updates = {"global": "Global", "local": "Local", "lazy_global": "LazyGlobal"}
    return {
        "optimizer_type": names[config.kind],
        "update_type": updates[config.update_type],
        "beta1": config.beta1,
        "beta2": config.beta2,
        "epsilon": config.epsilon,
        "initial_accu_value": config.initial_accu_value,
        "momentum_factor": config.momentum_factor,
        "atomic_update": config.atomic_update,
    }


def construct_from_json(model: Model, path: str, include_dense_network: bool) -> None:
    """Rebuild Input, embeddings and (optionally) the dense network from a graph JSON file."""
    from ctrflow.hugectr import layers as facade
    from ctrflow.hugectr.optimizer_params import CreateOptimizer

    with filesystems.open_file(_url(model, path), "rb") as handle:
        description = graph_json.parse_graph(handle.read().decode("utf-8"))
    sparse = [
        facade.DataReaderSparseParam(s["sparse_name"], s["nnz_per_slot"], s["is_fixed_length"], s["slot_num"])
        for s in description.sparse_inputs
    ]
    model.add(
        facade.Input(
            label_dim=description.label_dim,
            label_name=description.label_name,
            dense_dim=description.dense_dim,
            dense_name=description.dense_name,
            data_reader_sparse_param_array=sparse,
        )
    )
    for item in description.embeddings:
        kwargs = from_names(item)
        optimizer = kwargs.pop("optimizer", None)
        if optimizer is not None:
            kwargs["optimizer"] = CreateOptimizer(**from_names(optimizer))
        kwargs.pop("hybrid_embedding_param", None)
        model.add(facade.SparseEmbedding(**kwargs))
    if include_dense_network:
        for item in description.dense_layers:
            try:
                model.add(facade.DenseLayer(**from_names(item)))
            except GraphError as error:
                missing_label = item.get("layer_type", "").endswith("Loss") and description.label_name not in item.get(
                    "bottom_names", []
                )
                if not missing_label:
                    raise
                raise GraphError(
                    f"{error} The graph JSON keeps only one label ({description.label_name!r}), as HugeCTR v3.5 writes "
                    "it, so a multi-label model cannot be rebuilt from it: rebuild the Input and losses in Python, "
                    "or use construct_from_json(..., include_dense_network=False) and add the dense layers."
                ) from None


# ---------------------------------------------------------------------------------- predictions
def export_predictions(model: Model, prediction_path: str, label_path: str) -> None:
    """Append the last evaluation batch's predictions and labels of the first loss (formats spec §9)."""
    if not model.last_eval or model.rank != 0:  # several ranks: predictions were gathered, rank 0 writes
        return
    first = sorted(model.last_eval)[0]
    prediction, label = model.last_eval[first]
    append_predictions(
        _url(model, prediction_path), _url(model, label_path), prediction.cpu().numpy(), label.float().cpu().numpy()
    )
