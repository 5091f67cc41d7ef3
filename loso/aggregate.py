"""LOSO fold results to paper tables: per fold, per subject and per dataset, each score beside its baseline.

`python -m loso.aggregate OUTPUT_DIR` rebuilds everything from the fold files at any time:
tables/per_fold, per_subject and per_dataset (.csv plain, .md and .tex captioned with the protocol),
tables/PROTOCOL.md (what was run, the run's leakage checks as `loso.run` certified them, and how every column is
computed), tables/confusion_matrices.json,
tables/moabb_results.csv (MOABB's results layout, `loso.moabb`), report.html (`loso.report`),
summary.json, figures/per_subject_accuracy.png and, with permutations, figures/permutation_null.png.

Statistics are over subjects: a subject's sessions and seeds are averaged first (see loso.stats); each subject is
also tested against chance on its own trials (`with_binomial`).
pandas and matplotlib are imported by the functions that build tables and figures, so the command answers
`--help` and a missing run folder before they load.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from gru_xnet.config import write_text_atomic
from loso.certificate import read_certificate
from loso.outputs import load_results, result_path
from loso.protocol import protocol_document, protocol_lines, statistics_statement
from loso.stats import SignedRank, binomial_p, holm, items_to_reach, mean_ci, permutation_p, signed_rank
from loso.tables import to_text, wrap, write_table

if TYPE_CHECKING:
    import pandas as pd

LEVELS = ("window", "trial")
SCORES = ("balanced_accuracy", "accuracy", "macro_f1", "kappa", "macro_auc")
BASELINES = ("majority_accuracy", "prior_accuracy", "chance_balanced_accuracy")
CALIBRATION = ("ece", "brier", "nll")
"""How well stated confidence matches hit rate (gru_xnet.metrics.calibration); NaN for a model that decides by margins."""
NOT_TESTED = SignedRank(float("nan"), float("nan"), "not tested (includes tuned subjects)")
"""The tests of an `all` row when some of its subjects were tuned on: they stay out of every test."""


def fold_calibration(record: dict) -> dict[str, dict[str, float]]:
    """ECE, Brier and NLL of one observed fold result at window and trial level, from its saved predictions; NaN for
    permutation replicates (not reported) and for models whose scores are margins, not probabilities."""
    from gru_xnet.metrics import calibration, trial_probabilities

    predictions = record.get("predictions") or {}
    decision = (record.get("model") or {}).get("decision", "probability")
    if record.get("variant", 0) or decision != "probability" or "probabilities" not in predictions:
        return dict.fromkeys(LEVELS, dict.fromkeys(CALIBRATION, float("nan")))
    y_true, probabilities = np.asarray(predictions["y_true"]), np.asarray(predictions["probabilities"], dtype=float)
    trials = trial_probabilities(np.stack([predictions["session"], predictions["trial"]], axis=1), y_true, probabilities)
    return {"window": calibration(y_true, probabilities), "trial": calibration(trials.labels, trials.probabilities)}


def fold_frame(records: list[dict]) -> pd.DataFrame:
    """One row per fold result and level (window, trial): scores, calibration, baselines, class counts."""
    import pandas as pd

    rows = []
    for record in records:
        fold = record["fold"]
        calibrated = fold_calibration(record)
        for level in LEVELS:
            m = record["test"] if level == "window" else record["test"]["trial"]
            rows.append({"dataset": fold["dataset"], "subject": fold["subject"],
                         "session": "all" if fold["session"] is None else str(fold["session"]), "seed": fold["seed"],
                         "variant": record.get("variant", 0), "level": level, "n": m["n"],
                         "hits": int(round(m["accuracy"] * m["n"] / 100)) if m["n"] else 0,
                         **{s: m[s] for s in SCORES}, **calibrated[level],
                         **{b: m["baseline"][b] for b in BASELINES},
                         "classes_present": m["classes_present"],
                         "one_class_predicted": m.get("one_class_predicted") is not None,
                         **{f"n_class{k}": c for k, c in enumerate(m["class_counts"])},
                         "tuned": bool(record.get("tuned_on_test_subject", False))})
    return pd.DataFrame(rows)


def _natural(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by dataset, then subject number (s2 before s10), then session ('all' first) where there is one."""
    keys = {"_k": frame["subject"].str.extract(r"(\d+)", expand=False).astype(float)}
    order = ["dataset", "_k", "subject"]
    if "session" in frame:
        keys["_s"] = frame["session"].map(lambda s: -1.0 if s == "all" else float(s))
        order.append("_s")
    return frame.assign(**keys).sort_values(order, kind="stable").drop(columns=list(keys))


