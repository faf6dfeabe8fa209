"""Training-step throughput: ctrflow against a plain-PyTorch model of the same shape, in one process.

ctrflow's model is built as `hugectr.Model` builds it: a `Graph` (one `one_hot` embedding with
`slot_size_array=[rows] * tables`, HugeCTR-style), `Planner` and `LocalRunner`. The plain counterpart has one
`nn.EmbeddingBag(sparse=True)` per table with `torch.optim.SGD` (sgd), `SparseAdam` + `Adam` (adam-local), or
dense gradients with fused `Adam` (adam-global: every row moves every step, like `Update_t.Global`). Both run
on the same pre-generated batches already on the device (power-law keys, alpha 1.2), timed with CUDA events
after warm-up steps. Each engine is built, measured and freed before the next, so both fit one GPU.

Models: DLRM (bottom MLP 512-256-dim, Interaction, top MLP 1024-1024-512-256-1), DCN (MultiCross 6 beside a
1024-1024 MLP) and WDL (a dim-1 wide embedding summed into a 1024-1024-1 deep MLP), no dropout.
ctrflow replays its dense stages as CUDA graphs, as `hugectr.Solver(use_cuda_graph=True)` does by default;
`--no-cuda-graph` runs them eagerly. `--end-to-end` adds a fit-style row per precision: Raw files written by
`ctrflow.readers.generate`, read through `Loader`, data pipeline included (compare it with the step-only
row). `--check` trains a small DLRM for a few steps on CPU and on the device from the same seed and compares
the losses and tables; `--ceilings` measures device copy bandwidth and the bf16, fp32 and TF32 matmul rates;
`--profile` writes `torch.profiler` tables of a few steps.

    python benchmarks/train_step.py --quick
    python benchmarks/train_step.py --device cuda --precision fp32 bf16 fp16 --ceilings --check --end-to-end
    python benchmarks/train_step.py --device cuda --optimizer adam-local adam-global --precision bf16 --profile
    python benchmarks/train_step.py --device cuda --model dcn wdl --out-dir runs/train_step

Options take several values (one row per combination); `--alpha 0` draws uniform keys; `--engines ctrflow`
skips the plain model. Measured results and their analysis: `benchmarks/NOTES.md`.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from ctrflow.dense import optimizers as dense_optimizers
from ctrflow.embedding.types import EmbeddingConfig, SparseOptimizerConfig
from ctrflow.pipeline.graph import Graph
from ctrflow.pipeline.planner import Network, Planner
from ctrflow.pipeline.runners import LocalRunner
from ctrflow.readers import Loader, make_reader
from ctrflow.readers.generator import GeneratorConfig, generate
from ctrflow.readers.types import Batch, ReaderOptions, SparseBatch, SparseInputSpec

MODELS = ("dlrm", "dcn", "wdl")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")  # tf32: fp32 with `enable_tf32_compute=True`
OPTIMIZERS = ("sgd", "adam-local", "adam-global")
LEARNING_RATES = {"sgd": 0.01, "adam-local": 0.001, "adam-global": 0.001}
FP16_SCALER = 1024.0  # static loss scaling, as HugeCTR's mixed-precision samples
DEFAULT_ALPHA = 1.2  # power-law exponent of the keys (HugeCTR generator default); 0 draws uniform keys
NUM_BATCHES = 4  # distinct batches rotated through, so no step re-reads the last step's rows from L2


# ----------------------------------------------------------------------------------------------- shapes
@dataclass(slots=True, frozen=True)
class Shape:
    """Sizes of one benchmark model."""

    model: str
    batch: int
    rows: int
    tables: int
    dim: int
    dense_dim: int = 13
    bottom: tuple[int, ...] = (512, 256)  # DLRM bottom MLP before the final `dim` layer
    top: tuple[int, ...] = (1024, 1024, 512, 256)  # DLRM top MLP before the final 1
    deep: tuple[int, ...] = (1024, 1024)  # DCN and WDL deep MLP before the final 1
    cross_layers: int = 6


def shape_from(args: argparse.Namespace, model: str) -> Shape:
    """The shape of `model` from the command line (`--quick` shrinks every layer)."""
    dim = args.dim or (128 if model == "dlrm" else 16)
    shape = Shape(model, args.batch, args.rows, args.tables, dim)
    if args.quick:
        shape = replace(shape, bottom=(16,), top=(32, 16), deep=(32, 16), cross_layers=2)
    return shape


# ------------------------------------------------------------------------------------------------- data
def power_law_keys(count: int, rows: int, generator: torch.Generator, alpha: float) -> torch.Tensor:
    """Keys in [0, rows) drawn as `ctrflow.readers.generate` draws them: y = ((M^(1-a) - 1) x + 1)^(1/(1-a))."""
    x = torch.rand(count, generator=generator, dtype=torch.float64)
    if alpha == 0:
        return (x * rows).long().clamp(max=rows - 1)
    exponent = 1.0 - alpha
    y = ((rows**exponent - 1.0) * x + 1.0) ** (1.0 / exponent)
    return (y.round().long() - 1).clamp(0, rows - 1)


def make_batches(
    shape: Shape, count: int, device: torch.device, seed: int, alpha: float = DEFAULT_ALPHA
) -> list[Batch]:
    """`count` one-hot batches (keys are per-slot ids, as Raw files hold them), placed on `device`."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        keys = power_law_keys(shape.batch * shape.tables, shape.rows, generator, alpha)
        offsets = torch.arange(shape.batch * shape.tables + 1, dtype=torch.int64)
        label = torch.randint(0, 2, (shape.batch, 1), generator=generator).float()
        dense = torch.rand(shape.batch, shape.dense_dim, generator=generator)
        batches.append(Batch(label, dense, {"data1": SparseBatch(keys, offsets, shape.tables)}).to(device))
    return batches


