"""Ray LOSO vs a plain in-process loop over the same folds, same total cores; launch overhead; concurrency.

    python bench/bench_loso.py [--dataset DEAP --subjects 5 --epochs 12 --cores 2]

Prints, from one run: the in-process loop's wall time (torch on all cores, folds one after another),
the Ray LOSO's wall time with K = cores concurrent 1-CPU folds and with K = 1, the overhead ratio
(target <= 1.25), the speed-up of K folds at once, and the per-fold launch overhead (fold wall time
minus the worker's own time; target <= 5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch

from gru_xnet.config import get_quick_test_config
from gru_xnet.data_loader import make_loaders
from gru_xnet.datasets import write_synthetic
from gru_xnet.engine import evaluate, fit, make_optimizer, make_scheduler, resolve_precision, seed_everything
from gru_xnet.features import build_feature_set
from gru_xnet.model import build_model
from loso.folds import plan_folds
from loso.run import RAY_ENV, plan_jobs, run_folds
from loso.worker import FoldResources


def in_process(features, folds, config) -> tuple[float, list[float]]:
    """The same folds with the same engine, one after another, torch using every core."""
    device = torch.device("cpu")
    precision = resolve_precision(device, config.training.use_amp)
    started, accuracies = time.perf_counter(), []
    for fold in folds:
        seed_everything(fold.seed)
        loaders = make_loaders(features, fold.split, config.data, batch_size=config.training.batch_size,
                               seed=fold.seed)
        model = build_model(config.model, loaders.input_shape, loaders.n_classes)
        optimizer = make_optimizer(model, config.training)
        state = fit(model, loaders, optimizer, make_scheduler(optimizer, config.training), config.training,
                    device=device, precision=precision)
        model.load_state_dict(state.best_state)
        accuracies.append(evaluate(model, loaders.test, device=device, precision=precision,
                                   n_classes=loaders.n_classes).metrics["accuracy"])
    return time.perf_counter() - started, accuracies


def with_ray(features, folds, config, out: Path, concurrent: int) -> tuple[float, list[float], list[float]]:
    """The folds as Ray Train jobs, `concurrent` at a time, 1 CPU per fold."""
    started = time.perf_counter()
    run_folds(plan_jobs(folds, 0, out), config, features, out, FoldResources(workers=1, cpus_per_worker=1),
              concurrent, str(out / "ray"), {})
    wall = time.perf_counter() - started
    results = [json.loads(p.read_text()) for p in sorted((out / "folds").glob("*.json"))]
    overheads = [r["wall_seconds"] - r["train_seconds"] for r in results]
    return wall, [r["test"]["accuracy"] for r in results], overheads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="DEAP")
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_loso_"))
    write_synthetic(tmp / "data", [args.dataset], args.subjects)
    config = get_quick_test_config()
    config.data.datasets, config.data.data_root = [args.dataset], str(tmp / "data")
    config.data.cache_dir = str(tmp / "cache")
    config.training.num_epochs = args.epochs
    config.training.early_stopping = False
    features = build_feature_set(config.data)
    folds = plan_folds(features)
    print(f"{len(folds)} folds, {len(features)} windows, {args.epochs} epochs each, {args.cores} cores")

    torch.set_num_threads(args.cores)
    plain, plain_acc = in_process(features, folds, config)
    print(f"in-process loop (torch on {args.cores} threads):  {plain:7.1f} s   acc {np.round(plain_acc, 1)}")

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": RAY_ENV})
    parallel, ray_acc, overheads = with_ray(features, folds, config, tmp / "k", args.cores)
    print(f"Ray LOSO, {args.cores} folds at once, 1 CPU each: {parallel:7.1f} s   acc {np.round(ray_acc, 1)}")
    serial, _, overheads_1 = with_ray(features, folds, config, tmp / "one", 1)
    print(f"Ray LOSO, 1 fold at a time, 1 CPU:         {serial:7.1f} s")
    ray.shutdown()
    print(f"\noverhead ratio Ray / in-process (same {args.cores} cores): {parallel / plain:.2f}x  (target <= 1.25)")
    print(f"speed-up of {args.cores} concurrent folds vs 1:            {serial / parallel:.2f}x")
    print(f"per-fold launch overhead (fold wall - worker time): {np.mean(overheads_1):.1f} s alone, "
          f"{np.mean(overheads):.1f} s with {args.cores} folds starting together  (target <= 5 s)")


if __name__ == "__main__":
    main()
