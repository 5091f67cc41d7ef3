#!/usr/bin/env bash
# Set up (idempotent) and run the main job: a LOSO demo on synthetic DEAP and SEED-IV, local Ray, 5 epochs per fold
# (the synthetic signal is learnt by then; a run's default is 30 with early stopping). With --resume, a second run
# finishes an interrupted demo or just prints the saved tables.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m loso.run --synthetic --datasets DEAP SEEDIV --training.num_epochs 5 --resume "$@"