# --------------------------------------------------------------------------------------- ctrflow model
def sparse_optimizer(name: str) -> SparseOptimizerConfig:
    if name == "sgd":
        return SparseOptimizerConfig("sgd", "local")
    return SparseOptimizerConfig("adam", "local" if name == "adam-local" else "global")


def _embedding(shape: Shape, name: str, dim: int, optimizer: str) -> EmbeddingConfig:
    return EmbeddingConfig(
        name, "data1", "one_hot", shape.tables, dim, "sum",
        slot_size_array=(shape.rows,) * shape.tables, optimizer=sparse_optimizer(optimizer),
    )  # fmt: skip


def _mlp(graph: Graph, bottom: str, widths: Sequence[int], prefix: str) -> str:
    """InnerProduct + ReLU per width; returns the last top."""
    for index, width in enumerate(widths):
        graph.add_layer("InnerProduct", [bottom], [f"{prefix}_fc{index}"], {"num_output": width})
        graph.add_layer("ReLU", [f"{prefix}_fc{index}"], [f"{prefix}_relu{index}"], {})
        bottom = f"{prefix}_relu{index}"
    return bottom


def _add_dlrm(graph: Graph, shape: Shape, optimizer: str) -> str:
    graph.add_embedding(_embedding(shape, "emb", shape.dim, optimizer))
    bottom = _mlp(graph, "dense", (*shape.bottom, shape.dim), "bottom")
    graph.add_layer("Interaction", [bottom, "emb"], ["interaction"], {})
    top = _mlp(graph, "interaction", shape.top, "top")
    graph.add_layer("InnerProduct", [top], ["logit"], {"num_output": 1})
    return "logit"


def _add_dcn(graph: Graph, shape: Shape, optimizer: str) -> str:
    graph.add_embedding(_embedding(shape, "emb", shape.dim, optimizer))
    graph.add_layer("Reshape", ["emb"], ["flat"], {"leading_dim": shape.tables * shape.dim})
    graph.add_layer("Concat", ["flat", "dense"], ["features"], {})
    graph.add_layer("MultiCross", ["features"], ["cross"], {"num_layers": shape.cross_layers})
    deep = _mlp(graph, "features", shape.deep, "deep")
    graph.add_layer("Concat", [deep, "cross"], ["both"], {})
    graph.add_layer("InnerProduct", ["both"], ["logit"], {"num_output": 1})
    return "logit"


