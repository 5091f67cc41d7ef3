"""LOSO fold results to paper tables: per fold, per subject and per dataset, each score beside its baseline.

`python -m loso.aggregate OUTPUT_DIR` rebuilds everything from the fold files at any time:
tables/per_fold, per_subject and per_dataset (.csv plain, .md and .tex captioned with the protocol),
tables/PROTOCOL.md (what was run and how every column is computed), tables/confusion_matrices.json,
summary.json, figures/per_subject_accuracy.png and, with permutations, figures/permutation_null.png.

Statistics are over subjects: a subject's sessions and seeds are averaged first (see loso.stats).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from gru_xnet.config import write_text_atomic
from loso.figures import plot_nulls, plot_subjects
from loso.outputs import load_results
from loso.stats import BOOTSTRAP_RESAMPLES, bootstrap_ci, holm, permutation_p, signed_rank
from loso.tables import write_table

LEVELS = ("window", "trial")
SCORES = ("balanced_accuracy", "accuracy", "macro_f1", "kappa", "macro_auc")
BASELINES = ("majority_accuracy", "prior_accuracy", "chance_balanced_accuracy")
TUNED_NOTE = "hyper-parameters tuned on this subject: not an unbiased estimate"
STATISTICS = (
    "Statistics over subjects (a subject's sessions and seeds are averaged first; windows and sessions are never "
    "counted as samples). mean [95% CI]: percentile bootstrap of the mean over subjects "
    f"({BOOTSTRAP_RESAMPLES} resamples, seed 0). p vs chance: one-sided Wilcoxon signed-rank of balanced accuracy "
    "- 1/K (K = classes present in the subject's test set); p vs majority: one-sided paired Wilcoxon of accuracy "
    "- the majority-class baseline; zero differences split (zsplit); Holm-corrected across the datasets of this "
    "run, per level; r: matched-pairs rank-biserial correlation. Trial level: a trial's window probabilities "
    "averaged.")


def protocol_lines(manifest: dict, n_failed: int = 0) -> list[str]:
    """Human-readable statement of what was run: the caption of every table and the head of the printout."""
    lines = []
    if manifest.get("synthetic"):
        lines.append("SYNTHETIC DATA (generated in the real file formats) - not a result on real EEG")
    lines.append(f"Leave-one-subject-out, protocol '{manifest['protocol']}' "
                 f"({'train on other subjects of the same dataset' if manifest['protocol'] == 'within' else 'train on other subjects of all datasets'})")
    lines.append("datasets: " + "; ".join(f"{k}: {v}" for k, v in manifest["labels"].items()))
    if "SEEDIV" in manifest["datasets"]:
        lines.append(f"SEED-IV sessions: {manifest['seediv_sessions']}"
                     + (" (a subject's three sessions held out together)" if manifest["seediv_sessions"] == "pooled"
                        else " (one LOSO per session; sessions averaged within each subject)"))
    lines.append(f"seeds: {' '.join(map(str, manifest['seeds']))}; config hash {manifest['config_hash']}; "
                 f"channels: {len(manifest['channels'])}")
    if manifest.get("model_input"):
        lines.append(f"model {manifest['model_input']}")
    if manifest.get("permutations"):
        lines.append(f"permutation null: {manifest['permutations']} retrainings per fold with the training and "
                     "validation subjects' labels permuted across whole trials within each subject")
    if manifest.get("tuned_on"):
        lines.append(f"WARNING: the hyper-parameters were tuned on {len(manifest['tuned_on'])} subject(s); folds that "
                     f"test one of them are marked ({TUNED_NOTE})")
    if n_failed:
        lines.append(f"WARNING: {n_failed} fold job(s) failed and are not in these tables")
    return lines


def fold_frame(records: list[dict]) -> pd.DataFrame:
    """One row per fold result and level (window, trial): scores, baselines, class counts."""
    rows = []
    for record in records:
        fold = record["fold"]
        for level in LEVELS:
            m = record["test"] if level == "window" else record["test"]["trial"]
            rows.append({"dataset": fold["dataset"], "subject": fold["subject"],
                         "session": "all" if fold["session"] is None else str(fold["session"]), "seed": fold["seed"],
                         "variant": record.get("variant", 0), "level": level, "n": m["n"],
                         **{s: m[s] for s in SCORES}, **{b: m["baseline"][b] for b in BASELINES},
                         "classes_present": m["classes_present"],
                         **{f"n_class{k}": c for k, c in enumerate(m["class_counts"])},
                         "tuned": bool(record.get("tuned_on_test_subject", False))})
    return pd.DataFrame(rows)


def _natural(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by dataset, then subject number (s2 before s10)."""
    number = frame["subject"].str.extract(r"(\d+)", expand=False).astype(float)
    return frame.assign(_k=number).sort_values(["dataset", "_k", "subject"], kind="stable").drop(columns="_k")


