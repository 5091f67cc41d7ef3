"""scikit-learn classifiers on the folds: grid selection, the module the evaluator scores (by probabilities or by
margins), weights-only state."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from gru_xnet.engine import Precision, evaluate, subject_balanced_accuracy
from gru_xnet.estimators import (EstimatorModule, decision_of, estimator_state, fit_estimator, inner_folds,
                                 is_estimator, load_estimator_state)
from gru_xnet.metrics import level_scores, macro_auc, scores, confusion_matrix
from gru_xnet.models.de_linear import linear_svm

WINDOW = (4, 5, 2)


def windows(n: int, n_classes: int, seed: int, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4, 5, 2) float32 noise whose first feature carries the label."""
    rng = np.random.default_rng(seed)
    y = rng.choice(classes if classes is not None else n_classes, n).astype(np.int64)
    x = rng.normal(size=(n, *WINDOW)).astype(np.float32)
    x[:, 0, 0, 0] += 2.0 * y
    return x, y


def logistic() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])


def svc() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", SVC(kernel="linear", break_ties=True))])


def round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_grid_is_scored_on_validation_subjects_and_refitted_on_train_plus_val():
    train, (x_val, y_val) = windows(200, 3, seed=0), windows(120, 3, seed=1)
    subjects = np.repeat([7, 8, 9], 40)
    grid = {"clf__C": [0.01, 0.1, 1, 10]}
    estimator = logistic()
    fitted, history, chosen, tied, _ = fit_estimator(estimator, grid, train, (x_val, y_val, subjects), n_classes=3)

    assert [entry["params"] for entry in history] == [{"clf__C": c} for c in grid["clf__C"]]
    scores = [entry["val_subject_balanced_accuracy"] for entry in history]
    assert min(scores) > 50 and len(set(scores)) > 1  # planted signal, chance is 33 %
    assert chosen == history[scores.index(max(scores))]["params"] and tied == (scores.count(max(scores)) > 1)
    manual = clone(estimator).set_params(**history[2]["params"]).fit(train[0].reshape(200, -1), train[1])
    assert scores[2] == subject_balanced_accuracy(y_val, manual.predict(x_val.reshape(120, -1)), subjects, 3)

    both = clone(estimator).set_params(**chosen).fit(np.concatenate([train[0], x_val]).reshape(320, -1),
                                                     np.concatenate([train[1], y_val]))
    assert fitted is not estimator and fitted.n_features_in_ == 40 and fitted[0].n_samples_seen_ == 320
    x_val = x_val.reshape(120, -1)
    np.testing.assert_array_equal(fitted.predict_proba(x_val), both.predict_proba(x_val))


