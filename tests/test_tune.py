"""Hyper-parameter search on a real local Ray instance with real Optuna: outputs, ASHA, leakage, resume, pools."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from gru_xnet.config import ConfigError, ExperimentConfig
from gru_xnet.engine import Precision, evaluate
from gru_xnet.features import FeatureSet, SubjectKey, build_feature_set
from gru_xnet.metrics import confusion_matrix, scores
from gru_xnet.split import Split
from loso.run import main as loso_main
from tests.conftest import run_side_by_side, tiny_config
from tune.driver import choose_test_subjects, refuse_held_out
from tune.report import SEARCH_SECTIONS, subject_records, subject_tables
from tune.search import main
from gru_xnet.models import MODELS
from tune.space import load_space

DEFAULT_SPACE = MODELS["gru_xnet"].space

pytestmark = [pytest.mark.ray, pytest.mark.heavy]
EPOCHS = 4
# Only the learning rate varies: 3e-3 learns the planted signal within 3 epochs, 1e-7 cannot.
SPACE = {"gru_hidden_size": {"choices": [16]}, "num_attention_heads": {"choices": [2]},
         "dropout": {"choices": [0.3]}, "learning_rate": {"choices": [3e-3, 1e-7]}}


def search_args(root: Path, tmp_path: Path, name: str, *extra: str, datasets=("GAMEEMO",),
                epochs: int = EPOCHS) -> list[str]:
    """Command line of a tiny search on `root` writing to tmp_path/name."""
    config = tiny_config(root, tmp_path, datasets=datasets, num_epochs=epochs, batch_size=8)
    config.save(tmp_path / f"{name}.json")
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    return ["--config", str(tmp_path / f"{name}.json"), "--data-root", str(root), "--output", str(tmp_path / name),
            "--space", str(tmp_path / "space.yaml"), "--seed", "0", *extra]


@pytest.fixture(scope="module")
def searched(ray_session, learnable_root, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("search")
    assert main(search_args(learnable_root, tmp, "holdout", "--num-samples", "4", "--grace-period", "3")) == 0
    return tmp / "holdout"


@pytest.fixture(scope="module")
def side_by_side(ray_session, learnable_root, synthetic_root, tmp_path_factory) -> dict[str, Path]:
    """The nested search over k-fold outer folds and the search per dataset at once, each a `tune.search` process on
    the session's Ray instance: each trains one fold at a time, so on 2 cores the two take the time of one."""
    tmp = tmp_path_factory.mktemp("side_by_side")
    one_trial = ["--num-samples", "1", "--scheduler", "none",
                 "--address", ray_session.get_runtime_context().gcs_address]
    commands = {"kfold": search_args(learnable_root, tmp, "kfold", "--protocol", "nested", "--split", "kfold:2",
                                     *one_trial, epochs=2),
                "within": search_args(synthetic_root, tmp, "within", *one_trial, datasets=("GAMEEMO", "DEAP"),
                                      epochs=1)}
    run_side_by_side({label: ["tune.search", *args] for label, args in commands.items()})
    return {label: tmp / label for label in commands}


def trial_results(experiment: Path) -> list[list[dict]]:
    """Every report of every trial that reported, as Tune stored them."""
    reports = [[json.loads(line) for line in path.read_text().splitlines()]
               for path in sorted(experiment.glob("*/result.json"))]
    return [r for r in reports if r]


def test_search_writes_every_output(searched):
    summary = json.loads((searched / "summary.json").read_text())
    assert summary["protocol"] == "holdout" and summary["synthetic"] is True
    assert summary["paper_fit"] == "holdout_test.per_dataset"
    assert summary["pool"] == "within" and json.loads((searched / "search.json").read_text())["pool"] == "within"
    assert summary["num_trials"] == 4 and len(summary["test_subjects"]) == 1
    assert summary["best_params"]["learning_rate"] == 3e-3 and summary["best_val_score"] > 75.0
    assert "optimistically biased" in summary["best_val_score_note"] and summary["provenance"]["optuna"]
    for suffix in (".md", ".tex"):
        text = (searched / f"trials{suffix}").read_text()
        assert "SYNTHETIC DATA" in text and "NOT FOR A PAPER" in text and "pool 'within'" in text
    assert not (searched / "trials.csv").read_text().startswith("#")
    table = pd.read_csv(searched / "trials.csv")
    assert list(table.columns[:7]) == ["trial", *DEFAULT_SPACE, "val_score", "kept_epoch"]
    assert len(table) == 4 and set(table["status"]) <= {"complete", "stopped early (ASHA)"}
    for figure in ("score_vs_trial.png", "param_importance.png"):
        assert (searched / "figures" / figure).stat().st_size > 5_000