def subject_frame(folds: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per seed, per subject): sessions averaged within a seed, then seeds averaged within a subject.

    A single-class fold's balanced accuracy is NaN and is skipped by the means, so a subject is
    single-class (NaN) only when every fold of it is.
    """
    counts = [c for c in folds if c.startswith("n_class")]
    keys = ["dataset", "subject", "level", "variant"]
    per_seed = folds.groupby(keys + ["seed"], sort=False).agg(
        **{c: (c, "mean") for c in (*SCORES, *BASELINES)}, n=("n", "sum"), **{c: (c, "sum") for c in counts},
        n_sessions=("session", "nunique"), tuned=("tuned", "any")).reset_index()
    grouped = per_seed.groupby(keys, sort=False)
    subjects = grouped.agg(**{c: (c, "mean") for c in (*SCORES, *BASELINES)}, n=("n", "first"),
                           **{c: (c, "first") for c in counts}, n_seeds=("seed", "nunique"),
                           n_sessions=("n_sessions", "first"), tuned=("tuned", "any")).reset_index()
    if per_seed["seed"].nunique() > 1:
        for score in ("balanced_accuracy", "accuracy"):
            subjects[f"{score}_seed_sd"] = grouped[score].std(ddof=1).to_numpy()
    subjects["single_class"] = subjects["balanced_accuracy"].isna()
    return per_seed, _natural(subjects).reset_index(drop=True)


def null_means(subjects: pd.DataFrame, members: pd.DataFrame) -> np.ndarray:
    """Per permutation, the mean balanced accuracy over `members` (only permutations every member has)."""
    null = subjects[(subjects["variant"] > 0) & subjects["subject"].isin(members["subject"])
                    & (subjects["dataset"] == members["dataset"].iloc[0]) & (subjects["level"] == members["level"].iloc[0])]
    table = null.pivot(index="variant", columns="subject", values="balanced_accuracy")
    table = table.reindex(columns=list(members["subject"])).dropna()
    return table.mean(axis=1).to_numpy()


def subject_permutation_p(subjects: pd.DataFrame) -> pd.Series:
    """Each subject's empirical p of its observed balanced accuracy against its own permutation null."""
    observed = subjects[subjects["variant"] == 0].set_index(["dataset", "subject", "level"])["balanced_accuracy"]
    null = subjects[subjects["variant"] > 0].groupby(["dataset", "subject", "level"])["balanced_accuracy"]
    return pd.Series({key: permutation_p(value, null.get_group(key)) if key in null.groups else float("nan")
                      for key, value in observed.items()}, dtype=float)


