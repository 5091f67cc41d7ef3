#!/usr/bin/env bash
# Set up (idempotent) and run the main job: a quick training run on synthetic data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m gru_xnet.train --config quick --synthetic --datasets DEAP SEEDIV "$@"
