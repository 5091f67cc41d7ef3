"""Shared fixtures: one small local Ray instance per test process (each xdist worker), and synthetic datasets on disk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gru_xnet.config import ExperimentConfig, get_quick_test_config
from gru_xnet.datasets import write_synthetic


def pytest_collection_modifyitems(items):
    """Modules marked `heavy` first, in file order: `scripts/test.sh` hands whole modules to two workers in this order,
    so the many light modules fill the end of the run instead of one worker finishing a heavy module alone."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray instance (2 CPUs, no dashboard), shared by every test of this worker that needs Ray."""
    import ray

    from loso.cli import RAY_ENV

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 ** 2, log_to_driver=False,
             runtime_env={"env_vars": RAY_ENV})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Test models are tiny: a second intra-op thread only spins against the other core's work."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _small(tmp_path_factory, name: str, **options) -> Path:
    root = tmp_path_factory.mktemp(name)
    write_synthetic(root, ["DEAP", "SEEDIV", "GAMEEMO"], 4, trials=6, seconds=12.0, **options)
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """4 subjects per dataset with a planted class signal, in the real file formats."""
    return _small(tmp_path_factory, "synthetic")


@pytest.fixture(scope="session")
def shuffled_root(tmp_path_factory) -> Path:
    """The same layout with labels independent of the signal: nothing to learn."""
    return _small(tmp_path_factory, "shuffled", shuffle_labels=True)


@pytest.fixture(scope="session")
def learnable_root(tmp_path_factory) -> Path:
    """GAMEEMO, 4 subjects, with a planted signal strong enough to be learnt in a few tiny epochs."""
    root = tmp_path_factory.mktemp("learnable")
    write_synthetic(root, ["GAMEEMO"], 4, signal_strength=3.0)
    return root


def tiny_config(root: Path, tmp_path: Path, datasets=("DEAP",), **training) -> ExperimentConfig:
    """The quick config made smaller still, reading `root`, writing and caching under `tmp_path`."""
    config = get_quick_test_config()
    config.data.datasets = list(datasets)
    config.data.data_root = str(root)
    config.data.cache_dir = str(tmp_path / "cache")
    config.output_dir = str(tmp_path / "outputs")
    config.model.gru_hidden_size = 16
    config.model.cnn_channels = [4, 8, 16]
    config.model.fusion_dim = 32
    config.model.fc_dims = [32, 16]
    config.training.num_epochs = training.pop("num_epochs", 4)
    for key, value in training.items():
        setattr(config.training, key, value)
    config.validate()
    return config


def free_port() -> int:
    """A TCP port nothing listens on now (for servers a test starts: a Ray head, an S3 server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_side_by_side(commands: dict[str, list[str]], timeout: float = 900) -> None:
    """Run `python -m <module> <args>` commands (label: [module, *args]) at once, one per core, from the repository
    root; each must exit 0. For independent `--local` runs: on 2 cores two of them take the time of one."""
    repo = Path(__file__).resolve().parents[1]
    started = {label: subprocess.Popen([sys.executable, "-m", *command], cwd=repo, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True) for label, command in commands.items()}
    for label, process in started.items():
        log = process.communicate(timeout=timeout)[0]
        assert process.returncode == 0, f"{label}: {' '.join(commands[label])}\n{log[-3000:]}"
