"""LOSO fold results to paper tables: per subject and per dataset, as CSV, Markdown and LaTeX, plus a plot.

`python -m loso.aggregate OUTPUT_DIR` rebuilds them from the fold files at any time. Every artefact
opens with the protocol (datasets, labels, SEED-IV sessions, seeds, config hash) and flags synthetic data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from gru_xnet.config import write_text_atomic  # noqa: E402
from gru_xnet.metrics import scores  # noqa: E402

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def protocol_lines(manifest: dict, n_failed: int = 0) -> list[str]:
    """Human-readable statement of what was run, for the head of every table."""
    lines = []
    if manifest.get("synthetic"):
        lines.append("SYNTHETIC DATA (generated in the real file formats) - not a result on real EEG")
    lines.append(f"Leave-one-subject-out, protocol '{manifest['protocol']}' "
                 f"({'train on other subjects of the same dataset' if manifest['protocol'] == 'within' else 'train on other subjects of all datasets'})")
    lines.append("datasets: " + "; ".join(f"{k}: {v}" for k, v in manifest["labels"].items()))
    if "SEEDIV" in manifest["datasets"]:
        lines.append(f"SEED-IV sessions: {manifest['seediv_sessions']}"
                     + (" (a subject's three sessions held out together)" if manifest["seediv_sessions"] == "pooled"
                        else " (one LOSO per session)"))
    lines.append(f"seeds: {' '.join(map(str, manifest['seeds']))}; config hash {manifest['config_hash']}; "
                 f"channels: {len(manifest['channels'])}")
    if n_failed:
        lines.append(f"WARNING: {n_failed} fold(s) failed and are not in these tables")
    return lines


def load_folds(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "folds").glob("*.json"))]


def per_subject_table(folds: list[dict]) -> pd.DataFrame:
    """One row per held-out subject (and session): metrics averaged over seeds, with their spread."""
    rows = [{"dataset": f["fold"]["dataset"], "subject": f["fold"]["subject"],
             "session": f["fold"]["session"] if f["fold"]["session"] is not None else "all",
             "seed": f["fold"]["seed"], "n_test": f["test"]["n"], **{m: f["test"][m] for m in METRICS}}
            for f in folds]
    raw = pd.DataFrame(rows)
    grouped = raw.groupby(["dataset", "subject", "session"], sort=False)
    table = grouped.agg(n_test=("n_test", "first"), n_seeds=("seed", "nunique"),
                        **{m: (m, "mean") for m in METRICS}).reset_index()
    if raw["seed"].nunique() > 1:
        table["accuracy_sd_seeds"] = grouped["accuracy"].std(ddof=1).values
    key = table["subject"].str.extract(r"(\d+)", expand=False).astype(float)
    return table.assign(_k=key).sort_values(["dataset", "session", "_k", "subject"]).drop(columns="_k") \
        .reset_index(drop=True)


def chance_test(balanced: np.ndarray, chance: float) -> float:
    """One-sided Wilcoxon signed-rank p-value that subjects' balanced accuracy exceeds chance."""
    diffs = balanced - chance
    if len(diffs) < 2 or np.allclose(diffs, 0):
        return float("nan")
    return float(stats.wilcoxon(diffs, alternative="greater", zero_method="zsplit").pvalue)


def per_dataset_table(folds: list[dict], subjects: pd.DataFrame, n_classes: int) -> tuple[pd.DataFrame, dict]:
    """Mean ± std across subjects, median, range, chance test, seed spread; pooled confusion matrices."""
    chance = 100.0 / n_classes
    rows, confusions = [], {}
    for dataset, group in subjects.groupby("dataset", sort=False):
        cm = np.sum([np.asarray(f["test"]["confusion_matrix"]) for f in folds if f["fold"]["dataset"] == dataset],
                    axis=0)
        confusions[dataset] = cm.tolist()
        seed_means = pd.Series([f["test"]["accuracy"] for f in folds if f["fold"]["dataset"] == dataset],
                               index=[f["fold"]["seed"] for f in folds if f["fold"]["dataset"] == dataset])
        seed_means = seed_means.groupby(level=0).mean()
        rows.append({
            "dataset": dataset, "n_subjects": group["subject"].nunique(), "n_folds": len(group),
            "accuracy_mean": group["accuracy"].mean(), "accuracy_std": group["accuracy"].std(ddof=1),
            "accuracy_median": group["accuracy"].median(), "accuracy_min": group["accuracy"].min(),
            "accuracy_max": group["accuracy"].max(),
            "balanced_accuracy_mean": group["balanced_accuracy"].mean(),
            "balanced_accuracy_std": group["balanced_accuracy"].std(ddof=1),
            "macro_f1_mean": group["macro_f1"].mean(),
            "pooled_accuracy": scores(cm)["accuracy"], "chance": chance,
            "wilcoxon_p": chance_test(group["balanced_accuracy"].to_numpy(), chance),
            "seed_sd": seed_means.std(ddof=1) if len(seed_means) > 1 else float("nan"),
        })
    return pd.DataFrame(rows), confusions


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if np.isnan(value) else (f"{value:.3g}" if abs(value) < 0.01 and value else f"{value:.2f}")
    return str(value)


