"""Every split through `loso.run`: run.json records it (a resume key), every planned result is written, a subject
tested in several folds is pooled into one score, and label-shuffled data stays at chance under leave-stimulus-out."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gru_xnet.config import DataConfig
from gru_xnet.datasets import write_synthetic
from gru_xnet.engine import Evaluation
from gru_xnet.features import build_feature_set
from gru_xnet.metrics import level_scores
from gru_xnet.results import evaluation_report
from loso.folds import Fold
from loso.pooling import pool_subjects
from loso.run import main
from loso.splits import plan_folds
from loso.training import fold_labels
from tests.conftest import tiny_config

pytestmark = pytest.mark.heavy

RUNS = {  # split -> (datasets, extra arguments, result files, subjects in the tables)
    "kfold:2": (("DEAP",), [], 4, 4),
    "leave-stimulus-out": (("DEAP",), ["--subjects", "s01", "s02"], 4, 2),
    "within-subject": (("DEAP",), ["--subjects", "s01", "s02", "--permutations", "1"], 2, 2),
    "cross-session": (("SEEDIV",), ["--subjects", "1", "2"], 2, 2),
}

CERTIFIED = {"kfold:2": "test_subjects_held_out", "leave-stimulus-out": "test_stimuli_held_out",
             "within-subject": "permutations_relabel_training_side", "cross-session": "normaliser_from_training_rows"}
"""The leakage check each split's run must pass (not merely find not applicable)."""


def run(root: Path, tmp_path: Path, split: str, datasets, *extra: str) -> tuple[int, Path]:
    config = tiny_config(root, tmp_path, datasets=datasets, num_epochs=2)
    config.save(tmp_path / "config.json")
    out = tmp_path / "out"
    return main(["--config", str(tmp_path / "config.json"), "--output", str(out), "--split", split, "--local",
                 *extra]), out


@pytest.mark.parametrize("split", list(RUNS))
def test_each_split_runs_records_itself_and_writes_per_subject_tables(synthetic_root, tmp_path, split):
    datasets, extra, n_files, n_subjects = RUNS[split]
    code, out = run(synthetic_root, tmp_path, split, datasets, *extra)
    manifest = json.loads((out / "run.json").read_text())
    assert code == 0 and manifest["split"] == (split if ":" in split else f"{split}:2" if split == "leave-stimulus-out"
                                               else split)
    assert len(list((out / "folds").glob("*.json"))) == len(manifest["planned_folds"]) == n_files
    table = pd.read_csv(out / "tables" / "per_subject.csv")
    assert len(table) == n_subjects  # a subject tested in several folds is one row
    assert f"Split '{manifest['split']}'" in (out / "tables" / "per_subject.md").read_text()
    protocol = (out / "tables" / "PROTOCOL.md").read_text()
    assert manifest["split_statement"] in protocol
    if manifest["permutations"]:  # a subject-dependent split trains on the test subject: its own trials are relabelled
        assert "the test subject's own training and validation trials" in protocol
        assert "own training trials are relabelled and its test trials keep their real labels" in protocol
    checks = {c["check"]: c for c in json.loads((out / "certificate.json").read_text())["checks"]}
    assert {c["status"] for c in checks.values()} <= {"passed", "not applicable"}, checks
    assert checks[CERTIFIED[split]]["status"] == "passed" and "## Leakage checks" in protocol
    assert ("last epoch, no validation" in checks["checkpoint_rule"]["detail"]) == (split == "within-subject")
    code, _ = run(synthetic_root, tmp_path, "loso", datasets, *extra, "--resume")
    assert code == 2  # another split cannot resume into this folder


def test_pooling_scores_a_subject_once_on_all_its_folds_predictions():
    def record(fold_id, y_true, probabilities, trials, training):
        trial_labels = dict(zip(trials, y_true)).values()  # one trial per label here
        return {"fold": {"fold_id": fold_id, "dataset": "DEAP", "subject": "s01", "session": None, "seed": 0},
                "variant": 0, "test": {"class_counts": np.bincount(y_true, minlength=2).tolist(),
                                       "trial": {"class_counts": np.bincount(list(trial_labels), minlength=2).tolist()},
                                       "training_class_counts": {"windows": training, "trials": training}},
                "predictions": {"window": list(range(len(y_true))), "trial": trials, "session": [1] * len(y_true),
                                "y_true": y_true, "y_pred": list(np.argmax(probabilities, 1)),
                                "probabilities": probabilities}}
    first = record("a", [0, 0], [[0.9, 0.1], [0.8, 0.2]], [1, 1], [2, 6])  # one class alone: degenerate alone
    second = record("b", [1, 1], [[0.3, 0.7], [0.6, 0.4]], [2, 2], [6, 2])
    other = {**record("c", [1], [[0.2, 0.8]], [3], [1, 1]), "fold": {**first["fold"], "subject": "s02", "fold_id": "c"}}
    pooled, alone = pool_subjects([first, second, other])
    assert alone is other and pooled["fold"]["pooled_from"] == ["a", "b"]
    expected = level_scores(np.array([0, 0, 1, 1]), np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), 2,
                            np.array([8, 8]))
    assert pooled["test"]["balanced_accuracy"] == expected["balanced_accuracy"] == 75.0
    assert pooled["test"]["trial"]["n"] == 2
    # each fold's own majority class (1, then 0) misses every one of its test windows: 0 %, where the summed
    # training counts (a tie, class 0) would claim 50 %; the prior's expectation is summed the same way
    assert pooled["test"]["baseline"]["majority_accuracy"] == 0.0 and expected["baseline"]["majority_accuracy"] == 50
    assert pooled["test"]["baseline"]["prior_accuracy"] == pytest.approx(100 * (2 * 0.25 + 2 * 0.25) / 4)
    assert pooled["test"]["trial"]["baseline"]["majority_accuracy"] == 0.0


