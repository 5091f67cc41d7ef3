"""The field's feature baselines: differential-entropy features into a standardised linear classifier.

Both are scikit-learn Pipelines fitted on a fold's training subjects, with C chosen from `GRID` by the
validation subjects' mean per-subject balanced accuracy, then refitted on training + validation.
`class_weight='balanced'` stands in for the torch models' balanced sampling.
"""

from __future__ import annotations

import math
import warnings

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


def linear_svm(input_shape: tuple[int, ...], n_classes: int, *, C: float = 1.0, kernel: str = "linear",
               seed: int = 0):
    """StandardScaler + SVM (linear kernel, as SEED's papers) with Platt-scaled probabilities for votes and AUC.

    scikit-learn 1.9 deprecates `probability=True` (removal in 1.11, hence the pin below 1.11); its replacement,
    CalibratedClassifierCV, keeps private objects that cannot be saved as plain arrays.
    """
    from sklearn.svm import SVC

    class PlattSVC(SVC):
        """SVC(probability=True) without the deprecation warning on every fit."""

        def fit(self, *args, **kwargs):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*probability.*", category=FutureWarning)
                return super().fit(*args, **kwargs)

    _check_window(input_shape, n_classes)
    return _pipeline(PlattSVC(C=C, kernel=kernel, probability=True, class_weight="balanced", random_state=seed))


DE_LOGREG = ModelSpec(
    name="de_logreg", build=logistic_regression, representation="de",
    summary="differential entropy + StandardScaler + logistic regression (scikit-learn)",
    defaults={"C": 1.0, "max_iter": 2000},
    grid={f"classifier__{k}": v for k, v in GRID.items()})
DE_SVM = ModelSpec(
    name="de_svm", build=linear_svm, representation="de",
    summary="differential entropy + StandardScaler + linear SVM with Platt probabilities (scikit-learn)",
    defaults={"C": 1.0, "kernel": "linear", "seed": 0},
    grid={f"classifier__{k}": v for k, v in GRID.items()})
