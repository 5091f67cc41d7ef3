"""Feature building for full-size subjects: cold (read, window, STFT, write cache) vs the read floor and the cache.

    python bench/bench_features.py [--dataset DEAP|SEED|FACED] [--subjects 2] [--keep]

Writes synthetic subjects of the dataset's real size (`FULL_SIZE`: DEAP 40 trials x 60 s, SEED 3 sessions x
15 trials x 4 min at 200 Hz x 62 channels, FACED 28 clips x 30 s at 250 Hz x 32 channels), then in fresh
processes: reads every source file alone (scipy.io.loadmat or the restricted unpickler: the read floor),
builds the feature set cold (both cores, one subject per thread) and again from the cache. Prints times and
ratios (targets: cold within 1.5x of the read floor, cache >= 20x faster, peak memory at most 2x the feature
set), and the projected cold time for the whole dataset on this machine. The data and cache are deleted at
the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scratch import add_keep_argument, scratch_dir

FULL_SIZE = {"DEAP": (40, 60.0, 32), "SEED": (15, 240.0, 15), "FACED": (28, 30.0, 123)}
"""Trials per subject (per session), seconds per trial and subjects in the released dataset."""


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it does not carry over exec)."""
    line = next(row for row in Path("/proc/self/status").read_text().splitlines() if row.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def read_floor(dataset: str, root: str) -> None:
    """Child process: load every source file of every subject (one subject per thread), nothing else."""
    import concurrent.futures

    import scipy.io

    from gru_xnet.datasets import find_dataset_root, get_reader
    from gru_xnet.datasets.safe_pickle import load_pickle

    reader = get_reader(dataset, find_dataset_root(dataset, root))
    files = [path for subject in reader.subjects() for path in reader.source_files(subject)]
    load = lambda path: scipy.io.loadmat(path) if path.suffix == ".mat" else load_pickle(path)  # noqa: E731
    baseline = peak_rss_mb()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(load, files))
    print(json.dumps({"seconds": time.perf_counter() - start, "imports_mb": baseline, "peak_mb": peak_rss_mb()}))


def build(dataset: str, root: str, cache: str, repeats: int) -> None:
    """Child process: build the feature set once and print time and peak RSS as JSON."""
    from gru_xnet.config import DataConfig
    from gru_xnet.features import build_feature_set

    baseline = peak_rss_mb()
    times = []
    for _ in range(repeats):  # the first run of a cold child fills the cache; later runs read it
        start = time.perf_counter()
        features = build_feature_set(DataConfig(datasets=[dataset], data_root=root, cache_dir=cache))
        float(features.features[:, 0].sum())  # touch the data, as training would
        times.append(time.perf_counter() - start)
    elapsed = min(times)
    print(json.dumps({"seconds": elapsed, "imports_mb": baseline, "peak_mb": peak_rss_mb(),
                      "feature_mb": features.features.nbytes / 2 ** 20,
                      "windows": len(features), "shape": list(features.features.shape)}))


def run_child(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(FULL_SIZE), default="DEAP")
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    add_keep_argument(parser)
    args = parser.parse_args()
    if args.child:
        kind, dataset, root, *rest = args.child
        read_floor(dataset, root) if kind == "floor" else build(dataset, root, rest[0], int(rest[1]))
        return
    from gru_xnet.datasets import write_synthetic

    trials, seconds, total = FULL_SIZE[args.dataset]
    with scratch_dir("bench_features_", args.keep) as tmp:
        write_synthetic(tmp / "data", [args.dataset], args.subjects, trials=trials, seconds=seconds)
        size = sum(p.stat().st_size for p in (tmp / "data" / args.dataset).rglob("*.*")) / args.subjects / 1e6
        floor = run_child("floor", args.dataset, tmp / "data")
        cold = run_child("build", args.dataset, tmp / "data", tmp / "cache", 1)
        warm = run_child("build", args.dataset, tmp / "data", tmp / "cache", 5)
    cores = os.cpu_count() or 1
    per_subject = cold["seconds"] / args.subjects * min(args.subjects, cores)  # wall time of one subject slot
    projected = per_subject * total / cores
    above = lambda run: run["peak_mb"] - run["imports_mb"]  # noqa: E731
    print(f"{args.subjects} full-size {args.dataset} subjects ({size:.0f} MB of files each) -> features "
          f"{cold['shape']} ({cold['feature_mb']:.0f} MB)")
    print(f"read floor (load the files only, {cores} threads):              {floor['seconds']:6.2f} s, "
          f"{above(floor):.0f} MB above imports")
    print(f"cold build (read + filter + window + STFT + cache write):    {cold['seconds']:6.2f} s, "
          f"{above(cold):.0f} MB above imports")
    print(f"from cache (.npy read into the set, best of 5):             {warm['seconds']:6.2f} s, "
          f"{above(warm):.0f} MB above imports")
    print(f"cold / read floor: {cold['seconds'] / floor['seconds']:.2f}x  (target <= 1.5x)")
    print(f"cache speed-up: {cold['seconds'] / warm['seconds']:.1f}x  (target >= 20x)")
    print(f"cold peak memory / feature set: {above(cold) / cold['feature_mb']:.1f}x  (target <= 2x)")
    print(f"projected cold build, all {total} {args.dataset} subjects on {cores} cores: {projected:.1f} s")


if __name__ == "__main__":
    main()
