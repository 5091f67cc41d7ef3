#!/usr/bin/env bash
# Set up (idempotent) and run the test suite on two workers, a whole module at a time (module fixtures are built once),
# heavy modules first; extra arguments go to pytest (`-n 0` runs it in this one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q --durations=15 -n 2 --dist loadfile --no-loadscope-reorder "$@"
