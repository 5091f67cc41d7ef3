"""Every command's `--help` wall time against a bare `python -c pass`, measured in the same run.

    python bench/bench_cli.py [--repeats 5]

The commands are found as the tests find them (a module of gru_xnet, loso or tune with a `main` run
under `if __name__ == "__main__"`). Runs are interleaved, one of each per round, so a busy machine slows
all alike; each time is the median over rounds. The CPU seconds (user + system) of each process are
printed beside: unlike wall time they barely move when other work shares the machine. Two reference rows:
numpy and yaml, the floor a command may import before it answers, and the drivers (torch, Ray, pandas,
scipy), what every `--help` paid before the commands were made import-light. Target: each `--help`
within 0.3 s of bare Python.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.3


def commands() -> list[str]:
    """Every command module, dotted."""
    found = []
    for package in ("gru_xnet", "loso", "tune"):
        for path in sorted((REPO / package).rglob("*.py")):
            text = path.read_text()
            if re.search(r"^def main\(", text, re.M) and re.search(r'^if __name__ == "__main__":', text, re.M):
                found.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return found


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) one process takes from start to exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each time is the median over them")
    args = parser.parse_args()
    runs = {"python -c pass": ["-c", "pass"],
            "floor: import numpy, yaml": ["-c", "import numpy, yaml"],
            **{f"python -m {module} --help": ["-m", module, "--help"] for module in commands()},
            "reference: import loso.driver, tune.driver": ["-c", "import loso.driver, tune.driver"]}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, argv in runs.items():
            times[name].append(timed(argv))
    medians = {name: [statistics.median(column) for column in zip(*values)] for name, values in times.items()}
    bare, bare_cpu = medians["python -c pass"]
    print(f"## Command start-up: median of {args.repeats} runs, {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f}; target: --help within {TARGET_SECONDS} s of bare Python\n")
    print("| command | wall s | minus bare Python | CPU s | minus bare Python | within target (wall) |\n"
          "|---|---|---|---|---|---|")
    for name, (seconds, cpu) in medians.items():
        verdict = "" if name.startswith(("python -c", "floor", "reference")) else (
            "yes" if seconds - bare <= TARGET_SECONDS else "NO")
        print(f"| `{name}` | {seconds:.2f} | {seconds - bare:+.2f} | {cpu:.2f} | {cpu - bare_cpu:+.2f} | {verdict} |")


if __name__ == "__main__":
    main()
