"""`python -m loso.compare RUN_A RUN_B [RUN_C ...]`: paired per-subject comparison of LOSO runs.

Runs are compared only when they hold the same subjects, the same label definitions and test labels
(every test trial's label) and the same protocol; otherwise the comparison is refused, naming what
differs. For every pair of runs, dataset and level (window, trial): the mean per-subject difference
(later run minus earlier run) with a bootstrap 95 % CI, a two-sided paired Wilcoxon signed-rank test
over subjects (Holm-corrected across all comparisons of one level), the rank-biserial effect size and
win / tie / loss counts. Writes comparison.csv/.md/.tex, per_subject.csv/.md/.tex and
figures/subject_lines.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from gru_xnet.config import ConfigError
from loso.aggregate import LEVELS, SCORES, fold_frame, subject_frame
from loso.outputs import load_results
from loso.protocol import protocol_lines, with_legacy_keys
from loso.stats import holm, mean_ci, signed_rank
from loso.tables import write_table

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("loso.compare")

SAME = ("split", "protocol", "sessions", "datasets", "labels", "n_classes", "synthetic")
"""run.json keys that must be equal for two runs' per-subject scores to be paired."""


@dataclass
class Run:
    """One LOSO run folder: its manifest, per-subject scores (real labels) and every test trial's label."""

    name: str
    path: Path
    manifest: dict
    subjects: pd.DataFrame
    test_labels: set[tuple]

    @classmethod
    def load(cls, path: Path, name: str) -> "Run":
        if not (path / "run.json").is_file():
            raise ConfigError(f"{path} has no run.json: not a loso.run output folder")
        observed, _ = load_results(path)
        if not observed:
            raise ConfigError(f"{path} has no finished fold")
        _, subjects = subject_frame(fold_frame(observed))
        labels = {(r["fold"]["dataset"], r["fold"]["subject"], session, trial, label) for r in observed
                  for session, trial, label in zip(r["predictions"]["session"], r["predictions"]["trial"],
                                                   r["predictions"]["y_true"])}
        return cls(name, path, with_legacy_keys(json.loads((path / "run.json").read_text())),
                   subjects[subjects["variant"] == 0], labels)

    @property
    def subject_keys(self) -> set[tuple[str, str]]:
        return set(zip(self.subjects["dataset"], self.subjects["subject"]))

    @property
    def tuned_keys(self) -> set[tuple[str, str]]:
        """Subjects this run's config was tuned on (from its fold files and its run.json)."""
        marked = self.subjects[self.subjects["tuned"]]
        listed = {tuple(name.split("/", 1)) for name in self.manifest.get("tuned_on", [])}
        return set(zip(marked["dataset"], marked["subject"])) | (listed & self.subject_keys)


def check_comparable(runs: Sequence[Run]) -> None:
    """Raise ConfigError naming the first difference that makes a paired comparison meaningless."""
    first = runs[0]
    for run in runs[1:]:
        for key in SAME:
            if run.manifest.get(key) != first.manifest.get(key):
                raise ConfigError(f"cannot compare {run.name} with {first.name}: their {key} differs "
                                  f"({run.manifest.get(key)!r} vs {first.manifest.get(key)!r})")
        if run.subject_keys != first.subject_keys:
            only = sorted(run.subject_keys ^ first.subject_keys)
            raise ConfigError(f"cannot compare {run.name} with {first.name}: they hold different subjects "
                              f"(only in one: {', '.join('/'.join(k) for k in only[:10])})")
        if run.test_labels != first.test_labels:
            differing = sorted({k[:2] for k in run.test_labels ^ first.test_labels})
            raise ConfigError(f"cannot compare {run.name} with {first.name}: the test labels of "
                              f"{', '.join('/'.join(k) for k in differing[:10])} differ (other data or label options)")


def wide_scores(runs: Sequence[Run], metric: str) -> pd.DataFrame:
    """One row per (dataset, subject, level), one column per run holding `metric`, and the runs tuned on it."""
    table = None
    for run in runs:
        part = run.subjects[["dataset", "subject", "level", metric]].rename(columns={metric: run.name})
        table = part if table is None else table.merge(part, on=["dataset", "subject", "level"], sort=False)
    table["tuned_in"] = [" ".join(run.name for run in runs if key in run.tuned_keys)
                         for key in zip(table["dataset"], table["subject"])]
    return table


