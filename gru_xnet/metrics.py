"""Classification metrics and trivial baselines: one definition for training, LOSO, tuning and tables.

Accuracy-type scores are in percent; Cohen's kappa and AUC are fractions, as papers report them.
Scores that depend on the class balance (balanced accuracy, macro-F1, kappa, macro-AUC) are NaN when
the true labels hold fewer than two classes: there a constant predictor already scores 100 %.
Binary F1 and weighted F1 are scikit-learn's `f1_score` (average 'binary', 'weighted'; zero_division 0),
defined for one-class test sets too, as published tables that report them compute them per subject.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts `[true, predicted]` as an `(n_classes, n_classes)` int64 array."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def scores(cm: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-, binary and weighted F1 (percent) and Cohen's kappa from a confusion matrix.

    As in scikit-learn, balanced accuracy averages recall over the classes in the true labels and
    macro-F1 averages F1 over the classes in the true or the predicted labels (a class predicted but
    never shown scores F1 0), so a test subject is not scored on classes that neither side holds.
    `binary_f1` is the F1 of class 1 (the positive class: 'high' of a binarised rating), NaN unless there are
    two classes; `weighted_f1` weights each class's F1 by its count in the true labels.
    """
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    if total == 0:
        return dict.fromkeys(("accuracy", "balanced_accuracy", "macro_f1", "binary_f1", "weighted_f1", "kappa"),
                             float("nan"))
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    present = support > 0
    seen = present | (predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    accuracy = tp.sum() / total
    expected = float((support * predicted).sum() / total ** 2)
    several = present.sum() >= 2
    return {"accuracy": float(100.0 * accuracy),
            "balanced_accuracy": float(100.0 * recall[present].mean()) if several else float("nan"),
            "macro_f1": float(100.0 * f1[seen].mean()) if several else float("nan"),
            "binary_f1": float(100.0 * f1[1]) if len(cm) == 2 else float("nan"),
            "weighted_f1": float(100.0 * (f1 * support).sum() / total),
            "kappa": float((accuracy - expected) / (1.0 - expected)) if several else float("nan")}


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, tied values sharing the mean of their ranks (`scipy.stats.rankdata`'s default,
    written with numpy so that a training worker, which scores every fold, does not import scipy.stats)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # where each run of equal values starts
    counts = np.diff(np.r_[first, len(values)])
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def macro_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """One-vs-rest ROC AUC averaged over the classes present (ties count one half); NaN with < 2 classes."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    aucs = []
    for k in present:
        positive = y_true == k
        ranks = average_ranks(probabilities[:, k])
        n_pos, n_neg = positive.sum(), (~positive).sum()
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs))


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """How many items of each class `labels` holds, as an `(n_classes,)` int64 array."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)


def baselines(train_counts: np.ndarray, test_counts: np.ndarray) -> dict[str, float]:
    """What trivial classifiers that only know the training labels score on a test set.

    majority: always the training majority class (ties: the lower class index), scored by accuracy;
    prior: guessing at random with the training class frequencies (expected accuracy);
    chance_balanced_accuracy: any constant predictor's best balanced accuracy, 1 / classes present.
    With one row per fold (`(F, K)` training and test counts: a subject tested in several folds), each fold's
    trivial classifier is scored on that fold's test items and the hits (and expectations) are summed.
    """
    train = np.atleast_2d(np.asarray(train_counts, dtype=np.float64))
    test = np.atleast_2d(np.asarray(test_counts, dtype=np.float64))
    if train.shape != test.shape:
        raise ValueError(f"expected training and test class counts of one shape, found {train.shape} and {test.shape}")
    majority = np.argmax(train, axis=1)
    total = test.sum()
    present = int((test.sum(axis=0) > 0).sum())
    return {"majority_class": int(majority[0]) if len(majority) == 1 else majority.tolist(),
            "majority_accuracy": float(100.0 * test[np.arange(len(test)), majority].sum() / total),
            "prior_accuracy": float(100.0 * (train / train.sum(axis=1, keepdims=True) * test).sum() / total),
            "chance_balanced_accuracy": 100.0 / present if present >= 2 else float("nan")}


CALIBRATION_BINS = 15
PROBABILITY_FLOOR = 1e-5
"""NLL clips probabilities here: fold files keep them to 5 decimals, so a printed 0 may be any value below 5e-6."""


def calibration(y_true: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, float]:
    """How far stated confidence is from hit rate: top-label ECE (equal-width confidence bins, each weighted by its
    share of items), the multi-class Brier score (squared distance of the probability vector from the one-hot
    truth, summed over classes, averaged over items) and the NLL of the true class (probabilities clipped at
    PROBABILITY_FLOOR); NaN when there are no items."""
    y_true = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64).reshape(len(y_true), -1)
    if not len(y_true):
        return dict.fromkeys(("ece", "brier", "nll"), float("nan"))
    confidence, hit = p.max(axis=1), p.argmax(axis=1) == y_true
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    gaps = [abs(hit[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
            for b in np.unique(which)]
    truth = np.eye(p.shape[1])[y_true]
    return {"ece": float(np.sum(gaps)), "brier": float(((p - truth) ** 2).sum(axis=1).mean()),
            "nll": float(-np.log(np.clip(p[np.arange(len(y_true)), y_true], PROBABILITY_FLOOR, 1.0)).mean())}


def reliability(y_true: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, np.ndarray]:
    """The reliability diagram's points: per non-empty confidence bin, its mean confidence, hit rate and item count."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(len(y_true), -1)
    confidence, hit = p.max(axis=1), p.argmax(axis=1) == np.asarray(y_true)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    used = np.unique(which)
    return {"confidence": np.array([confidence[which == b].mean() for b in used]),
            "accuracy": np.array([hit[which == b].mean() for b in used]),
            "count": np.array([(which == b).sum() for b in used])}


class Trials(NamedTuple):
    """Per-trial view of window predictions: keys, labels, mean window probabilities, window counts."""

    keys: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    n_windows: np.ndarray


def trial_probabilities(keys: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray) -> Trials:
    """Soft vote per trial: the unique trial keys, each trial's label and its windows' mean probabilities.

    `keys` is `(n_windows, k)` (e.g. subject, session, trial); every window of a trial must carry the
    trial's label.
    """
    keys = np.asarray(keys).reshape(len(y_true), -1)
    trials, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse, minlength=len(trials))
    mean = np.zeros((len(trials), probabilities.shape[1]))
    np.add.at(mean, inverse, probabilities)
    mean /= counts[:, None]
    labels = np.full(len(trials), -1, dtype=np.int64)
    labels[inverse] = y_true
    if (labels[inverse] != np.asarray(y_true)).any():
        raise ValueError("a trial's windows carry different labels; labels must be per trial")
    return Trials(trials, labels, mean, counts)


def level_scores(y_true: np.ndarray, probabilities: np.ndarray, n_classes: int, train_counts: np.ndarray,
                 margins: np.ndarray | None = None, fold_test_counts: np.ndarray | None = None) -> dict:
    """Every score of one set of predictions (windows or trials) beside its trivial baselines; AUC ranks the
    `margins` when the model decides by them, else the probabilities. Predictions pooled from several folds give
    `train_counts` per fold with `fold_test_counts`, each fold's test class counts (see `baselines`)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(len(y_true), n_classes)
    cm = confusion_matrix(y_true, probabilities.argmax(1), n_classes)
    counts = class_counts(y_true, n_classes)
    ranked = probabilities if margins is None else np.asarray(margins, dtype=np.float64).reshape(len(y_true), n_classes)
    return {**scores(cm), "macro_auc": macro_auc(y_true, ranked), "n": int(len(y_true)),
            "confusion_matrix": cm.tolist(), "class_counts": counts.tolist(),
            "classes_present": int((counts > 0).sum()), "one_class_predicted": one_class_predicted(cm),
            "baseline": baselines(train_counts, counts if fold_test_counts is None else fold_test_counts)
            if len(y_true) else {}}


def one_class_predicted(cm: np.ndarray) -> int | None:
    """The class predicted for every item when the true labels hold several classes (a model collapsed to one
    class: its balanced accuracy is exactly 1/K, a chance-level number that says nothing about the signal), else
    None."""
    cm = np.asarray(cm)
    predicted = np.flatnonzero(cm.sum(axis=0))
    return int(predicted[0]) if len(predicted) == 1 and (cm.sum(axis=1) > 0).sum() >= 2 else None