def dataset_frame(per_seed: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset and level: means with CIs, baselines, tests over subjects, effect sizes."""
    observed = subjects[subjects["variant"] == 0]
    rows = []
    for (dataset, level), group in observed.groupby(["dataset", "level"], sort=False):
        multi = group[~group["single_class"]]
        ba, acc = multi["balanced_accuracy"], group["accuracy"]
        p_chance, r_chance = signed_rank(ba - multi["chance_balanced_accuracy"])
        p_majority, r_majority = signed_rank(acc - group["majority_accuracy"])
        seed_means = per_seed[(per_seed["variant"] == 0) & (per_seed["dataset"] == dataset)
                              & (per_seed["level"] == level)].groupby("seed")["balanced_accuracy"].mean()
        row = {"dataset": dataset, "level": level, "n_subjects": len(group), "n_single_class": len(group) - len(multi),
               "balanced_accuracy_mean": ba.mean(), **_ci("balanced_accuracy", ba),
               "balanced_accuracy_sd": ba.std(ddof=1), "balanced_accuracy_median": ba.median(),
               "balanced_accuracy_min": ba.min(), "balanced_accuracy_max": ba.max(),
               "chance_balanced_accuracy": multi["chance_balanced_accuracy"].mean(),
               "p_vs_chance": p_chance, "r_vs_chance": r_chance,
               "accuracy_mean": acc.mean(), **_ci("accuracy", acc), "accuracy_sd": acc.std(ddof=1),
               "majority_accuracy_mean": group["majority_accuracy"].mean(),
               "prior_accuracy_mean": group["prior_accuracy"].mean(),
               "p_vs_majority": p_majority, "r_vs_majority": r_majority,
               **{f"{s}_mean": multi[s].mean() for s in ("macro_f1", "kappa", "macro_auc")},
               "seed_sd": seed_means.std(ddof=1) if len(seed_means) > 1 else float("nan"),
               "n_tuned_on": int(group["tuned"].sum())}
        if (subjects["variant"] > 0).any() and len(multi):
            null = null_means(subjects, multi)
            row.update(n_permutations=len(null), perm_p=permutation_p(ba.mean(), null))
        rows.append(row)
    table = pd.DataFrame(rows)
    for level in LEVELS:
        rows_of_level = table["level"] == level
        for column in ("p_vs_chance", "p_vs_majority", "perm_p"):
            if column in table:
                table.loc[rows_of_level, f"{column}_holm"] = holm(table.loc[rows_of_level, column])
    return table


def _ci(name: str, values: pd.Series) -> dict[str, float]:
    low, high = bootstrap_ci(values)
    return {f"{name}_ci_low": low, f"{name}_ci_high": high}


def wide_subjects(subjects: pd.DataFrame) -> pd.DataFrame:
    """per_subject.csv: one row per subject, window-level columns, then the same at trial level ('trial_')."""
    observed = subjects[subjects["variant"] == 0].drop(columns="variant")
    keys = ["dataset", "subject"]
    window = observed[observed["level"] == "window"].drop(columns="level").rename(columns={"n": "n_windows"})
    trial = observed[observed["level"] == "trial"].drop(columns=["level", "n_seeds", "n_sessions", "tuned",
                                                                 "single_class"])
    trial = trial.rename(columns={c: f"trial_{c}" for c in trial.columns if c not in keys}
                         ).rename(columns={"trial_n": "n_trials"})
    table = window.merge(trial, on=keys, how="left", sort=False)
    table = table.rename(columns={"tuned": "hyperparameters_tuned_on_subject"})
    first = ["dataset", "subject", "n_windows", "n_trials"]
    return table[first + [c for c in table.columns if c not in first]].reset_index(drop=True)


def _fmt(value: float, digits: int = 1) -> str:
    return "--" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "--" if not np.isfinite(p) else (f"{p:.2g}" if p < 0.01 else f"{p:.3f}")


def subjects_display(table: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The per-subject view of the printout and the .md/.tex tables: scores beside their baselines."""
    counts = sorted(c for c in table if c.startswith("n_class"))
    shown = pd.DataFrame({"dataset": table["dataset"], "subject": table["subject"],
                          "windows (per class)": [f"{n} ({'/'.join(str(int(r[c])) for c in counts)})"
                                                  for n, (_, r) in zip(table["n_windows"], table.iterrows())],
                          "trials": table["n_trials"]})
    for prefix, name in (("", "window"), ("trial_", "trial")):
        shown[f"{name} bal. acc."] = [_fmt(v) + (" (1 class)" if single else "")
                                      for v, single in zip(table[f"{prefix}balanced_accuracy"], table["single_class"])]
        if f"{prefix}balanced_accuracy_seed_sd" in table:
            shown[f"{name} bal. acc. seed SD"] = table[f"{prefix}balanced_accuracy_seed_sd"].map(_fmt)
        shown[f"{name} acc."] = table[f"{prefix}accuracy"].map(_fmt)
        shown[f"{name} majority"] = table[f"{prefix}majority_accuracy"].map(_fmt)
        if f"{prefix}perm_p" in table:
            shown[f"{name} perm. p"] = table[f"{prefix}perm_p"].map(_fmt_p)
    shown["kappa"] = table["kappa"].map(lambda v: _fmt(v, 2))
    shown["AUC"] = table["macro_auc"].map(lambda v: _fmt(v, 2))
    if manifest.get("tuned_on"):
        shown["tuned on subject"] = table["hyperparameters_tuned_on_subject"].map({True: "YES", False: ""})
    return shown


def datasets_display(table: pd.DataFrame) -> pd.DataFrame:
    """The per-dataset view: balanced accuracy first, every score beside its baseline and its test."""
    def mean_ci(name: str) -> list[str]:
        return [f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]" for m, lo, hi in
                zip(table[f"{name}_mean"], table[f"{name}_ci_low"], table[f"{name}_ci_high"])]

    shown = pd.DataFrame({
        "dataset": table["dataset"], "level": table["level"],
        "subjects": [f"{n}" + (f" ({s} one-class)" if s else "") for n, s in zip(table["n_subjects"], table["n_single_class"])],
        "bal. acc. mean [95% CI]": mean_ci("balanced_accuracy"), "chance 1/K": table["chance_balanced_accuracy"].map(_fmt),
        "p vs chance (Holm)": [f"{_fmt_p(p)} ({_fmt_p(h)})" for p, h in zip(table["p_vs_chance"], table["p_vs_chance_holm"])],
        "r (chance)": table["r_vs_chance"].map(lambda v: _fmt(v, 2)),
        "acc. mean [95% CI]": mean_ci("accuracy"), "majority baseline": table["majority_accuracy_mean"].map(_fmt),
        "p vs majority (Holm)": [f"{_fmt_p(p)} ({_fmt_p(h)})" for p, h in zip(table["p_vs_majority"], table["p_vs_majority_holm"])],
        "r (majority)": table["r_vs_majority"].map(lambda v: _fmt(v, 2)),
        "kappa": table["kappa_mean"].map(lambda v: _fmt(v, 2)), "AUC": table["macro_auc_mean"].map(lambda v: _fmt(v, 2))})
    if "perm_p" in table:
        shown["perm. p (Holm)"] = [f"{_fmt_p(p)} ({_fmt_p(h)})" for p, h in zip(table["perm_p"], table["perm_p_holm"])]
    return shown


