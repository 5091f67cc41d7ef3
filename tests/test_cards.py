"""Protocol cards: the eegain-loso and libeer-cross-subject cards against their sources' published tables and code,
the config keys the cards need, the card's refusals, and `loso.benchmark --card` end to end (pytest -m cards: each
card with its cheapest models, 1 epoch, few subjects)."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

from gru_xnet.config import ConfigError, ExperimentConfig, apply_overrides, get_full_training_config, \
    get_quick_test_config
from gru_xnet.datasets import get_reader, write_synthetic
from gru_xnet.datasets.base import MARKER_NAME
from gru_xnet.datasets.safe_pickle import load_pickle
from gru_xnet.datasets.synthetic import ensure_synthetic_data
from gru_xnet.engine import make_optimizer, make_scheduler, train_one_epoch, resolve_precision
from gru_xnet.features import build_feature_set
from gru_xnet.metrics import confusion_matrix, scores
from loso.benchmark import main as benchmark_main
from loso.cards import CardError, load_card
from loso.cards.__main__ import main as cards_main
from loso.compare import Run, check_comparable
from loso.published import aggregate_subjects, model_matrices, trivial_matrices, trivial_scores
from tests.test_report import check_report

REPO = Path(__file__).resolve().parents[1]
EEGAIN = Path("/work/.mirror/EmotionLab+EEGain/repo")
LIBEER = Path("/work/.mirror/XJTU-EEG+LibEER/repo")
CARD = load_card("eegain-loso")
LIBEER_CARD = load_card("libeer-cross-subject")


def applied(dataset: str, task: str, model: str = "eegnet", card=CARD) -> ExperimentConfig:
    """A config with every setting of one (dataset, task, model) run of the card applied."""
    config = get_quick_test_config()
    config.data.datasets = [dataset]
    apply_overrides(config, [arg for s in card.settings_for(dataset, task, model) for arg in s.override()])
    return config


def source_text(mirror: Path, commit: str, path: str) -> str:
    """One file of a mirrored source repository at the card's commit."""
    return subprocess.run(["git", f"--git-dir={mirror}", "show", f"{commit}:{path}"], capture_output=True, text=True,
                          check=True).stdout


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
    readme = source_text(EEGAIN, CARD.commit, "README.md")
    rows = _readme_rows(readme)
    names = {m.published_as: m.name for m in CARD.models.values()} | {"Trivial Baseline": "trivial"}
    for published in CARD.published:
        number = int(published.source.removeprefix("README.md:"))
        line = readme.splitlines()[number - 1]
        assert names[line.split("|")[2].strip().split(" *")[0]] == published.model, published
        assert rows[number] == [published.values[m.name] for m in CARD.metrics], published
    assert len(CARD.published) == 50  # 6 datasets, 10 tasks x 5 rows


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
    assert applied("MAHNOB", "valence", "tsception").model.params == {"dropout": 0.5,
                                                                      "inception_windows": [0.25, 0.125, 0.0625]}
    assert applied("DEAP", "valence", "tsception").model.params == {"dropout": 0.5}  # MAHNOB's windows only
    assert applied("MAHNOB", "arousal").data.signal_filters("MAHNOB") == {"bandpass_hz": [0.3, 45.0], "notch_hz": 50.0}
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
     "published[10] (README.md:301): model 'resnet'"),
    ("accuracy: [0.54, 0.09]", "accuracy: [0.54, 0.09, 1]", "published[10].accuracy: expected a number or [value, SD]"),
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
    with pytest.raises(CardError, match=r"no dataset 'GAMEEMO'; it has MAHNOB, DEAP, AMIGOS, DREAMER, SEED, SEEDIV"):
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
    page = (REPO / "docs" / "reproduce.md").read_text()
    assert all(card.markdown() in page for card in (CARD, LIBEER_CARD))


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


# --- the libeer-cross-subject card against LibEER --------------------------------------------------------------------