def _add_wdl(graph: Graph, shape: Shape, optimizer: str) -> str:
    graph.add_embedding(_embedding(shape, "wide_emb", 1, optimizer))
    graph.add_embedding(_embedding(shape, "deep_emb", shape.dim, optimizer))
    graph.add_layer("Reshape", ["wide_emb"], ["wide_flat"], {"leading_dim": shape.tables})
    graph.add_layer("ReduceSum", ["wide_flat"], ["wide"], {"axis": 1})
    graph.add_layer("Reshape", ["deep_emb"], ["deep_flat"], {"leading_dim": shape.tables * shape.dim})
    graph.add_layer("Concat", ["deep_flat", "dense"], ["features"], {})
    deep = _mlp(graph, "features", shape.deep, "deep")
    graph.add_layer("InnerProduct", [deep], ["deep_logit"], {"num_output": 1})
    graph.add_layer("Add", ["deep_logit", "wide"], ["logit"], {})
    return "logit"


_GRAPH_BUILDERS: dict[str, Callable[[Graph, Shape, str], str]] = {"dlrm": _add_dlrm, "dcn": _add_dcn, "wdl": _add_wdl}


def build_graph(shape: Shape, optimizer: str) -> Graph:
    """The model as `hugectr.Model.add` records it."""
    graph = Graph(shape.batch)
    sparse = SparseInputSpec("data1", shape.tables, (1,) * shape.tables, True)
    graph.add_input(["label"], [1], "dense", shape.dense_dim, [sparse])
    logit = _GRAPH_BUILDERS[shape.model](graph, shape, optimizer)
    graph.add_layer("BinaryCrossEntropyLoss", [logit, "label"], ["loss"], {})
    return graph


@dataclass(slots=True)
class CtrflowModel:
    network: Network
    dense_optimizer: dense_optimizers.DenseOptimizer
    optimizer: str


def build_ctrflow(shape: Shape, optimizer: str, device: torch.device, seed: int) -> CtrflowModel:
    network = Planner(device=str(device)).plan(build_graph(shape, optimizer), seed=seed)
    lr = LEARNING_RATES[optimizer]
    parameters = network.dense_parameters()
    dense: dense_optimizers.DenseOptimizer
    dense = dense_optimizers.SGD(parameters, lr=lr) if optimizer == "sgd" else dense_optimizers.Adam(parameters, lr=lr)
    return CtrflowModel(network, dense, optimizer)


def ctrflow_runner(model: CtrflowModel, precision: str, cuda_graph: bool = True) -> LocalRunner:
    """A runner of `model` in `precision`; the runners of one model share its weights."""
    runner = LocalRunner(
        model.network,
        model.dense_optimizer,
        mixed_precision=precision in ("bf16", "fp16"),
        scaler=FP16_SCALER if precision == "fp16" else 1.0,
        cuda_graph=cuda_graph,  # hugectr.Solver's use_cuda_graph, on by default
    )
    if precision == "bf16":
        # LocalRunner offers no bf16 on CUDA (it always picks fp16 there); see NOTES.md, proposal list
        runner.autocast_dtype = torch.bfloat16
    runner.set_learning_rate(LEARNING_RATES[model.optimizer])
    return runner


# ----------------------------------------------------------------------------------------- plain model
def _plain_mlp(in_dim: int, widths: Sequence[int]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers), in_dim


