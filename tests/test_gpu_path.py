"""The GPU path's CPU-checkable parts: GPUs by default and packed by memory, and bench/bench_gpu.py starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loso.gpu_packing import DEFAULT_FOLDS_PER_GPU, folds_per_gpu, gpus_per_worker
from loso.run import main

pytestmark = pytest.mark.heavy

GiB = 2 ** 30
REPO = Path(__file__).resolve().parents[1]


def test_folds_share_a_gpu_as_its_free_memory_allows():
    assert folds_per_gpu(80 * GiB, 1 * GiB) == DEFAULT_FOLDS_PER_GPU == 4  # an H100 holds 4 DEAP folds
    assert folds_per_gpu(8 * GiB, 1 * GiB) == 2  # 90 % of 8 GiB over (1 GiB of windows + 2 GiB for the model)
    assert folds_per_gpu(4 * GiB, 4 * GiB) == 1  # never fewer than one


def test_auto_trains_on_cpu_without_gpus_whole_gpus_for_ddp_and_numbers_pass_through():
    assert gpus_per_worker("auto", {"CPU": 16.0}, 1, GiB) == 0.0
    assert gpus_per_worker("auto", {"CPU": 16.0, "GPU": 8.0}, 2, GiB) == 1.0  # NCCL: one GPU per rank
    assert gpus_per_worker("0.25", {"CPU": 16.0}, 1, GiB) == 0.25


def test_a_bad_gpu_share_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--gpus-per-worker", "-1"])
    assert "'-1': expected 'auto' or a number >= 0" in capsys.readouterr().err


def test_gpu_bench_runs_on_cpu_at_small_sizes():
    args = ["--device", "cpu", "--windows", "16", "--batches", "16", "--configs", "quick", "--steps", "2",
            "--loso-subjects", "3", "--loso-epochs", "1", "--loso-config", "quick"]
    run = subprocess.run([sys.executable, "bench/bench_gpu.py", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| quick | 16 | fp32 |" in run.stdout and "| quick | 16 | bf16 |" in run.stdout
    assert "LOSO, 3 folds of synthetic DEAP" in run.stdout and "fold wall (start to result" in run.stdout
