"""The LOSO plan: one fold per held-out subject (per session with 'separate'), per seed, never leaking."""

import numpy as np
import pytest

from gru_xnet.config import DataConfig
from gru_xnet.features import build_feature_set
from loso.splits import plan_folds


@pytest.fixture(scope="module")
def features(synthetic_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return build_feature_set(DataConfig(datasets=["DEAP", "SEEDIV"], data_root=str(synthetic_root),
                                        cache_dir=str(cache)))


def test_within_protocol_trains_on_the_same_dataset(features):
    folds = plan_folds(features, seeds=[0, 1])
    assert len(folds) == 2 * len(features.subjects)
    for fold in folds:
        (test,) = fold.split.test
        pool = set(fold.split.train) | set(fold.split.val)
        assert test not in pool and len(fold.split.val) == 1
        dataset = str(features.subjects[test]).split("/")[0]
        assert fold.tests == (str(features.subjects[test]),) and fold.result_ids == [fold.fold_id]
        assert {features.subjects[s].dataset for s in pool} == {dataset}
        assert pool | {test} == set(features.subjects_of(dataset))


def test_joint_protocol_trains_on_every_dataset(features):
    for fold in plan_folds(features, protocol="joint"):
        pool = set(fold.split.train) | set(fold.split.val)
        assert {features.subjects[s].dataset for s in pool} == {"DEAP", "SEEDIV"}
        assert fold.split.test[0] not in pool


def test_seediv_sessions_separate_gives_one_fold_per_session(features):
    seediv = [s for s in features.subjects_of("SEEDIV")]
    deap_only = plan_folds(features, sessions="separate", subjects=["s01"])
    assert len(deap_only) == 1 and deap_only[0].session is None
    folds = plan_folds(features, sessions="separate", subjects=["SEEDIV/1"])
    assert [f.session for f in folds] == [1, 2, 3]
    for fold in folds:
        test_windows = fold.split.windows(features, "test")
        train_windows = fold.split.windows(features, "train")
        assert set(features.sessions[test_windows]) == {fold.session} == set(features.sessions[train_windows])
        assert set(features.subject_index[test_windows]) == {seediv[0]}
        assert fold.fold_id == f"SEEDIV-1-session{fold.session}-seed0"
    pooled = plan_folds(features, subjects=["SEEDIV/1"])
    assert len(pooled) == 1 and set(features.sessions[pooled[0].split.windows(features, "test")]) == {1, 2, 3}


def test_separate_sessions_refused_with_joint_protocol(features):
    with pytest.raises(ValueError, match="within"):
        plan_folds(features, protocol="joint", sessions="separate")


def test_kfold_holds_out_every_subject_once_per_seed_in_groups_differing_by_at_most_one(features):
    for protocol in ("within", "joint"):
        folds = plan_folds(features, "kfold:2", protocol=protocol, seeds=[0, 1])
        for seed in (0, 1):
            tested = [t for f in folds if f.seed == seed for t in f.split.test]
            assert sorted(tested) == list(range(len(features.subjects)))  # every subject once
            for fold in (f for f in folds if f.seed == seed):
                pool = set(fold.split.train) | set(fold.split.val)
                assert not pool & set(fold.split.test) and fold.split.val
                assert len(fold.result_ids) == len(fold.tests) == len(fold.split.test)
                if protocol == "within":
                    assert len({features.subjects[s].dataset for s in (*pool, *fold.split.test)}) == 1
        sizes = [len(f.split.test) for f in folds if f.seed == 0 and f.fold_id.startswith("DEAP")]
        assert protocol == "joint" or max(sizes) - min(sizes) <= 1
    first, again, other = (plan_folds(features, "kfold:2", seeds=[s]) for s in (0, 0, 1))
    assert [f.split for f in first] == [f.split for f in again]  # seeded
    assert [f.split.test for f in first] != [f.split.test for f in other]


def test_kfold_refusals_name_the_problem(features):
    with pytest.raises(ValueError, match="--subjects does not apply"):
        plan_folds(features, "kfold:2", subjects=["s01"])
    with pytest.raises(ValueError, match="fewer than 9 groups"):
        plan_folds(features, "kfold:9")
    with pytest.raises(ValueError, match="expected K an integer >= 2"):
        plan_folds(features, "kfold:1")
    with pytest.raises(ValueError, match="unknown split 'leave-one-out'.*loso, leave-stimulus-out, kfold"):
        plan_folds(features, "leave-one-out")


def test_subject_selection_by_name(features):
    assert features.subject_ids(["s02", "SEEDIV/3"]) == [1, 6]
    with pytest.raises(ValueError, match="s99.*DEAP/s01"):
        features.subject_ids(["s99"])
    assert np.array_equal(features.subject_ids(None), np.arange(len(features.subjects)))
