"""Memory of a LOSO run against the features it trains on, with 1, 2 and 4 runners in flight.

    python bench/bench_memory.py [--subjects 16] [--runners 1 2 4] [--keep]

Writes `--subjects` full-size synthetic DEAP subjects (40 trials x 60 s, as `python -m gru_xnet.datasets.synthetic
--datasets DEAP --subjects 16 --trials 40 --seconds 60` does), builds their feature cache once, then runs
`python -m loso.run --config quick --training.num_epochs 1` on as many test subjects as runners (one fold job
per runner, each worker reserving 2/R CPUs), sampling the node's memory in use (MemTotal - MemAvailable)
every 0.5 s from before the command starts, so Ray's own processes count, and the summed PSS of the run's
processes at the peak. Prints the peak above the idle machine, its ratio to the feature bytes, the marginal
memory per runner, and the target 1.5 x features + 1.5 GB + 1.5 GB per runner.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from scratch import add_keep_argument, scratch_dir

GB = 2 ** 30


def in_use() -> int:
    """Bytes of memory in use on this node: MemTotal - MemAvailable."""
    info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()}
    return info["MemTotal"] - info["MemAvailable"]


def pss(pid: int) -> dict[str, list[int]]:
    """Proportional set size (bytes; shared pages split between sharers) of a process and all its descendants,
    listed per role: Ray names its workers by what they run (`ray::TrainController`, `ray::RayTrainWorker`...)."""
    roles: dict[str, list[int]] = {}
    for child in [pid, *descendants(pid)]:
        try:
            rollup = Path(f"/proc/{child}/smaps_rollup").read_text()
            role = _role(Path(f"/proc/{child}/cmdline").read_bytes())
            roles.setdefault(role, []).append(int(rollup.split("\nPss:")[1].split()[0]) * 1024)
        except (OSError, IndexError):
            pass
    return roles


def _role(cmdline: bytes) -> str:
    """A process's role from its command line: Ray's title for its workers and actors, else the program's name."""
    words = cmdline.decode(errors="replace").replace("\0", " ").split()
    if not words:
        return "?"
    if words[0].startswith("ray::"):
        return words[0].split(".")[0].split("(")[0]
    programs = [Path(word).name for word in words[:4] if not word.startswith("-")]
    return "driver (loso.run)" if "loso.run" in words else (programs[1] if programs[0].startswith("python") and
                                                            len(programs) > 1 else programs[0])


def descendants(pid: int) -> list[int]:
    """Every process whose ancestry reaches `pid` (Ray's raylet, workers and actors included)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def measure(command: list[str]) -> tuple[int, dict[str, list[int]], float]:
    """(peak memory in use, PSS of the run's processes per role at that peak, seconds) while `command` runs."""
    peak, peak_pss, stop = [in_use(), 0], [{}], threading.Event()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while not stop.is_set():
            used = in_use()
            if used > peak[0]:
                peak[0], peak_pss[0] = used, pss(process.pid)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    _, err = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return peak[0], peak_pss[0], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2, 4])
    add_keep_argument(parser)
    args = parser.parse_args()
    from gru_xnet.config import DataConfig
    from gru_xnet.datasets import write_synthetic
    from gru_xnet.features import build_feature_set

    with scratch_dir("bench_memory_", args.keep) as tmp:
        write_synthetic(tmp / "data", ["DEAP"], args.subjects, trials=40, seconds=60.0)
        data = DataConfig(datasets=["DEAP"], data_root=str(tmp / "data"), cache_dir=str(tmp / "cache"),
                          freq_range=[2.0, 45.0])  # the quick preset's features
        feature_bytes = build_feature_set(data).features.nbytes  # fills the cache; the runs only read it
        rows = []
        for runners in args.runners:
            subjects = [f"s{i:02d}" for i in range(1, runners + 1)]
            command = [sys.executable, "-m", "loso.run", "--datasets", "DEAP", "--data-root", str(tmp / "data"),
                       "--config", "quick", "--training.num_epochs", "1", "--data.augmentation_ratio", "0",
                       "--data.cache_dir", str(tmp / "cache"), "--subjects", *subjects,
                       "--max-concurrent-folds", str(runners), "--cpus-per-worker", f"{(os.cpu_count() or 2) / runners:g}",
                       "--output", str(tmp / f"run{runners}")]
            idle = in_use()
            peak, run_pss, seconds = measure(command)
            rows.append((runners, peak - idle, run_pss, seconds))
    features_gb = feature_bytes / GB
    print(f"## LOSO memory, {args.subjects} full-size synthetic DEAP subjects: features {features_gb:.2f} GB, quick "
          f"preset, 1 epoch, one fold job per runner\n")
    print("| runners | peak above idle (GB) | / features | PSS of the run's processes (GB) | marginal per runner (GB) "
          "| target (GB) | wall (s) |\n|---|---|---|---|---|---|---|")
    base = rows[0]
    for runners, above, run_pss, seconds in rows:
        marginal = (above - base[1]) / (runners - base[0]) / GB if runners > base[0] else float("nan")
        target = 1.5 * features_gb + 1.5 + 1.5 * runners
        print(f"| {runners} | {above / GB:.2f} | {above / feature_bytes:.1f}x | {sum(map(sum, run_pss.values())) / GB:.2f} "
              f"| {marginal:.2f} | {target:.2f} ({'met' if above / GB <= target else 'NOT met'}) | {seconds:.0f} |")
    print("\n## PSS per process role at the peak (GB; count of processes in brackets where more than one)\n")
    roles = sorted({role for row in rows for role in row[2]}, key=lambda role: -sum(rows[-1][2].get(role, [])))
    print("| role | " + " | ".join(f"{row[0]} runner(s)" for row in rows) + " |\n|---|" + "---|" * len(rows))
    for role in roles:
        print(f"| {role} | " + " | ".join(_share(row[2].get(role, [])) for row in rows) + " |")


def _share(sizes: list[int]) -> str:
    """A role's summed PSS in GB, with its number of processes where more than one."""
    return f"{sum(sizes) / GB:.3f}" + (f" ({len(sizes)})" if len(sizes) > 1 else "")


if __name__ == "__main__":
    main()