def to_markdown(table: pd.DataFrame, header: list[str]) -> str:
    lines = [f"> {h}" for h in header] + [""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, header: list[str]) -> str:
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")  # noqa: E731
    lines = [f"% {h}" for h in header]
    lines += [r"\begin{tabular}{" + "l" * 2 + "r" * (len(table.columns) - 2) + "}", r"\toprule",
              " & ".join(esc(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(_fmt(v)) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, stem: Path, header: list[str]) -> None:
    """CSV (protocol as leading '#' lines; read with pandas comment='#'), Markdown and LaTeX."""
    write_text_atomic(stem.with_suffix(".csv"), "".join(f"# {h}\n" for h in header) + table.to_csv(index=False))
    write_text_atomic(stem.with_suffix(".md"), to_markdown(table, header))
    write_text_atomic(stem.with_suffix(".tex"), to_latex(table, header))


def plot_subjects(subjects: pd.DataFrame, chance: float, path: Path, title: str) -> None:
    """Per-subject accuracy bars grouped by dataset, with the chance level drawn."""
    datasets = list(dict.fromkeys(subjects["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(max(6, 0.35 * len(subjects) + 2 * len(datasets)), 4),
                             squeeze=False, sharey=True)
    for ax, dataset in zip(axes[0], datasets):
        group = subjects[subjects["dataset"] == dataset]
        labels = [s if sess == "all" else f"{s}/{sess}" for s, sess in zip(group["subject"], group["session"])]
        err = group["accuracy_sd_seeds"] if "accuracy_sd_seeds" in group else None
        ax.bar(range(len(group)), group["accuracy"], yerr=err, color="tab:blue", alpha=0.8)
        ax.axhline(chance, color="tab:red", linestyle="--", label=f"chance {chance:.0f}%")
        ax.axhline(group["accuracy"].mean(), color="k", linestyle=":", label=f"mean {group['accuracy'].mean():.1f}%")
        ax.set_xticks(range(len(group)), labels, rotation=90, fontsize=7)
        ax.set_title(dataset)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def aggregate(out: str | Path) -> dict:
    """Build every table and the plot from `<out>/folds`; returns the tables and the protocol header."""
    out = Path(out)
    manifest = json.loads((out / "run.json").read_text())
    folds = load_folds(out)
    n_failed = len(list((out / "failed").glob("*.json")))
    header = protocol_lines(manifest, n_failed)
    if not folds:
        return {"header": header, "subjects": pd.DataFrame(), "datasets": pd.DataFrame(), "confusions": {}}
    subjects = per_subject_table(folds)
    datasets, confusions = per_dataset_table(folds, subjects, manifest["n_classes"])
    tables = out / "tables"
    write_table(subjects, tables / "per_subject", header)
    write_table(datasets, tables / "per_dataset", header)
    write_text_atomic(tables / "confusion_matrices.json", json.dumps(
        {"class_names": manifest["class_names"], "rows": "true class", "columns": "predicted class",
         "pooled": confusions, "protocol": header}, indent=2))
    plot_subjects(subjects, 100.0 / manifest["n_classes"], out / "figures" / "per_subject_accuracy.png",
                  "\n".join(header[:2]))
    return {"header": header, "subjects": subjects, "datasets": datasets, "confusions": confusions,
            "class_names": manifest["class_names"], "out": str(out)}


def print_tables(tables: dict) -> None:
    """The end-of-run view: protocol, per-subject and per-dataset tables, where the files are."""
    print()
    for line in tables["header"]:
        print(f"# {line}")
    if tables["subjects"].empty:
        print("no finished folds yet")
        return
    with pd.option_context("display.width", 160, "display.max_rows", 500, "display.float_format", "{:.2f}".format):
        print("\nPer subject:")
        print(tables["subjects"].to_string(index=False))
        print("\nPer dataset:")
        print(tables["datasets"].to_string(index=False))
    for dataset, cm in tables["confusions"].items():
        print(f"\nPooled confusion matrix, {dataset} (rows true, columns predicted: "
              f"{', '.join(tables['class_names'][dataset])}):")
        for row in cm:
            print("  " + " ".join(f"{v:6d}" for v in row))
    print(f"\nTables in {tables['out']}/tables, plot in {tables['out']}/figures/per_subject_accuracy.png")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loso.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    args = parser.parse_args(argv)
    if not (Path(args.output_dir) / "run.json").is_file():
        print(f"error: {args.output_dir} has no run.json: not a loso.run output folder", file=sys.stderr)
        return 2
    print_tables(aggregate(args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