def pairwise(wide: pd.DataFrame, names: Sequence[str], metric: str) -> pd.DataFrame:
    """Every pair of runs per dataset and level: difference, CI, Wilcoxon, effect size, wins/ties/losses."""
    import pandas as pd

    rows = []
    untuned = wide[wide["tuned_in"] == ""]
    for a, b in combinations(names, 2):
        for (dataset, level), group in untuned.groupby(["dataset", "level"], sort=False):
            d = (group[b] - group[a]).dropna()
            test = signed_rank(d, alternative="two-sided")
            ci = mean_ci(d)
            tie = np.isclose(d, 0)
            excluded = wide[(wide["dataset"] == dataset) & (wide["level"] == level) & (wide["tuned_in"] != "")]
            rows.append({"run_a": a, "run_b": b, "dataset": dataset, "level": level, "metric": metric,
                         "n_subjects": len(d), "excluded_tuned": " ".join(excluded["subject"]),
                         f"{metric}_a": group[a].mean(), f"{metric}_b": group[b].mean(),
                         "mean_difference": d.mean(), "difference_ci_low": ci.low, "difference_ci_high": ci.high,
                         "ci_method": ci.method, "p_wilcoxon": test.p, "p_method": test.method,
                         "r_rank_biserial": test.r, "wins_b": int(((d > 0) & ~tie).sum()),
                         "ties": int(tie.sum()), "losses_b": int(((d < 0) & ~tie).sum())})
    table = pd.DataFrame(rows)
    for level in LEVELS:
        rows_of_level = table["level"] == level
        table.loc[rows_of_level, "p_holm"] = holm(table.loc[rows_of_level, "p_wilcoxon"])
    return table


def _run_names(paths: Sequence[Path]) -> list[str]:
    """Folder names, made unique with their parent's name where two runs share one."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def paired(runs: Sequence[Run], metric: str) -> dict:
    """The comparison of loaded, comparable runs: caption lines, pairwise table and per-subject wide table."""
    names = [r.name for r in runs]
    wide = wide_scores(runs, metric)
    table = pairwise(wide, names, metric)
    header = [line for line in protocol_lines(runs[0].manifest)
              if not line.startswith(("seeds:", "permutation", "model ", "card "))]  # each run's own
    header += [f"runs: {', '.join(f'{r.name} ({r.path})' for r in runs)}",
               f"paired over subjects on {metric} (%): difference = run_b - run_a; 95% CI of the mean difference "
               "(Student t below 30 subjects, percentile bootstrap from 30; ci_method); p: two-sided Wilcoxon "
               "signed-rank over subjects (p_method), Holm-corrected across the comparisons of each level; r: "
               "rank-biserial; wins/ties/losses: subjects where run_b is above/equal/below run_a"]
    tuned = {f"{d}/{s}": names for d, s, names in wide[["dataset", "subject", "tuned_in"]].drop_duplicates()
             .itertuples(index=False) if names}
    if tuned:
        header.append("EXCLUDED from every paired test: subject(s) a compared config was tuned on: "
                      + ", ".join(f"{subject} (tuned in {names})" for subject, names in tuned.items()))
    return {"header": header, "comparison": table, "per_subject": wide}


def load_runs(paths: Sequence[str | Path], metric: str) -> list[Run]:
    """The run folders, loaded and checked to be comparable on `metric`."""
    if metric not in SCORES:
        raise ConfigError(f"--metric {metric!r}: expected one of {', '.join(SCORES)}")
    paths = [Path(p).resolve() for p in paths]
    if len(paths) < 2:
        raise ConfigError("a comparison needs at least two run folders")
    runs = [Run.load(p, n) for p, n in zip(paths, _run_names(paths))]
    check_comparable(runs)
    return runs


def write_paired(result: dict, runs: Sequence[Run], metric: str, out: Path, stem: str) -> None:
    """`stem`.{csv,md,tex} (pairwise), per_subject.{csv,md,tex} and figures/subject_lines.png under `out`."""
    from loso.figures import plot_subject_lines

    header, table, wide = result["header"], result["comparison"], result["per_subject"]
    synthetic = bool(runs[0].manifest.get("synthetic"))
    write_table(table.assign(synthetic=synthetic), out / stem, header, table)
    write_table(wide.assign(synthetic=synthetic), out / "per_subject", header, wide)
    plot_subject_lines(wide[wide["level"] == "window"], [r.name for r in runs], metric,
                       out / "figures" / "subject_lines.png", "\n".join(header[:2]))


def compare(paths: Sequence[str | Path], metric: str = "balanced_accuracy", output: str | Path | None = None) -> dict:
    """Load, check and compare the runs; write the tables and the figure; return them."""
    runs = load_runs(paths, metric)
    out = Path(output or Path("outputs") / "compare" / "_vs_".join(r.path.name for r in runs)).resolve()
    result = paired(runs, metric)
    write_paired(result, runs, metric, out, "comparison")
    return {**result, "out": out}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loso.compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="loso.run output folders (two or more)")
    parser.add_argument("--metric", default="balanced_accuracy", help=f"one of {', '.join(SCORES)}")
    parser.add_argument("--output", help="output folder (default: outputs/compare/<A>_vs_<B>...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = compare(args.runs, args.metric, args.output)
    except (ConfigError, OSError) as exc:
        log.error("error: %s", exc)
        return 2
    import pandas as pd

    print()
    for line in result["header"]:
        print(f"# {line}")
    shown = result["comparison"].drop(columns=["metric"])
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3g}".format):
        print(shown.to_string(index=False))
    print(f"\nTables in {result['out']}, plot in {result['out']}/figures/subject_lines.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