class PlainModel(nn.Module):
    """The same model in plain PyTorch: one `nn.EmbeddingBag` per table."""

    def __init__(self, shape: Shape, sparse: bool, device: torch.device) -> None:
        super().__init__()
        self.shape = shape

        def bags(dim: int) -> nn.ModuleList:
            tables = nn.ModuleList()
            for _ in range(shape.tables):
                tables.append(nn.EmbeddingBag(shape.rows, dim, mode="sum", sparse=sparse, device=device))
                nn.init.uniform_(tables[-1].weight, -0.05, 0.05)
            return tables

        self.embeddings = bags(shape.dim)
        self.wide = bags(1) if shape.model == "wdl" else None
        flat = shape.tables * shape.dim + shape.dense_dim
        if shape.model == "dlrm":
            self.bottom, _ = _plain_mlp(shape.dense_dim, (*shape.bottom, shape.dim))
            n = shape.tables + 1
            self.register_buffer("pairs", torch.tril_indices(n, n, offset=-1), persistent=False)
            self.top, width = _plain_mlp(shape.dim + n * (n - 1) // 2 + 1, shape.top)
        else:
            self.top, width = _plain_mlp(flat, shape.deep)
            if shape.model == "dcn":  # (weight, bias) of each cross layer
                self.cross = nn.Parameter(torch.randn(shape.cross_layers, 2, flat) * 0.01)
                width += flat
        self.head = nn.Linear(width, 1)
        self.to(device)

    @staticmethod
    def _pool(tables: nn.ModuleList, keys: torch.Tensor) -> torch.Tensor:
        """`[B, T, dim]` from per-table key columns `keys` `[T, B]`."""
        return torch.stack([table(keys[t].unsqueeze(1)) for t, table in enumerate(tables)], dim=1)

    def forward(self, batch: Batch) -> torch.Tensor:
        keys = batch.sparse["data1"].keys.view(-1, self.shape.tables).t().contiguous()
        emb = self._pool(self.embeddings, keys)
        dense = batch.dense
        if self.shape.model == "dlrm":
            bottom = self.bottom(dense)
            features = torch.cat([bottom.unsqueeze(1).to(emb.dtype), emb], dim=1)
            gram = torch.bmm(features, features.transpose(1, 2))
            pairs = gram[:, self.pairs[0], self.pairs[1]]
            pad = pairs.new_zeros(pairs.shape[0], 1)
            return self.head(self.top(torch.cat([bottom.to(pairs.dtype), pairs, pad], dim=1)))
        x0 = torch.cat([emb.flatten(1), dense], dim=1)
        deep = self.top(x0)
        if self.shape.model == "wdl":
            assert self.wide is not None
            return self.head(deep) + self._pool(self.wide, keys).sum(dim=(1, 2)).unsqueeze(1)
        x = x0
        for weight, bias in self.cross:
            x = x0 * (x * weight).sum(dim=1, keepdim=True) + x + bias
        return self.head(torch.cat([deep, x], dim=1))

    def embedding_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name.startswith(("embeddings.", "wide."))]

    def dense_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith(("embeddings.", "wide."))]


@dataclass(slots=True)
class PlainTrainer:
    """The plain training step: autocast forward, BCE, backward, one optimizer per parameter kind."""

    model: PlainModel
    optimizers: list[torch.optim.Optimizer]
    precision: str = "fp32"

    def step(self, batch: Batch) -> None:
        with _autocast(batch.dense.device, self.precision):
            logit = self.model(batch)
        loss = F.binary_cross_entropy_with_logits(logit.float(), batch.label)
        # fp16: static scaling; SGD's learning rates are divided by the scaler instead of the gradients
        (loss * (FP16_SCALER if self.precision == "fp16" else 1.0)).backward()
        for optimizer in self.optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def build_plain(shape: Shape, optimizer: str, device: torch.device) -> PlainModel:
    return PlainModel(shape, sparse=optimizer != "adam-global", device=device)


