"""The permutation null's scheme: replicate k is one relabelled dataset, shared by every fold and seed.

A `loso.run --local` run (3 folds x 2 seeds x 2 replicates, 1 epoch) checks what the result files record;
a numpy simulation of the aggregator's null (no training) checks that the null this seeding gives keeps the
false-positive rate at alpha with several seeds; a tiny hand-made FeatureSet checks the joint protocol's
majority baseline. No Ray.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from gru_xnet.config import ConfigError, ExperimentConfig
from gru_xnet.datasets import write_synthetic
from gru_xnet.features import FeatureSet, SubjectKey, build_feature_set
from loso.folds import Fold
from loso.splits import plan_folds
from loso.outputs import check_output
from loso.run import main
from loso.stats import permutation_p
from loso.training import OBSERVED, PERMUTATION_SCHEME, fold_labels, train_variant
from tests.conftest import tiny_config

REPLICATES = 2


def tiny_features(per_dataset: dict[str, list[list[list[int]]]]) -> FeatureSet:
    """A FeatureSet of 1-channel (22, 29) noise images: per dataset, per subject, per session, each trial's label;
    2 windows per trial."""
    rows: dict[str, list] = defaultdict(list)
    subjects = []
    for dataset, labelled in per_dataset.items():
        for number, sessions in enumerate(labelled, start=1):
            for session, labels in enumerate(sessions, start=1):
                for trial, label in enumerate(labels, start=1):
                    for name, value in (("labels", label), ("subject_index", len(subjects)), ("trials", trial),
                                        ("sessions", session)):
                        rows[name] += [value, value]
            subjects.append(SubjectKey(dataset, f"s{number:02d}"))
    n = len(rows["labels"])
    return FeatureSet(
        features=np.random.default_rng(0).normal(size=(n, 1, 22, 29)).astype(np.float32),
        labels=np.array(rows["labels"], dtype=np.int64), subject_index=np.array(rows["subject_index"], dtype=np.int32),
        trials=np.array(rows["trials"], dtype=np.int32), sessions=np.array(rows["sessions"], dtype=np.int16),
        subjects=subjects, datasets=list(per_dataset), channel_names=("FZ",), frequencies=np.arange(22.0),
        n_classes=2, class_names=("low", "high"), synthetic=True)


@pytest.fixture(scope="module")
def null_run(tmp_path_factory, one_torch_thread) -> Path:
    tmp = tmp_path_factory.mktemp("scheme")
    write_synthetic(tmp / "data", ["DEAP"], 4, trials=6, seconds=12.0)
    tiny_config(tmp / "data", tmp, num_epochs=1).save(tmp / "config.json")
    out = tmp / "run"
    assert main(["--config", str(tmp / "config.json"), "--output", str(out), "--local", "--subjects", "s01", "s02",
                 "s03", "--seeds", "0", "1", "--permutations", str(REPLICATES)]) == 0
    return out


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_replicate_k_gives_each_subject_one_labelling_in_every_fold_and_seed(null_run):
    run = json.loads((null_run / "run.json").read_text())
    assert run["permutation_scheme"] == PERMUTATION_SCHEME == 2 and run["permutation_salt"] == run["config"]["seed"]
    features = build_feature_set(ExperimentConfig.from_dict(run["config"]).data)
    everyone = range(len(features.subjects))
    permuted = records(null_run / "permutations")
    assert len(permuted) == 3 * 2 * REPLICATES
    seen: dict[tuple[int, str], set[str]] = defaultdict(set)
    for record in permuted:
        test = f"{record['fold']['dataset']}/{record['fold']['subject']}"
        hashes = record["permutation"]["subject_label_hashes"]
        assert test not in hashes and len(hashes) == 3  # the fold's training and validation subjects only
        for subject, digest in hashes.items():
            seen[record["permutation"]["replicate"], subject].add(digest)
    assert all(len(digests) == 1 for digests in seen.values())  # one labelling per (replicate, subject)
    labelling = {k: {s: next(iter(seen[k, s])) for s in map(str, features.subjects)} for k in (1, 2)}
    for k in (1, 2):  # each fold's labels are the whole dataset's replicate k, whatever the fold's pool
        whole = features.with_permuted_labels(everyone, salt=run["permutation_salt"], replicate=k)
        assert labelling[k] == whole.subject_label_hashes(everyone)
    real = features.subject_label_hashes(everyone)
    assert labelling[1] != labelling[2] and real not in (labelling[1], labelling[2])


def test_test_labels_are_never_permuted(null_run):
    config = ExperimentConfig.from_dict(json.loads((null_run / "run.json").read_text())["config"])
    features = build_feature_set(config.data)
    observed = {r["fold"]["fold_id"]: r for r in records(null_run / "folds")}
    assert len(observed) == 6 and not any("permutation" in r for r in observed.values())
    for record in observed.values():
        assert record["predictions"]["y_true"] == features.labels[record["predictions"]["window"]].tolist()
    for record in records(null_run / "permutations"):
        assert record["predictions"]["y_true"] == observed[record["fold"]["fold_id"]]["predictions"]["y_true"]


def test_resume_refuses_permutations_of_another_scheme(tmp_path):
    manifest = {"config_hash": "abc", "seeds": [0], "permutations": 2, "permutation_scheme": PERMUTATION_SCHEME}
    old = {k: v for k, v in manifest.items() if k != "permutation_scheme"}
    (tmp_path / "run.json").write_text(json.dumps(old))
    check_output(tmp_path, manifest, resume=True)  # no permutation result yet: the folder may go on
    (tmp_path / "run.json").write_text(json.dumps(old))
    (tmp_path / "permutations").mkdir()
    (tmp_path / "permutations" / "DEAP-s01-seed0-perm001.json").write_text("{}")
    folder = re.escape(str(tmp_path))
    with pytest.raises(ConfigError, match=rf"{folder} holds .*scheme 1.*delete {folder}/permutations .*--resume"):
        check_output(tmp_path, manifest, resume=True)
    assert "permutation_scheme" not in json.loads((tmp_path / "run.json").read_text())


def test_a_subjects_permutation_keeps_session_counts_and_ignores_the_other_subjects():
    features = tiny_features({"SEEDIV": [[[0, 0, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0], [0, 1, 0, 1, 0, 1]]] * 3})
    permuted = features.with_permuted_labels([0, 1], salt=7, replicate=1)
    for s in (0, 1):
        for session in (1, 2, 3):
            rows = features.windows_of([s], [session])
            assert sorted(permuted.labels[rows]) == sorted(features.labels[rows])
    assert np.array_equal(permuted.labels[features.windows_of([2])], features.labels[features.windows_of([2])])
    assert not np.array_equal(permuted.labels, features.labels)
    alone = features.without([0]).with_permuted_labels([0], salt=7, replicate=1)  # subject 1, with 0 not loaded
    assert np.array_equal(alone.labels[alone.windows_of([0])], permuted.labels[features.windows_of([1])])
    other = features.with_permuted_labels([0, 1], salt=7, replicate=2)
    assert permuted.subject_label_hashes([0, 1]) != other.subject_label_hashes([0, 1])


# The aggregator's null, simulated: a subject's score is a labelling effect (SD 5, fixed by the labels its
# fold trained on: half from its own fold's training labels, half shared by every fold that trains on a
# subject with those labels) plus seed noise (SD 1); seeds are averaged within a subject, subjects averaged,
# and the observed mean ranked among the replicates' means, as loso/aggregate.py does.
SEEDS, NULL_REPLICATES, SIMULATED_DATASETS, SALT = (0, 1, 2), 99, 2000, 42
LABELLING_SD, SEED_SD = 5.0, 1.0


def labelling_keys(features: FeatureSet, labels_of: Callable[[Fold, int], FeatureSet]) -> tuple[np.ndarray, np.ndarray]:
    """Per (seed, test subject, variant): an id of the fold's training labels, and per training subject an id
    of that subject's labels (-1 for the test subject)."""
    n = len(features.subjects)
    fold_ids, subject_ids = {}, {}
    own = np.zeros((len(SEEDS), n, NULL_REPLICATES + 1), dtype=np.int64)
    shared = np.full((len(SEEDS), n, NULL_REPLICATES + 1, n), -1, dtype=np.int64)
    for fold in plan_folds(features, seeds=SEEDS):
        s, test = SEEDS.index(fold.seed), fold.split.test[0]
        pool = fold.split.train + fold.split.val
        for variant in range(NULL_REPLICATES + 1):
            labelled = labels_of(fold, variant)
            own[s, test, variant] = fold_ids.setdefault((test, labelled.label_hash(features.windows_of(pool))),
                                                        len(fold_ids))
            for subject, digest in labelled.subject_label_hashes(pool).items():
                shared[s, test, variant, features.subject_ids([subject])[0]] = subject_ids.setdefault(
                    (subject, digest), len(subject_ids))
    return own, shared


