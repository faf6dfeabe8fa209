"""Reader throughput: ctrflow's Norm / Raw / Parquet readers against a plain NumPy / pyarrow read.

Generates one dataset per format (26 one-hot i32 slots, 1 label, 13 dense: the Criteo shape), then times,
in the same run and interleaved `--repeats` times, every ctrflow reader (built and read for one epoch, per
worker count) against the plain read of the same files (no checks, no CSR offsets, no torch):

* Norm: `np.fromfile` of each file as fixed-size records; label+dense copied, keys widened to int64.
* Raw: `np.memmap` of the file, then per batch of `--batch-size` records the arrays ctrflow hands out:
  label float32 `[B, 1]` and dense float32 `[B, 13]` = ln(v + 1) (both contiguous, computed in place) and
  keys int64 `[B * 26]` (the int32 read as uint32).
* Parquet: `pyarrow.parquet.read_table` of each file (all 40 columns, which ctrflow reads too) and
  `to_numpy` of every column.

Prints one table: median samples/s of each side, the ratio of the medians and the range of the per-repeat
ratios. The machine's load moves both sides; compare ratios from one run.

    python benchmarks/readers.py --samples 1048576 --workers 1 2 --repeats 7
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pyarrow.parquet as pq

from ctrflow.readers import DataSpec, ReaderOptions, SparseInputSpec, generate, make_reader, read_file_list
from ctrflow.readers.generator import GeneratorConfig

SLOTS, DENSE = 26, 13
SPEC = DataSpec(1, DENSE, (SparseInputSpec("data", SLOTS, (1,) * SLOTS, True),))


def make_datasets(folder: str, samples: int, files: int) -> dict[str, GeneratorConfig]:
    configs = {}
    for fmt in ("norm", "raw", "parquet"):
        source = f"{folder}/{fmt}/train.bin" if fmt == "raw" else f"{folder}/{fmt}/file_list.txt"
        eval_source = f"{folder}/{fmt}/test.bin" if fmt == "raw" else f"{folder}/{fmt}/file_list_test.txt"
        config = GeneratorConfig(
            fmt, 1, DENSE, SLOTS, False, source, eval_source, (100_000,) * SLOTS,
            num_files=files, eval_num_files=1, num_samples_per_file=samples // files,
            num_samples=samples, eval_num_samples=16, float_label_dense=False, seed=1, progress=False,
        )  # fmt: skip
        generate(config)
        configs[fmt] = config
    return configs


def time_ctrflow(fmt: str, source: str, workers: int, batch_size: int, slot_sizes: tuple[int, ...]) -> float:
    """Samples/s of one epoch, building the reader included (the plain reads open their files too)."""
    start, rows = time.perf_counter(), 0
    options = ReaderOptions(batch_size=batch_size, repeat=False, num_workers=workers, slot_size_array=slot_sizes)
    reader = make_reader(fmt, source, SPEC, options)  # type: ignore[arg-type]
    for batch in reader:
        rows += batch.size
    return rows / (time.perf_counter() - start)


def plain_norm(source: str) -> int:
    stride = 4 + 4 * (1 + DENSE) + SLOTS * 8 + 1
    slot = np.dtype([("nnz", "<i4"), ("key", "<u4")])
    layout = np.dtype([("len", "<i4"), ("ld", "<f4", (1 + DENSE,)), ("slots", slot, (SLOTS,)), ("chk", "u1")])
    if layout.itemsize != stride:
        raise RuntimeError(f"plain Norm layout is {layout.itemsize} bytes, expected {stride}")
    rows = 0
    for path in read_file_list(source):
        records = np.fromfile(path, layout, offset=69)
        label_dense, keys = records["ld"].copy(), records["slots"]["key"].astype(np.int64)
        rows += label_dense.shape[0] + 0 * keys.shape[0]
    return rows


def plain_raw(source: str, batch_size: int) -> int:
    layout = np.dtype([("ld", "<i4", (1 + DENSE,)), ("keys", "<i4", (SLOTS,))])
    records = np.memmap(source, layout, mode="r")
    rows = 0
    for first in range(0, records.shape[0], batch_size):
        part = records[first : first + batch_size]
        label = part["ld"][:, :1].astype(np.float32, order="C")
        dense = part["ld"][:, 1:].astype(np.float32, order="C")
        dense += np.float32(1.0)
        np.log(dense, out=dense)
        keys = part["keys"].view("<u4").astype(np.int64).reshape(-1)
        rows += label.shape[0] + 0 * keys.shape[0]
    return rows


def plain_parquet(source: str) -> int:
    rows = 0
    for path in read_file_list(source):
        table = pq.read_table(path)
        arrays = [column.to_numpy() for column in table.columns]
        rows += arrays[0].shape[0]
    return rows


def rate(run: Callable[[], int]) -> float:
    start = time.perf_counter()
    rows = run()
    return rows / (time.perf_counter() - start)


def compare(ours: Callable[[], float], plain: Callable[[], int], repeats: int) -> tuple[float, float, list[float]]:
    """Median samples/s of both sides, timed alternately, and the per-repeat ratios."""
    plain(), ours()  # warm the page cache and both code paths
    pairs = [(ours(), rate(plain)) for _ in range(repeats)]
    return statistics.median(o for o, _ in pairs), statistics.median(p for _, p in pairs), [o / p for o, p in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1 << 20)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per side; the table shows medians")
    parser.add_argument("--formats", nargs="+", default=["norm", "raw", "parquet"], choices=["norm", "raw", "parquet"])
    parser.add_argument("--dir", default=None, help="where to write the datasets (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        configs = make_datasets(folder, args.samples, args.files)
        plain = {
            "norm": functools.partial(plain_norm, configs["norm"].source),
            "raw": functools.partial(plain_raw, configs["raw"].source, args.batch_size),
            "parquet": functools.partial(plain_parquet, configs["parquet"].source),
        }
        header = f"{'format':8} {'workers':>7} {'ctrflow samples/s':>18} {'plain samples/s':>16} {'ratio':>6}"
        print(f"{header} {'range':>11}")
        for fmt in args.formats:
            config = configs[fmt]
            sizes = config.slot_size_array if fmt == "parquet" else ()
            for workers in args.workers if fmt == "norm" else [1]:
                ours = functools.partial(time_ctrflow, fmt, config.source, workers, args.batch_size, sizes)
                ours_median, plain_median, ratios = compare(ours, plain[fmt], args.repeats)
                print(
                    f"{fmt:8} {workers:7d} {ours_median:18,.0f} {plain_median:16,.0f} "
                    f"{ours_median / plain_median:6.2f} {min(ratios):5.2f}-{max(ratios):.2f}"
                )


if __name__ == "__main__":
    main()