def caption(manifest: dict, datasets: pd.DataFrame, subjects: pd.DataFrame, n_failed: int) -> list[str]:
    """Protocol lines plus what a reader must know to read the numbers (small n, one-class and tuned subjects)."""
    lines = protocol_lines(manifest, n_failed)
    single = subjects[subjects["single_class"]]
    if len(single):
        lines.append(f"{len(single)} test subject(s) show one class only ({', '.join(single['dataset'] + '/' + single['subject'])}): "
                     "balanced accuracy, macro-F1, kappa and AUC are undefined there and they are excluded from the "
                     "tests against chance")
    n_min = int(datasets["n_subjects"].min()) if len(datasets) else 0
    if 0 < n_min <= 6:
        lines.append(f"with {n_min} subjects the smallest possible one-sided Wilcoxon p is {0.5 ** n_min:.3g}: "
                     "too few subjects for a finding")
    return lines


def protocol_document(lines: list[str], manifest: dict) -> str:
    """tables/PROTOCOL.md: the statement of the run, the statistics, and what every column means."""
    classes = "; ".join(f"{d}: " + ", ".join(f"class{i} = {n}" for i, n in enumerate(names))
                        for d, names in manifest["class_names"].items())
    return "\n".join([
        "# Protocol", "", *[f"- {line}" for line in lines], "", "## Statistics", "", STATISTICS, "",
        "## Columns", "",
        "- `level`: `window` scores every test window; `trial` averages each trial's window probabilities "
        "(a trial is subject, session, trial) and scores trials.",
        "- `balanced_accuracy`: mean recall over the classes present in the test set (%); undefined (empty) "
        "for a subject whose test set holds one class. Its baseline is `chance_balanced_accuracy` = 1/K.",
        "- `accuracy` (%) and its baselines: `majority_accuracy`, the fold's training-pool majority class "
        "(training + validation subjects) predicted for every test item; `prior_accuracy`, the expected accuracy "
        "of guessing with the training-pool class frequencies.",
        "- `macro_f1` (%), `kappa` (Cohen's), `macro_auc` (one-vs-rest ROC AUC over the classes present, from "
        "the saved probabilities): fractions for kappa and AUC.",
        f"- `n_class<k>`: test windows (`trial_n_class<k>`: trials) of class k; {classes}.",
        "- `*_seed_sd`: SD of a subject's score over seeds; `seed_sd`: SD of the dataset mean over seeds.",
        "- `perm_p`: empirical permutation p, (1 + #null >= observed) / (1 + #permutations), per subject on its own "
        "balanced accuracy, per dataset on the mean over subjects.",
        f"- `hyperparameters_tuned_on_subject`: {TUNED_NOTE}.", ""])


