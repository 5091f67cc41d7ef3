"""Every split's plan on synthetic data: its invariants (what may not be on two sides), every test unit once, the
training side's classes, seeding, and its refusals."""

from collections import Counter

import numpy as np
import pytest

from gru_xnet.config import DataConfig
from gru_xnet.features import build_feature_set
from gru_xnet.split import SIDES
from loso.splits import SPLITS, plan_folds, split_record
from loso.splits.spec import PlanOptions

SEEDS = [0, 1]


@pytest.fixture(scope="module")
def features(synthetic_root, tmp_path_factory):
    return build_feature_set(DataConfig(datasets=["DEAP", "SEEDIV", "GAMEEMO"], data_root=str(synthetic_root),
                                        cache_dir=str(tmp_path_factory.mktemp("cache"))))


def sides(features, fold):
    return {side: fold.split.windows(features, side) for side in SIDES}


def trial_keys(features, rows):
    return set(zip(features.subject_index[rows].tolist(), features.sessions[rows].tolist(),
                   features.trials[rows].tolist()))


def check_common(features, folds):
    """What every split guarantees: no window and no trial on two sides, a training side with two classes."""
    for fold in folds:
        rows = sides(features, fold)
        assert len(rows["train"]) and len(rows["test"]), fold.fold_id
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not trial_keys(features, rows[a]) & trial_keys(features, rows[b]), (fold.fold_id, a, b)
        assert len(np.unique(features.labels[rows["train"]])) >= 2, fold.fold_id


def test_every_split_is_registered_with_a_statement():
    assert list(SPLITS) == ["loso", "leave-stimulus-out", "kfold", "cross-session", "within-subject", "holdout"]
    assert all(spec.statement(spec.default, PlanOptions()) for spec in SPLITS.values())


def test_leave_stimulus_out_keeps_subjects_and_stimuli_apart(features):
    folds = plan_folds(features, "leave-stimulus-out", seeds=SEEDS)
    check_common(features, folds)
    tested = Counter()
    for fold in folds:
        rows = sides(features, fold)
        learnt = set(features.stimulus[np.concatenate([rows["train"], rows["val"]])])
        assert not learnt & set(features.stimulus[rows["test"]])  # no stimulus on two sides
        assert not set(fold.split.train + fold.split.val) & set(fold.split.test)  # no subject on two sides
        tested[(fold.seed, fold.tests[0], frozenset(features.stimulus[rows["test"]]))] += 1
    assert len(folds) == len(SEEDS) * 2 * len(features.subjects) and set(tested.values()) == {1}
    for seed in SEEDS:  # a subject's two groups cover its stimuli exactly once
        for test in {t for (s, t, _) in tested if s == seed}:
            groups = [g for (s, t, g) in tested if s == seed and t == test]
            subject = features.subject_ids([test])
            assert not groups[0] & groups[1]
            assert groups[0] | groups[1] == set(features.stimulus[features.windows_of(subject)])
    # fixed labels per stimulus (SEED-IV, GAMEEMO): each group holds every class present in the dataset
    gameemo = [f for f in folds if f.tests[0].startswith("GAMEEMO")]
    assert all(len(np.unique(features.labels[sides(features, f)["test"]])) == 2 for f in gameemo)
    again = plan_folds(features, "leave-stimulus-out", seeds=SEEDS)
    assert [f.split for f in again] == [f.split for f in folds]
    assert split_record("leave-stimulus-out", features, folds)["split_removes_stimulus"]
    assert not split_record("loso", features, plan_folds(features))["split_removes_stimulus"]


def test_kfold_over_subjects(features):
    folds = plan_folds(features, "kfold:2", seeds=SEEDS)
    check_common(features, folds)
    for seed in SEEDS:
        tested = sorted(t for f in folds if f.seed == seed for t in f.split.test)
        assert tested == list(range(len(features.subjects)))
    assert all(not set(f.split.train + f.split.val) & set(f.split.test) for f in folds)


def test_cross_session_trains_on_earlier_sessions_of_the_same_subject(features):
    folds = plan_folds(features, "cross-session", subjects=["SEEDIV/1", "SEEDIV/2"], seeds=SEEDS)
    check_common(features, folds)
    assert len(folds) == 4
    for fold in folds:
        rows = sides(features, fold)
        assert set(features.sessions[rows["test"]]) == {3}
        assert set(features.sessions[np.concatenate([rows["train"], rows["val"]])]) == {1, 2}
        assert set(features.subject_index[np.concatenate(list(rows.values()))]) == set(fold.split.test)
        assert len(trial_keys(features, rows["val"])) == 3  # one of 5 stratified groups of the 12 training trials
    with pytest.raises(ValueError, match="DEAP/s01 has 1 session.*DEAP has no sessions"):
        plan_folds(features, "cross-session", subjects=["DEAP/s01"])


def test_within_subject_splits_trials_of_one_session(features):
    folds = plan_folds(features, "within-subject", subjects=["s01", "GAMEEMO/S01"], seeds=SEEDS)
    check_common(features, folds)
    for fold in folds:
        rows = sides(features, fold)
        everything = np.concatenate(list(rows.values()))
        assert len(set(features.subject_index[everything])) == 1 and len(set(features.sessions[everything])) == 1
        assert len(trial_keys(features, rows["test"])) in (1, 2)  # 25 % of 6 trials, class-stratified
        assert len(set(features.labels[rows["test"]])) <= 2
    with pytest.raises(ValueError, match="SEEDIV/1 session 1 has 6 trial.*16 to train and 8 to test"):
        plan_folds(features, "within-subject", subjects=["SEEDIV/1"])
    with pytest.raises(ValueError, match="its own data alone: --protocol joint does not apply"):
        plan_folds(features, "within-subject", protocol="joint")


def test_stimulus_signal_fixes_labels_per_stimulus_and_seediv_sessions_hold_both_classes(tmp_path):
    from gru_xnet.datasets import write_synthetic

    write_synthetic(tmp_path / "data", ["DEAP"], 3, trials=4, seconds=8.0, signal="stimulus")
    write_synthetic(tmp_path / "data", ["SEEDIV"], 1, seconds=8.0)  # the generator's default trials per session
    features = build_feature_set(DataConfig(datasets=["DEAP"], data_root=str(tmp_path / "data"),
                                            cache_dir=str(tmp_path / "cache")))
    per_stimulus = {}
    for stimulus, label in zip(features.stimulus.tolist(), features.labels.tolist()):
        per_stimulus.setdefault(stimulus, set()).add(label)
    assert len(per_stimulus) == 4 and all(len(labels) == 1 for labels in per_stimulus.values())
    assert {label for labels in per_stimulus.values() for label in labels} == {0, 1}
    seediv = build_feature_set(DataConfig(datasets=["SEEDIV"], data_root=str(tmp_path / "data"),
                                          cache_dir=str(tmp_path / "cache")))
    for session in (1, 2, 3):
        assert set(seediv.labels[seediv.sessions == session]) == {0, 1}, session
