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
if [ "$#" -eq 0 ]; then
  # the Triton kernels on CPU tensors through Triton's interpreter (read when the kernels are defined, so a
  # process of their own); on a GPU the CUDA tests run the compiled kernels against the same references
  TRITON_INTERPRET=1 python -m pytest -q -p no:cacheprovider tests/embedding/test_triton_kernels.py \
    tests/dense/test_interaction_kernel.py
fi