def test_the_search_page_holds_its_sections_and_fetches_nothing(searched):
    from tests.test_report import check_report

    html = (searched / "report.html").read_text()
    positions = [html.find(f'<section id="{section}">') for section in SEARCH_SECTIONS]
    assert -1 not in positions and positions == sorted(positions)
    assert check_report.external_references(html) == [] and "<script" not in html
    assert html.count('src="data:image/png;base64,') == 3 and "NOT FOR A PAPER" in html
    if check_report.chromium() is not None:
        seen = check_report.browser_check(searched / "report.html")
        assert seen["sections"] == list(SEARCH_SECTIONS) and seen["decoded"] == seen["images"] == 3
        assert seen["scroll_width"] <= 1280


def test_holdout_test_is_reported_per_subject_and_per_dataset(searched):
    # Defect: the holdout test was one number pooled over the windows of every test subject and dataset.
    summary = json.loads((searched / "summary.json").read_text())
    [subject] = summary["holdout_test"]["per_subject"]
    assert f"{subject['dataset']}/{subject['subject']}" == summary["test_subjects"][0]
    pooled = json.loads((searched / "holdout_test.json").read_text())["test"]  # one subject: per subject = pooled
    assert subject["balanced_accuracy"] == pytest.approx(pooled["balanced_accuracy"])
    assert subject["trial_balanced_accuracy"] == pytest.approx(pooled["trial"]["balanced_accuracy"])
    assert subject["majority_accuracy"] == pytest.approx(pooled["baseline"]["majority_accuracy"])
    rows = {row["level"]: row for row in summary["holdout_test"]["per_dataset"]}
    assert set(rows) == {"window", "trial"} and rows["window"]["dataset"] == "GAMEEMO"
    assert rows["window"]["balanced_accuracy_mean"] == pytest.approx(subject["balanced_accuracy"])
    assert rows["window"]["n_subjects"] == 1 and rows["window"]["balanced_accuracy_sd"] is None  # NaN as null
    for name in ("holdout_per_subject", "holdout_per_dataset", "trials"):
        assert pd.read_csv(searched / f"{name}.csv")["synthetic"].all()
    for name in ("holdout_per_subject", "holdout_per_dataset"):
        assert pd.read_csv(searched / f"{name}.csv")["dataset"].tolist()[0] == "GAMEEMO"
        for suffix in (".md", ".tex"):
            text = (searched / f"{name}{suffix}").read_text()
            assert "SYNTHETIC DATA" in text and "pool 'within'" in text and "FIT FOR A PAPER" in text


def test_a_one_worker_trial_trains_in_its_own_process(searched):
    assert not (searched / "ray" / "train").exists()  # no Ray Train run: each trial trained in its Tune process
    assert len(trial_results(searched / "ray" / "search")) == 4


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
    assert set(summary["searches"][0]["search_subjects"]) == {str(s) for s in features.subjects} - test
    finals = [reports[-1] for reports in trial_results(searched / "ray" / "search")]
    assert len(finals) == 4 and any(r.get("fold_complete") for r in finals)
    for final in finals:
        if final.get("fold_complete"):  # the subjects the worker's loaders could deliver
            seen = set(final["seen_train"].split()) | set(final["seen_val"].split())
            assert final["seen_test"] == "" and seen and not seen & test
    assert set(summary["searches"][0]["seen_subjects"]["test"]) == test  # the one evaluation that sees them


