"""Permutation null and run comparison: planted signal vs shuffled labels.

Both datasets have 6 GAMEEMO subjects with the same written labels; in the shuffled one the planted
signal is drawn independently of them. Each run trains every fold on the real labels and 19 times on
permuted ones (tiny folds: 3 epochs of batches of 8, 2 windows x 4 games per subject; a planted signal strong
enough to be learnt in them, so the observed run stands clear of a null that is a whole-dataset permutation).
The two runs are `loso.run --local` processes side by side, one per core (the same fold results as on Ray);
the resumed permutations train on the session's Ray instance and must equal the in-process ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gru_xnet.config import ExperimentConfig
from gru_xnet.datasets import write_synthetic
from gru_xnet.features import build_feature_set
from loso.compare import main as compare_main
from loso.run import main
from tests.conftest import run_side_by_side, tiny_config

pytestmark = pytest.mark.heavy

PERMUTATIONS = 19


def prepare_run_with_null(tmp: Path, label: str) -> list[str]:
    """Write the data and config; the command line of a `loso.run --local` with the null, writing to tmp/label."""
    root = tmp / "data"
    write_synthetic(root, ["GAMEEMO"], 6, seconds=8.0, signal_strength=6.0, shuffle_labels=label == "shuffled")
    config = tiny_config(root, tmp, datasets=("GAMEEMO",), num_epochs=3, batch_size=8)
    config.data.augmentation_ratio = 1.0
    config.save(tmp / "config.json")
    return ["loso.run", "--config", str(tmp / "config.json"), "--output", str(tmp / label),
            "--permutations", str(PERMUTATIONS), "--local"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The planted and the shuffled run with their nulls, side by side."""
    tmp = {label: tmp_path_factory.mktemp(label) for label in ("planted", "shuffled")}
    run_side_by_side({label: prepare_run_with_null(folder, label) for label, folder in tmp.items()})
    return {label: folder / label for label, folder in tmp.items()}


@pytest.fixture(scope="module")
def planted(runs) -> Path:
    return runs["planted"]


@pytest.fixture(scope="module")
def shuffled(runs) -> Path:
    return runs["shuffled"]


