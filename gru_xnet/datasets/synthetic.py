"""Synthetic copies of every registered dataset in its exact on-disk format, with a planted, controllable class signal.

Each dataset's module writes a subject (`Reader.write_subject`) with the signal model of `synthetic_signal`:
1/f-like background noise whose band amplitudes are shaped by subject-specific gains and band offsets and by
two binary emotion factors, valence and arousal, onto which each dataset maps its classes.
`--signal-strength 0` removes the effect; `--shuffle-labels` draws the planted factors independently of the
written labels. Each dataset folder gets a SYNTHETIC.json marker with the generator parameters.

`--signal temporal` plants the valence factor in *time order* instead of band power: bursts of theta,
alpha and beta activity take turns, one third of a 1 s cycle each, rising in frequency for positive
valence and falling for negative, at a random phase per trial. Both classes have the same time-averaged
band power, so a model that averages over time cannot tell them apart, while any window of 2 s or more
shows the order. Subjects keep their own gains and band offsets.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .base import MARKER_NAME, DatasetError
from .registry import DATASET_NAMES, READERS, add_dataset_module_argument, canonical_name, register_dataset_modules
from .synthetic_signal import SIGNALS, Planting

DEFAULT_SECONDS = 20.0


def trials_for(name: str, trials: int | None) -> int:
    """Trials per subject (per session) to write: the dataset's default, or `trials` where its count is not fixed."""
    default, most = READERS[name].synthetic_trials
    n_trials = default if trials is None or default == most else trials
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or not 1 <= n_trials <= most:
        raise DatasetError(f"trials={trials!r} is not allowed for {name}; allowed values: 1..{most}")
    return n_trials


def _prepare(root: Path) -> None:
    """Empty a previous synthetic copy; refuse to touch a non-empty folder without the marker (real data?)."""
    if root.exists():
        if not (root / MARKER_NAME).is_file() and any(root.iterdir()):
            raise DatasetError(f"{root}: expected an empty folder or an earlier synthetic copy ({MARKER_NAME}), "
                               f"found other files; refusing to overwrite")
        shutil.rmtree(root)
    root.mkdir(parents=True)