def spurious_windows(n: int, seed: int, spurious: bool) -> tuple[np.ndarray, np.ndarray]:
    """A weak large-scale true feature, plus a tiny one that separates the classes only when `spurious`."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(scale=0.01, size=(n, *WINDOW)).astype(np.float32)
    x[:, 0, 0, 0] = 100 * (y + rng.normal(scale=0.7, size=n))
    x[:, 0, 0, 1] = 0.05 * (2 * (y if spurious else rng.integers(0, 2, n)) - 1)
    return x, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_small_c_that_ignores_a_spurious_training_feature_is_chosen():
    x_val, y_val = spurious_windows(100, seed=1, spurious=False)
    _, history, chosen, _, _ = fit_estimator(LogisticRegression(), {"C": [100.0, 0.01]}, spurious_windows(100, 0, True),
                                          (x_val, y_val, np.repeat(np.arange(4), 25)), n_classes=2)
    large, small = (entry["val_subject_balanced_accuracy"] for entry in history)
    assert chosen == {"C": 0.01} and small > large + 10


def test_ties_and_undefined_scores_go_to_the_point_nearest_the_estimators_own_value():
    train, (x_val, y_val) = windows(60, 2, seed=2), windows(40, 2, seed=3)
    constant = DummyClassifier(strategy="constant", constant=0)
    fit = fit_estimator(constant, {"constant": [1, 0]}, train, (x_val, y_val, np.zeros(40)), 2)
    assert [entry["val_subject_balanced_accuracy"] for entry in fit.history] == [50.0, 50.0]
    assert fit.chosen == {"constant": 0} and fit.tied
    one_class_each = np.where(y_val == 0, 0, 1)  # no subject shows two classes: balanced accuracy undefined
    fit = fit_estimator(constant, {"constant": [1, 0]}, train, (x_val, y_val, one_class_each), 2)
    assert all(np.isnan(entry["val_subject_balanced_accuracy"]) for entry in fit.history)
    assert fit.chosen == {"constant": 0} and fit.tied
    # a numeric parameter that changes nothing ties everywhere: the value nearest the estimator's own in log10 wins
    fit = fit_estimator(DummyClassifier(random_state=20), {"random_state": [1, 100, 10, 1000]}, train,
                        (x_val, y_val, np.zeros(40)), 2)
    assert fit.chosen == {"random_state": 10} and fit.tied
    fit = fit_estimator(Pipeline([("scale", StandardScaler()), ("clf", DummyClassifier(strategy="most_frequent"))]),
                        {"clf__strategy": ["prior", "most_frequent"]}, train, (x_val, y_val, np.zeros(40)), 2)
    assert fit.chosen == {"clf__strategy": "most_frequent"} and fit.tied


def test_without_grid_or_validation_one_fit_on_everything_given():
    train, (x_val, y_val) = windows(80, 2, seed=4), windows(40, 2, seed=5)
    fitted, history, chosen, tied, _ = fit_estimator(logistic(), {}, train, (x_val, y_val, np.zeros(40)), 2)
    assert (history, chosen, tied, fitted[0].n_samples_seen_) == ([], {}, False, 120)
    fitted, history, chosen, tied, _ = fit_estimator(logistic(), {"clf__C": [0.1, 1]}, train, None, 2)
    assert (history, chosen, tied, fitted[0].n_samples_seen_) == ([], {}, False, 80)


def test_without_validation_the_grid_is_scored_over_whole_training_trials():
    # 12 trials of 4 windows, 6 per class (the papers' within-subject folds: no validation trial is held back)
    rng = np.random.default_rng(8)
    y = np.repeat(np.arange(12) % 2, 4)
    x = rng.normal(size=(48, *WINDOW)).astype(np.float32)
    x[:, 0, 0, 0] += 2.0 * y
    trials = np.repeat(np.arange(12), 4)
    fit = fit_estimator(logistic(), {"clf__C": [0.01, 1]}, (x, y), None, 2, trial_groups=trials, seed=0)
    assert fit.selection == "StratifiedGroupKFold over the training trials (k = 3, seed 0)"
    assert len(fit.history) == 2 and fit.estimator[0].n_samples_seen_ == 48  # refitted on every training window
    folds, _ = inner_folds(y, trials, seed=0)
    for fitted, scored in folds:  # whole trials held out, both classes in each held-out fold
        assert not set(trials[fitted]) & set(trials[scored]) and set(y[scored]) == {0, 1}
    few = np.isin(trials, [0, 2, 1, 3, 5, 7, 9, 11])  # 2 trials of class 0: k = 2
    assert inner_folds(y[few], trials[few], seed=0)[1].endswith("(k = 2, seed 0)")
    one = ~np.isin(trials, [2, 4, 6, 8, 10])  # 1 trial of class 0: no search, one fit
    fit = fit_estimator(logistic(), {"clf__C": [0.01, 1]}, (x[one], y[one]), None, 2, trial_groups=trials[one])
    assert (fit.history, fit.chosen) == ([], {}) and fit.selection.startswith("none: ")
    assert "a class has 1 training trial" in fit.selection


def test_bad_input_is_refused_with_what_was_expected():
    (x, y), val = windows(50, 2, seed=6), windows(20, 2, seed=7)
    x[3, 1, 2, 0], x[7, 0, 0, 1] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"train windows: expected finite values, found 2 NaN/Inf of 2000"):
        fit_estimator(logistic(), {}, (x, y), None, 2)
    with pytest.raises(ValueError, match=r"params \{'clf__C': -1.0\}"):
        fit_estimator(logistic(), {"clf__C": [-1.0]}, val, (*val, np.zeros(20)), 2)
    with pytest.raises(ValueError, match=r"val subjects: expected one per window, shape \(20,\), found \(19,\)"):
        fit_estimator(logistic(), {"clf__C": [1.0]}, val, (*val, np.zeros(19)), 2)
    with pytest.raises(ValueError, match=r"grid\['clf__C'\] = \[\]: expected a non-empty list"):
        fit_estimator(logistic(), {"clf__C": []}, val, None, 2)


@pytest.mark.parametrize("make", [logistic, svc])
def test_state_round_trips_through_a_weights_only_checkpoint(make):
    (x, y), (x_test, _) = windows(150, 3, seed=8), windows(30, 3, seed=9)
    fitted = make().fit(x.reshape(150, -1), y)
    restored = load_estimator_state(make(), round_trip(estimator_state(fitted)))
    x_test = x_test.reshape(30, -1)
    method = "predict_proba" if make is logistic else "decision_function"
    np.testing.assert_array_equal(getattr(restored, method)(x_test), getattr(fitted, method)(x_test))
    for original, loaded in zip(fitted.named_steps.values(), restored.named_steps.values()):
        for name, value in vars(original).items():  # every fitted attribute, private ones included
            assert type(vars(loaded)[name]) is type(value), name
            if isinstance(value, np.ndarray):
                assert vars(loaded)[name].dtype == value.dtype and vars(loaded)[name].flags.c_contiguous, name
                np.testing.assert_array_equal(vars(loaded)[name], value)


def test_string_labels_and_nested_estimators_round_trip():
    x, y = windows(60, 2, seed=10)
    labels = np.array(["calm", "excited"], dtype=object)[y]
    fitted = LogisticRegression().fit(x.reshape(60, -1), labels)
    fitted.reference_ = StandardScaler().fit(x.reshape(60, -1))
    target = LogisticRegression()
    target.reference_ = StandardScaler()
    restored = load_estimator_state(target, round_trip(estimator_state(fitted)))
    assert restored.classes_.dtype == object and restored.classes_.tolist() == ["calm", "excited"]
    np.testing.assert_array_equal(restored.reference_.scale_, fitted.reference_.scale_)
    np.testing.assert_array_equal(restored.predict(x.reshape(60, -1)), fitted.predict(x.reshape(60, -1)))


def test_a_state_is_refused_by_another_structure():
    x, y = windows(60, 2, seed=11)
    state = estimator_state(logistic().fit(x.reshape(60, -1), y))
    with pytest.raises(ValueError, match=r"clf: the state is for a sklearn\.linear_model\._logistic\."
                                         r"LogisticRegression, expected sklearn\.svm\._classes\.SVC"):
        load_estimator_state(svc(), state)
    with pytest.raises(ValueError, match=r"steps: the state has steps \['scale', 'clf'\], the pipeline \['clf'\]"):
        load_estimator_state(Pipeline([("clf", LogisticRegression())]), state)


def test_unsupported_attributes_are_named():
    x, y = windows(40, 2, seed=12)
    fitted = logistic().fit(x.reshape(40, -1), y)
    fitted[1].hook_ = lambda value: value
    with pytest.raises(ValueError, match=r"attribute 'clf\.hook_' \(function\): the estimator cannot be saved"):
        estimator_state(fitted)
    fitted[1].hook_ = [StandardScaler()]
    with pytest.raises(ValueError, match=r"attribute 'clf\.hook_\[0\]' \(StandardScaler\)"):
        estimator_state(fitted)


@pytest.mark.parametrize("autocast", [False, True])
def test_module_gives_the_estimators_probabilities_to_the_evaluator(autocast):
    (x, y), (x_test, y_test) = windows(150, 3, seed=13), windows(30, 3, seed=14)
    fitted = logistic().fit(x.reshape(150, -1), y)
    module = EstimatorModule(fitted, n_classes=3)
    expected = fitted.predict_proba(x_test.reshape(30, -1))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = module(torch.from_numpy(x_test))
    assert logits.dtype == torch.float32 and logits.shape == (30, 3)
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), expected, atol=1e-6)

    loader = [(torch.from_numpy(x_test), torch.from_numpy(y_test), np.zeros(30, np.int64), np.arange(30))]
    evaluation = evaluate(module, loader, device=torch.device("cpu"), n_classes=3,
                          precision=Precision("cpu", torch.bfloat16 if autocast else None))
    np.testing.assert_allclose(evaluation.probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(evaluation.y_pred, expected.argmax(1))


def test_a_class_the_estimator_never_saw_gets_zero_probability():
    x, y = windows(100, 3, seed=15, classes=[0, 2])
    fitted = logistic().fit(x.reshape(100, -1), y)
    logits = EstimatorModule(fitted, n_classes=3)(torch.from_numpy(x).double())
    probs = torch.softmax(logits, 1).numpy()
    assert torch.isfinite(logits).all() and probs[:, 1].max() < 1e-9
    np.testing.assert_allclose(probs[:, [0, 2]], fitted.predict_proba(x.reshape(100, -1)), atol=1e-6)
    with pytest.raises(ValueError, match=r"expected estimator classes_ within 0\.\.1, found \[0, 2\]"):
        EstimatorModule(fitted, n_classes=2)


def test_is_estimator_tells_classifiers_from_modules_and_how_they_decide():
    assert is_estimator(logistic()) and is_estimator(svc()) and is_estimator(SVC())
    assert not is_estimator(torch.nn.Linear(2, 2)) and not is_estimator(LogisticRegression)
    assert [decision_of(m) for m in (logistic(), svc(), torch.nn.Linear(2, 2))] == ["probability", "margin",
                                                                                      "probability"]


def imbalanced(n_per_class: list[int], seed: int, strength: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """DE-like windows (8, 5, 2) with a weak class signal spread over a few features, classes of the given sizes."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    x = rng.normal(size=(len(y), 8, 5, 2)).astype(np.float32)
    for k in range(1, len(n_per_class)):
        x[y == k, k, :2] += strength
    return x, y