def subject_frame(folds: pd.DataFrame, unit: Sequence[str] = ("dataset", "subject")) -> tuple[pd.DataFrame,
                                                                                               pd.DataFrame]:
    """(per seed, per subject): sessions averaged within a seed, then seeds averaged within a subject
    (`unit` ("dataset", "subject", "session"): the same per subject-session, each session on its own).

    A single-class fold's balanced accuracy is NaN and is skipped by the means, so a subject is
    single-class (NaN) only when every fold of it is. `hits` (correct items) are summed over sessions and
    averaged over seeds.
    """
    counts = [c for c in folds if c.startswith("n_class")]
    keys = [*unit, "level", "variant"]
    per_seed = folds.groupby(keys + ["seed"], sort=False).agg(
        **{c: (c, "mean") for c in (*SCORES, *CALIBRATION, *BASELINES)}, n=("n", "sum"), hits=("hits", "sum"),
        **{c: (c, "sum") for c in counts}, n_sessions=("session", "nunique"), tuned=("tuned", "any"),
        one_class_predicted=("one_class_predicted", "any")).reset_index()
    grouped = per_seed.groupby(keys, sort=False)
    subjects = grouped.agg(**{c: (c, "mean") for c in (*SCORES, *CALIBRATION, *BASELINES)}, n=("n", "first"),
                           hits=("hits", "mean"), **{c: (c, "first") for c in counts}, n_seeds=("seed", "nunique"),
                           n_sessions=("n_sessions", "first"), tuned=("tuned", "any"),
                           one_class_predicted=("one_class_predicted", "any")).reset_index()
    if per_seed["seed"].nunique() > 1:
        for score in ("balanced_accuracy", "accuracy"):
            subjects[f"{score}_seed_sd"] = grouped[score].std(ddof=1).to_numpy()
    subjects["single_class"] = subjects["balanced_accuracy"].isna()
    return per_seed, _natural(subjects).reset_index(drop=True)


BINOMIAL = ("binomial_hits", "binomial_p0", "binomial_p", "binomial_p_holm")
ALPHA = 0.05
"""A subject is above chance on its own when its binomial p, Holm-corrected over its dataset's subjects, is below."""
PAPERS = "acc. mean ± SD over subject-sessions (the papers' figure)"


def with_binomial(subjects: pd.DataFrame) -> pd.DataFrame:
    """`subjects` with each observed subject's test against chance on its rows of both levels: a one-sided exact
    binomial of its trial-level hits (seeds averaged, rounded down) of its test trials against p0, the largest class
    share among them (windows of a trial are not independent), Holm over the dataset's tested subjects. Subjects
    tuned on, and one-class test sets (p0 = 1), are not tested (NaN)."""
    trials = subjects[(subjects["variant"] == 0) & (subjects["level"] == "trial")]
    counts = trials[[c for c in trials if c.startswith("n_class")]].to_numpy(dtype=float)
    p0 = counts.max(axis=1) / np.maximum(trials["n"].to_numpy(dtype=float), 1)
    hits = np.floor(trials["hits"].to_numpy(dtype=float) + 1e-9).astype(int)
    p = [float("nan") if tuned else binomial_p(k, int(n), chance)
         for k, n, chance, tuned in zip(hits, trials["n"], p0, trials["tuned"])]
    tests = trials[["dataset", "subject"]].assign(binomial_hits=hits, binomial_p0=p0, binomial_p=p)
    tests["binomial_p_holm"] = np.nan
    for _, rows in tests.groupby("dataset", sort=False):
        tests.loc[rows.index, "binomial_p_holm"] = holm(rows["binomial_p"])
    merged = subjects.drop(columns=[c for c in BINOMIAL if c in subjects]).merge(
        tests, on=["dataset", "subject"], how="left", sort=False)
    merged.loc[merged["variant"] != 0, list(BINOMIAL)] = np.nan
    return merged


def null_means(subjects: pd.DataFrame, members: pd.DataFrame) -> np.ndarray:
    """Per permutation replicate, the mean balanced accuracy over `members` (only replicates every member has)."""
    null = subjects[(subjects["variant"] > 0) & subjects["subject"].isin(members["subject"])
                    & (subjects["dataset"] == members["dataset"].iloc[0]) & (subjects["level"] == members["level"].iloc[0])]
    table = null.pivot(index="variant", columns="subject", values="balanced_accuracy")
    table = table.reindex(columns=list(members["subject"])).dropna()
    return table.mean(axis=1).to_numpy()


def subject_permutation_p(subjects: pd.DataFrame) -> pd.Series:
    """Each subject's empirical p of its observed balanced accuracy against its own permutation null."""
    import pandas as pd

    observed = subjects[subjects["variant"] == 0].set_index(["dataset", "subject", "level"])["balanced_accuracy"]
    null = subjects[subjects["variant"] > 0].groupby(["dataset", "subject", "level"])["balanced_accuracy"]
    return pd.Series({key: permutation_p(value, null.get_group(key)) if key in null.groups else float("nan")
                      for key, value in observed.items()}, dtype=float)