def write_synthetic(out_dir: str | Path, datasets: Iterable[str], n_subjects: int, *, trials: int | None = None,
                    seconds: float | None = None, signal_strength: float = 1.0, shuffle_labels: bool = False,
                    seed: int = 0, signal: str = "band", released: bool = False) -> dict[str, Path]:
    """Write synthetic copies of the datasets under out_dir/<NAME>; returns the root per canonical name.

    `released`: also write the DE features SEED and SEED-IV ship (computed from the written signal; it doubles the
    time their files take), for `dataset_options` source 'released'."""
    names = [canonical_name(name) for name in datasets]
    if not names:
        raise DatasetError(f"datasets: expected at least one of {DATASET_NAMES}, found none")
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, int) or n_subjects < 1:
        raise DatasetError(f"n_subjects={n_subjects!r} is not allowed; allowed values: an integer >= 1")
    if seconds is not None and not seconds > 0:
        raise DatasetError(f"seconds={seconds!r} is not allowed; allowed values: a number > 0")
    if not signal_strength >= 0:
        raise DatasetError(f"signal_strength={signal_strength!r} is not allowed; allowed values: a number >= 0")
    if signal not in SIGNALS:
        raise DatasetError(f"signal={signal!r} is not allowed; allowed values: {', '.join(SIGNALS)}")
    planting = Planting(float(signal_strength), bool(shuffle_labels), signal, bool(released))
    roots = {}
    for name in dict.fromkeys(names):
        n_trials = trials_for(name, trials)
        root = Path(out_dir) / name
        _prepare(root)
        length = DEFAULT_SECONDS if seconds is None else float(seconds)
        READERS[name].write_synthetic(root, n_subjects, n_trials, length, planting, seed)
        marker = {
            "synthetic": True, "generator": "gru_xnet.datasets.synthetic", "dataset": name,
            "subjects": n_subjects, "trials": n_trials, "seconds": length,
            "signal": signal, "signal_strength": float(signal_strength), "shuffle_labels": bool(shuffle_labels),
            "seed": seed, "released": bool(released),
        }
        (root / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
        roots[name] = root
    return roots


DEMO_SUBJECTS = 5
"""Subjects per dataset that `--synthetic` runs generate: enough for LOSO folds with a validation subject."""


def ensure_synthetic_data(out_dir: str | Path, datasets: Iterable[str], n_subjects: int = DEMO_SUBJECTS,
                          trials: Callable[[str], int | None] = lambda _name: None, **options: Any) -> Path:
    """Synthetic datasets under out_dir, written only where missing or made with other parameters; `trials(name)`:
    the trials per subject (per session) a dataset needs, None for the generator's default.

    Returns out_dir, ready to be used as a data root; repeated demo runs reuse the same files (and so
    the same feature cache).
    """
    out_dir = Path(out_dir)
    for name in dict.fromkeys(canonical_name(n) for n in datasets):
        marker = out_dir / name / MARKER_NAME
        options["trials"] = trials(name)
        wanted = {"subjects": n_subjects, "signal": options.get("signal", "band"),
                  "signal_strength": float(options.get("signal_strength", 1.0)),
                  "shuffle_labels": bool(options.get("shuffle_labels", False)), "seed": options.get("seed", 0),
                  "trials": trials_for(name, options["trials"]),
                  "seconds": float(options.get("seconds") or DEFAULT_SECONDS),
                  "released": bool(options.get("released", False))}
        try:
            found = json.loads(marker.read_text())
        except (OSError, ValueError):
            found = {}
        if any(found.get(k, False if k == "released" else None) != v for k, v in wanted.items()):
            write_synthetic(out_dir, [name], n_subjects, **options)
    return out_dir


def synthetic_data_for(data: Any, out_dir: str | Path, n_subjects: int = DEMO_SUBJECTS,
                       trials: Callable[[str], int | None] = lambda _name: None) -> Path:
    """`ensure_synthetic_data` for a DataConfig's datasets, with the released DE features where its options read them
    (`trials`: as `ensure_synthetic_data`'s)."""
    released = any(data.delivers_de(name) for name in data.datasets)
    return ensure_synthetic_data(out_dir, data.datasets, n_subjects, trials=trials, released=released)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write the synthetic datasets and print where they went; a bad option is one line and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m gru_xnet.datasets.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write one folder per dataset into")
    parser.add_argument("--datasets", nargs="+", default=list(DATASET_NAMES), help="dataset names (any case)")
    parser.add_argument("--subjects", type=int, default=4, help="subjects per dataset")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per subject, or per session where there are sessions (default and most: "
                             + ", ".join(f"{n} {r.synthetic_trials[0]}/{r.synthetic_trials[1]}" for n, r in READERS.items())
                             + "; a fixed count where both are equal)")
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"seconds per trial (DEAP: stimulus part, after 3 s baseline); default {DEFAULT_SECONDS}")
    parser.add_argument("--signal-strength", type=float, default=1.0, help="planted effect scale; 0 = no signal")
    parser.add_argument("--shuffle-labels", action="store_true", help="labels independent of the planted signal")
    parser.add_argument("--signal", choices=SIGNALS, default="band",
                        help="band: class in band power; temporal: class only in the order of band bursts; stimulus: no "
                             "emotion, a pattern per stimulus shared by every subject, labels fixed per stimulus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--released-features", action="store_true",
                        help="also write the DE features SEED and SEED-IV release beside their EEG (ExtractedFeatures/, "
                             "eeg_feature_smooth/), computed from the written signal")
    add_dataset_module_argument(parser)
    args = parser.parse_args(argv)
    try:
        register_dataset_modules(args.dataset_module)
        roots = write_synthetic(args.out, args.datasets, args.subjects, trials=args.trials, seconds=args.seconds,
                                signal_strength=args.signal_strength, shuffle_labels=args.shuffle_labels,
                                seed=args.seed, signal=args.signal, released=args.released_features)
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, root in roots.items():
        print(f"{name}: {args.subjects} synthetic subjects in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
