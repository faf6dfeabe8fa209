"""The `ctrflow` command line: parses arguments and dispatches to the package that does the work.

Subcommands:
    ctrflow data check PATH [--format norm|raw|parquet] [--check sum|none] [--i64] [--slots N ...]
        validate a dataset or file list and print its statistics (ctrflow.readers.check).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctrflow", description="Train and serve CTR models; HugeCTR compatible.")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    check = data.add_parser("check", help="validate a dataset and print its statistics")
    check.add_argument("path", help="file list (Norm, Parquet), Norm .data file or Raw .bin file")
    check.add_argument("--format", choices=["norm", "raw", "parquet"], default=None, help="default: guess")
    check.add_argument("--check", choices=["sum", "none"], default="sum", help="Norm check type (default sum)")
    check.add_argument("--i64", action="store_true", help="keys are int64 (i64_input_key=True)")
    check.add_argument("--slots", type=int, nargs="+", default=[], metavar="N", help="slots per sparse input")
    check.add_argument("--label-dim", type=int, default=1, help="Raw: labels per record (default 1)")
    check.add_argument("--dense-dim", type=int, default=13, help="Raw: dense features per record (default 13)")
    check.add_argument("--float-label-dense", action="store_true", help="Raw: label/dense stored as float32")
    check.set_defaults(handler=_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (0 ok, 1 invalid data, 2 usage error)."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


def _data_check(args: argparse.Namespace) -> int:
    from ctrflow.readers.check import check_dataset

    try:
        stats = check_dataset(
            args.path,
            args.format,
            args.check,
            "i64" if args.i64 else "i32",
            tuple(args.slots),
            args.label_dim,
            args.dense_dim,
            args.float_label_dense,
        )
    except ValueError as error:
        print(f"ctrflow data check: {error}", file=sys.stderr)
        return 1
    print(stats.format_report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