def test_a_trial_that_loaded_a_held_out_subject_voids_the_search():
    rows = [{"trial": "t1", "seen_train": "DEAP/s02 DEAP/s03", "seen_val": "DEAP/s04", "seen_test": ""},
            {"trial": "t2", "seen_train": "DEAP/s02", "seen_val": "DEAP/s01", "seen_test": ""}]
    assert refuse_held_out(rows[:1], ["DEAP/s01"]) == rows[:1]
    with pytest.raises(RuntimeError, match="trial t2 loaded held-out subject.*DEAP/s01"):
        refuse_held_out(rows, ["DEAP/s01"])


def test_trials_are_scored_by_the_mean_over_validation_subjects_of_the_kept_epoch(searched):
    # Defects: trials were ranked by the best per-epoch val_accuracy, not the metric nor the epoch kept;
    # then by balanced accuracy over pooled validation windows, not the per-subject mean the tables lead with.
    table = pd.read_csv(searched / "trials.csv").set_index("trial")
    for reports in trial_results(searched / "ray" / "search"):
        epochs = [r for r in reports if r.get("fold_done") is False]
        assert all("val_subject_balanced_accuracy" in r for r in epochs)  # what ASHA compared every epoch
        kept = epochs[-1]["best_epoch"]
        score = next(r["val_subject_balanced_accuracy"] for r in epochs if r["epoch"] == kept)
        row = table.loc[reports[-1]["trial_id"]]
        assert row["kept_epoch"] == kept and row["val_score"] == pytest.approx(score)
        if reports[-1].get("fold_complete"):  # the final result Optuna maximises
            assert reports[-1]["val_subject_balanced_accuracy"] == pytest.approx(score)
    state = json.loads(next((searched / "ray" / "search").glob("experiment_state-*.json")).read_text())
    assert "val_subject_balanced_accuracy" in json.dumps(state)
    assert "mean over validation subjects" in (searched / "trials.md").read_text()


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
                      "--subjects", tuned, held_out, "--output", str(tmp_path / "loso"), "--local"]) == 0
    folds = {json.loads(p.read_text())["fold"]["subject"]: json.loads(p.read_text())
             for p in (tmp_path / "loso" / "folds").glob("*.json")}
    assert folds[tuned]["tuned_on_test_subject"] and not folds[held_out]["tuned_on_test_subject"]
    table = pd.read_csv(tmp_path / "loso" / "tables" / "per_subject.csv").set_index("subject")
    assert table.loc[tuned, "hyperparameters_tuned_on_subject"]
    assert not table.loc[held_out, "hyperparameters_tuned_on_subject"]
    assert "tuned on subject" in (tmp_path / "loso" / "tables" / "per_subject.md").read_text()
    assert "not an unbiased estimate" in (tmp_path / "loso" / "tables" / "PROTOCOL.md").read_text()


