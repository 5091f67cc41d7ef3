"""Where a number came from: package versions, the project's version and git commit, host, CPU and GPUs.

Recorded in every run manifest, fold file and summary so a table can be traced to the code and the
machine that produced it. Versions are read from package metadata, so nothing here imports Ray.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("gru_xnet", "torch", "ray", "optuna", "numpy", "scipy", "pandas", "scikit-learn")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _git() -> dict[str, Any]:
    """The commit of the checkout this package runs from, and whether it had uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": bool(dirty)}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    """Versions, commit, host, CPU, GPUs and torch threads of this process."""
    gpus = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    return {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}, **_git(),
            "host": socket.gethostname(), "platform": platform.platform(), "cpu": _cpu_name(), "gpus": gpus,
            "torch_threads": torch.get_num_threads()}
