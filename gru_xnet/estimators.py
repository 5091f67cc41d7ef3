"""scikit-learn classifiers on the torch models' folds: grid selection on the validation subjects, a module
the torch evaluator scores, and the fitted state as plain data for `weights_only=True` checkpoints.

scikit-learn is imported by the functions that handle an estimator (one exists only once it is loaded): a torch
fold's process, a Ray Train worker or a Tune trial, never loads it.

A classifier decides by its probabilities (`predict_proba`) or, without them, by its margins (`decision_function`,
e.g. an SVC): `class_scores` gives either as the module's logits, so their argmax is the classifier's own decision.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

import numpy as np
import torch

from gru_xnet.engine import subject_balanced_accuracy

MIN_PROBABILITY = 1e-12  # a class the estimator never saw: its log stays finite


def decision_of(model) -> str:
    """'margin' for a classifier without predict_proba (it decides by its decision_function), else 'probability'
    (predict_proba, or a torch module's softmax)."""
    model = model.estimator if isinstance(model, EstimatorModule) else model
    return "margin" if is_estimator(model) and not callable(getattr(model, "predict_proba", None)) else "probability"


def class_scores(estimator, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores of flattened windows, columns in class order 0..n_classes-1, whose argmax is the estimator's decision.

    'probability': log predict_proba (softmax gives it back). 'margin': decision_function; two classes as
    (-d/2, d/2), so softmax is sigmoid(d); three or more the one-vs-rest columns. A class the estimator never saw
    scores log(1e-12) below the row's lowest, so it is never predicted and its softmax stays near 0.
    """
    flat = x.reshape(len(x), -1)
    classes = np.asarray(estimator.classes_)
    if decision_of(estimator) == "probability":
        seen = np.log(np.maximum(estimator.predict_proba(flat), MIN_PROBABILITY))  # (N, len(classes))
    else:
        margins = np.asarray(estimator.decision_function(flat), dtype=np.float64)
        seen = np.stack([-margins / 2, margins / 2], axis=1) if margins.ndim == 1 else margins
        if seen.shape != (len(x), len(classes)):
            raise ValueError(f"{type(estimator).__name__}.decision_function: expected one column per class "
                             f"({len(x)}, {len(classes)}) (one-vs-rest), found {seen.shape}")
    scores = np.repeat(seen.min(axis=1, keepdims=True) + math.log(MIN_PROBABILITY), n_classes, axis=1)
    scores[:, classes] = seen
    return scores


class EstimatorModule(torch.nn.Module):
    """A fitted scikit-learn classifier as a module: forward gives its `class_scores` as logits, so the torch
    evaluator's argmax is the classifier's own prediction and its softmax the classifier's probabilities (or the
    softmax of its margins, `decision` 'margin')."""

    def __init__(self, estimator, n_classes: int):
        from sklearn.utils.validation import check_is_fitted

        super().__init__()
        check_is_fitted(estimator)
        classes = np.asarray(estimator.classes_)
        if classes.dtype.kind not in "iu" or classes.min() < 0 or classes.max() >= n_classes:
            raise ValueError(f"expected estimator classes_ within 0..{n_classes - 1}, found {classes.tolist()}")
        self.estimator, self.n_classes, self.decision = estimator, n_classes, decision_of(estimator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows = x.detach().float().cpu().numpy()  # (B, *window_shape)
        scores = class_scores(self.estimator, windows, self.n_classes)  # (B, n_classes)
        return torch.from_numpy(scores.astype(np.float32)).to(x.device)


def is_estimator(obj) -> bool:
    """True for a scikit-learn classifier (has fit and predict_proba or decision_function, is not a torch Module)."""
    return (not isinstance(obj, (torch.nn.Module, type)) and callable(getattr(obj, "fit", None))
            and any(callable(getattr(obj, name, None)) for name in ("predict_proba", "decision_function")))


class GridFit(NamedTuple):
    """A fitted estimator, its grid history (one {"params", "val_subject_balanced_accuracy"} per point in grid
    order), the chosen params, whether several points tied at the best score, and how the grid was scored
    (`selection`)."""

    estimator: Any
    history: list[dict]
    chosen: dict[str, Any]
    tied: bool
    selection: str


INNER_FOLDS = 3
"""Without validation windows, the grid is scored by StratifiedGroupKFold over the training trials with
min(INNER_FOLDS, the smallest class's training trials) folds."""


def fit_estimator(estimator, grid: dict[str, list], train: tuple[np.ndarray, np.ndarray],
                  val: tuple[np.ndarray, np.ndarray, np.ndarray] | None, n_classes: int,
                  trial_groups: np.ndarray | None = None, seed: int = 0) -> GridFit:
    """Choose grid parameters on the validation subjects, then refit on training + validation.

    Each point is scored on what the evaluator predicts (the argmax of `class_scores`); ties (and scores all
    undefined) go to the tied point nearest the estimator's own values (`_distance_to_default`). Without
    validation windows but with `trial_groups` (each training window's trial), each point is scored by
    `inner_folds` over the training trials instead (held-out windows, mean over folds), then refitted on every
    training window. Otherwise, or without a grid: one fit, no history, nothing chosen.
    """
    points = _grid_points(grid)
    x_train, y_train = _windows("train", *train, n_classes)
    has_val = val is not None and len(val[0]) > 0
    x_val, y_val = _windows("val", val[0], val[1], n_classes) if has_val else (x_train[:0], y_train[:0])
    x_all, y_all = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
    if has_val:
        subjects = np.asarray(val[2])
        if subjects.shape != y_val.shape:
            raise ValueError(f"val subjects: expected one per window, shape {y_val.shape}, found {subjects.shape}")
        x_fit, y_fit = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
        folds, selection = [(np.arange(len(y_train)), len(y_train) + np.arange(len(y_val)))], "validation subjects"
        subjects = np.concatenate([np.full(len(y_train), -1), subjects])
    else:
        x_fit, y_fit, subjects = x_train, y_train, np.zeros(len(y_train))
        folds, selection = inner_folds(y_train, trial_groups, seed)
    if not grid or not folds:
        return GridFit(_fit(estimator, {}, x_all, y_all), [], {}, False, "none: " + (
            "no grid" if not grid else selection))
    history = []
    for params in points:
        scores = []
        for fit_rows, score_rows in folds:
            fitted = _fit(estimator, params, x_fit[fit_rows], y_fit[fit_rows])
            y_pred = class_scores(fitted, x_fit[score_rows], n_classes).argmax(1)  # what the evaluator predicts
            scores.append(subject_balanced_accuracy(y_fit[score_rows], y_pred, subjects[score_rows], n_classes))
        defined = [score for score in scores if math.isfinite(score)]
        history.append({"params": params,
                        "val_subject_balanced_accuracy": float(np.mean(defined)) if defined else float("nan")})
    scores = np.array([entry["val_subject_balanced_accuracy"] for entry in history])
    best = np.flatnonzero(np.isnan(scores)) if np.isnan(scores).all() else np.flatnonzero(scores == np.nanmax(scores))
    own = estimator.get_params()
    chosen = points[min(best, key=lambda i: (_distance_to_default(points[i], own), i))]
    return GridFit(_fit(estimator, chosen, x_all, y_all), history, chosen, len(best) > 1, selection)


def inner_folds(y: np.ndarray, trial_groups: np.ndarray | None,
                seed: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """(fit rows, scored rows) of StratifiedGroupKFold over whole trials, k = min(INNER_FOLDS, the smallest class's
    trials), shuffled by `seed`, and how it was done; no folds (and why) without trials or with k < 2."""
    if trial_groups is None:
        return [], "no validation windows"
    groups = np.unique(np.asarray(trial_groups).reshape(len(y), -1), axis=0, return_inverse=True)[1].ravel()
    per_class = np.bincount(np.unique(np.stack([groups, y], axis=1), axis=0)[:, 1])
    k = min(INNER_FOLDS, int(per_class[per_class > 0].min()))
    if k < 2 or len(per_class[per_class > 0]) < 2:
        return [], f"no validation windows, and a class has {per_class[per_class > 0].min()} training trial(s)"
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return (list(splitter.split(np.zeros(len(y)), y, groups)),
            f"StratifiedGroupKFold over the training trials (k = {k}, seed {seed})")


def fit_on_loaders(estimator, grid: dict[str, list], loaders, subject_index: np.ndarray,
                   trial_keys: np.ndarray | None = None, seed: int = 0) -> GridFit:
    """`fit_estimator` on a split's normalised training and validation windows (`gru_xnet.data_loader.Loaders`),
    the fitted estimator returned as an EstimatorModule; `trial_keys` (each window's trial, every window of the
    feature set) let a split without validation windows score the grid over its training trials."""
    def side(batches):
        if batches is None:
            return None
        windows = batches.windows
        return windows.array(), windows.y.cpu().numpy(), subject_index[windows.indices]

    x, y, _ = side(loaders.train)
    groups = None if trial_keys is None else trial_keys[loaders.train.windows.indices]
    fit = fit_estimator(estimator, dict(grid), (x, y), side(loaders.val), loaders.n_classes, groups, seed)
    return fit._replace(estimator=EstimatorModule(fit.estimator, loaders.n_classes))


def _distance_to_default(point: dict[str, Any], own: dict[str, Any]) -> float:
    """How far a grid point lies from the estimator's own values: |log10 ratio| for positive numbers (C 1 to 0.1
    is 1), else 0 when equal and 1 when not."""
    def positive(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0

    return sum(abs(math.log10(value / own[name])) if positive(value) and positive(own.get(name))
               else float(value != own.get(name)) for name, value in point.items())


def _grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """The Cartesian product of the grid's value lists, in the order given."""
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"grid[{name!r}] = {values!r}: expected a non-empty list of values")
    return [dict(zip(grid, combination)) for combination in itertools.product(*grid.values())]


def _windows(name: str, x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows flattened to (N, features) and their labels, refused when not finite or out of range."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2 or y.shape != (len(x),):
        raise ValueError(f"{name}: expected windows (N, ...) and N labels, found shapes {x.shape} and {y.shape}")
    flat = x.reshape(len(x), -1)
    bad = int(flat.size - np.count_nonzero(np.isfinite(flat)))
    if bad:
        raise ValueError(f"{name} windows: expected finite values, found {bad} NaN/Inf of {flat.size}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} labels: expected 0..{n_classes - 1}, found {y.min()}..{y.max()}")
    return flat, y


def _fit(estimator, params: dict[str, Any], x: np.ndarray, y: np.ndarray):
    """A clone of `estimator` with `params`, fitted on (x, y)."""
    from sklearn.base import clone

    try:
        return clone(estimator).set_params(**params).fit(x, y)
    except Exception as error:
        raise ValueError(f"fitting {type(estimator).__name__} with params {params}: {error}") from error


def estimator_state(estimator) -> dict:
    """The fitted state of `estimator` as plain data (tensors, numbers, str, lists, tagged dicts), so a
    checkpoint holding it loads with `torch.load(..., weights_only=True)`; Pipeline steps and nested
    estimators are saved recursively."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    return _save_estimator(estimator, "")


def load_estimator_state(estimator, state: dict):
    """Put a saved state into an unfitted estimator built the same way (the caller builds it: no class is
    instantiated from the state) and return it fitted; ValueError names what does not match."""
    if not _is_estimator_state(state):
        raise ValueError(f"expected a state made by estimator_state, found {type(state).__name__}")
    return _load_estimator(estimator, state, "")


def _class_name(estimator) -> str:
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def _is_estimator_state(saved) -> bool:
    return isinstance(saved, dict) and saved.get("kind") == "estimator"


def _save_estimator(estimator, prefix: str) -> dict:
    """One estimator's attributes (and a Pipeline's steps) as plain data, tagged with its class."""
    from sklearn.pipeline import Pipeline

    is_pipeline = isinstance(estimator, Pipeline)
    state = {"kind": "estimator", "class": _class_name(estimator),
             "attributes": {name: _save_attribute(value, prefix + name) for name, value in vars(estimator).items()
                            if not (is_pipeline and name == "steps")}}
    if is_pipeline:
        state["steps"] = {name: _save_attribute(step, prefix + name) for name, step in estimator.steps}
    return state


def _save_attribute(value, path: str):
    """A nested estimator's state, or `value` as plain data."""
    from sklearn.base import BaseEstimator

    return _save_estimator(value, f"{path}.") if isinstance(value, BaseEstimator) else _save(value, path)


def _save(value, path: str):
    """`value` as tensors, Python scalars, lists, tuples and tagged dicts."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biufc" and value.dtype.isnative:
        return {"kind": "array", "scalar": isinstance(value, np.generic),
                "tensor": torch.from_numpy(np.array(value, order="C"))}
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "UO":
        values = [int(item) if isinstance(item, np.integer) else item for item in np.ravel(value).tolist()]
        if all(type(item) in (str, int) for item in values):
            return {"kind": "strings", "scalar": isinstance(value, np.generic), "dtype": value.dtype.str,
                    "shape": list(np.shape(value)), "values": values}
    if type(value) in (list, tuple):
        return type(value)(_save(item, f"{path}[{i}]") for i, item in enumerate(value))
    if type(value) is dict and all(type(key) in (str, int) for key in value):
        return {"kind": "dict", "items": {key: _save(item, f"{path}[{key!r}]") for key, item in value.items()}}
    raise ValueError(f"attribute {path!r} ({type(value).__name__}): the estimator cannot be saved as plain arrays; "
                     "expected numeric/bool/str arrays, numbers, str, None, lists/tuples/dicts of these or estimators")


def _load_estimator(estimator, state: dict, prefix: str):
    """`estimator` with the saved attributes set and nested estimators and Pipeline steps loaded in place."""
    from sklearn.pipeline import Pipeline

    where = prefix.rstrip(".") or "estimator"
    if state["class"] != _class_name(estimator):
        raise ValueError(f"{where}: the state is for a {state['class']}, expected {_class_name(estimator)}")
    if isinstance(estimator, Pipeline):
        names = [name for name, _ in estimator.steps]
        if list(state["steps"]) != names:
            raise ValueError(f"{where}.steps: the state has steps {list(state['steps'])}, the pipeline {names}")
        for name, step in estimator.steps:
            restored = _restore(step, state["steps"][name], prefix + name)
            if restored is not step and restored != step:
                raise ValueError(f"{prefix}{name}: the state holds a different step than the pipeline's {step!r}")
    for name, saved in state["attributes"].items():
        setattr(estimator, name, _restore(getattr(estimator, name, None), saved, prefix + name))
    return estimator


def _restore(target, saved, path: str):
    """`saved` decoded, or loaded into `target` when it is a nested estimator's state."""
    from sklearn.base import BaseEstimator

    if not _is_estimator_state(saved):
        return _load(saved)
    if not isinstance(target, BaseEstimator):
        raise ValueError(f"attribute {path!r}: the state holds a fitted {saved['class']}, expected the unfitted "
                         f"estimator to hold one there to load it into, found {target!r}")
    return _load_estimator(target, saved, f"{path}.")


def _load(saved):
    """The value `_save` turned into plain data."""
    if type(saved) in (list, tuple):
        return type(saved)(_load(item) for item in saved)
    if not isinstance(saved, dict):
        return saved
    if saved["kind"] == "dict":
        return {key: _load(item) for key, item in saved["items"].items()}
    if saved["kind"] == "array":
        array = np.asarray(saved["tensor"].numpy(), order="C")
    else:
        array = np.empty(len(saved["values"]), dtype=np.dtype(saved["dtype"]))
        array[:] = saved["values"]
        array = array.reshape(saved["shape"])
    return array[()] if saved["scalar"] else array
