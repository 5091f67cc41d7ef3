"""`loso.benchmark`'s one queue against the models run one after another, on the same folds: wall time and memory.

    python bench/bench_benchmark.py [--models gru_xnet shallowconvnet de_svm --subjects 6 --epochs 22 --cores 2]
                                    [--keep]

Writes `--subjects` synthetic DEAP subjects and fills the feature cache of each model's representation (so both
commands read the same cache), then runs, each as its own command on a fresh local Ray instance of `--cores` CPUs,
sampling the node's memory in use (MemTotal - MemAvailable) every 0.5 s:

- `python -m loso.benchmark --models ...`: every model's fold jobs in one queue (the command under test);
- the serial baseline, today's way before the queue: `loso.run` for each model in turn in one process, so one Ray
  start, and runners started again for each model.

Prints both walls and the queue's ideal: the folds' summed time (each fold's start to its result on the runner)
divided by the runners, plus one Ray start and each distinct representation's feature build as the queue's
`timings.json` recorded them (target: wall <= 1.1 x ideal). Memory: the queue's peak above the idle machine against
the largest single model's peak in the serial run plus the other representations' features (target: <=). Both
commands must give every fold the same test predictions. The data and outputs are deleted unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench_memory import GB, in_use
from scratch import add_keep_argument, scratch_dir

SAMPLE_SECONDS = 0.5


def sampled(command: list[str]) -> tuple[tuple[float, float], list[tuple[float, int]]]:
    """When `command` started and ended (epoch seconds) and the node's memory in use, (time, bytes), every
    SAMPLE_SECONDS while it ran."""
    samples, stop = [], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), in_use()))
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.time()
    process = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ended = time.time()
    stop.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{process.stderr[-3000:]}")
    return (started, ended), samples


def serial_child(config: str, out: Path, cores: str, models: list[str]) -> None:
    """The baseline's process: each model's `loso.run` in turn (Ray starts once), each model's start and end
    written to `<out>/phases.json`."""
    from loso.run import main

    phases = []
    for model in models:
        started = time.time()
        if main(["--config", config, "--model", model, "--output", str(out / model), "--num-cpus", cores]):
            raise SystemExit(f"loso.run --model {model} failed")
        phases.append((model, started, time.time()))
    (out / "phases.json").write_text(json.dumps(phases))


def folds(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run / "folds").glob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gru_xnet", "shallowconvnet", "de_svm"],
                        help="the default: two torch models whose folds take >= 30 s here, one scikit-learn model")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=22, help="22: both torch models' folds >= 30 s on 2 cores")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--serial-child", nargs=3, metavar=("CONFIG", "OUT", "CORES"), help=argparse.SUPPRESS)
    add_keep_argument(parser)
    args = parser.parse_args()
    if args.serial_child:
        return serial_child(args.serial_child[0], Path(args.serial_child[1]), args.serial_child[2], args.models)

    from gru_xnet.config import get_quick_test_config
    from gru_xnet.datasets import write_synthetic
    from gru_xnet.features import build_feature_set
    from gru_xnet.models import model_spec

    with scratch_dir("bench_benchmark_", args.keep) as tmp:
        write_synthetic(tmp / "data", ["DEAP"], args.subjects)
        config = get_quick_test_config()
        config.data.datasets, config.data.data_root = ["DEAP"], str(tmp / "data")
        config.data.cache_dir = str(tmp / "cache")
        config.training.num_epochs, config.training.early_stopping = args.epochs, False
        config.save(tmp / "config.json")
        representations = {model: model_spec(model).representation_of(config.data) for model in args.models}
        feature_bytes = {r: build_feature_set(config.data, representation=r).features.nbytes
                         for r in dict.fromkeys(representations.values())}  # fills the cache both commands read

        idle = in_use()
        queue_span, queue_memory = sampled([sys.executable, "-m", "loso.benchmark", "--config", str(tmp / "config.json"),
                                            "--models", *args.models, "--output", str(tmp / "queue"),
                                            "--num-cpus", str(args.cores)])
        serial_idle = in_use()
        (serial_start, serial_end), serial_memory = sampled([sys.executable, __file__, "--serial-child", str(tmp / "config.json"),
                                              str(tmp / "serial"), str(args.cores), "--models", *args.models])
        phases = json.loads((tmp / "serial" / "phases.json").read_text())
        report(args, tmp, representations, feature_bytes, (queue_span, max(m for _, m in queue_memory) - idle),
               serial_end - serial_start, {model: max([m for t, m in serial_memory if start <= t <= end], default=0) - serial_idle
                             for model, start, end in phases})


def report(args: argparse.Namespace, tmp: Path, representations: dict[str, str], feature_bytes: dict[str, int],
           queue: tuple[tuple[float, float], int], serial_wall: float, single_peaks: dict[str, int]) -> None:
    """The walls, the queue's ideal and where the rest went, the memory bound and whether both commands gave the
    same predictions."""
    (queue_start, queue_end), queue_peak = queue
    queue_wall = queue_end - queue_start
    runs = {model: folds(tmp / "queue" / model) for model in args.models}
    timings = {model: json.loads((tmp / "queue" / model / "timings.json").read_text()) for model in args.models}
    runners = len({f["runner"] for fs in runs.values() for f in fs})
    fold_seconds = sum(f["wall_seconds"] for fs in runs.values() for f in fs)
    ray_start = max(t.get("ray_start", 0.0) for t in timings.values())
    features = sum(t["features"] for t in timings.values())  # a shared representation: built once, ~0 s the next time
    ideal = fold_seconds / runners + ray_start + features
    print(f"{args.subjects} synthetic DEAP subjects, {args.epochs} epochs, {args.cores} cores, {runners} runners; "
          f"models {' '.join(args.models)}")
    print("mean fold (start to result on its runner): " + ", ".join(
        f"{model} {sum(f['wall_seconds'] for f in fs) / len(fs):.1f} s" for model, fs in runs.items()) +
        " (the target is stated for torch folds of >= 30 s)")
    print(f"\none queue (loso.benchmark):      {queue_wall:7.1f} s")
    print(f"models in turn (loso.run each):  {serial_wall:7.1f} s  (queue / serial: {queue_wall / serial_wall:.2f}x)")
    print(f"ideal: folds {fold_seconds:.1f} s / {runners} runners + Ray start {ray_start:.1f} s + features "
          f"{features:.1f} s = {ideal:.1f} s; queue / ideal: {queue_wall / ideal:.2f}x  (target <= 1.1: "
          f"{'met' if queue_wall <= 1.1 * ideal else 'NOT met'})")
    records = [f for fs in runs.values() for f in fs]
    folds_started = min(t["folds_started_at"] for t in timings.values())
    per_runner = {r: [f for f in records if f["runner"] == r] for r in {f["runner"] for f in records}}
    runner_start = sum(min(f["started_at"] for f in fs) - folds_started for fs in per_runner.values()) / runners
    idle = sum(max(f["finished_at"] for f in records) - max(f["finished_at"] for f in fs)
               for fs in per_runner.values()) / runners
    print(f"the queue's wall beyond its ideal, {queue_wall - ideal:.1f} s: before the runners (Python, imports, "
          f"features, plan, Ray) {folds_started - queue_start - ray_start - features:.1f} s; runner start-up "
          f"{runner_start:.1f} s; a runner idle at the end {idle:.1f} s; after the last fold (the last model's and "
          f"the comparison's tables, reports, Ray shutdown) {queue_end - max(f['finished_at'] for f in records):.1f} s")
    largest = max(single_peaks, key=single_peaks.get)
    others = sum(size for r, size in feature_bytes.items() if r != representations[largest])
    bound = single_peaks[largest] + others
    print(f"\npeak memory above idle: queue {queue_peak / GB:.2f} GB; models in turn: " + ", ".join(
        f"{model} {peak / GB:.2f} GB" for model, peak in single_peaks.items()))
    print(f"bound: the largest single model ({largest}) {single_peaks[largest] / GB:.2f} GB + the other "
          f"representations' features {others / GB:.2f} GB = {bound / GB:.2f} GB  (target: queue <= bound: "
          f"{'met' if queue_peak <= bound else 'NOT met'})")
    same = all(a["predictions"] == b["predictions"]
               for model in args.models for a, b in zip(runs[model], folds(tmp / "serial" / model)))
    print(f"identical predictions in every fold of both commands: {same}")


if __name__ == "__main__":
    main()