def plain_trainer(model: PlainModel, optimizer: str, precision: str) -> PlainTrainer:
    lr = LEARNING_RATES[optimizer] / (FP16_SCALER if precision == "fp16" and optimizer == "sgd" else 1.0)
    cuda = next(model.parameters()).is_cuda
    sparse, dense = model.embedding_parameters(), model.dense_parameters()
    optimizers: list[torch.optim.Optimizer]
    if optimizer == "sgd":
        optimizers = [torch.optim.SGD(sparse, lr=lr), torch.optim.SGD(dense, lr=lr)]
    elif optimizer == "adam-local":
        optimizers = [torch.optim.SparseAdam(sparse, lr=lr), torch.optim.Adam(dense, lr=lr, fused=cuda)]
    else:
        optimizers = [torch.optim.Adam(sparse + dense, lr=lr, fused=cuda)]
    return PlainTrainer(model, optimizers, precision)


def _autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    if precision in ("fp32", "tf32"):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


# ----------------------------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_step(step: Callable[[Batch], object], batches: Iterator[Batch], warmup: int, steps: int,
                     device: torch.device) -> float:  # fmt: skip
    """Mean seconds of one step over `steps` steps after `warmup` untimed ones (CUDA events on CUDA)."""
    for _ in range(warmup):
        step(next(batches))
    synchronize(device)
    if device.type != "cuda":
        start_time = time.perf_counter()
        for _ in range(steps):
            step(next(batches))
        return (time.perf_counter() - start_time) / steps
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        step(next(batches))
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0 / steps


def rotate(batches: Sequence[Batch]) -> Iterator[Batch]:
    while True:
        yield from batches


def profile_steps(step: Callable[[Batch], object], batches: Iterator[Batch], device: torch.device, label: str,
                  out_dir: str, steps: int = 3) -> str:  # fmt: skip
    """Profile `steps` steps; write the op table to `out_dir`; return its head and the device-busy share."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    step(next(batches))
    synchronize(device)
    begin = time.perf_counter()
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            step(next(batches))
        synchronize(device)
    wall = time.perf_counter() - begin
    averages = profiler.key_averages()
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = averages.table(sort_by=sort, row_limit=25, max_name_column_width=60)
    cpu_table = averages.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=60)
    kernels = [e for e in averages if e.device_type == DeviceType.CUDA]  # device events only: no double count
    busy = sum(e.self_device_time_total for e in kernels) / 1e6  # µs → s
    summary = f"{label}: {steps} steps, wall {wall * 1e3:.1f} ms, device busy {busy * 1e3:.1f} ms"
    path = os.path.join(out_dir, f"profile_{label.replace(' ', '_')}.txt")
    with open(path, "w") as handle:
        handle.write(f"{summary}\n\nby device time\n{table}\n\nby self CPU time\n{cpu_table}\n")
    return summary + "\n" + "\n".join(table.splitlines()[:13])


# -------------------------------------------------------------------------------------------- measuring
@dataclass(slots=True)
class Row:
    """One line of the table: a configuration measured on both engines."""

    config: str
    seconds: dict[str, float] = field(default_factory=dict)
    batch: int = 0
    note: str = ""

    def samples_per_second(self, engine: str) -> float:
        seconds = self.seconds.get(engine, math.nan)
        return self.batch / seconds if seconds > 0 else math.nan


@dataclass(slots=True)
class Context:
    args: argparse.Namespace
    device: torch.device
    batches: list[Batch]
    raw_file: str | None
    rows: dict[str, Row]
    notes: list[str]


def measure_engine(context: Context, engine: str, shape: Shape, optimizer: str) -> None:
    """Build one engine's model, time every precision (and end to end), profile, free it."""
    args, device = context.args, context.device
    begin = time.perf_counter()
    model: CtrflowModel | PlainModel
    model = (
        build_ctrflow(shape, optimizer, device, args.seed)
        if engine == "ctrflow"
        else build_plain(shape, optimizer, device)
    )
    synchronize(device)
    context.notes.append(f"{engine} {shape.model} {optimizer}: built in {time.perf_counter() - begin:.1f} s")
    for precision in args.precision:
        step = _step_function(model, optimizer, precision, not args.no_cuda_graph)
        name = f"{shape.model} {precision} {optimizer}"
        row = context.rows.setdefault(name, Row(name, batch=shape.batch))
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"  # as hugectr.Model does on compile()
        row.seconds[engine] = seconds_per_step(step, rotate(context.batches), args.warmup, args.steps, device)
        if args.profile:
            label = f"{engine} {name}"
            context.notes.append(profile_steps(step, rotate(context.batches), device, label, args.out_dir))
        if context.raw_file is not None:
            row = context.rows.setdefault(name + " end-to-end Raw", Row(name + " end-to-end Raw", batch=shape.batch))
            row.seconds[engine] = end_to_end_seconds(context, shape, step)
        torch.backends.cuda.matmul.allow_tf32 = False
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _step_function(
    model: CtrflowModel | PlainModel, optimizer: str, precision: str, cuda_graph: bool
) -> Callable[[Batch], object]:
    if isinstance(model, CtrflowModel):
        return ctrflow_runner(model, precision, cuda_graph).train_step
    return plain_trainer(model, optimizer, precision).step