def test_pooled_baselines_on_seeds_leave_stimulus_out_plan_are_the_folds_own(tmp_path):
    """SEED's 15 clips (5 per class) in 2 stratified groups of 8 and 7: each fold's training majority is a class its
    test group holds twice, so the per-fold majority classifiers score 4 of 15 (26.7 %), not the summed counts'
    one class of three (33.3 %)."""
    write_synthetic(tmp_path / "data", ["SEED"], 2, trials=15, seconds=4.0)
    features = build_feature_set(DataConfig(datasets=["SEED"], data_root=str(tmp_path / "data"),
                                            cache_dir=str(tmp_path / "cache")), representation="raw")
    records = []
    for fold in plan_folds(features, "leave-stimulus-out:2", subjects=["1"]):
        test = fold.split.windows(features, "test")
        learnt = np.concatenate([fold.split.windows(features, "train"), fold.split.windows(features, "val")])
        probabilities = np.full((len(test), 3), 1 / 3)
        report = evaluation_report(Evaluation({}, test, features.labels[test], probabilities.argmax(1), probabilities),
                                   features, learnt)
        records.append({"fold": fold.record("SEED/1"), "variant": 0, "test": report,
                        "predictions": {"window": test.tolist(), "trial": features.trials[test].tolist(),
                                        "session": features.sessions[test].tolist(),
                                        "y_true": features.labels[test].tolist(), "y_pred": [0] * len(test),
                                        "probabilities": probabilities.tolist()}})
    [pooled] = pool_subjects(records)
    summed = np.sum([r["test"]["training_class_counts"]["windows"] for r in records], axis=0)
    assert len(records) == 2 and len(set(summed.tolist())) == 1  # summed training counts: one class in three
    for level in (pooled["test"], pooled["test"]["trial"]):
        assert level["baseline"]["majority_accuracy"] == pytest.approx(100 * 4 / 15, abs=0.05)  # 26.7 %


def test_permutations_relabel_training_side_trials_only(synthetic_root, tmp_path):
    features = build_feature_set(DataConfig(datasets=["DEAP"], data_root=str(synthetic_root),
                                            cache_dir=str(tmp_path / "cache")))
    config = tiny_config(synthetic_root, tmp_path)
    fold: Fold = plan_folds(features, "within-subject", subjects=["s01"])[0]
    test = fold.split.windows(features, "test")
    learnt = np.concatenate([fold.split.windows(features, "train"), fold.split.windows(features, "val")])
    changed = [fold_labels(config, features, fold.split, k).labels for k in range(1, 6)]
    assert all((labels[test] == features.labels[test]).all() for labels in changed)  # the test trials keep theirs
    assert any((labels[learnt] != features.labels[learnt]).any() for labels in changed)


def test_shuffled_labels_stay_at_chance_under_leave_stimulus_out_median_of_three_seeds(shuffled_root, tmp_path):
    """One seed's stimulus groups can put 4 subjects' pooled score 25 points from chance (seed 7 did), so the claim
    is the median over seeds 0-2 of the dataset mean, and the test against chance on the seed-averaged subjects.
    `--local` runs the Ray worker's fold code in this process (their equality is tested in test_loso.py)."""
    config = tiny_config(shuffled_root, tmp_path, datasets=("DEAP",), num_epochs=4)
    config.save(tmp_path / "config.json")
    out = tmp_path / "shuffled"
    assert main(["--config", str(tmp_path / "config.json"), "--output", str(out), "--split", "leave-stimulus-out",
                 "--seeds", "0", "1", "2", "--local"]) == 0
    folds = pd.read_csv(out / "tables" / "per_fold.csv").query("level == 'window'")
    per_seed = folds.groupby(["seed", "subject"])["balanced_accuracy"].mean().groupby("seed").mean()
    assert len(per_seed) == 3 and abs(per_seed.median() - 50.0) < 20.0, per_seed.to_dict()
    datasets = pd.read_csv(out / "tables" / "per_dataset.csv")
    assert not datasets.loc[0, "p_vs_chance"] < 0.05
