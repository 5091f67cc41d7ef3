#!/usr/bin/env bash
# Create .venv and install the project into it; does nothing when pyproject.toml is unchanged.
# torch==2.13.0 is installed first: the CPU build on machines that have it locally, the normal
# (CUDA) build from PyPI on a GPU box. Set GRU_XNET_TORCH to pick another torch requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_req=${GRU_XNET_TORCH:-torch==2.13.0}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.gru_xnet-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-32) $torch_req"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up .venv (first run only)..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet "$torch_req"
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$want" > "$stamp"
fi
