"""Every split through `loso.run`: run.json records it (a resume key), every planned result is written, a subject
tested in several folds is pooled into one score, and label-shuffled data stays at chance under leave-stimulus-out."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gru_xnet.config import DataConfig
from gru_xnet.features import build_feature_set
from gru_xnet.metrics import level_scores
from loso.folds import Fold
from loso.pooling import pool_subjects
from loso.run import main
from loso.splits import plan_folds
from loso.training import fold_labels
from tests.conftest import tiny_config

RUNS = {  # split -> (datasets, extra arguments, result files, subjects in the tables)
    "kfold:2": (("DEAP",), [], 4, 4),
    "leave-stimulus-out": (("DEAP",), ["--subjects", "s01", "s02"], 4, 2),
    "within-subject": (("DEAP",), ["--subjects", "s01", "s02"], 2, 2),
    "cross-session": (("SEEDIV",), ["--subjects", "1", "2"], 2, 2),
}


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
    assert manifest["split_statement"] in (out / "tables" / "PROTOCOL.md").read_text()
    code, _ = run(synthetic_root, tmp_path, "loso", datasets, *extra, "--resume")
    assert code == 2  # another split cannot resume into this folder


def test_pooling_scores_a_subject_once_on_all_its_folds_predictions():
    def record(fold_id, y_true, probabilities, trials):
        return {"fold": {"fold_id": fold_id, "dataset": "DEAP", "subject": "s01", "session": None, "seed": 0},
                "variant": 0, "test": {"class_counts": [0, 0], "training_class_counts": {"windows": [5, 3],
                                                                                         "trials": [2, 1]}},
                "predictions": {"window": list(range(len(y_true))), "trial": trials, "session": [1] * len(y_true),
                                "y_true": y_true, "y_pred": list(np.argmax(probabilities, 1)),
                                "probabilities": probabilities}}
    first = record("a", [0, 0], [[0.9, 0.1], [0.8, 0.2]], [1, 1])  # one class alone: balanced accuracy degenerate
    second = record("b", [1, 1], [[0.3, 0.7], [0.6, 0.4]], [2, 2])
    other = {**record("c", [1], [[0.2, 0.8]], [3]), "fold": {**first["fold"], "subject": "s02", "fold_id": "c"}}
    pooled, alone = pool_subjects([first, second, other])
    assert alone is other and pooled["fold"]["pooled_from"] == ["a", "b"]
    expected = level_scores(np.array([0, 0, 1, 1]), np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), 2,
                            np.array([10, 6]))
    assert pooled["test"]["balanced_accuracy"] == expected["balanced_accuracy"] == 75.0
    assert pooled["test"]["trial"]["n"] == 2 and pooled["test"]["baseline"] == expected["baseline"]


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