def false_positive_rate(own: np.ndarray, shared: np.ndarray, alpha: float = 0.05) -> float:
    """Share of simulated datasets (no true effect) whose dataset-level permutation p is <= alpha."""
    rng = np.random.default_rng(0)
    in_pool = shared >= 0
    hits = 0
    for _ in range(SIMULATED_DATASETS):
        own_effect = rng.normal(0, LABELLING_SD / np.sqrt(2), own.max() + 1)[own]
        drawn = rng.normal(0, LABELLING_SD / np.sqrt(2), shared.max() + 1)[shared]
        shared_effect = np.where(in_pool, drawn, 0).sum(-1) / np.sqrt(in_pool.sum(-1))
        scores = own_effect + shared_effect + rng.normal(0, SEED_SD, own.shape)  # (seed, subject, variant)
        means = scores.mean(axis=0).mean(axis=0)
        hits += permutation_p(means[OBSERVED], means[1:]) <= alpha
    return hits / SIMULATED_DATASETS


@pytest.fixture(scope="module")
def six_subjects() -> FeatureSet:
    trial_labels_per_session = [[0, 0, 0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0, 1, 0]]
    return tiny_features({"SEEDIV": [trial_labels_per_session] * 6})


def test_the_null_keeps_the_false_positive_rate_at_alpha_with_three_seeds(six_subjects):
    config = ExperimentConfig(seed=SALT)
    keys = labelling_keys(six_subjects, lambda fold, k: fold_labels(config, six_subjects, fold.split, k))
    assert 0.03 <= false_positive_rate(*keys) <= 0.07