def seed_sd(per_seed: pd.DataFrame, members: pd.DataFrame) -> float:
    """SD over seeds of the mean balanced accuracy over `members`, using only the members present in every seed."""
    rows = per_seed[(per_seed["variant"] == 0) & (per_seed["dataset"] == members["dataset"].iloc[0])
                    & (per_seed["level"] == members["level"].iloc[0]) & per_seed["subject"].isin(members["subject"])]
    table = rows.pivot(index="seed", columns="subject", values="balanced_accuracy").dropna(axis=1)
    return float(table.mean(axis=1).std(ddof=1)) if len(table) > 1 and table.shape[1] else float("nan")


def _ci(name: str, values: pd.Series) -> dict[str, Any]:
    interval = mean_ci(values, bounds=(0.0, 100.0))
    return {f"{name}_ci_low": interval.low, f"{name}_ci_high": interval.high, f"{name}_ci_method": interval.method}


def _test(name: str, differences: pd.Series, tested: bool) -> dict[str, Any]:
    result = signed_rank(differences) if tested else NOT_TESTED
    return {f"p_{name}": result.p, f"r_{name}": result.r, f"p_{name}_method": result.method}


def _dataset_row(per_seed: pd.DataFrame, subjects: pd.DataFrame, group: pd.DataFrame, which: str, tested: bool,
                 n_tuned: int, sessions: pd.DataFrame | None) -> dict[str, Any]:
    """One per-dataset row over the subjects in `group`: means with CIs, the tests when `tested`, how many subjects
    are above chance on their own, and, with `sessions` (per subject-session rows), the papers' figure."""
    multi = group[~group["single_class"]]
    ba, acc = multi["balanced_accuracy"], group["accuracy"]
    row = {"subjects": which, "n_subjects": len(group), "n_single_class": len(group) - len(multi),
           "n_tuned_on": n_tuned, "balanced_accuracy_mean": ba.mean(), **_ci("balanced_accuracy", ba),
           "balanced_accuracy_sd": ba.std(ddof=1), "balanced_accuracy_median": ba.median(),
           "balanced_accuracy_min": ba.min(), "balanced_accuracy_max": ba.max(),
           "chance_balanced_accuracy": multi["chance_balanced_accuracy"].mean(),
           "accuracy_mean": acc.mean(), **_ci("accuracy", acc), "accuracy_sd": acc.std(ddof=1),
           "majority_accuracy_mean": group["majority_accuracy"].mean(),
           "prior_accuracy_mean": group["prior_accuracy"].mean(),
           **{f"{s}_mean": multi[s].mean() for s in ("macro_f1", "kappa", "macro_auc")},
           **{f"{c}_mean": group[c].mean() for c in CALIBRATION},
           "seed_sd": seed_sd(per_seed, multi) if len(multi) else float("nan"),
           "n_above_chance": int((group["binomial_p_holm"] < ALPHA).sum()),
           "n_tested_vs_chance": int(group["binomial_p"].notna().sum())}
    if sessions is not None:
        own = sessions[(sessions["variant"] == 0) & (sessions["level"] == group["level"].iloc[0])
                       & (sessions["dataset"] == group["dataset"].iloc[0]) & sessions["subject"].isin(group["subject"])]
        row.update(subject_session_accuracy_mean=own["accuracy"].mean(),
                   subject_session_accuracy_sd=own["accuracy"].std(ddof=1), n_subject_sessions=len(own))
    row.update(**_test("vs_chance", ba - multi["chance_balanced_accuracy"], tested),
               **_test("vs_majority", acc - group["majority_accuracy"], tested))
    if (subjects["variant"] > 0).any():
        null = null_means(subjects, multi) if tested and len(multi) else np.zeros(0)
        row.update(n_permutations=len(null), perm_p=permutation_p(ba.mean(), null))
    return row


