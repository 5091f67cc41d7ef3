"""Feature building for DEAP-sized subjects: cold (read .dat, window, STFT, write cache) vs from cache.

    python bench/bench_features.py [--subjects 2] [--keep]

Writes synthetic DEAP subjects of the real size (40 trials x 40 channels x 8064 samples, float64
pickles, ~100 MB each), then in fresh processes builds their feature set cold (both cores, one
subject per thread) and again from the cache. Prints times, the ratio (target: cache >= 20x faster),
peak memory, and the projected cold time for all 32 subjects on this machine (target <= 30 s).
The data and cache (about 130 MB per subject) are deleted at the end unless --keep.
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


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it does not carry over exec)."""
    line = next(row for row in Path("/proc/self/status").read_text().splitlines() if row.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def build(root: str, cache: str, repeats: int) -> None:
    """Child process: build the feature set once and print time and peak RSS as JSON."""
    from gru_xnet.config import DataConfig
    from gru_xnet.features import build_feature_set

    baseline = peak_rss_mb()
    times = []
    for _ in range(repeats):  # the first run of a cold child fills the cache; later runs read it
        start = time.perf_counter()
        features = build_feature_set(DataConfig(datasets=["DEAP"], data_root=root, cache_dir=cache))
        float(features.features[:, 0].sum())  # touch the data, as training would
        times.append(time.perf_counter() - start)
    elapsed = min(times)
    print(json.dumps({"seconds": elapsed, "imports_mb": baseline,
                      "peak_mb": peak_rss_mb(),
                      "windows": len(features), "shape": list(features.features.shape)}))


def run_child(root: Path, cache: Path, repeats: int = 1) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(root), str(cache), str(repeats)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    add_keep_argument(parser)
    args = parser.parse_args()
    if args.child:
        build(args.child[0], args.child[1], int(args.child[2]))
        return
    from gru_xnet.datasets import write_synthetic

    with scratch_dir("bench_features_", args.keep) as tmp:
        write_synthetic(tmp / "data", ["DEAP"], args.subjects, trials=40, seconds=60.0)
        size = sum(p.stat().st_size for p in (tmp / "data" / "DEAP").rglob("*.dat")) / args.subjects / 1e6
        cold = run_child(tmp / "data", tmp / "cache")
        warm = run_child(tmp / "data", tmp / "cache", repeats=5)
    cores = os.cpu_count() or 1
    per_subject = cold["seconds"] / args.subjects * min(args.subjects, cores)  # wall time of one subject slot
    projected = per_subject * 32 / cores
    print(f"{args.subjects} DEAP-sized subjects ({size:.0f} MB .dat each) -> features {cold['shape']}")
    print(f"cold build (read + window + STFT + cache write, {cores} threads): {cold['seconds']:6.2f} s, "
          f"peak RSS {cold['peak_mb']:.0f} MB ({cold['peak_mb'] - cold['imports_mb']:.0f} MB above imports)")
    print(f"from cache (memory-mapped .npy, best of 5):                 {warm['seconds']:6.2f} s, "
          f"peak RSS {warm['peak_mb']:.0f} MB ({warm['peak_mb'] - warm['imports_mb']:.0f} MB above imports)")
    print(f"cache speed-up: {cold['seconds'] / warm['seconds']:.1f}x  (target >= 20x)")
    print(f"projected cold build, all 32 DEAP subjects on {cores} cores: {projected:.1f} s  (target <= 30 s)")


if __name__ == "__main__":
    main()
