"""Hyper-parameter search on a real local Ray instance with real Optuna: outputs, ASHA, leakage, resume."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gru_xnet.config import ConfigError, ExperimentConfig
from gru_xnet.features import build_feature_set
from loso.run import main as loso_main
from tests.conftest import tiny_config
from tune.search import choose_test_subjects, keep_only, main
from tune.space import DEFAULT_SPACE, load_space

pytestmark = pytest.mark.ray
EPOCHS = 4
# Only the learning rate varies: 3e-3 learns the planted signal within 3 epochs, 1e-7 cannot.
SPACE = {"gru_hidden_size": {"choices": [16]}, "num_attention_heads": {"choices": [2]},
         "dropout": {"choices": [0.3]}, "learning_rate": {"choices": [3e-3, 1e-7]}}


def search_args(root: Path, tmp_path: Path, name: str, *extra: str) -> list[str]:
    """Command line of a tiny search on `root` writing to tmp_path/name."""
    config = tiny_config(root, tmp_path, datasets=("GAMEEMO",), num_epochs=EPOCHS, batch_size=8)
    config.save(tmp_path / f"{name}.json")
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    return ["--config", str(tmp_path / f"{name}.json"), "--data-root", str(root), "--output", str(tmp_path / name),
            "--space", str(tmp_path / "space.yaml"), "--seed", "0", *extra]


@pytest.fixture(scope="module")
def searched(ray_session, learnable_root, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("search")
    assert main(search_args(learnable_root, tmp, "holdout", "--num-samples", "4", "--grace-period", "3")) == 0
    return tmp / "holdout"


def trial_results(experiment: Path) -> list[list[dict]]:
    """Every report of every trial that reported, as Tune stored them."""
    reports = [[json.loads(line) for line in path.read_text().splitlines()]
               for path in sorted(experiment.glob("*/result.json"))]
    return [r for r in reports if r]


def test_search_writes_every_output(searched):
    summary = json.loads((searched / "summary.json").read_text())
    assert summary["protocol"] == "holdout" and summary["synthetic"] is True and summary["paper_fit"] == "holdout_test"
    assert summary["num_trials"] == 4 and len(summary["test_subjects"]) == 1
    assert summary["best_params"]["learning_rate"] == 3e-3 and summary["best_val_score"] > 75.0
    assert "optimistically biased" in summary["best_val_score_note"]
    assert set(summary["holdout_test"]) >= {"accuracy", "balanced_accuracy", "macro_f1", "n"}
    for suffix in (".md", ".tex"):
        text = (searched / f"trials{suffix}").read_text()
        assert "SYNTHETIC DATA" in text and "NOT FOR A PAPER" in text
    assert not (searched / "trials.csv").read_text().startswith("#")
    table = pd.read_csv(searched / "trials.csv")
    assert list(table.columns[:7]) == ["trial", *DEFAULT_SPACE, "val_score", "kept_epoch"]
    assert set(summary["holdout_test"]["baseline"]) >= {"majority_accuracy", "chance_balanced_accuracy"}
    assert "balanced_accuracy" in summary["holdout_test"]["trial"] and summary["provenance"]["optuna"]
    assert len(table) == 4 and set(table["status"]) <= {"complete", "stopped early (ASHA)"}
    for figure in ("score_vs_trial.png", "param_importance.png"):
        assert (searched / "figures" / figure).stat().st_size > 5_000


def test_asha_stops_a_poor_trial_early(searched):
    table = pd.read_csv(searched / "trials.csv")
    stopped = table[table["status"] == "stopped early (ASHA)"]
    assert len(stopped) >= 1
    assert (stopped["epochs"] < EPOCHS).all() and (stopped["learning_rate"] == 1e-7).all()
    assert (table.loc[table["status"] == "complete", "epochs"] == EPOCHS).all()


def test_no_trial_loads_a_test_subject(searched):
    summary = json.loads((searched / "summary.json").read_text())
    test = set(summary["test_subjects"])
    config = ExperimentConfig.load(searched / "best_config.json")
    features = build_feature_set(config.data)
    test_ids = choose_test_subjects(features, None, seed=0)
    assert {str(features.subjects[i]) for i in test_ids} == test
    searched_set = keep_only(features, [i for i in range(len(features.subjects)) if i not in test_ids])
    assert not test & {str(s) for s in searched_set.subjects}
    assert len(searched_set) == len(features) - len(features.windows_of(test_ids))
    finals = [reports[-1] for reports in trial_results(searched / "ray" / "search")]
    assert len(finals) == 4 and any(r.get("fold_complete") for r in finals)
    for final in finals:
        if final.get("fold_complete"):  # the subjects the worker's loaders could deliver
            seen = set(final["seen_train"].split()) | set(final["seen_val"].split())
            assert final["seen_test"] == "" and seen and not seen & test
    assert set(summary["holdout_seen_subjects"]["test"]) == test  # the one evaluation that sees them


def test_trials_are_scored_by_validation_balanced_accuracy_of_the_kept_epoch(searched):
    # Defect: trials were ranked by the best per-epoch val_accuracy, not the metric nor the epoch kept.
    table = pd.read_csv(searched / "trials.csv").set_index("trial")
    for reports in trial_results(searched / "ray" / "search"):
        epochs = [r for r in reports if r.get("fold_done") is False]
        assert all("val_balanced_accuracy" in r for r in epochs)  # what ASHA compared every epoch
        kept = epochs[-1]["best_epoch"]
        score = next(r["val_balanced_accuracy"] for r in epochs if r["epoch"] == kept)
        row = table.loc[reports[-1]["trial_id"]]
        assert row["kept_epoch"] == kept and row["val_score"] == pytest.approx(score)
        if reports[-1].get("fold_complete"):  # the final result Optuna maximises
            assert reports[-1]["val_balanced_accuracy"] == pytest.approx(score)
    state = json.loads(next((searched / "ray" / "search").glob("experiment_state-*.json")).read_text())
    assert "val_balanced_accuracy" in json.dumps(state)


def test_best_config_round_trips_into_loso_and_marks_its_tuning_subjects(searched, learnable_root, tmp_path):
    # Defect: a tuned config reused on its own tuning subjects gave unmarked, optimistic LOSO numbers.
    summary = json.loads((searched / "summary.json").read_text())
    config = ExperimentConfig.load(searched / "best_config.json")
    assert config.model.gru_hidden_size == summary["best_params"]["gru_hidden_size"]
    assert config.model.num_attention_heads == summary["best_params"]["num_attention_heads"]
    assert config.model.dropout == summary["best_params"]["dropout"]
    assert config.training.learning_rate == summary["best_params"]["learning_rate"]
    assert config.tuned_on == summary["search_subjects"] == summary["tuned_on"]
    assert not set(config.tuned_on) & set(summary["test_subjects"])
    tuned = config.tuned_on[0].split("/")[1]
    held_out = summary["test_subjects"][0].split("/")[1]
    assert loso_main(["--config", str(searched / "best_config.json"), "--data-root", str(learnable_root),
                      "--subjects", tuned, held_out, "--output", str(tmp_path / "loso")]) == 0
    folds = {json.loads(p.read_text())["fold"]["subject"]: json.loads(p.read_text())
             for p in (tmp_path / "loso" / "folds").glob("*.json")}
    assert folds[tuned]["tuned_on_test_subject"] and not folds[held_out]["tuned_on_test_subject"]
    table = pd.read_csv(tmp_path / "loso" / "tables" / "per_subject.csv").set_index("subject")
    assert table.loc[tuned, "hyperparameters_tuned_on_subject"]
    assert not table.loc[held_out, "hyperparameters_tuned_on_subject"]
    assert "tuned on subject" in (tmp_path / "loso" / "tables" / "per_subject.md").read_text()
    assert "not an unbiased estimate" in (tmp_path / "loso" / "tables" / "PROTOCOL.md").read_text()


def test_nested_search_resumes_without_rerunning_finished_trials(ray_session, learnable_root, tmp_path):
    args = search_args(learnable_root, tmp_path, "nested", "--protocol", "nested", "--test-subjects", "S01",
                       "--num-samples", "2", "--scheduler", "none", "--max-concurrent-trials", "1",
                       "--storage-path", str(tmp_path / "state"))
    experiment = tmp_path / "state" / "search-GAMEEMO-S01-seed0"

    def interrupt_after_first_trial() -> None:
        while not any('"fold_complete": true' in p.read_text() for p in experiment.glob("*/result.json")):
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's own "stop and save the experiment" signal

    watcher = threading.Thread(target=interrupt_after_first_trial, daemon=True)
    watcher.start()
    assert main(args) == 130
    watcher.join(timeout=60)
    finished = {r[-1]["trial_id"]: r for r in trial_results(experiment) if r[-1].get("fold_complete")}
    assert len(finished) == 1
    assert main(args + ["--resume"]) == 0
    after = {r[-1]["trial_id"]: r for r in trial_results(experiment)}
    assert len(after) == 2 and all(r[-1].get("fold_complete") for r in after.values())
    for trial_id, reports in finished.items():
        assert after[trial_id] == reports  # the finished trial was not run again
    summary = json.loads((tmp_path / "nested" / "summary.json").read_text())
    assert summary["paper_fit"] == "nested.estimate" and summary["num_trials"] == 2
    outer = summary["nested"]["per_subject"]
    assert [o["subject"] for o in outer] == ["GAMEEMO/S01"] and outer[0]["seen_subjects"]["test"] == ["GAMEEMO/S01"]
    assert summary["nested"]["estimate"]["accuracy"]["mean"] == outer[0]["test"]["accuracy"]


@pytest.mark.parametrize("override, message", [
    ({"hidden": {"choices": [8]}}, "unknown search space key 'hidden'"),
    ({"dropout": {"low": 0.6, "high": 0.2}}, "search space key 'dropout': bounds"),
    ({"learning_rate": {"low": 1e-4, "high": 2.0, "log": True}}, "search space key 'learning_rate'"),
    ({"num_attention_heads": {"choices": [2, 3]}}, "search space key 'num_attention_heads'"),
    ({"gru_hidden_size": {"low": 8, "high": 64}}, "an integer parameter takes 'choices' only"),
])
def test_bad_space_files_name_the_key(tmp_path, override, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(override))
    with pytest.raises(ConfigError, match=message):
        load_space(path, tiny_config(tmp_path, tmp_path))


def test_space_file_overrides_only_its_entries(tmp_path):
    path = tmp_path / "space.yml"
    path.write_text("num_attention_heads:\n  choices: [1, 2, 4, 8]\n")
    space = load_space(path, tiny_config(tmp_path, tmp_path))
    assert space.to_dict()["num_attention_heads"] == {"choices": [1, 2, 4, 8]}
    assert space.to_dict()["learning_rate"] == {"low": 1e-4, "high": 1e-2, "log": True}
    config = space.apply(tiny_config(tmp_path, tmp_path), {"gru_hidden_size": 64, "num_attention_heads": 8})
    assert (config.model.gru_hidden_size, config.model.num_attention_heads) == (64, 8)