def end_to_end_seconds(context: Context, shape: Shape, step: Callable[[Batch], object]) -> float:
    """Seconds per step of a fit-style loop over the Raw file through `Loader` (reader and copies included)."""
    assert context.raw_file is not None
    spec = build_graph(shape, "sgd").data_spec
    assert spec is not None
    workers = context.args.reader_workers
    options = ReaderOptions(batch_size=shape.batch, slot_size_array=(shape.rows,) * shape.tables, num_workers=workers)
    loader = Loader(make_reader("raw", context.raw_file, spec, options), context.device)
    try:
        return seconds_per_step(step, iter(loader), context.args.warmup, context.args.steps, context.device)
    finally:
        loader.close()


def write_raw_file(shape: Shape, directory: str, seed: int, alpha: float) -> str:
    """A Raw training file of `NUM_BATCHES` batches (the loader repeats it), written by `generate`."""
    path = os.path.join(directory, "train.bin")
    config = GeneratorConfig(
        "raw", 1, shape.dense_dim, shape.tables, False, path, os.path.join(directory, "eval.bin"),
        (shape.rows,) * shape.tables, num_samples=NUM_BATCHES * shape.batch, eval_num_samples=shape.batch,
        dist_type="power_law" if alpha else "uniform", alpha=alpha or DEFAULT_ALPHA, seed=seed, progress=False,
    )  # fmt: skip
    generate(config)
    return path


# ---------------------------------------------------------------------------------------- ceilings, check
def measure_ceilings(device: torch.device) -> dict[str, float]:
    """Device copy bandwidth (bytes read + written per second) and dense matmul rates (FLOP/s): bf16, and
    fp32 with TF32 off (the fp32 rows run so) and on (HugeCTR's `enable_tf32_compute=True`)."""
    copy_seconds = _timed_copy(1 << 29, device)  # 2 GiB of float32
    rates = {"copy_bytes_per_s": 2 * (1 << 29) * 4 / copy_seconds}
    n = 8192
    tf32 = torch.backends.cuda.matmul.allow_tf32
    for name, dtype, allow_tf32 in (("bf16", torch.bfloat16, False), ("fp32", torch.float32, False),
                                    ("tf32", torch.float32, True)):  # fmt: skip
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        rates[f"{name}_flop_per_s"] = 2 * n**3 / _timed(lambda: a @ b, device)  # noqa: B023 (timed at once)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    return rates


def _timed_copy(numel: int, device: torch.device) -> float:
    source = torch.rand(numel, device=device)
    target = torch.empty_like(source)
    return _timed(lambda: target.copy_(source), device)


def _timed(work: Callable[[], object], device: torch.device, repeats: int = 10) -> float:
    for _ in range(3):
        work()
    synchronize(device)
    begin = time.perf_counter()
    for _ in range(repeats):
        work()
    synchronize(device)
    return (time.perf_counter() - begin) / repeats


