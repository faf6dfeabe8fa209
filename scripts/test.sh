#!/usr/bin/env bash
# The test command: lint, type check and the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check ctrflow hugectr tests benchmarks examples
ruff format --check ctrflow hugectr tests benchmarks examples
mypy ctrflow
python -m pytest -q -p no:cacheprovider "$@"
