"""What a search reports: its captions, the test subjects' tables through the LOSO aggregator, the printout.

Test predictions are scored per test subject (never pooled over windows of several subjects, which
rewards following each subject's class balance) and summarised over subjects per dataset, exactly as
`loso.run`'s tables are. Its constants (captions, pools) are read by the command before pandas and torch load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gru_xnet.features import FeatureSet
from gru_xnet.split import Split
from loso.aggregate import (dataset_frame, datasets_display, fold_frame, subject_frame, subjects_display,
                            wide_subjects, with_binomial)

if TYPE_CHECKING:
    import pandas as pd

METRIC = "val_subject_balanced_accuracy"
"""What ASHA compares every epoch and Optuna maximises: the LOSO tables' lead number (the mean over
subjects of per-subject balanced accuracy), on validation subjects."""
POOL_NOTES = {"within": "a model trains and is validated on subjects of one dataset; one search per dataset",
              "joint": "a model trains and is validated on the subjects of all datasets together"}
PAPER_FIT = {"holdout": "holdout_test.per_dataset", "nested": "nested.per_dataset"}
NOT_FOR_PAPER = ("best_val_score is the best of many trials on the same validation subjects: "
                 "optimistically biased, not an estimate of performance")


def subject_records(record: dict[str, Any], features: FeatureSet, split: Split, seed: int) -> list[dict[str, Any]]:
    """One LOSO-fold-like record per test subject of an evaluation, for the LOSO aggregator's tables.

    Each subject is scored on its own windows, beside baselines from the training windows of its
    dataset: pooled windows of several subjects would reward following each subject's class balance.
    """
    from gru_xnet.results import saved_evaluation, subject_reports  # torch loads with the search, not the command

    training = np.concatenate([split.windows(features, "train"), split.windows(features, "val")])
    reports = subject_reports(saved_evaluation(record["predictions"]), features, training)
    return [{"fold": {"fold_id": f"{key.dataset}-{key.subject}-seed{seed}", "dataset": key.dataset,
                      "subject": key.subject, "session": None, "seed": seed}, "variant": 0, "test": report}
            for subject, (report, _) in reports.items() for key in [features.subjects[subject]]]


def subject_tables(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per test subject, per dataset) tables of test records, as loso.run's: statistics over subjects."""
    per_seed, subjects = subject_frame(fold_frame(records))
    subjects = with_binomial(subjects)
    return wide_subjects(subjects), dataset_frame(per_seed, subjects)


def search_lines(summary: dict[str, Any]) -> list[str]:
    """What was searched and how: the first caption lines of every table and of the printout."""
    lines = ["SYNTHETIC DATA (generated in the real file formats) - not a result on real EEG"] if summary["synthetic"] else []
    outer = f" over outer folds '{summary['outer_split']}'" if summary["protocol"] == "nested" else ""
    return lines + [f"Hyper-parameter search, protocol '{summary['protocol']}'{outer}, pool '{summary['pool']}' "
                    f"({POOL_NOTES[summary['pool']]}); datasets: "
                    + "; ".join(f"{k}: {v}" for k, v in summary["labels"].items())]


def trials_header(summary: dict[str, Any]) -> list[str]:
    """The caption of trials.md/.tex: what val_score is and that it is not for a paper."""
    return search_lines(summary) + [
        f"val_score = mean over validation subjects of each subject's balanced accuracy (%) ({METRIC}) at the "
        f"epoch the early-stopping rule keeps (best validation {summary['monitor']}; kept_epoch), on validation "
        "subjects drawn from the training subjects; no trial loaded a test subject",
        f"NOT FOR A PAPER: {NOT_FOR_PAPER}; report summary.json's {summary['paper_fit']} instead"]