@pytest.mark.parametrize("sizes", [[800, 200], [500, 300, 100]])
def test_the_svm_decides_by_its_margins_as_svc_predict_does_and_predicts_the_minority(sizes):
    (x, y), (x_test, y_test) = imbalanced(sizes, seed=20), imbalanced([150] * len(sizes), seed=21)
    fitted = linear_svm(x.shape[1:], len(sizes)).fit(x.reshape(len(x), -1), y)
    module = EstimatorModule(fitted, n_classes=len(sizes))
    loader = [(torch.from_numpy(x_test), torch.from_numpy(y_test), np.zeros(len(y_test), np.int64),
               np.arange(len(y_test)))]
    evaluation = evaluate(module, loader, device=torch.device("cpu"), n_classes=len(sizes),
                          precision=Precision("cpu", None))
    expected = fitted.predict(x_test.reshape(len(x_test), -1))
    np.testing.assert_array_equal(evaluation.y_pred, expected)  # the argmax of the margins is SVC.predict
    balanced = scores(confusion_matrix(y_test, evaluation.y_pred, len(sizes)))["balanced_accuracy"]
    assert balanced == scores(confusion_matrix(y_test, expected, len(sizes)))["balanced_accuracy"] > 100 / len(sizes)
    assert (evaluation.y_pred == len(sizes) - 1).mean() > 0.15  # the smallest training class is predicted
    margins = fitted.decision_function(x_test.reshape(len(x_test), -1))
    expected_auc = macro_auc(y_test, np.stack([-margins, margins], 1) if margins.ndim == 1 else margins)
    assert level_scores(y_test, evaluation.probabilities, len(sizes), np.array(sizes),
                        evaluation.margins)["macro_auc"] == pytest.approx(expected_auc)  # AUC ranks the margins


def test_the_grid_scores_what_the_evaluator_predicts():
    (x, y), (x_val, y_val) = imbalanced([240, 60], seed=22), imbalanced([60, 60], seed=23)
    subjects = np.tile([1, 2], 60)
    fit = fit_estimator(linear_svm(x.shape[1:], 2), {"classifier__C": [0.01, 1.0]}, (x, y), (x_val, y_val, subjects), 2)
    for entry in fit.history:
        alone = linear_svm(x.shape[1:], 2).set_params(**entry["params"]).fit(x.reshape(len(x), -1), y)
        predicted = alone.predict(x_val.reshape(len(x_val), -1))
        assert entry["val_subject_balanced_accuracy"] == subject_balanced_accuracy(y_val, predicted, subjects, 2)
