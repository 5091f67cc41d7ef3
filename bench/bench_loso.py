"""Ray LOSO vs `loso.run --local` over the same folds; where the non-training time goes; equal fold results.

    python bench/bench_loso.py [--dataset DEAP --subjects 5 --epochs 12 --cores 2] [--ray-only] [--keep]

Runs `loso.run` three times on the same synthetic folds, each fold with the config's torch threads
(`training.num_threads`): in this process one fold after another (`--local`), on a local Ray instance
with K = cores concurrent 1-CPU runners, and on Ray with one runner. Prints the wall times, the
overhead ratio Ray / local (target <= 1.25), the speed-up of K runners over 1, the per-fold launch
overhead measured from the driver (target <= 5 s), and whether every fold gave the same test
predictions on all three paths (it must: same seed, same config). The per-fold overhead is charged
in full: the run's whole wall time (Ray start-up, features, runner start-up, data, evaluation, writing)
times the number of runners, minus every fold's epoch loop as the engine measured it, divided by the
folds; the time between a fold's start and its result on the driver minus its epoch loop is printed
too, and the time `report.html` takes to render beside the tables'. A table then says where the K-runner
run's non-training time went (the run's `timings.json` and each fold's `phase_seconds`): Ray start, features,
runner start, each fold's data, optimizer and DDP wrap (the first in a process imports torch._dynamo), epoch-end
checkpoints, evaluation, hand-over, runners idle at the end, the leakage certificate, tables, report and figures;
each in runner-seconds and per fold (target: the whole command <= 2 s per fold at 20 folds on 2 runners).
`--ray-only` runs the K-runner Ray LOSO alone (the 20-fold figure without the two baseline runs). The data and
outputs are deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from gru_xnet.config import get_quick_test_config
from gru_xnet.datasets import write_synthetic
from loso.aggregate import aggregate
from loso.run import main as loso_main
from scratch import add_keep_argument, scratch_dir


def run(config_path: Path, out: Path, *extra: str) -> tuple[float, list[dict]]:
    """Wall time of one `loso.run` and its fold results."""
    started = time.perf_counter()
    assert loso_main(["--config", str(config_path), "--output", str(out), *extra]) == 0
    wall = time.perf_counter() - started
    return wall, [json.loads(p.read_text()) for p in sorted((out / "folds").glob("*.json"))]


def timed(call) -> float:
    """Seconds `call()` takes."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def overhead_table(out: Path, wall: float, runners: int, folds: list[dict], tables: float) -> None:
    """Where a Ray run's non-training time went, in runner-seconds and per fold: a stage on the driver while the
    runners wait costs `runners` x its wall, a stage inside a fold its own time; `tables`: aggregate() without the
    report, which splits the command's own tables-figures-report time."""
    timings = json.loads((out / "timings.json").read_text())
    per_runner: dict[str, list[dict]] = {}
    for fold in folds:
        per_runner.setdefault(fold["runner"], []).append(fold)
    phase = lambda key: sum(f["phase_seconds"][key] for f in folds)  # noqa: E731
    handover = sum(f["wall_seconds"] - f["train_seconds"] for f in folds)
    unphased = sum(f["train_seconds"] - sum(f["phase_seconds"].values()) for f in folds)
    start = sum(min(f["started_at"] for f in mine) - timings["folds_started_at"] for mine in per_runner.values())
    idle = sum(timings["folds_finished_at"] - max(f["finished_at"] for f in mine) for mine in per_runner.values())
    stages = [("Ray start", runners * timings["ray_start"]), ("features", runners * timings["features"]),
              ("runner start (every runner)", start), ("per-fold data (loaders, model)", phase("data")),
              ("optimizer, DDP wrap (torch._dynamo)", unphased), ("epoch-end checkpoints", phase("epoch_end")),
              ("evaluation", phase("evaluation")),
              ("hand-over (queue, results)", handover), ("runners idle at the end", idle),
              ("leakage certificate", runners * timings["certificate"]), ("tables", runners * tables),
              ("report and figures", runners * (timings["tables_figures_report"] - tables))]
    total = runners * wall - sum(f["loop_seconds"] for f in folds)
    stages.append(("imports, planning, other", total - sum(seconds for _, seconds in stages)))
    print(f"\nwhere the non-training time goes ({len(folds)} folds, {runners} runners, {wall:.1f} s wall):")
    print(f"{'stage':34s} {'runner-seconds':>14s} {'per fold':>9s}")
    for name, seconds in stages:
        print(f"{name:34s} {seconds:14.1f} {seconds / len(folds):9.2f}")
    print(f"{'whole command, non-training':34s} {total:14.1f} {total / len(folds):9.2f}  (target <= 2 s per fold)")
    print(f"(the driver wrote the results in {timings['writing']:.2f} s while the runners trained)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="DEAP")
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--ray-only", action="store_true",
                        help="run only the Ray LOSO with --cores runners and its overhead table")
    add_keep_argument(parser)
    args = parser.parse_args()
    with scratch_dir("bench_loso_", args.keep) as tmp:
        write_synthetic(tmp / "data", [args.dataset], args.subjects)
        config = get_quick_test_config()
        config.data.datasets, config.data.data_root = [args.dataset], str(tmp / "data")
        config.data.cache_dir = str(tmp / "cache")
        config.training.num_epochs = args.epochs
        config.training.early_stopping = False
        config.save(tmp / "config.json")
        if args.ray_only:
            parallel, ray_folds = run(tmp / "config.json", tmp / "ray", "--num-cpus", str(args.cores))
            print(f"{len(ray_folds)} folds, {args.epochs} epochs each, {config.training.num_threads} torch thread(s) "
                  f"per fold; Ray LOSO, {args.cores} runners, 1 CPU each: {parallel:.1f} s")
        else:
            parallel, ray_folds = compare_paths(tmp, args.cores, args.epochs, config.training.num_threads)
        tables_only = timed(lambda: aggregate(tmp / "ray", report=False))
        with_report = timed(lambda: aggregate(tmp / "ray"))
        size = (tmp / "ray" / "report.html").stat().st_size / 2 ** 20
        print(f"report.html: {with_report - tables_only:.2f} s to render beyond the tables' {tables_only:.2f} s, "
              f"{size:.2f} MB for {len(ray_folds)} folds (limit 5 MB at 45 folds)")
        overhead_table(tmp / "ray", parallel, args.cores, ray_folds, tables_only)


