"""`python -m gru_xnet.datasets.check --data-root DIR`: what a user runs first on their copy of the datasets.

For every dataset found under DIR (or each one named with `--datasets`): its folder, subjects, sessions,
trials, trial durations and label balance under the default options, the released feature folders of the datasets
that ship them (SEED, SEED-IV: `dataset_options` source 'released'), and every file that is missing or malformed,
one line each, read through the same readers the runs use, without building features.
Exit code 0 when everything named or found reads, 1 when something does not, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .base import DatasetError
from .registry import (DATASET_NAMES, READERS, add_dataset_module_argument, canonical_name, find_dataset_root,
                       get_reader, register_dataset_modules)


@dataclass
class Report:
    """What one dataset's copy holds, and what is wrong with it."""

    name: str
    root: Path | None = None
    subjects: int = 0
    sessions: set[str] = field(default_factory=set)
    trials: int = 0
    seconds: list[float] = field(default_factory=list)
    labels: collections.Counter = field(default_factory=collections.Counter)
    class_names: tuple[str, ...] = ()
    synthetic: bool = False
    released: str | None = None
    """What the released-features source finds (datasets that have one), or None."""
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.root is None:
            return [f"{self.name}: {self.problems[0]}"]
        head = f"{self.name}: {self.root}{' (SYNTHETIC)' if self.synthetic else ''}"
        if not self.trials:
            return [head, *[f"  PROBLEM {p}" for p in self.problems]]
        balance = ", ".join(f"{self.class_names[k] if k < len(self.class_names) else k} {n}"
                            for k, n in sorted(self.labels.items()))
        return [head,
                f"  {self.subjects} subject(s), session(s) {', '.join(sorted(self.sessions))}, {self.trials} trial(s)",
                f"  trial length {min(self.seconds):.1f}-{max(self.seconds):.1f} s (mean {sum(self.seconds) / len(self.seconds):.1f} s)",
                f"  labels (default options): {balance}",
                *([f"  released DE features: {self.released}"] if self.released else []),
                *[f"  PROBLEM {p}" for p in self.problems]]


def check_dataset(name: str, data_root: Path) -> Report:
    """Read every subject of one dataset under `data_root` with its default options."""
    report = Report(name)
    try:
        report.root = find_dataset_root(name, data_root)
        reader = get_reader(name, report.root)
        subjects = reader.subjects()
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    report.class_names, report.synthetic = tuple(reader.class_names), reader.synthetic
    for subject in subjects:
        try:
            trials = reader.read_subject(subject)
        except DatasetError as exc:
            report.problems.append(f"subject {subject}: {exc}")
            continue
        report.subjects += 1
        report.trials += len(trials)
        report.sessions |= {t.session for t in trials}
        report.seconds += [t.signal.shape[-1] / t.sampling_rate for t in trials]
        report.labels.update(t.label for t in trials)
    if "source" in inspect.signature(READERS[name].check_options).parameters:
        check_released(report, name)
    return report


def check_released(report: Report, name: str) -> None:
    """The dataset's released feature folder: absent (said; only `source: released` needs it), read whole, or its
    malformed files as problems."""
    try:
        reader = get_reader(name, report.root, source="released")
        found = reader.subjects()
    except DatasetError as exc:
        report.released = f"none ({exc}; only needed for dataset_options source 'released')"
        return
    subjects = 0
    for subject in found:
        try:
            reader.read_subject(subject)
            subjects += 1
        except DatasetError as exc:
            report.problems.append(f"released features, subject {subject}: {exc}")
    report.released = f"{reader.data_dir}, {subjects} subject(s) read ({reader.released_feature})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gru_xnet.datasets.check", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, type=Path, help="the folder holding your dataset folders")
    parser.add_argument("--datasets", nargs="+", help="check only these (default: every dataset found)")
    add_dataset_module_argument(parser)
    args = parser.parse_args(argv)
    try:
        register_dataset_modules(args.dataset_module)
        names = [canonical_name(n) for n in args.datasets] if args.datasets else list(DATASET_NAMES)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.data_root.is_dir():
        print(f"error: --data-root {args.data_root} is not a folder", file=sys.stderr)
        return 2
    reports = [check_dataset(name, args.data_root) for name in names]
    shown = [r for r in reports if args.datasets or r.root is not None]
    for report in shown:
        print("\n".join(report.lines()))
    if not shown:
        print(f"no dataset found under {args.data_root} (known: {', '.join(READERS)}); name one with --datasets to "
              "see what it expects")
    return 1 if not shown or any(r.problems for r in shown) else 0


if __name__ == "__main__":
    sys.exit(main())
