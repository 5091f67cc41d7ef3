"""Protocol cards: the eegain-loso card against EEGain's published table and code, the config keys the cards need,
the card's refusals, and `loso.benchmark --card` end to end (pytest -m cards: the card with its two cheapest models,
1 epoch, few subjects)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

from gru_xnet.config import ConfigError, ExperimentConfig, apply_overrides, get_full_training_config, \
    get_quick_test_config
from gru_xnet.datasets import get_reader, write_synthetic
from gru_xnet.engine import make_optimizer, make_scheduler, train_one_epoch, resolve_precision
from gru_xnet.features import build_feature_set
from gru_xnet.metrics import confusion_matrix, scores
from loso.benchmark import main as benchmark_main
from loso.cards import CardError, load_card
from loso.cards.__main__ import main as cards_main
from loso.published import trivial_scores

REPO = Path(__file__).resolve().parents[1]
EEGAIN = Path("/work/.mirror/EmotionLab+EEGain/repo")
CARD = load_card("eegain-loso")


def applied(dataset: str, task: str, model: str = "eegnet") -> ExperimentConfig:
    """A config with every setting of one (dataset, task, model) run of the card applied."""
    config = get_quick_test_config()
    config.data.datasets = [dataset]
    apply_overrides(config, [arg for s in CARD.settings_for(dataset, task, model) for arg in s.override()])
    return config


def cell(dataset: str, task: str, model: str):
    return next(c for c in CARD.published if (c.dataset, c.task, c.model) == (dataset, task, model))


# --- the card against its source ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, task, model, metric, value, sd, line", [
    ("SEED", "categorical", "tsception", "accuracy", 0.48, 0.07, 346),
    ("SEED", "categorical", "deepconvnet", "accuracy", 0.55, 0.08, 348),
    ("DEAP", "arousal", "trivial", "accuracy", 0.59, 0.15, 305),
    ("DREAMER", "valence", "eegnet", "f1", 0.26, 0.20, 337),
    ("SEEDIV", "categorical", "deepconvnet", "f1_weighted", 0.42, 0.11, 358),
    ("AMIGOS", "arousal", "shallowconvnet", "f1", 0.70, 0.23, 319),
])
def test_published_cells_are_the_source_tables(dataset, task, model, metric, value, sd, line):
    # Transcribed from EEGain's README at 43dcbf6, section 5 (line 346: "| Categorical | TSception | 0.48 ± 0.07").
    published = cell(dataset, task, model)
    assert published.values[metric] == (value, sd)
    assert published.source == f"README.md:{line}"


def _readme_rows(text: str) -> dict[int, list[tuple[float, float]]]:
    """Line number -> the (value, SD) cells of every table row of the README with a ± in it."""
    return {number: [(float(a), float(b)) for a, b in re.findall(r"([\d.]+) ± ([\d.]+)", line)]
            for number, line in enumerate(text.splitlines(), start=1) if line.startswith("|") and "±" in line}


@pytest.mark.skipif(not EEGAIN.is_dir(), reason="EEGain's repository is not mirrored here")
def test_every_published_cell_is_the_readme_row_it_cites():
    readme = subprocess.run(["git", f"--git-dir={EEGAIN}", "show", f"{CARD.commit}:README.md"], capture_output=True,
                            text=True, check=True).stdout
    rows = _readme_rows(readme)
    names = {m.published_as: m.name for m in CARD.models.values()} | {"Trivial Baseline": "trivial"}
    for published in CARD.published:
        number = int(published.source.removeprefix("README.md:"))
        line = readme.splitlines()[number - 1]
        assert names[line.split("|")[2].strip().split(" *")[0]] == published.model, published
        assert rows[number] == [published.values[m.name] for m in CARD.metrics], published
    assert len(CARD.published) == 40  # 5 datasets (MAHNOB left out: a stated deviation), 8 tasks x 5 rows


def test_the_card_sets_what_eegain_states():
    config = applied("DEAP", "valence")
    assert (config.seed, config.data.raw.sampling_rate, config.data.window_seconds, config.data.window_overlap) == \
        (2025, 128.0, 4.0, 0.0)
    training = config.training
    assert (training.batch_size, training.num_epochs, training.learning_rate, training.weight_decay) == \
        (32, 200, 0.001, 0.0)
    assert (training.optimizer, training.label_smoothing, training.cosine_period, training.monitor) == \
        ("adam", 0.01, 100, "accuracy")
    assert not training.early_stopping and not training.use_amp and not config.data.balance_classes
    assert config.data.val_ratio / (config.data.train_ratio + config.data.val_ratio) == pytest.approx(0.2)
    assert config.model.params == {"dropout": 0.5}
    assert config.data.signal_filters("DEAP") == {"bandpass_hz": None, "notch_hz": 50.0}
    thresholds = {(d, t): applied(d, t).data.checked_options(d) for d, t in (("DEAP", "arousal"), ("AMIGOS", "valence"),
                                                                            ("DREAMER", "valence"))}
    assert thresholds[("DEAP", "arousal")] == {"label_dimension": "arousal", "threshold": 5.0, "comparison": ">="}
    assert {k: thresholds[("AMIGOS", "valence")][k] for k in ("threshold", "comparison", "videos", "baseline")} == \
        {"threshold": 4.5, "comparison": ">", "videos": "short", "baseline": "keep"}
    assert {k: thresholds[("DREAMER", "valence")][k] for k in ("threshold", "comparison")} == \
        {"threshold": 3.0, "comparison": ">"}
    seediv = applied("SEEDIV", "categorical")
    assert seediv.data.checked_options("SEEDIV")["sessions"] == ("1",) and seediv.data.n_classes == 4
    assert seediv.data.signal_filters("SEEDIV") == {"bandpass_hz": [0.3, 45.0], "notch_hz": 50.0}
    assert applied("SEED", "categorical").data.n_classes == 3


def test_the_deap_threshold_reproduces_eegains_truncated_ratings():
    # EEGain's LOSO DEAP reader: label = 0 if int(rating) <= 4.5 else 1 (datasets.py:532-541); the card's >= 5.
    options = applied("DEAP", "valence").data.checked_options("DEAP")
    ratings = np.round(np.arange(1.0, 9.0001, 0.01), 2)
    theirs = np.array([0 if int(r) <= 4.5 else 1 for r in ratings])
    assert (options["threshold"], options["comparison"]) == (5.0, ">=")
    assert np.array_equal(theirs, (ratings >= options["threshold"]).astype(int))


def test_every_setting_names_its_source_and_every_deviation_is_one_sentence():
    settings = [s for d in CARD.datasets for t in CARD.datasets[d].tasks for s in CARD.settings_for(d, t, "eegnet")]
    for setting in settings:
        assert re.search(r"\.(md|py|sh):\d+", setting.source), setting
    for deviation in CARD.deviations:
        assert deviation.endswith(".") and deviation.count(". ") == 0 and re.search(r":\d+", deviation), deviation
    assert any(d.startswith("Validation:") and "pools" in d for d in CARD.deviations)
    assert any(d.startswith("Last layer:") for d in CARD.deviations)


# --- refusals -------------------------------------------------------------------------------------------------------

def _edited(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "eegain-loso.yaml"
    text = (REPO / "loso" / "cards" / "eegain-loso.yaml").read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, said", [
    ("key: training.batch_size, value: 32", "key: training.batch_sizes, value: 32", "unknown config key"),
    ("key: training.batch_size, value: 32", "key: training.batch_size, value: 0", "training.batch_size"),
    ("key: data.raw.sampling_rate, value: 128", "key: data.raw.sampling_rate, value: -128",
     "'data.raw.sampling_rate' = -128"),
    ("model: tsception, accuracy: [0.54, 0.09]", "model: resnet, accuracy: [0.54, 0.09]",
     "published[0] (README.md:301): model 'resnet'"),
    ("accuracy: [0.54, 0.09]", "accuracy: [0.54, 0.09, 1]", "published[0].accuracy: expected a number or [value, SD]"),
    ("options: {n_classes: 4, sessions: [\"1\"]}", "options: {n_classes: 5, sessions: [\"1\"]}",
     "'data.seediv_classes' = 5"),
    ("level: window", "level: window\nextra: 1", "card: unknown extra"),
])
def test_a_bad_card_is_refused_naming_the_file_and_the_key(tmp_path, old, new, said):
    path = _edited(tmp_path, old, new)
    with pytest.raises(CardError, match=re.escape(said)) as caught:
        load_card(str(path))
    assert str(path) in str(caught.value)


def test_a_request_the_card_lacks_is_refused_naming_what_it_has():
    with pytest.raises(CardError, match=r"no dataset 'GAMEEMO'; it has DEAP, AMIGOS, DREAMER, SEED, SEEDIV"):
        CARD.select(["GAMEEMO"], None, None)
    with pytest.raises(CardError, match=r"no task 'categorical' for DEAP; it has DEAP: arousal valence"):
        CARD.select(["DEAP"], ["categorical"], None)
    with pytest.raises(CardError, match=r"leaves DEAP with nothing to run; its tasks: DEAP: arousal valence"):
        CARD.select(["DEAP", "SEED"], ["categorical"], None)
    with pytest.raises(CardError, match=r"'trivial' is computed from the folds of the models run"):
        CARD.select(["DEAP"], None, ["trivial"])
    assert CARD.select(["seed-iv", "DEAP"], ["valence", "categorical"], ["eegnet"]) == [
        ("SEEDIV", "categorical"), ("DEAP", "valence")]


def test_loso_cards_lists_datasets_tasks_models_and_deviations(capsys):
    assert cards_main([]) == 0
    listed = capsys.readouterr().out
    assert "eegain-loso@1: EEGain leave-one-subject-out benchmark" in listed
    assert "DEAP (32: arousal, valence)" in listed and "SEEDIV (15: categorical)" in listed
    assert "tsception (TSception)" in listed and "deviations (13):" in listed
    assert all(d in listed for d in CARD.deviations)


def test_docs_reproduce_shows_every_card_as_loso_cards_prints_it():
    assert CARD.markdown() in (REPO / "docs" / "reproduce.md").read_text()


def test_the_card_ships_in_the_package_data():
    text = (REPO / "pyproject.toml").read_text()
    assert '"loso.cards" = ["*.yaml"]' in text


# --- the config and metrics the cards need --------------------------------------------------------------------------

def test_added_keys_leave_existing_config_hashes_unchanged():
    # The hashes of the two presets before training.optimizer/adam_eps/cosine_period/label_smoothing and data.raw.
    assert get_quick_test_config().fingerprint() == "89c09f4899c9"
    assert get_full_training_config().fingerprint() == "43bbbc00021b"
    config = get_quick_test_config()
    config.set_option("training.label_smoothing", "0.01")
    assert config.fingerprint() != "89c09f4899c9"


def test_overrides_are_validated_together_so_ratios_can_be_set_at_once():
    config = get_quick_test_config()
    apply_overrides(config, ["--data.train_ratio", "0.8", "--data.val_ratio", "0.2", "--data.test_ratio", "0"])
    assert (config.data.train_ratio, config.data.val_ratio, config.data.test_ratio) == (0.8, 0.2, 0.0)
    with pytest.raises(ConfigError, match="ratios summing to 1"):
        apply_overrides(config, ["--data.train_ratio", "0.9"])


def test_optimizer_schedule_and_label_smoothing_follow_the_config():
    config = get_quick_test_config().training
    config.optimizer, config.adam_eps, config.weight_decay, config.learning_rate = "adamw", 1e-6, 0.01, 1e-3
    model = torch.nn.Linear(4, 2)
    optimizer = make_optimizer(model, config)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["eps"] == 1e-6
    config.use_scheduler, config.num_epochs, config.cosine_period = True, 200, 100
    scheduler = make_scheduler(optimizer, config)
    rates = []
    for _ in range(200):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[99] == pytest.approx(0.0, abs=1e-12) and rates[199] == pytest.approx(1e-3)  # EEGain's T_max 100
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    for smoothing in (0.0, 0.3):
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 2)
        expected = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(net(x), y).item()
        step = torch.optim.SGD(net.parameters(), lr=0.0)
        precision = resolve_precision(torch.device("cpu"), use_amp=False)
        loss = train_one_epoch(net, [(x, y)], step, device=torch.device("cpu"), precision=precision,
                               scaler=precision.scaler(), label_smoothing=smoothing)["loss"]
        assert loss == pytest.approx(expected)


def test_binary_and_weighted_f1_are_scikit_learns():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k, n = int(rng.integers(2, 5)), int(rng.integers(1, 25))
        y_true = np.full(n, rng.integers(0, k)) if rng.random() < 0.3 else rng.integers(0, k, n)
        y_pred = rng.integers(0, k, n)
        ours = scores(confusion_matrix(y_true, y_pred, k))
        assert ours["weighted_f1"] == pytest.approx(100 * f1_score(y_true, y_pred, average="weighted",
                                                                   labels=range(k), zero_division=0))
        if k == 2:
            assert ours["binary_f1"] == pytest.approx(100 * f1_score(y_true, y_pred, zero_division=0))
        else:
            assert np.isnan(ours["binary_f1"])


def test_raw_windows_are_resampled_to_the_configured_rate(tmp_path):
    root = tmp_path / "data"
    write_synthetic(root, ["SEED"], 2, trials=2, seconds=8.0)
    config = applied("SEED", "categorical")
    config.data.data_root, config.data.cache_stft = str(root), False
    features = build_feature_set(config.data, representation="raw")
    assert features.features.shape[1:] == (62, 4 * 128) and features.sampling_rate == 128.0
    config.data.raw.sampling_rate = 0.0
    assert build_feature_set(config.data, representation="raw").features.shape[1:] == (62, 4 * 200)


def test_amigos_keeps_the_baseline_when_asked(tmp_path):
    write_synthetic(tmp_path, ["AMIGOS"], 1, trials=2, seconds=6.0)
    dropped, kept = (get_reader("AMIGOS", tmp_path / "AMIGOS", baseline=b).read_subject("P01")
                     for b in ("drop", "keep"))
    assert [t.signal.shape[1] for t in kept] == [t.signal.shape[1] + 5 * 128 for t in dropped]
    assert "5 s kept" in get_reader("AMIGOS", tmp_path / "AMIGOS", baseline="keep").label_description()


def test_the_trivial_row_is_the_training_majority_and_seeded_prior_draws():
    record = {"fold": {"dataset": "DEAP", "subject": "s01", "seed": 2025},
              "predictions": {"y_true": [1] * 30 + [0] * 10},
              "test": {"training_class_counts": {"windows": [100, 300]}}}
    first, again = trivial_scores(record, CARD, 2), trivial_scores(record, CARD, 2)
    assert first == again
    assert first["accuracy"] == 75.0  # the training majority, class 1, on 30 of 40 test windows
    record["fold"]["seed"] = 1
    assert trivial_scores(record, CARD, 2)["f1"] != first["f1"]  # another fold seed draws anew
    by_trial = {"fold": record["fold"], "test": {"training_class_counts": {"windows": [1, 9], "trials": [3, 1]}},
                "predictions": {"y_true": [1, 1, 0, 0, 1, 1], "session": [1] * 6, "trial": [3, 3, 1, 1, 2, 2]}}
    assert trivial_scores(by_trial, dataclasses.replace(CARD, level="trial"), 2)["accuracy"] == pytest.approx(100 / 3)


# --- loso.benchmark --card end to end -------------------------------------------------------------------------------

@pytest.mark.cards
def test_benchmark_runs_the_card_and_writes_published_beside_ours(tmp_path, caplog, one_torch_thread):
    out = tmp_path / "bench"
    with caplog.at_level(logging.INFO, logger="loso"):
        code = benchmark_main(["--card", "eegain-loso", "--synthetic", "--datasets", "DEAP", "--tasks", "valence",
                               "--models", "shallowconvnet", "eegnet", "--subjects", "s01", "s02", "--local",
                               "--output", str(out), "--output_dir", str(tmp_path / "outputs"),
                               "--data.cache_dir", str(tmp_path / "cache"), "--data.max_subjects", "6",
                               "--training.num_epochs", "1"])
    assert code == 0
    assert "card eegain-loso@1 sets training.num_epochs = 200 (README.md:278; run_cli.sh:19); your " \
           "--training.num_epochs 1 wins" in caplog.text
    generated = tmp_path / "outputs" / "synthetic_data" / "DEAP" / "data_preprocessed_python"
    assert len(list(generated.glob("*.dat"))) == 32  # the card's full subject count

    run = json.loads((out / "DEAP-valence" / "eegnet" / "run.json").read_text())
    config, card = run["config"], run["card_protocol"]
    assert run["card"] == "eegain-loso@1" and card["dataset"] == "DEAP" and card["task"] == "valence"
    assert config["data"]["raw"]["sampling_rate"] == 128.0 and run["model"]["sampling_rate"] == 128.0
    assert config["data"]["window_seconds"] == 4.0 and run["input_shape"] == [32, 512]
    assert (config["training"]["batch_size"], config["training"]["learning_rate"],
            config["training"]["label_smoothing"]) == (32, 0.001, 0.01)
    assert config["data"]["dataset_options"]["DEAP"] == {"label_dimension": "valence", "threshold": 5.0,
                                                         "comparison": ">="}
    assert config["training"]["num_epochs"] == 1 and card["overridden"] == {"training.num_epochs": "1"}
    protocol = (out / "DEAP-valence" / "eegnet" / "tables" / "PROTOCOL.md").read_text()
    assert "## Card" in protocol and "(OVERRIDDEN: your value 1 was used)" in protocol
    assert all(d in protocol for d in CARD.deviations)

    table = pd.read_csv(out / "comparison" / "published.csv")
    assert list(zip(table["task"], table["model"])) == [
        (t, m) for t in ("arousal", "valence") for m in ("tsception", "eegnet", "deepconvnet", "shallowconvnet",
                                                         "trivial")]
    by_model = table[table["task"] == "valence"].set_index("model")
    assert set(table[table["task"] == "arousal"]["status"]) == {"not run"}
    assert by_model.loc["tsception", "status"] == "not run" and by_model.loc["eegnet", "status"] == "run"
    assert by_model.loc["trivial", "status"] == "computed from the folds of shallowconvnet"
    assert by_model.loc["eegnet", "accuracy_published"] == 0.53 and by_model.loc["eegnet", "n_subjects"] == 2

    folds = [json.loads(p.read_text()) for p in sorted((out / "DEAP-valence" / "eegnet" / "folds").glob("*.json"))]
    accuracies = np.array([f["test"]["accuracy"] for f in folds]) / 100
    assert by_model.loc["eegnet", "accuracy_ours"] == pytest.approx(accuracies.mean())
    assert by_model.loc["eegnet", "accuracy_ours_sd"] == pytest.approx(accuracies.std(ddof=0))
    assert by_model.loc["eegnet", "accuracy_difference"] == pytest.approx(accuracies.mean() - 0.53)
    majority = np.array([f["test"]["baseline"]["majority_accuracy"] for f in folds]) / 100
    assert by_model.loc["trivial", "accuracy_ours"] == pytest.approx(majority.mean())
    assert np.isfinite(by_model.loc["eegnet", "balanced_accuracy_mean"])
    shown = (out / "comparison" / "published.md").read_text()
    assert shown.startswith("> SYNTHETIC DATA: the published column is not comparable\n")
    assert shown.count("| DEAP ") == 10
    shutil.rmtree(tmp_path / "outputs" / "synthetic_data")
