"""The field's feature baselines: differential-entropy features into a standardised linear classifier.

Both are scikit-learn Pipelines fitted on a fold's training subjects, with C chosen from `GRID` by the
validation subjects' mean per-subject balanced accuracy (ties: the C nearest the default 1 in log10), then
refitted on training + validation. `class_weight='balanced'` stands in for the torch models' balanced sampling.
The logistic regression decides by its probabilities, the SVM by its margins (`gru_xnet.estimators`).
"""

from __future__ import annotations

import math

from gru_xnet.models.spec import ModelSpec

GRID = {"C": [0.01, 0.1, 1.0, 10.0]}


def _pipeline(classifier):
    """StandardScaler then `classifier` (scikit-learn is imported when a model is built, not with the registry)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("classifier", classifier)])


def _check_window(input_shape: tuple[int, ...], n_classes: int) -> None:
    if not (len(input_shape) >= 1 and math.prod(input_shape) >= 1 and n_classes >= 2):
        raise ValueError(f"input_shape={input_shape!r}, n_classes={n_classes!r}: expected windows with at least one "
                         "feature and at least 2 classes")


def logistic_regression(input_shape: tuple[int, ...], n_classes: int, *, C: float = 1.0,
                        max_iter: int = 2000):
    """StandardScaler + L2 logistic regression (lbfgs) on the flattened window."""
    from sklearn.linear_model import LogisticRegression

    _check_window(input_shape, n_classes)
    return _pipeline(LogisticRegression(C=C, max_iter=max_iter, class_weight="balanced"))


def linear_svm(input_shape: tuple[int, ...], n_classes: int, *, C: float = 1.0, kernel: str = "linear"):
    """StandardScaler + SVM (linear kernel, as SEED's papers) that decides by its margins.

    No Platt probabilities: a sigmoid fitted on imbalanced training labels would restore, in its argmax, the
    prior that `class_weight='balanced'` removed. With 3 or more classes `break_ties` makes the argmax of the
    one-vs-rest decision_function SVC.predict itself.
    """
    from sklearn.svm import SVC

    _check_window(input_shape, n_classes)
    return _pipeline(SVC(C=C, kernel=kernel, class_weight="balanced", break_ties=n_classes >= 3))


DE_LOGREG = ModelSpec(
    name="de_logreg", build=logistic_regression, representation="de",
    summary="differential entropy + StandardScaler + logistic regression (scikit-learn)",
    defaults={"C": 1.0, "max_iter": 2000},
    grid={f"classifier__{k}": v for k, v in GRID.items()})
DE_SVM = ModelSpec(
    name="de_svm", build=linear_svm, representation="de",
    summary="differential entropy + StandardScaler + linear SVM deciding by its margins (scikit-learn)",
    defaults={"C": 1.0, "kernel": "linear"},
    grid={f"classifier__{k}": v for k, v in GRID.items()})
