"""Reader throughput: ctrflow's Norm / Raw / Parquet readers against a plain NumPy / pyarrow read.

Generates one dataset per format (26 one-hot i32 slots, 1 label, 13 dense: the Criteo shape), then, in the
same run, times every ctrflow reader (epoch mode, per worker count) against the plain read of the same
files: NumPy parsing of fixed-size records for Norm and Raw (no checks, no CSR, no torch), and
`pyarrow.parquet.read_table` plus `to_numpy` for Parquet. Prints one table with samples/s and ratios.

    python benchmarks/readers.py --samples 1048576 --workers 1 2
"""

from __future__ import annotations

import argparse
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
    options = ReaderOptions(batch_size=batch_size, repeat=False, num_workers=workers, slot_size_array=slot_sizes)
    reader = make_reader(fmt, source, SPEC, options)  # type: ignore[arg-type]
    start, rows = time.perf_counter(), 0
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
        label_dense = part["ld"].astype(np.float32)
        label_dense[:, 1:] = np.log(label_dense[:, 1:] + 1)
        keys = part["keys"].astype(np.int64)
        rows += keys.shape[0]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1 << 20)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dir", default=None, help="where to write the datasets (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        configs = make_datasets(folder, args.samples, args.files)
        plain = {
            "norm": lambda: plain_norm(configs["norm"].source),
            "raw": lambda: plain_raw(configs["raw"].source, args.batch_size),
            "parquet": lambda: plain_parquet(configs["parquet"].source),
        }
        print(f"{'format':8} {'workers':>7} {'ctrflow samples/s':>18} {'plain samples/s':>16} {'ratio':>6}")
        for fmt, config in configs.items():
            rate(plain[fmt])  # warm the page cache
            baseline = rate(plain[fmt])
            sizes = config.slot_size_array if fmt == "parquet" else ()
            for workers in args.workers if fmt == "norm" else [1]:
                ours = time_ctrflow(fmt, config.source, workers, args.batch_size, sizes)
                print(f"{fmt:8} {workers:7d} {ours:18,.0f} {baseline:16,.0f} {ours / baseline:6.2f}")


if __name__ == "__main__":
    main()