class _Cells(HTMLParser):
    """The text of every <td> of an HTML table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


@pytest.mark.skipif(not LIBEER.is_dir(), reason="LibEER's repository is not mirrored here")
def test_libeer_published_cells_are_its_cross_subject_table():
    # README.md:208 is one HTML table: a row of method names, then per scenario an ACC row and an F1 row.
    table = _Cells()
    table.feed(source_text(LIBEER, LIBEER_CARD.commit, "README.md").splitlines()[207])
    methods = table.rows[1][1:]
    rows = {}
    for acc, f1 in zip(table.rows[2::2], table.rows[3::2]):
        assert (acc[1], f1[1]) == ("ACC", "F1")
        rows[acc[0]] = {m: (float(a), float(f)) for m, a, f in zip(methods, acc[2:], f1[2:])}
    scenario = {("SEED", "categorical"): "SEED", ("SEEDIV", "categorical"): "SEED-IV", ("DEAP", "valence"): "DEAP-V",
                ("DEAP", "arousal"): "DEAP-A"}
    for cell in LIBEER_CARD.published:
        printed = rows[scenario[cell.dataset, cell.task]][LIBEER_CARD.models[cell.model].published_as]
        assert (cell.values["accuracy"], cell.values["f1"]) == ((printed[0], None), (printed[1], None)), cell
        assert cell.source.startswith("README.md:208")
    assert len(LIBEER_CARD.published) == 16 and rows["DEAP-A"]["DGCNN"] == rows["DEAP-V"]["DGCNN"]  # a deviation says


def test_libeer_split_is_its_random_shuffle_with_seed_2024_replayed():
    # LibEER/utils/utils.py:77 random.seed(2024), then LibEER/data_utils/split.py:108-116 on the subject indices.
    def replayed(n: int) -> tuple[list[int], list[int]]:
        random.seed(2024)
        indexes = list(range(n))
        random.shuffle(indexes)
        test, val = int(0.2 * n), int(0.2 * n)
        return sorted(i + 1 for i in indexes[:test]), sorted(i + 1 for i in indexes[test:test + val])

    lists = LIBEER_CARD.split_lists
    for dataset, n, name in (("SEED", 15, str), ("SEEDIV", 15, str), ("DEAP", 32, "s{:02d}".format)):
        test, validation = replayed(n)
        assert (lists[dataset]["test"], lists[dataset]["validation"]) == ([name(i) for i in test],
                                                                          [name(i) for i in validation])
    assert lists["SEED"] == {"test": ["1", "6", "9"], "validation": ["2", "13", "14"]}  # the issue's, by hand
    assert LIBEER_CARD.split == "holdout" and LIBEER_CARD.aggregation["pooled"]


@pytest.mark.skipif(not LIBEER.is_dir(), reason="LibEER's repository is not mirrored here")
def test_libeer_batch_epochs_and_rate_are_the_commands_they_cite():
    # Each cited command line (a comment in LibEER's *_train.py) holds the value; "(no -lr)": args.py's default.
    flags = {"training.batch_size": "-batch_size", "training.num_epochs": "-epochs", "training.learning_rate": "-lr"}
    checked = 0
    for dataset, entry in LIBEER_CARD.datasets.items():
        for task in entry.tasks:
            for model in LIBEER_CARD.models:
                for setting in LIBEER_CARD.settings_for(dataset, task, model):
                    if setting.key not in flags:
                        continue
                    script, line = re.search(r"LibEER/(\w+_train\.py):(\d+)", setting.source).groups()
                    command = source_text(LIBEER, LIBEER_CARD.commit, f"LibEER/{script}").splitlines()[int(line) - 1]
                    assert "python" in command and f"{model.upper()}_train".lower() in script.lower(), setting
                    found = re.search(rf" {flags[setting.key]} ([\d.]+)", command)
                    if "(no -lr)" in setting.source:
                        assert found is None and setting.value == 0.001, setting  # LibEER/utils/args.py:21
                    else:
                        assert float(found.group(1)) == setting.value, setting
                    checked += 1
    assert checked == 3 * 4 * 3  # eegnet, tsception, dgcnn on SEED, SEEDIV, DEAP valence and arousal


def test_libeer_card_sets_what_libeer_states():
    config = applied("SEED", "categorical", "dgcnn", LIBEER_CARD)
    training = config.training
    assert (config.seed, training.batch_size, training.num_epochs, training.learning_rate, training.optimizer,
            training.adam_eps, training.monitor) == (2024, 16, 150, 0.001, "adamw", 1e-4, "macro_f1")
    assert not training.early_stopping and not training.use_scheduler and config.data.normalization == "none"
    assert config.data.checked_options("SEED") == {"n_classes": 3, "sessions": ("1",), "source": "released",
                                                   "released_feature": "de_LDS"}
    assert applied("SEED", "categorical", "eegnet", LIBEER_CARD).data.checked_options("SEED")["source"] == "raw"
    deap = {task: applied("DEAP", task, "eegnet", LIBEER_CARD) for task in ("valence", "arousal")}
    assert [deap[t].training.batch_size for t in ("valence", "arousal")] == [128, 512]  # EEGNet_train.py:66, 69
    assert {k: deap["valence"].data.checked_options("DEAP")[k] for k in ("threshold", "comparison", "baseline")} == \
        {"threshold": 5.0, "comparison": ">", "baseline": "subtract_signal"}  # ratings <= 5 low (-bounds 5 5)
    assert applied("DEAP", "valence", "dgcnn", LIBEER_CARD).model.params["hidden"] == 128  # models/DGCNN.py:34-35
    assert applied("SEEDIV", "categorical", "tsception", LIBEER_CARD).training.batch_size == 16
    for setting in (s for d in LIBEER_CARD.datasets for t in LIBEER_CARD.datasets[d].tasks for m in LIBEER_CARD.models
                    for s in LIBEER_CARD.settings_for(d, t, m)):
        assert re.search(r"\.(md|py|yaml):\d+", setting.source), setting
    for deviation in LIBEER_CARD.deviations:
        assert deviation.endswith(".") and re.search(r":\d+", deviation), deviation


def test_deap_baseline_subtracted_in_the_signal_as_libeer_does(tmp_path):
    write_synthetic(tmp_path, ["DEAP"], 1, trials=2, seconds=4.0)
    raw = load_pickle(tmp_path / "DEAP" / "data_preprocessed_python" / "s01.dat")
    data = np.array(raw[b"data"] if b"data" in raw else raw["data"], dtype=np.float64)
    baseline = np.mean([data[:, :32, i * 128:(i + 1) * 128] for i in range(3)], axis=0)  # load_data.py:527-529
    for second in range(3, data.shape[2] // 128):
        data[:, :32, second * 128:(second + 1) * 128] -= baseline
    trials = get_reader("DEAP", tmp_path / "DEAP", baseline="subtract_signal").read_subject("s01")
    assert np.allclose(np.stack([t.signal for t in trials]), data[:, :32, 384:], atol=1e-4)
    assert "pre-trial segments subtracted" in get_reader("DEAP", tmp_path / "DEAP",
                                                         baseline="subtract_signal").label_description()


@pytest.mark.parametrize("old, new, said", [
    ("split: holdout", "split: loso", "split_lists: expected the holdout split's test and validation subjects"),
    ('validation: ["2", "13", "14"]}\n  SEEDIV', 'validation: ["1", "13", "14"]}\n  SEEDIV',
     "SEED: subject(s) 1 in both test and validation"),
    ("  SEEDIV: {test:", "  GAMEEMO: {test:", "found split 'holdout' and lists for SEED, GAMEEMO, DEAP"),
])
def test_bad_split_lists_are_refused_naming_the_file(tmp_path, old, new, said):
    path = tmp_path / "libeer-cross-subject.yaml"
    text = (REPO / "loso" / "cards" / "libeer-cross-subject.yaml").read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(CardError, match=re.escape(said)) as caught:
        load_card(str(path))
    assert str(path) in str(caught.value)


def test_a_cards_models_on_released_features_and_on_the_signal_are_compared():
    # The card's SVM reads SEED's released DE features, its EEGNet the signal: same classes, same test labels.
    def run(name: str, statement: str, classes: list[str]) -> Run:
        manifest = {"split": "holdout:sha256=3231fac87aa3", "datasets": ["SEED"], "n_classes": 3, "synthetic": True,
                    "labels": {"SEED": statement}, "class_names": {"SEED": classes}}
        subjects = pd.DataFrame({"dataset": ["SEED"], "subject": ["1"]})
        return Run(name, Path(name), manifest, subjects, {("SEED", "1", "1", 1, 0)})

    clips = ["negative", "neutral", "positive"]
    labels = "SEED clips: negative (0), neutral (1), positive (2)"
    check_comparable([run("eegnet", labels, clips), run("de_svm", f"{labels}; the authors' released de_LDS", clips)])
    with pytest.raises(ConfigError, match="their class_names differs"):
        check_comparable([run("eegnet", labels, clips), run("other", labels, ["negative", "non-negative", "x"])])


def test_one_synthetic_copy_with_released_features_serves_a_cards_signal_and_feature_models(tmp_path):
    # A card's models alternate: de_svm reads SEED's released features, eegnet the signal; neither rewrites the copy.
    def ensure(released: bool) -> float:
        ensure_synthetic_data(tmp_path, ["SEED"], 2, trials=lambda _name: 2, seconds=2.0, released=released)
        return (tmp_path / "SEED" / MARKER_NAME).stat().st_mtime_ns

    raw = ensure(False)
    assert not (tmp_path / "SEED" / "ExtractedFeatures").exists()
    with_features = ensure(True)  # a copy without them is rewritten with them
    assert with_features != raw and (tmp_path / "SEED" / "ExtractedFeatures").is_dir()
    assert ensure(False) == with_features and ensure(True) == with_features


def test_a_pooled_card_scores_every_test_subjects_windows_in_one_matrix():
    def record(subject: str, matrix: list[list[int]]) -> dict:
        return {"fold": {"dataset": "SEED", "subject": subject, "seed": 2024}, "test": {"confusion_matrix": matrix}}

    records = [record("1", [[9, 1], [0, 0]]), record("6", [[0, 0], [1, 1]])]
    summary = aggregate_subjects(records, model_matrices, LIBEER_CARD, 2)
    assert summary["accuracy_ours"] == pytest.approx(100 * 10 / 12)  # 10 of 12 windows, not (90 + 50) / 2
    assert summary["accuracy_per_subject"] == pytest.approx(70.0) and summary["accuracy_per_subject_sd"] == 20.0
    assert np.isnan(summary["accuracy_ours_sd"])


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
    page = (out / "comparison" / "report.html").read_text()  # the comparison page holds the published table too
    assert '<section id="published">' in page and page.count("<td>DEAP</td><td>valence</td>") == 5
    assert check_report.external_references(page) == ["../DEAP-valence/shallowconvnet/report.html",
                                                      "../DEAP-valence/eegnet/report.html"]
    shutil.rmtree(tmp_path / "outputs" / "synthetic_data")


@pytest.mark.cards
def test_benchmark_runs_the_libeer_card_on_its_split_with_pooled_scores(tmp_path, one_torch_thread):
    out, root = tmp_path / "bench", tmp_path / "data"
    write_synthetic(root, ["SEED"], 15, trials=3, seconds=4.0, released=True)  # the card's 15 subjects, short
    assert benchmark_main(["--card", "libeer-cross-subject", "--data-root", str(root), "--datasets", "SEED",
                           "--models", "de_svm", "--local", "--output", str(out), "--output_dir", str(tmp_path),
                           "--data.cache_dir", str(tmp_path / "cache")]) == 0
    run = out / "SEED-categorical" / "de_svm"
    records = [json.loads(p.read_text()) for p in sorted((run / "folds").glob("*.json"))]
    assert sorted(r["fold"]["subject"] for r in records) == ["1", "6", "9"]  # exactly LibEER's test subjects
    assert json.loads(json.loads((run / "run.json").read_text())["split_file"]["content"]) == {
        "SEED": {"test": ["1", "6", "9"], "validation": ["2", "13", "14"]}}
    assert (run / "tables" / "pooled_over_subjects.csv").is_file()

    table = pd.read_csv(out / "comparison" / "published.csv").set_index("model")
    trivial = [trivial_matrices(r, LIBEER_CARD, 3)["f1"] for r in records]
    pooled, each = scores(sum(trivial))["macro_f1"], [scores(m)["macro_f1"] for m in trivial]
    assert table.loc["trivial", "f1_ours"] == pytest.approx(pooled)  # one matrix of every test window
    assert table.loc["trivial", "f1_per_subject"] == pytest.approx(np.mean(each))
    assert table.loc["de_svm", "accuracy_ours"] == pytest.approx(
        scores(sum(np.asarray(r["test"]["confusion_matrix"]) for r in records))["accuracy"])
    assert table.loc["de_svm", "accuracy_published"] == 37.07 and table.loc["eegnet", "status"] == "not run"
    header = next(line for line in (out / "comparison" / "published.md").read_text().splitlines()
                  if line.startswith("| dataset"))
    assert "accuracy ours (pooled)" in header and "accuracy per-subject mean" in header
    assert "accuracy ours (pooled)" in (out / "comparison" / "report.html").read_text()  # the page shows it too