def check_against_cpu(
    device: torch.device, seed: int, optimizer: str = "sgd", steps: int = 5, cuda_graph: bool = True
) -> tuple[bool, str]:
    """Train a small fp32 DLRM on CPU and on `device` from one seed; losses and tables must agree closely."""
    shape = Shape("dlrm", 512, 2000, 4, 16, bottom=(32,), top=(64, 32))
    batches = make_batches(shape, steps, torch.device("cpu"), seed + 1)
    losses: dict[str, list[float]] = {}
    tables: dict[str, torch.Tensor] = {}
    for where in (torch.device("cpu"), device):
        model = build_ctrflow(shape, optimizer, where, seed)
        runner = ctrflow_runner(model, "fp32", cuda_graph)
        losses[where.type] = []
        for batch in batches:
            runner.train_step(batch.to(where))
            losses[where.type].append(runner.last_loss)
        tables[where.type] = torch.cat([m.shard.weights.cpu() for m in model.network.modules() if hasattr(m, "shard")])
    worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(losses["cpu"], losses[device.type], strict=True))
    table_difference = float((tables["cpu"] - tables[device.type]).abs().max())
    ok = worst < 1e-4 and table_difference < 1e-5  # fp32 both sides, TF32 off: only summation order differs
    text = (
        f"{'OK' if ok else 'MISMATCH'} ({optimizer}): max relative loss difference {worst:.2e} over {steps} steps, "
        f"max table difference {table_difference:.2e}"
    )
    return ok, f"{text}; cpu {losses['cpu']}, {device.type} {losses[device.type]}"


# ----------------------------------------------------------------------------------------------- output
def bandwidth_note(shape: Shape, seconds: float | None, copy_bytes_per_s: float) -> str:
    """Adam Global's bound: weights, m and v of every row read and written once per step."""
    tables = 2 if shape.model == "wdl" else 1
    per_row_width = shape.dim + (1 if tables == 2 else 0)
    step_bytes = shape.rows * shape.tables * per_row_width * 4 * 3 * 2
    bound = step_bytes / copy_bytes_per_s
    text = (f"adam-global bound: {step_bytes / 1e9:.1f} GB read+written per step / {copy_bytes_per_s / 1e12:.2f} TB/s "
            f"= {bound * 1e3:.1f} ms, {shape.batch / bound:,.0f} samples/s")  # fmt: skip
    if seconds:
        text += f"; ctrflow reaches {bound / seconds:.0%} of it"
    return text