def test_header(summary: dict[str, Any], subjects: pd.DataFrame) -> list[str]:
    """The caption of the test tables: how the test subjects were scored and how many there are."""
    how = ("each search's best config trained once on that search's subjects and tested once on test subjects "
           "no trial loaded" if summary["protocol"] == "holdout"
           else "each test subject tested once by the winner of a search on other subjects only")
    counts = ", ".join(f"{d} {n}" for d, n in subjects.groupby("dataset", sort=False).size().items())
    return search_lines(summary) + [
        f"{summary['protocol'].capitalize()} test: {how}; scored per test subject (window level, and trial level: "
        "a trial's window probabilities averaged), then over subjects per dataset (mean [95% CI], tests against "
        "chance 1/K and against the majority class of the dataset's training subjects); test subjects: " + counts,
        f"FIT FOR A PAPER ({summary['paper_fit']}): no test subject informed any choice"]


def json_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as strict-JSON records (NaN as null)."""
    return json.loads(table.to_json(orient="records"))


def print_report(table: pd.DataFrame, subjects: pd.DataFrame, datasets: pd.DataFrame, summary: dict,
                 out: Path) -> None:
    """The trials table, each search's winner and the test tables, for the person at the terminal."""
    import pandas as pd

    shown = table.drop(columns=["seen_train", "seen_val", "seen_test"])
    print("\n".join(trials_header(summary)))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for search in summary["searches"]:
        print(f"\nbest params{' for ' + search['dataset'] if search['dataset'] else ''}: {search['best_params']}  "
              f"(val {search['best_val_score']:.1f}%, not for a paper) -> {search['best_config']}")
    print()
    print("\n".join(f"# {line}" for line in test_header(summary, subjects)))
    with pd.option_context("display.width", 250, "display.max_rows", 500, "display.max_columns", 50):
        print("\nPer test subject (scores in %; balanced accuracy's baseline is 1/K, accuracy's the majority class):")
        print(subjects_display(subjects, {}).to_string(index=False))
        print(f"\nPer dataset (over test subjects)  <- fit for a paper ({summary['paper_fit']}):")
        print(datasets_display(datasets).to_string(index=False))
    print(f"outputs in {out}; the search on one page: {out / 'report.html'}")


SEARCH_SECTIONS = ("banners", "held-out", "search", "trials")
"""The search page's section ids, in page order."""


def write_search_report(out: Path, table: pd.DataFrame, subjects: pd.DataFrame, datasets: pd.DataFrame,
                        summary: dict[str, Any]) -> Path:
    """`out/report.html`: the held-out evaluation per dataset and test subject, the search's figures (score per trial
    with ASHA stops marked, parameter importance, parallel coordinates), each search's winner and the trials."""
    from loso.report import _file_uri, _rows, render_page

    banners = [{"kind": "warning", "text": "SYNTHETIC DATA: generated in the real file formats, not a result on real "
                                           "EEG."}] if summary["synthetic"] else []
    banners.append({"kind": "warning", "text": f"Validation scores are NOT FOR A PAPER: {NOT_FOR_PAPER}; the held-out "
                                               f"evaluation below ({summary['paper_fit']}) is."})
    figures = [{"uri": _file_uri(out / "figures" / f"{name}.png"), "alt": alt} for name, alt in (
        ("score_vs_trial", "validation score per trial, ASHA-stopped trials marked"),
        ("param_importance", "parameter importance (PED-ANOVA)"),
        ("parallel_coordinate", "parallel coordinates of the finished trials"))]
    winners = [f"{search['dataset'] or 'all datasets'}: {search['best_params']} (validation {search['best_val_score']:.1f} "
               f"%, not for a paper) -> {search['best_config']}" for search in summary["searches"]]
    shown = table.drop(columns=[c for c in ("seen_train", "seen_val", "seen_test") if c in table])
    return render_page(
        "search.html.j2", out / "report.html", title=f"{out.name}: hyper-parameter search",
        statement=search_lines(summary), banners=banners, test_header=test_header(summary, subjects), datasets=_rows(datasets_display(datasets)),
        subjects=_rows(subjects_display(subjects, {})), figures=[f for f in figures if f["uri"]], winners=winners,
        trials_header=trials_header(summary), trials=_rows(shown.round(4)))