def test_nested_search_resumes_without_rerunning_finished_trials(ray_session, learnable_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0.2")  # trials' results reach the storage folder as they come
    args = search_args(learnable_root, tmp_path, "nested", "--protocol", "nested", "--test-subjects", "S01",
                       "--num-samples", "2", "--scheduler", "none", "--max-concurrent-trials", "1",
                       "--storage-path", str(tmp_path / "state"))
    experiment = tmp_path / "state" / "search-GAMEEMO-S01-seed0"

    def interrupt_after_first_trial() -> None:
        while not any('"fold_complete": true' in p.read_text() for p in experiment.glob("*/result.json")):
            time.sleep(0.05)
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
    assert summary["paper_fit"] == "nested.per_dataset" and summary["num_trials"] == 2
    outer = summary["nested"]["folds"]
    assert [o["subject"] for o in outer] == ["GAMEEMO/S01"] and outer[0]["seen_subjects"]["test"] == ["GAMEEMO/S01"]
    [subject] = summary["nested"]["per_subject"]
    assert subject["accuracy"] == pytest.approx(outer[0]["test"]["accuracy"])
    assert {row["level"] for row in summary["nested"]["per_dataset"]} == {"window", "trial"}
    assert "FIT FOR A PAPER" in (tmp_path / "nested" / "nested_per_dataset.md").read_text()


def test_nested_search_over_kfold_outer_folds(side_by_side, learnable_root, tmp_path):
    summary = json.loads((side_by_side["kfold"] / "summary.json").read_text())
    outer = summary["nested"]["folds"]
    tested = [name for fold in outer for name in fold["subject"].split()]
    assert len(outer) == 2 and sorted(tested) == [f"GAMEEMO/S0{i}" for i in range(1, 5)]
    for fold in outer:  # each outer fold's search and test: its subjects tested, never searched on
        assert set(fold["seen_subjects"]["test"]) == set(fold["subject"].split())
    assert len(summary["nested"]["per_subject"]) == 4
    assert main(search_args(learnable_root, tmp_path, "bad", "--protocol", "nested", "--split",
                            "within-subject")) == 2


def test_pool_within_runs_one_search_per_dataset(side_by_side):
    # Defect: the search trained jointly across datasets while loso.run defaults to within-dataset training.
    out = side_by_side["within"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pool"] == "within" and "best_params" not in summary  # no single winner across datasets
    assert [s["dataset"] for s in summary["searches"]] == ["GAMEEMO", "DEAP"]
    assert pd.read_csv(out / "trials.csv").groupby("dataset").size().to_dict() == {"DEAP": 1, "GAMEEMO": 1}
    assert not (out / "best_config.json").exists()
    for search in summary["searches"]:  # each dataset searched and tested alone, with its own best config
        dataset = search["dataset"]
        best = ExperimentConfig.load(out / f"best_config_{dataset}.json")
        assert best.data.datasets == [dataset] and best.tuned_on == search["search_subjects"]
        assert {s.split("/")[0] for s in best.tuned_on + search["test_subjects"]} == {dataset}
        seen = {s for r in trial_results(out / "ray" / f"search_{dataset}")
                for side in ("seen_train", "seen_val") for s in r[-1][side].split()}
        assert seen == set(best.tuned_on)  # every model trained and validated on this dataset's subjects only
        assert set(search["seen_subjects"]["train"] + search["seen_subjects"]["val"]) == set(best.tuned_on)
    per_dataset = pd.read_csv(out / "holdout_per_dataset.csv")
    assert sorted(per_dataset.loc[per_dataset["level"] == "window", "dataset"]) == ["DEAP", "GAMEEMO"]
    assert len(pd.read_csv(out / "holdout_per_subject.csv")) == len(summary["test_subjects"]) == 2


def _two_subjects_at_55() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, predictions, subject) of 2 x 360 windows: subject 0 is 250:110 class 0, subject 1 110:250,
    each with every majority window right and 11 of 110 minority windows right: 55 % per subject, 72.5 % pooled."""
    labels = np.r_[np.zeros(250), np.ones(110), np.zeros(110), np.ones(250)].astype(np.int64)
    predictions = np.r_[np.zeros(250), np.ones(11), np.zeros(99), np.zeros(11), np.ones(99), np.ones(250)]
    return labels, predictions.astype(np.int64), np.repeat([0, 1], 360).astype(np.int32)


def test_subject_balanced_accuracy_averages_subjects_not_windows():
    labels, predictions, subjects = _two_subjects_at_55()
    labels, predictions, subjects = np.r_[labels, 1, 1], np.r_[predictions, 0, 1], np.r_[subjects, 2, 2]
    logits = torch.nn.functional.one_hot(torch.as_tensor(predictions), 2).float()  # nn.Identity: logits in = out
    windows = np.arange(len(labels))[::-1].copy()  # the loader's window indices, not positions
    loader = [(logits[i:i + 100], torch.as_tensor(labels[i:i + 100]), torch.zeros(len(labels[i:i + 100])),
               windows[i:i + 100]) for i in range(0, len(labels), 100)]
    metrics = evaluate(nn.Identity(), loader, device=torch.device("cpu"), precision=Precision("cpu", None),
                       n_classes=2, subject_index=subjects[::-1].copy()).metrics
    assert metrics["balanced_accuracy"] == pytest.approx(72.5, abs=0.1)  # pooled: rewards each subject's prior
    assert metrics["subject_balanced_accuracy"] == pytest.approx(55.0)  # subject 2 shows one class: left out
    assert "subject_balanced_accuracy" not in evaluate(nn.Identity(), loader, device=torch.device("cpu"),
                                                       precision=Precision("cpu", None), n_classes=2).metrics


def test_a_holdout_test_is_split_into_one_record_per_subject():
    labels, predictions, subjects = _two_subjects_at_55()
    training = np.r_[np.zeros(60), np.ones(40)].astype(np.int64)  # a third subject the model learnt from
    n = len(labels) + len(training)
    features = FeatureSet(features=np.zeros((n, 1, 1, 1), np.float32), labels=np.r_[labels, training],
                          subject_index=np.r_[subjects, np.full(len(training), 2, np.int32)],
                          trials=np.arange(1, n + 1, dtype=np.int32), sessions=np.ones(n, np.int16),
                          subjects=[SubjectKey("DEAP", f"s0{i}") for i in (1, 2, 3)], datasets=["DEAP"],
                          channel_names=("C1",), frequencies=np.ones(1), n_classes=2, class_names=("low", "high"),
                          synthetic=True)
    pooled = scores(confusion_matrix(labels, predictions, 2))["balanced_accuracy"]
    assert pooled == pytest.approx(72.5)
    record = {"predictions": {"window": np.arange(len(labels)).tolist(), "y_true": labels.tolist(),
                              "y_pred": predictions.tolist(), "probabilities": np.eye(2)[predictions].tolist()}}
    records = subject_records(record, features, Split((2,), (), (0, 1)), seed=7)
    assert [r["fold"] for r in records] == [
        {"fold_id": f"DEAP-{s}-seed7", "dataset": "DEAP", "subject": s, "session": None, "seed": 7} for s in ("s01", "s02")]
    assert all(r["test"]["baseline"]["majority_accuracy"] == pytest.approx(m)
               for r, m in zip(records, (100 * 250 / 360, 100 * 110 / 360)))  # the training majority class 0
    per_subject, per_dataset = subject_tables(records)
    assert per_subject["balanced_accuracy"].tolist() == pytest.approx([55.0, 55.0])
    window = per_dataset[per_dataset["level"] == "window"].iloc[0]
    assert window["balanced_accuracy_mean"] == pytest.approx(55.0) and window["n_subjects"] == 2


@pytest.mark.parametrize("override, message", [
    ({"hidden": {"choices": [8]}}, "unknown search space key 'hidden'"),
    ({"dropout": {"low": 0.6, "high": 0.2}}, "search space key 'dropout': bounds"),
    ({"learning_rate": {"low": 1e-4, "high": 2.0, "log": True}}, "search space key 'learning_rate'"),
    ({"num_attention_heads": {"choices": [2, 3]}}, "search space key 'num_attention_heads'"),
    ({"gru_hidden_size": {"low": 8, "high": 64}}, "search space key 'gru_hidden_size'.*type int"),
])
def test_bad_space_files_name_the_key(tmp_path, override, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(override))
    with pytest.raises(ConfigError, match=message):
        load_space(path, tiny_config(tmp_path, tmp_path), DEFAULT_SPACE)


def test_space_file_overrides_only_its_entries(tmp_path):
    path = tmp_path / "space.yml"
    path.write_text("num_attention_heads:\n  choices: [1, 2, 4, 8]\n")
    space = load_space(path, tiny_config(tmp_path, tmp_path), DEFAULT_SPACE)
    assert space.to_dict()["num_attention_heads"] == {"choices": [1, 2, 4, 8]}
    assert space.to_dict()["learning_rate"] == {"low": 1e-4, "high": 1e-2, "log": True}
    config = space.apply(tiny_config(tmp_path, tmp_path), {"gru_hidden_size": 64, "num_attention_heads": 8})
    assert (config.model.gru_hidden_size, config.model.num_attention_heads) == (64, 8)
