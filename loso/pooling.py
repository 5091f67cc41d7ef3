"""One score per subject when a split tests a subject in several folds (leave-stimulus-out groups, within-subject
sessions): its test predictions of every fold are pooled and scored once, so a group or session holding one class
cannot give a degenerate balanced accuracy, and the subject stays the unit of every statistic. A pooled record's
`grid_tied` counts its folds whose grid tied on validation (a fold's own record: true or false).

`pooled_over_subjects` is the other pooling, across subjects: one confusion matrix of every test subject's predictions
(the score LibEER reports for its cross-subject split), written beside the per-subject mean when a run asks for it
(run.json `pooled_over_subjects`), never instead of it."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from gru_xnet.metrics import level_scores, scores, trial_probabilities
from gru_xnet.results import collapse_note

PREDICTIONS = ("window", "trial", "session", "y_true", "y_pred", "probabilities")
POOLED_SCORES = ("accuracy", "balanced_accuracy", "macro_f1")
POOLED_STATEMENT = ("pooled over test subjects: per dataset and seed, every test subject's predictions in one "
                    "confusion matrix, scored once, then averaged over seeds; a subject with more test items weighs "
                    "more (the score LibEER reports), so it is shown beside the per-subject mean, never instead of it")


def unit(record: dict) -> tuple:
    """What one score is about: dataset, subject, session (None: all), seed and label variant."""
    fold = record["fold"]
    return fold["dataset"], fold["subject"], fold["session"], fold["seed"], record.get("variant", 0)


def pool_subjects(records: list[dict]) -> list[dict]:
    """The records with each unit tested in several folds merged into one record scored on all its predictions;
    a unit tested once is returned unchanged (LOSO and k-fold results are exactly as written)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        groups[unit(record)].append(record)
    return [parts[0] if len(parts) == 1 else pooled(parts) for parts in groups.values()]


def pooled(parts: list[dict]) -> dict:
    """One record from a unit's fold records: predictions concatenated and scored once at window and trial level;
    the trivial baselines are each fold's own trivial classifier scored on that fold's test items, summed."""
    parts = sorted(parts, key=lambda r: r["fold"]["fold_id"])
    keys = PREDICTIONS + (("margins",) if all("margins" in r["predictions"] for r in parts) else ())
    predictions = {key: [v for r in parts for v in r["predictions"][key]] for key in keys}
    n_classes = len(parts[0]["test"]["class_counts"])
    training = {level: np.array([r["test"]["training_class_counts"][level] for r in parts])
                for level in ("windows", "trials")}
    tested = {"windows": np.array([r["test"]["class_counts"] for r in parts]),
              "trials": np.array([r["test"]["trial"]["class_counts"] for r in parts])}
    y_true, probabilities = np.asarray(predictions["y_true"]), np.asarray(predictions["probabilities"])
    test = level_scores(y_true, probabilities, n_classes, training["windows"], predictions.get("margins"),
                        tested["windows"])
    trials = trial_probabilities(np.stack([predictions["session"], predictions["trial"]], axis=1), y_true, probabilities)
    test["trial"] = level_scores(trials.labels, trials.probabilities, n_classes, training["trials"],
                                 fold_test_counts=tested["trials"])
    test["training_class_counts"] = {level: counts.tolist() for level, counts in training.items()}  # one row per fold
    test["class_names"] = parts[0]["test"].get("class_names")
    test["collapse"] = collapse_note(test) if test["class_names"] else None
    first = parts[0]
    fold = {**first["fold"], "fold_id": _pooled_id(first["fold"]), "pooled_from": [r["fold"]["fold_id"] for r in parts]}
    ties = {"grid_tied": sum(bool(r["grid_tied"]) for r in parts)} if "grid_tied" in first else {}
    return {**first, "fold": fold, "test": test, "predictions": predictions, **ties,
            "tuned_on_test_subject": any(r.get("tuned_on_test_subject") for r in parts)}


def _pooled_id(fold: dict) -> str:
    session = "" if fold["session"] is None else f"-session{fold['session']}"
    return f"{fold['dataset']}-{fold['subject']}{session}-seed{fold['seed']}"


def pooled_over_subjects(records: list[dict]) -> list[dict]:
    """Per dataset and level (window, trial): `POOLED_SCORES` of the confusion matrix summed over the test subjects of
    each seed, averaged over seeds, with the subjects, seeds and test items (per seed) behind them."""
    matrices: dict[tuple, np.ndarray] = {}
    subjects: dict[tuple, set] = defaultdict(set)
    for record in records:
        fold = record["fold"]
        for level, measured in (("window", record["test"]), ("trial", record["test"]["trial"])):
            key = (fold["dataset"], level, fold["seed"])
            matrices[key] = matrices.get(key, 0) + np.asarray(measured["confusion_matrix"])
            subjects[fold["dataset"], level].add(fold["subject"])
    per_seed: dict[tuple, list[dict]] = defaultdict(list)
    for (dataset, level, _), cm in matrices.items():
        per_seed[dataset, level].append({**scores(cm), "n": int(cm.sum())})
    return [{"dataset": dataset, "level": level, "n_subjects": len(subjects[dataset, level]), "n_seeds": len(seeds),
             "n_per_seed": seeds[0]["n"],
             **{f"{score}_pooled": float(np.mean([r[score] for r in seeds])) for score in POOLED_SCORES}}
            for (dataset, level), seeds in per_seed.items()]
