"""What a test evaluation reports, for the Trainer, every LOSO fold and every Tune evaluation alike.

Window-level scores (the top-level keys, e.g. `accuracy`) and trial-level ones (`trial`: each trial's
window probabilities averaged, a trial being `(subject, session, trial)`), each beside the trivial
baselines computed from the labels the model was trained on, plus per-class, per-subject and
per-dataset breakdowns. `subject_reports` gives the same report for each test subject alone: what a
table over subjects needs when one model was tested on several subjects at once.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gru_xnet.engine import Evaluation
from gru_xnet.features import FeatureSet
from gru_xnet.metrics import class_counts, level_scores, trial_probabilities


def trial_keys(features: FeatureSet, windows: np.ndarray) -> np.ndarray:
    """`(n, 3)` (subject index, session, trial) of each window: what identifies a trial."""
    return np.stack([features.subject_index[windows], features.sessions[windows], features.trials[windows]], axis=1)


def training_counts(features: FeatureSet, windows: np.ndarray) -> dict[str, list[int]]:
    """Class counts of the windows and of the trials a model learnt from (for the trivial baselines)."""
    trials = trial_probabilities(trial_keys(features, windows), features.labels[windows], np.zeros((len(windows), 1)))
    return {"windows": class_counts(features.labels[windows], features.n_classes).tolist(),
            "trials": class_counts(trials.labels, features.n_classes).tolist()}


def evaluation_report(evaluation: Evaluation, features: FeatureSet, training_windows: np.ndarray) -> dict[str, Any]:
    """Scores of one test evaluation at window and trial level with baselines from `training_windows`.

    `training_windows` are the windows of the subjects the model learnt from (training and validation
    subjects): their labels define the majority-class and class-prior baselines.
    """
    counts = training_counts(features, training_windows)
    report = dict(evaluation.metrics)
    report.update(level_scores(evaluation.y_true, evaluation.probabilities, features.n_classes, counts["windows"],
                               evaluation.margins))
    trials = trial_probabilities(trial_keys(features, evaluation.windows), evaluation.y_true,
                                 evaluation.probabilities)
    report["trial"] = level_scores(trials.labels, trials.probabilities, features.n_classes, counts["trials"])
    report["training_class_counts"] = counts
    cm = np.asarray(report["confusion_matrix"])
    report["per_class"] = {name: {"recall": 100.0 * cm[i, i] / cm[i].sum() if cm[i].sum() else None,
                                  "n": int(cm[i].sum())} for i, name in enumerate(features.class_names)}
    subjects = features.subject_index[evaluation.windows]
    report["per_subject"] = {
        str(features.subjects[s]): {"accuracy": 100.0 * float((evaluation.y_true[m] == evaluation.y_pred[m]).mean()),
                                    "n": int(m.sum())}
        for s in np.unique(subjects) for m in [subjects == s]}
    report["class_names"] = list(features.class_names)
    report["synthetic"] = bool(features.synthetic)
    report["collapse"] = collapse_note(report)
    return report


def collapse_note(report: dict[str, Any]) -> str | None:
    """A warning when every test window was predicted as one class although the test set holds several (the
    model collapsed: balanced accuracy 1/K), else None; said in logs and fold records, never left to the reader."""
    predicted = report.get("one_class_predicted")
    if predicted is None:
        return None
    return (f"every one of the {report['n']} test windows was predicted as class {predicted} "
            f"({report['class_names'][predicted]!r}): the model collapsed to one class, so its balanced accuracy "
            f"({report['balanced_accuracy']:.1f}) is chance by construction, not a measure of the signal")


def dataset_windows(features: FeatureSet, windows: np.ndarray, subjects: Sequence[int]) -> np.ndarray:
    """The `windows` of the datasets `subjects` belong to: where test subjects' trivial baselines come from,
    also when the model trained on several datasets (a DEAP subject's majority class is DEAP's)."""
    datasets = [features.datasets.index(features.subjects[s].dataset) for s in subjects]
    return windows[np.isin(features.dataset_index[windows], datasets)]


def saved_evaluation(predictions: dict[str, list]) -> Evaluation:
    """The Evaluation behind a fold result's saved `predictions` (window, y_true, y_pred, probabilities, margins)."""
    margins = predictions.get("margins")
    return Evaluation({}, np.asarray(predictions["window"], dtype=np.int64), np.asarray(predictions["y_true"]),
                      np.asarray(predictions["y_pred"]), np.asarray(predictions["probabilities"], dtype=np.float64),
                      margins=None if margins is None else np.asarray(margins, dtype=np.float64))


def subject_reports(evaluation: Evaluation, features: FeatureSet,
                    training_windows: np.ndarray) -> dict[int, tuple[dict, Evaluation]]:
    """(`evaluation_report`, evaluation) of each test subject's windows alone, keyed by subject index.

    Pooling windows of several subjects rewards following each subject's class balance, so scores
    are taken per subject; baselines come from the `training_windows` of that subject's dataset.
    """
    subjects = features.subject_index[evaluation.windows]
    reports = {}
    for subject in np.unique(subjects):
        rows = subjects == subject
        part = Evaluation({}, evaluation.windows[rows], evaluation.y_true[rows], evaluation.y_pred[rows],
                          evaluation.probabilities[rows],
                          margins=None if evaluation.margins is None else evaluation.margins[rows])
        baseline = dataset_windows(features, training_windows, [subject])
        reports[int(subject)] = evaluation_report(part, features, baseline), part
    return reports