def compare_paths(tmp: Path, cores: int, epochs: int, threads: int) -> tuple[float, list[dict]]:
    """`--local`, K runners and 1 runner over the same folds: wall times, overheads, identical predictions; the
    K-runner run's wall time and fold results."""
    local, local_folds = run(tmp / "config.json", tmp / "local", "--local")
    print(f"{len(local_folds)} folds, {epochs} epochs each, {threads} torch thread(s) per fold, {cores} cores")
    print(f"loso.run --local (folds one after another):   {local:7.1f} s")
    parallel, ray_folds = run(tmp / "config.json", tmp / "ray", "--num-cpus", str(cores))
    print(f"Ray LOSO, {cores} runners, 1 CPU each:         {parallel:7.1f} s")
    serial, serial_folds = run(tmp / "config.json", tmp / "one", "--max-concurrent-folds", "1")
    print(f"Ray LOSO, 1 runner, 1 CPU:                   {serial:7.1f} s")
    accuracy = lambda folds: np.round([f["test"]["balanced_accuracy"] for f in folds], 1)  # noqa: E731
    same = all(a["predictions"] == b["predictions"] == c["predictions"]
               for a, b, c in zip(local_folds, ray_folds, serial_folds))
    print(f"\nbalanced accuracy per fold: local {accuracy(local_folds)}, Ray {accuracy(ray_folds)}; "
          f"identical predictions on all three paths: {same}")
    loops = lambda folds: sum(f["loop_seconds"] for f in folds)  # noqa: E731
    charged = lambda wall, runners, folds: (runners * wall - loops(folds)) / len(folds)  # noqa: E731
    per_fold = lambda folds: np.mean([f["wall_seconds"] - f["loop_seconds"] for f in folds])  # noqa: E731
    print(f"overhead ratio Ray ({cores} at once) / --local: {parallel / local:.2f}x  (target <= 1.25)")
    print(f"speed-up of {cores} runners vs 1:              {serial / parallel:.2f}x")
    print(f"per-fold overhead, everything charged: {charged(serial, 1, serial_folds):.1f} s with 1 runner, "
          f"{charged(parallel, cores, ray_folds):.1f} s with {cores}; --local "
          f"{charged(local, 1, local_folds):.1f} s  (target <= 5 s)")
    print(f"per-fold overhead, a fold's start to its result on the driver minus its epoch loop: "
          f"{per_fold(ray_folds):.2f} s")
    return parallel, ray_folds

if __name__ == "__main__":
    main()