def format_table(rows: Sequence[Row]) -> str:
    header = (f"{'config':<34} {'ctrflow samples/s':>18} {'plain samples/s':>16} {'ratio':>7} "
              f"{'ctrflow ms':>11} {'plain ms':>9}")  # fmt: skip
    lines = [header, "-" * len(header)]
    for row in rows:
        ours, theirs = row.samples_per_second("ctrflow"), row.samples_per_second("plain")
        lines.append(
            f"{row.config:<34} {ours:>18,.0f} {theirs:>16,.0f} {ours / theirs:>6.2f}x "
            f"{row.seconds.get('ctrflow', math.nan) * 1e3:>11.2f} {row.seconds.get('plain', math.nan) * 1e3:>9.2f}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", choices=MODELS, default=["dlrm"])
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["fp32"])
    parser.add_argument("--optimizer", nargs="+", choices=OPTIMIZERS, default=["sgd"])
    parser.add_argument("--batch", type=int, default=None, help="samples per step (65,536)")
    parser.add_argument("--rows", type=int, default=None, help="rows per table (1,000,000)")
    parser.add_argument("--tables", type=int, default=None, help="tables (slots), 26")
    parser.add_argument("--dim", type=int, default=None, help="embedding width (DLRM 128, DCN and WDL 16)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (20)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (5)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (CUDA when available)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="key power-law exponent, 0 = uniform")
    parser.add_argument("--quick", action="store_true", help="tiny CPU shapes and few steps (the smoke test)")
    parser.add_argument("--end-to-end", action="store_true", help="add a row reading Raw files through Loader")
    parser.add_argument("--no-cuda-graph", action="store_true", help="run ctrflow's dense stages eagerly")
    parser.add_argument("--reader-workers", type=int, default=4, help="Raw reader threads of --end-to-end (4)")
    parser.add_argument("--check", action="store_true", help="compare device and CPU losses on a small DLRM")
    parser.add_argument("--ceilings", action="store_true", help="measure copy bandwidth and matmul rates")
    parser.add_argument("--profile", action="store_true", help="write torch.profiler tables to --out-dir")
    parser.add_argument("--out-dir", default=".", help="where profiles and results.json go")
    parser.add_argument("--engines", nargs="+", choices=("ctrflow", "plain"), default=["ctrflow", "plain"])
    args = parser.parse_args(argv)
    small = {"batch": 256, "rows": 1000, "tables": 4, "dim": 8, "steps": 3, "warmup": 1}
    large = {"batch": 65_536, "rows": 1_000_000, "tables": 26, "dim": None, "steps": 20, "warmup": 5}
    for name, value in (small if args.quick else large).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.device is None:
        args.device = "cpu" if args.quick or not torch.cuda.is_available() else "cuda"
    return args


def run_model(context: Context, model: str) -> None:
    args = context.args
    shape = shape_from(args, model)
    context.batches = make_batches(shape, NUM_BATCHES, context.device, args.seed, args.alpha)
    with tempfile.TemporaryDirectory(prefix="ctrflow-raw-") as directory:
        context.raw_file = write_raw_file(shape, directory, args.seed, args.alpha) if args.end_to_end else None
        for optimizer in args.optimizer:
            for engine in args.engines:
                measure_engine(context, engine, shape, optimizer)
            copy_rate = getattr(args, "copy_bytes_per_s", None)
            if optimizer == "adam-global" and copy_rate:
                name = f"{model} {args.precision[0]} adam-global"
                context.notes.append(bandwidth_note(shape, context.rows[name].seconds.get("ctrflow"), copy_rate))
    context.batches = []


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run the benchmark; print and return the table's rows."""
    args = parse_args(argv)
    device = torch.device(args.device)
    os.makedirs(args.out_dir, exist_ok=True)
    context = Context(args, device, [], None, {}, [])
    if args.ceilings or (device.type == "cuda" and "adam-global" in args.optimizer):
        ceilings = measure_ceilings(device)
        args.copy_bytes_per_s = ceilings["copy_bytes_per_s"]
        context.notes.append(f"ceilings on {_device_name(device)}: copy {ceilings['copy_bytes_per_s'] / 1e12:.2f} TB/s "
                             f"(read+write), matmul bf16 {ceilings['bf16_flop_per_s'] / 1e12:.0f}, fp32 "
                             f"{ceilings['fp32_flop_per_s'] / 1e12:.1f}, tf32 {ceilings['tf32_flop_per_s'] / 1e12:.0f} "
                             "TFLOP/s")  # fmt: skip
    if args.check:
        for optimizer in args.optimizer:
            checked = check_against_cpu(device, args.seed, optimizer, cuda_graph=not args.no_cuda_graph)
            context.notes.append("check vs CPU: " + checked[1])
    for model in args.model:
        run_model(context, model)
    rows = list(context.rows.values())
    print("\n".join(context.notes))
    print(f"\n{_device_name(device)}; warm-up {args.warmup}, timed steps {args.steps}, batch {args.batch}")
    print(format_table(rows))
    _write_json(args, rows, context.notes)
    return rows


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def _write_json(args: argparse.Namespace, rows: Sequence[Row], notes: Sequence[str]) -> None:
    if args.out_dir == ".":
        return
    payload = {"argv": vars(args), "rows": [asdict(r) for r in rows], "notes": list(notes)}
    name = "results_" + "_".join([*args.model, *args.optimizer, *args.precision]) + ".json"
    with open(os.path.join(args.out_dir, name), "w") as handle:
        json.dump(payload, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