def aggregate(out: str | Path) -> dict:
    """Build every table, figure and summary from `<out>`'s fold files; returns what `print_tables` shows."""
    out = Path(out)
    manifest = json.loads((out / "run.json").read_text())
    observed, permuted = load_results(out)
    n_failed = len(list((out / "failed").glob("*.json")))
    if not observed:
        return {"header": protocol_lines(manifest, n_failed), "subjects": pd.DataFrame()}
    folds = fold_frame(observed + permuted)
    per_seed, subjects = subject_frame(folds)
    datasets = dataset_frame(per_seed, subjects)
    table = wide_subjects(subjects)
    if permuted:
        p = subject_permutation_p(subjects)
        for level, prefix in (("window", ""), ("trial", "trial_")):
            table[f"{prefix}perm_p"] = [p.get((d, s, level), np.nan) for d, s in zip(table["dataset"], table["subject"])]
    header = caption(manifest, datasets, table, n_failed)
    tables = out / "tables"
    fold_table = folds[folds["variant"] == 0].drop(columns="variant")
    write_table(_natural(fold_table), tables / "per_fold", header)
    write_table(table, tables / "per_subject", header, subjects_display(table, manifest))
    write_table(datasets, tables / "per_dataset", header, datasets_display(datasets))
    write_text_atomic(tables / "PROTOCOL.md", protocol_document(header, manifest))
    confusions = pooled_confusions(observed)
    write_text_atomic(tables / "confusion_matrices.json", json.dumps(
        {"class_names": manifest["class_names"], "rows": "true class", "columns": "predicted class",
         "summed_over": "subjects, sessions and seeds: n = seeds x test items", "n_seeds": len(manifest["seeds"]),
         **confusions, "protocol": header}, indent=2))
    title = "\n".join(header[:2])
    plot_subjects(subjects[(subjects["variant"] == 0) & (subjects["level"] == "window")], manifest["n_classes"],
                  out / "figures" / "per_subject_accuracy.png", title)
    if permuted:
        nulls = {}
        for _, row in datasets[datasets["level"] == "window"].iterrows():
            members = subjects[(subjects["variant"] == 0) & (subjects["level"] == "window") & ~subjects["single_class"]
                               & (subjects["dataset"] == row["dataset"])]
            nulls[row["dataset"]] = (null_means(subjects, members), row["balanced_accuracy_mean"],
                                     row["chance_balanced_accuracy"])
        plot_nulls(nulls, out / "figures" / "permutation_null.png", title)
    write_text_atomic(out / "summary.json", json.dumps(_json_safe(
        {"protocol": header, "statistics": STATISTICS, "seeds": manifest["seeds"],
         "permutations": manifest.get("permutations", 0), "tuned_on": manifest.get("tuned_on", []),
         "per_dataset": datasets.to_dict("records"), "per_subject": table.to_dict("records"),
         "provenance": manifest.get("provenance")}), indent=2))
    return {"header": header, "subjects": table, "datasets": datasets, "manifest": manifest,
            "confusions": confusions, "out": str(out)}