def records(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_planted_signal_beats_its_permutation_null(planted):
    datasets = pd.read_csv(planted / "tables" / "per_dataset.csv")
    window = datasets.query("level == 'window'").iloc[0]
    assert window["n_permutations"] == PERMUTATIONS and window["perm_p"] <= 0.05
    assert (planted / "figures" / "permutation_null.png").stat().st_size > 10_000
    subjects = pd.read_csv(planted / "tables" / "per_subject.csv")
    assert subjects["perm_p"].between(1 / (PERMUTATIONS + 1), 1).all()


def test_each_permutation_is_a_real_training_run_on_permuted_training_labels_only(planted):
    observed, permuted = records(planted / "folds"), records(planted / "permutations")
    assert len(observed) == 6 and len(permuted) == 6 * PERMUTATIONS
    for fold_id, real in observed.items():
        variants = [permuted[f"{fold_id}-perm{k:03d}"] for k in range(1, PERMUTATIONS + 1)]
        hashes = {v["label_hash"] for v in variants}
        assert real["label_hash"] not in hashes and len(hashes) > 1  # permuted, and differently each time
        for k, v in enumerate(variants, start=1):
            assert v["epochs_run"] == 3 and v["history"] and v["seen_subjects"] == real["seen_subjects"]
            assert v["permutation"]["replicate"] == k
            assert f"GAMEEMO/{real['fold']['subject']}" not in v["permutation"]["subject_label_hashes"]
            assert v["predictions"]["y_true"] == real["predictions"]["y_true"]  # test labels never touched
            # whole trials permuted within each subject: every class count of the training pool is kept
            assert v["test"]["training_class_counts"] == real["test"]["training_class_counts"]
    labellings = {(v["permutation"]["replicate"], subject, digest) for v in permuted.values()
                  for subject, digest in v["permutation"]["subject_label_hashes"].items()}
    assert len(labellings) == PERMUTATIONS * 6  # replicate k relabels each subject once, for every fold


def test_permuted_labels_are_shuffled_by_whole_trials_within_subjects(planted):
    config = json.loads((planted / "run.json").read_text())["config"]
    features = build_feature_set(ExperimentConfig.from_dict(config).data)
    permuted = features.with_permuted_labels([0, 1, 2], salt=42, replicate=1)
    assert np.array_equal(permuted.labels[features.windows_of([3, 4, 5])], features.labels[features.windows_of([3, 4, 5])])
    for s in (0, 1, 2):
        for session in np.unique(features.sessions[features.windows_of([s])]):  # each session keeps its class counts
            rows = features.windows_of([s], [session])
            assert np.bincount(permuted.labels[rows]).tolist() == np.bincount(features.labels[rows]).tolist()
            for trial in np.unique(features.trials[rows]):
                assert len(np.unique(permuted.labels[rows][features.trials[rows] == trial])) == 1
    assert not np.array_equal(permuted.labels, features.labels)
    assert np.array_equal(features.with_permuted_labels([0, 1, 2], salt=42, replicate=1).labels, permuted.labels)


def test_shuffled_labels_give_large_per_subject_p_values(shuffled):
    subjects = pd.read_csv(shuffled / "tables" / "per_subject.csv")
    assert subjects["perm_p"].median() >= 0.2
    assert pd.read_csv(shuffled / "tables" / "per_dataset.csv").query("level == 'window'")["perm_p"].iloc[0] > 0.05


def test_compare_finds_the_planted_run_better_than_the_shuffled_one(planted, shuffled, tmp_path):
    assert compare_main([str(shuffled), str(planted), "--output", str(tmp_path / "cmp")]) == 0
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    window = table.query("level == 'window'").iloc[0]
    assert (window["run_a"], window["run_b"], window["n_subjects"]) == ("shuffled", "planted", 6)
    assert window["mean_difference"] > 0 and window["wins_b"] > window["losses_b"]
    assert window["difference_ci_low"] <= window["mean_difference"] <= window["difference_ci_high"]
    wide = pd.read_csv(tmp_path / "cmp" / "per_subject.csv")
    assert list(wide.columns) == ["dataset", "subject", "level", "shuffled", "planted", "tuned_in", "synthetic"]
    assert len(wide) == 12 and wide["synthetic"].all()
    assert (tmp_path / "cmp" / "figures" / "subject_lines.png").stat().st_size > 10_000
    assert "run_b - run_a" in (tmp_path / "cmp" / "comparison.md").read_text()


@pytest.mark.ray
def test_resume_on_ray_trains_only_the_missing_permutations_to_the_same_results(ray_session, planted):
    before = records(planted / "permutations")
    missing = ["GAMEEMO-S02-seed42-perm004", "GAMEEMO-S02-seed42-perm017"]
    for name in missing:
        (planted / "permutations" / f"{name}.json").unlink()
    assert main(["--config", str(planted.parent / "config.json"), "--output", str(planted),
                 "--permutations", str(PERMUTATIONS), "--resume"]) == 0
    after = records(planted / "permutations")
    assert after.keys() == before.keys()
    for name in missing:  # retrained alone on Ray, the same result as inside the fold's full job in process (CPU)
        assert after[name]["test"]["balanced_accuracy"] == before[name]["test"]["balanced_accuracy"]
        assert after[name]["label_hash"] == before[name]["label_hash"]
        assert after[name]["started_at"] > before[name]["started_at"]
    untouched = [n for n in before if n not in missing]
    assert all(after[n]["started_at"] == before[n]["started_at"] for n in untouched)


def test_every_artefact_records_its_provenance(planted):
    run = json.loads((planted / "run.json").read_text())
    fold = next(iter(records(planted / "folds").values()))
    summary = json.loads((planted / "summary.json").read_text())
    for record in (run["provenance"], fold["provenance"], summary["provenance"]):
        assert {"python", "torch", "ray", "optuna", "numpy", "gru_xnet", "git_commit", "cpu", "gpus", "host"} <= set(record)
        assert record["torch"].startswith("2.")
    assert run["seeds"] == summary["seeds"] == [42] and fold["fold"]["seed"] == 42
    assert run["statement"][0].startswith("SYNTHETIC DATA")
