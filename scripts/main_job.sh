#!/usr/bin/env bash
# The main job end to end on built-in data: generate, train a DCN, evaluate, save, reload, predict.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python examples/main_job.py "$@"