def pooled_confusions(observed: list[dict]) -> dict[str, dict[str, list]]:
    """Window- and trial-level confusion matrices summed over each dataset's folds (all seeds)."""
    pooled: dict[str, dict[str, np.ndarray]] = {"window": {}, "trial": {}}
    for record in observed:
        dataset = record["fold"]["dataset"]
        for level, m in (("window", record["test"]), ("trial", record["test"]["trial"])):
            cm = np.asarray(m["confusion_matrix"])
            pooled[level][dataset] = pooled[level].get(dataset, 0) + cm
    return {level: {d: cm.tolist() for d, cm in by.items()} for level, by in pooled.items()}


def _json_safe(value):
    """NaN and infinities as null, numpy scalars as Python ones: strict JSON for any reader."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def print_tables(tables: dict) -> None:
    """The end-of-run view: protocol, per-subject and per-dataset tables, pooled confusions, where the files are."""
    print()
    for line in tables["header"]:
        print(f"# {line}")
    if tables["subjects"].empty:
        print("no finished folds yet")
        return
    manifest = tables["manifest"]
    with pd.option_context("display.width", 250, "display.max_rows", 500, "display.max_columns", 50):
        print("\nPer subject (scores in %; balanced accuracy's baseline is 1/K, accuracy's the majority class):")
        print(subjects_display(tables["subjects"], manifest).to_string(index=False))
        print("\nPer dataset (over subjects):")
        print(datasets_display(tables["datasets"]).to_string(index=False))
    n_seeds = len(manifest["seeds"])
    for level, by_dataset in tables["confusions"].items():
        for dataset, cm in by_dataset.items():
            n = int(np.sum(cm))
            size = f"{n_seeds} seeds x {n // n_seeds} {level}s = {n}" if n_seeds > 1 else f"{n} {level}s"
            print(f"\nPooled {level}-level confusion matrix, {dataset}, n = {size} (rows true, columns predicted: "
                  f"{', '.join(manifest['class_names'][dataset])}):")
            for row in cm:
                print("  " + " ".join(f"{v:6d}" for v in row))
    out = tables["out"]
    print(f"\nTables in {out}/tables (CSV, Markdown, LaTeX; how to read them: PROTOCOL.md), "
          f"summary in {out}/summary.json, plots in {out}/figures")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loso.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    args = parser.parse_args(argv)
    if not (Path(args.output_dir) / "run.json").is_file():
        print(f"error: {args.output_dir} has no run.json: not a loso.run output folder", file=sys.stderr)
        return 2
    try:
        tables = aggregate(args.output_dir)
    except (ValueError, KeyError, OSError) as exc:  # a damaged run.json or result file
        print(f"error: {args.output_dir}: cannot build the tables: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print_tables(tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