def dataset_frame(per_seed: pd.DataFrame, subjects: pd.DataFrame, sessions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per dataset and level: means with CIs, baselines, tests over subjects, effect sizes, subjects above chance;
    with `sessions` (per subject-session, `subject_frame`), the mean ± SD over subject-sessions (descriptive).

    Subjects the config was tuned on never enter a test: with some, an `untuned` row carries every
    statistic on the others and an `all` row only descriptive ones (outside the Holm family).
    """
    import pandas as pd

    observed = subjects[subjects["variant"] == 0]
    rows = []
    for (dataset, level), group in observed.groupby(["dataset", "level"], sort=False):
        n_tuned = int(group["tuned"].sum())
        parts = ([("untuned", group[~group["tuned"]], True), ("all", group, False)] if n_tuned
                 else [("all", group, True)])
        for which, members, tested in parts:
            rows.append({"dataset": dataset, "level": level,
                         **_dataset_row(per_seed, subjects, members, which, tested, n_tuned, sessions)})
    table = pd.DataFrame(rows)
    for level in LEVELS:
        rows_of_level = table["level"] == level
        for column in ("p_vs_chance", "p_vs_majority", "perm_p"):
            if column in table:
                table.loc[rows_of_level, f"{column}_holm"] = holm(table.loc[rows_of_level, column])
    return table


def wide_subjects(subjects: pd.DataFrame, unit: Sequence[str] = ("dataset", "subject")) -> pd.DataFrame:
    """per_subject.csv: one row per subject (or `unit`), window-level columns, then the same at trial level
    ('trial_'), then its test against chance (`p_vs_chance`, `p_vs_chance_holm`, on `trial_hits` of `n_trials`
    against `trial_chance_share`)."""
    observed = subjects[subjects["variant"] == 0].drop(columns="variant")
    keys = list(unit)
    window = observed[observed["level"] == "window"].drop(columns=["level", "hits"]).rename(columns={"n": "n_windows"})
    window = window.rename(columns={"binomial_hits": "trial_hits", "binomial_p0": "trial_chance_share",
                                    "binomial_p": "p_vs_chance", "binomial_p_holm": "p_vs_chance_holm"})
    trial = observed[observed["level"] == "trial"].drop(columns=["level", "hits", "n_seeds", "n_sessions", "tuned",
                                                                 "single_class", *BINOMIAL], errors="ignore")
    trial = trial.rename(columns={c: f"trial_{c}" for c in trial.columns if c not in keys}
                         ).rename(columns={"trial_n": "n_trials"})
    table = window.merge(trial, on=keys, how="left", sort=False)
    table = table.rename(columns={"tuned": "hyperparameters_tuned_on_subject"})
    first = keys + ["n_windows", "n_trials"]
    last = [c for c in ("trial_hits", "trial_chance_share", "p_vs_chance", "p_vs_chance_holm") if c in table]
    return table[first + [c for c in table.columns if c not in first + last] + last].reset_index(drop=True)


def session_rows(folds: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(per subject-session scores, long; the same wide, as per_subject.csv's rows) of a run that scored sessions
    apart (`--sessions separate`), seeds averaged; (None, None) otherwise. Descriptive: no test uses them."""
    if (folds["session"] == "all").all():
        return None, None
    unit = ("dataset", "subject", "session")
    _, sessions = subject_frame(folds, unit)
    return sessions, wide_subjects(sessions, unit)


def with_session_rows(table: pd.DataFrame, sessions: pd.DataFrame | None) -> pd.DataFrame:
    """The per-subject table with each subject's (subject, session) rows after its own row (session 'all')."""
    if sessions is None:
        return table
    import pandas as pd

    rows = pd.concat([table.assign(session="all"), sessions.astype({"session": str})], ignore_index=True)
    first = ["dataset", "subject", "session"]
    return _natural(rows[first + [c for c in rows.columns if c not in first]]).reset_index(drop=True)


def _fmt(value: float, digits: int = 1) -> str:
    return "--" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "--" if not np.isfinite(p) else (f"{p:.2g}" if p < 0.01 else f"{p:.3f}")


def subjects_display(table: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The per-subject view of the printout and the .md/.tex tables: scores beside their baselines."""
    import pandas as pd

    counts = sorted(c for c in table if c.startswith("n_class"))
    shown = pd.DataFrame({"dataset": table["dataset"], "subject": table["subject"],
                          **({"session": table["session"]} if "session" in table else {}),
                          "windows (per class)": [f"{n} ({'/'.join(str(int(r[c])) for c in counts)})"
                                                  for n, (_, r) in zip(table["n_windows"], table.iterrows())],
                          "trials": table["n_trials"]})
    for prefix, name in (("", "window"), ("trial_", "trial")):
        shown[f"{name} bal. acc."] = [_fmt(v) + (" (1 class)" if single else "") + (" *" if collapsed else "")
                                      for v, single, collapsed in zip(table[f"{prefix}balanced_accuracy"],
                                                                      table["single_class"],
                                                                      table[f"{prefix}one_class_predicted"])]
        if f"{prefix}balanced_accuracy_seed_sd" in table:
            shown[f"{name} bal. acc. seed SD"] = table[f"{prefix}balanced_accuracy_seed_sd"].map(_fmt)
        shown[f"{name} acc."] = table[f"{prefix}accuracy"].map(_fmt)
        shown[f"{name} majority"] = table[f"{prefix}majority_accuracy"].map(_fmt)
        if f"{prefix}perm_p" in table:
            shown[f"{name} perm. p (uncorr.)"] = table[f"{prefix}perm_p"].map(_fmt_p)
    shown["kappa"] = table["kappa"].map(lambda v: _fmt(v, 2))
    shown["AUC"] = table["macro_auc"].map(lambda v: _fmt(v, 2))
    shown["trial p vs chance (Holm)"] = [f"{_fmt_p(p)} ({_fmt_p(h)})" if np.isfinite(p) else "--"
                                         for p, h in zip(table["p_vs_chance"], table["p_vs_chance_holm"])]
    if manifest.get("tuned_on"):
        shown["tuned on subject"] = table["hyperparameters_tuned_on_subject"].map({True: "YES", False: ""})
    return shown


def _methods(table: pd.DataFrame) -> list[str]:
    """The Wilcoxon p computation of each row, said once when both tests used the same."""
    return [a if a == b else f"chance: {a}; majority: {b}"
            for a, b in zip(table["p_vs_chance_method"], table["p_vs_majority_method"])]


def datasets_display(table: pd.DataFrame) -> pd.DataFrame:
    """The per-dataset view of the .md/.tex tables: balanced accuracy first, every score beside its baseline and test."""
    import pandas as pd

    def with_ci(name: str) -> list[str]:
        return [f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]" for m, lo, hi in
                zip(table[f"{name}_mean"], table[f"{name}_ci_low"], table[f"{name}_ci_high"])]

    shown = pd.DataFrame({
        "dataset": table["dataset"], "level": table["level"], "subjects": table["subjects"],
        "n": [f"{n}" + (f" ({s} one-class)" if s else "") for n, s in zip(table["n_subjects"], table["n_single_class"])],
        "tuned on": table["n_tuned_on"],
        "bal. acc. mean [95% CI]": with_ci("balanced_accuracy"), "chance 1/K": table["chance_balanced_accuracy"].map(_fmt),
        "p vs chance (Holm)": [f"{_fmt_p(p)} ({_fmt_p(h)})" for p, h in zip(table["p_vs_chance"], table["p_vs_chance_holm"])],
        "r (chance)": table["r_vs_chance"].map(lambda v: _fmt(v, 2)),
        "acc. mean [95% CI]": with_ci("accuracy"), "majority baseline": table["majority_accuracy_mean"].map(_fmt),
        "p vs majority (Holm)": [f"{_fmt_p(p)} ({_fmt_p(h)})" for p, h in zip(table["p_vs_majority"], table["p_vs_majority_holm"])],
        "r (majority)": table["r_vs_majority"].map(lambda v: _fmt(v, 2)),
        "kappa": table["kappa_mean"].map(lambda v: _fmt(v, 2)), "AUC": table["macro_auc_mean"].map(lambda v: _fmt(v, 2)),
        "subjects above chance (Holm)": [f"{k} of {n}" for k, n in zip(table["n_above_chance"],
                                                                      table["n_tested_vs_chance"])],
        "CI method": table["balanced_accuracy_ci_method"], "Wilcoxon p method": _methods(table)})
    if "perm_p" in table:
        shown["perm. p (Holm)"] = [f"{_fmt_p(p)} ({_fmt_p(h)})" for p, h in zip(table["perm_p"], table["perm_p_holm"])]
    if "subject_session_accuracy_mean" in table:
        shown[PAPERS] = [f"{_fmt(m)} ± {_fmt(sd)} (n = {n})" for m, sd, n in zip(
            table["subject_session_accuracy_mean"], table["subject_session_accuracy_sd"], table["n_subject_sessions"])]
    return shown



def _laid_out(shown: pd.DataFrame, layout: list[tuple[str, str, str]]) -> pd.DataFrame:
    """The columns of `shown` named in `layout` (group label, column, short name), in its order, with
    (group label, short name) headers: the two header levels of `loso.tables.to_text`."""
    import pandas as pd

    return shown[[c for _, c, _ in layout]].set_axis(pd.MultiIndex.from_tuples([(g, n) for g, _, n in layout]), axis=1)


def subjects_printout(table: pd.DataFrame, manifest: dict) -> str:
    """The per-subject view for a terminal: the window-level and the trial-level scores each under one label."""
    shown = subjects_display(table, manifest)
    layout = [("", c, c) for c in ("dataset", "subject", "session") if c in shown]
    for level, count, scores in (("window", "windows (per class)", ["kappa", "AUC"]), ("trial", "trials", [])):
        named = [c for c in shown if c.startswith(f"{level} ")]
        layout += [(f"{level} level", c, c.removeprefix(f"{level} ")) for c in [count, *named, *scores]]
    layout += [("", c, c) for c in shown if c == "tuned on subject"]
    return to_text(_laid_out(shown, layout), keys=3 if "session" in shown else 2)


def datasets_printout(table: pd.DataFrame) -> str:
    """The per-dataset view for a terminal: balanced accuracy against chance, then accuracy against the majority
    baseline, each under its label; how each row's CI and p-values were computed is a numbered footnote."""
    shown = datasets_display(table)
    keys = ["dataset", "level"] + (["subjects"] if table["n_tuned_on"].any() else []) + ["n"]
    layout = [("", c, c) for c in keys]
    layout += [("balanced accuracy vs chance", c, n) for c, n in (
        ("bal. acc. mean [95% CI]", "mean [95% CI]"), ("chance 1/K", "chance 1/K"), ("p vs chance (Holm)", "p (Holm)"),
        ("r (chance)", "r"), ("perm. p (Holm)", "perm. p (Holm)")) if c in shown]
    layout += [("", "kappa", "kappa"), ("", "AUC", "AUC"),
               ("", "subjects above chance (Holm)", "subjects > chance (Holm)")]
    if PAPERS in shown:
        layout.append(("", PAPERS, "subject-sessions acc. (papers)"))
    layout += [("accuracy vs majority baseline", c, n) for c, n in (
        ("acc. mean [95% CI]", "mean [95% CI]"), ("majority baseline", "majority"), ("p vs majority (Holm)", "p (Holm)"),
        ("r (majority)", "r"))]
    methods = [f"95% CI: {ci}; Wilcoxon p: {p}" for ci, p in zip(shown["CI method"], shown["Wilcoxon p method"])]
    notes = list(dict.fromkeys(methods))
    if len(notes) == 1:
        return to_text(_laid_out(shown, layout), keys=len(keys)) + f"\nevery row: {notes[0]}"
    shown["methods"] = [f"[{notes.index(m) + 1}]" for m in methods]
    return "\n".join([to_text(_laid_out(shown, layout + [("", "methods", "methods")]), keys=len(keys)),
                      *(f"[{k}] {note}" for k, note in enumerate(notes, start=1))])


def completeness(out: Path, manifest: dict) -> tuple[str | None, list[str]]:
    """('INCOMPLETE: k of n fold results ...' or a 'plan unknown' line or None, the missing result names)."""
    planned = manifest.get("planned_folds")
    if planned is None:
        return "fold plan unknown (run.json from an older version): completeness not checked", []
    expected = {result_path(out, fold_id, variant) for fold_id in planned
                for variant in range(manifest.get("permutations", 0) + 1)}
    missing = sorted(path.stem for path in expected if not path.is_file())
    if not missing:
        return None, []
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    return (f"INCOMPLETE: {len(expected) - len(missing)} of {len(expected)} fold results; missing: {shown} "
            "(finish with loso.run --resume)"), missing


def statistics_notes(datasets: pd.DataFrame, manifest: dict) -> list[str]:
    """What bounds the p-values of this run: the smallest reachable p of each test, after Holm."""
    tested = datasets[(datasets["level"] == "window") & (datasets["p_vs_chance_method"] != NOT_TESTED.method)]
    m = len(tested)
    notes = []
    for _, row in tested.iterrows():
        n = int(row["n_subjects"] - row["n_single_class"])
        if n >= 2:
            smallest = min(1.0, m * 0.5 ** n)
            notes.append(f"{row['dataset']}: {n} subjects in the test against chance: the smallest reachable one-sided "
                         f"Wilcoxon p is {0.5 ** n:.3g} ({smallest:.3g} after Holm over {m} dataset(s))"
                         + ("; too few subjects for a finding at 0.05" if smallest > 0.05 else ""))
    if manifest.get("permutations"):
        smallest = 1 / (manifest["permutations"] + 1)
        notes.append(f"permutation p: smallest reachable {smallest:.3g} with {manifest['permutations']} replicates "
                     f"({min(1.0, m * smallest):.3g} after Holm over {m} dataset(s)); per-subject permutation p-values "
                     "are uncorrected for the number of subjects")
    return notes


def reading_notes(datasets: pd.DataFrame, subjects: pd.DataFrame, manifest: dict) -> list[str]:
    """What a reader must know to read the numbers beyond the protocol: one-class subjects, p-value bounds."""
    single = subjects[subjects["single_class"]]
    notes = [f"{len(single)} test subject(s) show one class only ({', '.join(single['dataset'] + '/' + single['subject'])}): "
             "balanced accuracy, macro-F1, kappa and AUC are undefined there and they are excluded from the "
             "tests against chance"] if len(single) else []
    collapsed = subjects[subjects["one_class_predicted"]]
    if len(collapsed):
        notes.append(f"* {len(collapsed)} test subject(s) where the model predicted one class for every test window "
                     f"in at least one fold or seed ({', '.join(collapsed['dataset'] + '/' + collapsed['subject'])}): "
                     "the model collapsed there, and a balanced accuracy of 1/K is chance by construction, not a "
                     "measure of the signal (column one_class_predicted)")
    return notes + statistics_notes(datasets, manifest) + chance_notes(subjects)


def chance_notes(subjects: pd.DataFrame) -> list[str]:
    """Per dataset, how many subjects beat chance on their own and how many test trials that takes."""
    notes = []
    for dataset, tested in subjects[subjects["p_vs_chance"].notna()].groupby("dataset", sort=False):
        n, share = len(tested), float(tested["trial_chance_share"].max())
        needed = items_to_reach(ALPHA / n, share)
        fewest, most = int(tested["n_trials"].min()), int(tested["n_trials"].max())
        notes.append(f"{dataset}: {int((tested['p_vs_chance_holm'] < ALPHA).sum())} of {n} subjects above chance on "
                     "their own (one-sided binomial test of trial-level hits against the largest class share of the "
                     f"subject's test trials, Holm over {n} subjects): an all-correct subject reaches {ALPHA:g}/{n} = "
                     f"{ALPHA / n:.3g} with {needed} test trials at chance share {share:.2f} (its subjects' largest); "
                     f"its subjects have {fewest}" + (f"-{most}" if most != fewest else "") + " test trials"
                     + ("; too few for any subject to be found above chance" if most < needed else ""))
    return notes


def runtime(observed: list[dict]) -> dict[str, Any]:
    """How the folds ran, read off their results: devices, autocast dtypes and DDP world sizes, and for a grid
    chosen per fold (tied folds, folds)."""
    seen = sorted({(str(r.get("device", "?")), str(r.get("autocast", "?")), int(r.get("world_size", 1)))
                   for r in observed})
    searched = [r for r in observed if r.get("history") and "grid_tied" in r]
    ties = {"grid_ties": (sum(int(r["grid_tied"]) for r in searched),  # a pooled record counts its tied folds
                          sum(len(r["fold"].get("pooled_from", [None])) for r in searched))} if searched else {}
    return {"precision": "; ".join(f"{device}, autocast {dtype}, {world} worker(s) per fold"
                                   for device, dtype, world in seen), **ties}


def _with_synthetic(table: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Every CSV says whether its numbers come from synthetic data."""
    return table.assign(synthetic=bool(manifest.get("synthetic")))


def aggregate(out: str | Path, report: bool = True) -> dict:
    """Build every table, figure and summary from `<out>`'s fold files, and `report.html` unless `report` is off;
    returns what `print_tables` shows."""
    import pandas as pd

    from loso.figures import plot_nulls, plot_subjects
    from loso.pooling import POOLED_STATEMENT, pooled_over_subjects

    out = Path(out)
    manifest = json.loads((out / "run.json").read_text())
    observed, permuted = load_results(out)
    permuted = [r for r in permuted if r.get("variant", 0) <= manifest.get("permutations", 0)]
    n_failed = len(list((out / "failed").glob("*.json")))
    status, missing = completeness(out, manifest)
    certificate = read_certificate(out)
    if not observed:
        return {"header": protocol_lines(manifest, n_failed, status, certificate), "subjects": pd.DataFrame()}
    folds = fold_frame(observed + permuted)
    per_seed, subjects = subject_frame(folds)
    subjects = with_binomial(subjects)
    sessions, session_table = session_rows(folds)
    datasets = dataset_frame(per_seed, subjects, sessions)
    table = wide_subjects(subjects)
    if permuted:
        p = subject_permutation_p(subjects)
        for level, prefix in (("window", ""), ("trial", "trial_")):
            table[f"{prefix}perm_p"] = [p.get((d, s, level), np.nan) for d, s in zip(table["dataset"], table["subject"])]
    statement = protocol_lines(manifest, n_failed, status, certificate)
    notes = reading_notes(datasets, table, manifest)
    header = statement + notes
    tables = out / "tables"
    fold_table = folds[folds["variant"] == 0].drop(columns=["variant", "hits"])
    per_subject = with_session_rows(table, session_table)
    write_table(_with_synthetic(_natural(fold_table), manifest), tables / "per_fold", header)
    write_table(_with_synthetic(per_subject, manifest), tables / "per_subject", header,
                subjects_display(per_subject, manifest))
    write_table(_with_synthetic(datasets, manifest), tables / "per_dataset", header, datasets_display(datasets))
    from loso.moabb import moabb_results

    write_text_atomic(tables / "moabb_results.csv",
                      _with_synthetic(moabb_results(observed, manifest), manifest).to_csv(index=False))
    results_now = sum(1 for folder in ("folds", "permutations") for _ in (out / folder).glob("*.json"))
    write_text_atomic(tables / "PROTOCOL.md", protocol_document(statement, manifest, notes, runtime(observed), status,
                                                                certificate, results_now))
    pooled = pooled_over_subjects(observed) if manifest.get("pooled_over_subjects") else []
    if pooled:
        write_table(_with_synthetic(pd.DataFrame(pooled), manifest), tables / "pooled_over_subjects",
                    header + [POOLED_STATEMENT])
    confusions = pooled_confusions(observed)
    write_text_atomic(tables / "confusion_matrices.json", json.dumps(
        {"class_names": manifest["class_names"], "rows": "true class", "columns": "predicted class",
         "summed_over": "subjects, sessions and seeds: n = the test items of every seed", "n_seeds": len(manifest["seeds"]),
         **confusions, "protocol": header}, indent=2))
    title = "\n".join(header[:2])
    plot_subjects(subjects[(subjects["variant"] == 0) & (subjects["level"] == "window")],
                  out / "figures" / "per_subject_accuracy.png", title)
    if permuted:
        nulls = {}
        tested = datasets[(datasets["level"] == "window") & (datasets["n_permutations"] > 0)]
        for _, row in tested.iterrows():
            members = subjects[(subjects["variant"] == 0) & (subjects["level"] == "window") & ~subjects["single_class"]
                               & ~subjects["tuned"] & (subjects["dataset"] == row["dataset"])]
            nulls[row["dataset"]] = (null_means(subjects, members), row["balanced_accuracy_mean"],
                                     row["chance_balanced_accuracy"])
        if nulls:  # none when every subject of every dataset was tuned on
            plot_nulls(nulls, out / "figures" / "permutation_null.png", title)
    write_text_atomic(out / "summary.json", json.dumps(_json_safe(
        {"synthetic": bool(manifest.get("synthetic")), "complete": not missing, "missing_results": missing,
         "protocol": header, "statistics": statistics_statement(manifest), "seeds": manifest["seeds"],
         "permutations": manifest.get("permutations", 0), "tuned_on": manifest.get("tuned_on", []),
         "per_dataset": datasets.to_dict("records"), "per_subject": per_subject.to_dict("records"),
         **({"pooled_over_subjects": pooled, "pooled_statement": POOLED_STATEMENT} if pooled else {}),
         "leakage_checks": certificate, "provenance": manifest.get("provenance")}), indent=2))
    tables = {"header": header, "subjects": table, "per_subject": per_subject, "datasets": datasets,
              "manifest": manifest, "confusions": confusions, "out": str(out),
              "datasets_display": datasets_display(datasets), "runtime": runtime(observed), "certificate": certificate}
    if report:
        from loso.report import write_report

        tables["report"] = str(write_report(out, tables, observed))
    return tables


def pooled_confusions(observed: list[dict]) -> dict[str, dict]:
    """Window- and trial-level confusion matrices summed over each dataset's folds and seeds, and n per seed."""
    pooled: dict[str, dict[str, np.ndarray]] = {"window": {}, "trial": {}}
    per_seed: dict[str, dict[str, dict[str, int]]] = {"window": {}, "trial": {}}
    for record in observed:
        dataset, seed = record["fold"]["dataset"], str(record["fold"]["seed"])
        for level, m in (("window", record["test"]), ("trial", record["test"]["trial"])):
            cm = np.asarray(m["confusion_matrix"])
            pooled[level][dataset] = pooled[level].get(dataset, 0) + cm
            counts = per_seed[level].setdefault(dataset, {})
            counts[seed] = counts.get(seed, 0) + int(cm.sum())
    return {**{level: {d: cm.tolist() for d, cm in by.items()} for level, by in pooled.items()},
            "n_per_seed": per_seed}


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
    """The end-of-run view, 120 columns wide: protocol, per-subject and per-dataset tables, pooled confusions, where
    the files are (the .md/.tex/.csv tables hold the wider views)."""
    print()
    for line in tables["header"]:
        print(wrap(line, "# "))
    if tables["subjects"].empty:
        print("no finished folds yet")
        return
    manifest = tables["manifest"]
    print("\nPer subject (scores in %; balanced accuracy's baseline is 1/K, accuracy's the majority class):")
    print(subjects_printout(tables["per_subject"], manifest))
    print("\nPer dataset (over subjects):")
    print(datasets_printout(tables["datasets"]))
    confusions = tables["confusions"]
    for level in LEVELS:
        for dataset, cm in confusions[level].items():
            counts = confusions["n_per_seed"][level][dataset]
            size = (f"{sum(counts.values())} {level}s ("
                    + ", ".join(f"seed {seed}: {n}" for seed, n in counts.items()) + ")"
                    if len(counts) > 1 else f"{sum(counts.values())} {level}s")
            print("\n" + wrap(f"Pooled {level}-level confusion matrix, {dataset}, n = {size} (rows true, columns "
                              f"predicted: {', '.join(manifest['class_names'][dataset])}):"))
            for row in cm:
                print("  " + " ".join(f"{v:6d}" for v in row))
    out = tables["out"]
    print("\n" + wrap(f"Tables in {out}/tables (CSV, Markdown, LaTeX; how to read them: PROTOCOL.md), "
                      f"summary in {out}/summary.json, plots in {out}/figures"))
    if tables.get("report"):
        print(wrap(f"Report (one page, opens offline in any browser): {tables['report']}"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loso.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    parser.add_argument("--no-report", action="store_true", help="skip report.html (the tables and figures only)")
    args = parser.parse_args(argv)
    if not (Path(args.output_dir) / "run.json").is_file():
        print(f"error: {args.output_dir} has no run.json: not a loso.run output folder", file=sys.stderr)
        return 2
    try:
        tables = aggregate(args.output_dir, report=not args.no_report)
    except (ValueError, KeyError, OSError) as exc:  # a damaged run.json or result file
        print(f"error: {args.output_dir}: cannot build the tables: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print_tables(tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
