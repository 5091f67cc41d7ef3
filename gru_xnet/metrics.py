"""Classification metrics from a confusion matrix: one definition for training, LOSO and tables."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts `[true, predicted]` as an `(n_classes, n_classes)` int64 array."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def scores(cm: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1, in percent, from a confusion matrix.

    Balanced accuracy and macro-F1 average over the classes present in the true labels, so a test
    subject with a single class is not scored on classes it never shows.
    """
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    if total == 0:
        return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "macro_f1": float("nan")}
    return {"accuracy": float(100.0 * tp.sum() / total),
            "balanced_accuracy": float(100.0 * recall[present].mean()),
            "macro_f1": float(100.0 * f1[present].mean())}
