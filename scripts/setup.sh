#!/usr/bin/env bash
# Create .venv and install the project into it; does nothing when pyproject.toml is unchanged.
# torch==2.13.0 is installed first: the CPU build on machines that have it locally, the normal
# (CUDA) build from PyPI on a GPU box. Set GRU_XNET_TORCH to pick another torch requirement.
# One line per step; pip runs with -qq (its errors still show, and a failed step stops here).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_req=${GRU_XNET_TORCH:-torch==2.13.0}
stamp=.venv/.gru_xnet-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-32) $torch_req"
[ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && exit 0
started=$SECONDS
step() { echo "[setup] $1" >&2; }
if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $("$python" --version 2>&1)"
  "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip -qq --disable-pip-version-check "$@"; }
step "upgrading pip"
pip install --upgrade pip
step "installing $torch_req"
pip install "$torch_req"
step "installing gru_xnet and its dependencies (ray, optuna, pandas, ...)"
pip install -e ".[dev]"
echo "$want" > "$stamp"
step "ready in $((SECONDS - started)) s"
