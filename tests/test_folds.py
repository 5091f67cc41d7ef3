"""The LOSO plan: one fold per held-out subject (per session with 'separate'), per seed, never leaking."""

import numpy as np
import pytest

from gru_xnet.config import DataConfig
from gru_xnet.features import build_feature_set
from loso.folds import plan_folds


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
        assert {features.subjects[s].dataset for s in pool} == {fold.dataset}
        assert pool | {test} == set(features.subjects_of(fold.dataset))


def test_joint_protocol_trains_on_every_dataset(features):
    for fold in plan_folds(features, protocol="joint"):
        pool = set(fold.split.train) | set(fold.split.val)
        assert {features.subjects[s].dataset for s in pool} == {"DEAP", "SEEDIV"}
        assert fold.split.test[0] not in pool


def test_seediv_sessions_separate_gives_one_fold_per_session(features):
    seediv = [s for s in features.subjects_of("SEEDIV")]
    deap_only = plan_folds(features, seediv_sessions="separate", subjects=["s01"])
    assert len(deap_only) == 1 and deap_only[0].session is None
    folds = plan_folds(features, seediv_sessions="separate", subjects=["SEEDIV/1"])
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
        plan_folds(features, protocol="joint", seediv_sessions="separate")


def test_subject_selection_by_name(features):
    assert features.subject_ids(["s02", "SEEDIV/3"]) == [1, 6]
    with pytest.raises(ValueError, match="s99.*DEAP/s01"):
        features.subject_ids(["s99"])
    assert np.array_equal(features.subject_ids(None), np.arange(len(features.subjects)))