def test_the_simulation_sees_a_null_drawn_per_fold_and_seed_as_too_narrow(six_subjects):
    def per_fold_and_seed(fold: Fold, k: int) -> FeatureSet:  # the scheme before: seeded by (seed, k, test subject)
        if k == OBSERVED:
            return six_subjects
        pool = fold.split.train + fold.split.val
        return six_subjects.with_permuted_labels(pool, salt=1000 * fold.seed + fold.split.test[0], replicate=k)

    assert false_positive_rate(*labelling_keys(six_subjects, per_fold_and_seed)) > 0.12


def test_a_joint_folds_majority_baseline_comes_from_its_own_dataset(tmp_path, one_torch_thread):
    # DEAP's training trials are mostly class 0, GAMEEMO's all class 1: pooled, class 1 would be the majority
    deap, gameemo = [[[0, 0, 0, 1]]] * 3, [[[1, 1, 1, 1]]] * 3
    features = tiny_features({"DEAP": deap, "GAMEEMO": gameemo})
    (fold,) = plan_folds(features, protocol="joint", seeds=[0], subjects=["DEAP/s01"])
    config = tiny_config(tmp_path, tmp_path, datasets=("DEAP", "GAMEEMO"), num_epochs=1)
    result = train_variant(config, features, fold.split, fold.seed, OBSERVED)
    assert result["test"]["training_class_counts"] == {"windows": [12, 4], "trials": [6, 2]}
    assert result["test"]["baseline"]["majority_accuracy"] == 75.0
    assert result["test"]["trial"]["baseline"]["majority_accuracy"] == 75.0
