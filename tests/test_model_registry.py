"""The model registry end to end: every entry through a tiny LOSO fold, the DE pipelines' chance level, your own
model from a file outside the repository (also on Ray), checkpoints of any model, `tune.search --model`,
`loso.benchmark`."""

from __future__ import annotations

import inspect
import json
import logging
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from gru_xnet.checkpoint import CheckpointError
from gru_xnet.config import ConfigError
from gru_xnet.datasets import write_synthetic
from gru_xnet.estimators import EstimatorModule
from gru_xnet.model import load_model
from gru_xnet.models import MODELS, model_spec
from gru_xnet.models.eegnet import EEGNet
from gru_xnet.models.spec import Builder
from gru_xnet.predict import predict
from gru_xnet.train import main as train_main
from loso.benchmark import main as benchmark_main
from loso.outputs import check_output
from loso.run import main as loso_main
from tune.search import main as tune_main
from tune.space import load_space

from conftest import run_side_by_side, tiny_config

REPO = Path(__file__).resolve().parents[1]
REPRESENTATION = {"gru_xnet": "stft", "eegnet": "raw", "shallowconvnet": "raw", "deepconvnet": "raw",
                  "tsception": "raw", "dgcnn": "de", "eegconformer": "raw", "de_logreg": "de", "de_svm": "de"}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.heavy]


def config_file(root: Path, tmp_path: Path, datasets=("DEAP",), epochs: int = 2) -> str:
    config = tiny_config(root, tmp_path, datasets=datasets, num_epochs=epochs)
    path = tmp_path / "config.json"
    config.save(path)
    return str(path)


def folds_of(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "folds").glob("*.json"))]


def per_dataset(out: Path) -> pd.DataFrame:
    table = pd.read_csv(out / "tables" / "per_dataset.csv")
    return table[(table["subjects"] == "all") & (table["level"] == "window")]


def outside_copy(tmp_path: Path) -> Path:
    """examples/my_model.py copied to a folder outside the repository."""
    target = tmp_path / "elsewhere" / "my_model.py"
    target.parent.mkdir()
    shutil.copy(REPO / "examples" / "my_model.py", target)
    return target


def test_the_registry_declares_the_fields_baselines():
    assert set(REPRESENTATION) == set(MODELS)
    for name, spec in MODELS.items():
        assert spec.name == name and spec.representation == REPRESENTATION[name] and spec.summary
        assert bool(spec.grid) == name.startswith("de_") and bool(spec.space) != name.startswith("de_")


def test_a_torch_models_entry_names_its_constructor_and_reads_as_it():
    """The entry holds the constructor's place, not the class (the registry loads no torch); its signature is the
    constructor's, so what a builder is passed can follow its parameters; it pickles as its place."""
    build = MODELS["eegnet"].build
    assert isinstance(build, Builder) and build.__wrapped__ is EEGNet
    assert inspect.signature(build) == inspect.signature(EEGNet)
    assert pickle.loads(pickle.dumps(build)) == Builder("gru_xnet.models.eegnet:EEGNet")


@pytest.mark.parametrize("name", list(REPRESENTATION))
def test_every_registered_model_runs_one_tiny_fold_and_names_itself(synthetic_root, tmp_path, name):
    out = tmp_path / "out"
    assert loso_main(["--config", config_file(synthetic_root, tmp_path), "--model", name, "--subjects", "s01",
                      "--local", "--output", str(out)]) == 0
    [fold] = folds_of(out)
    assert fold["model"]["name"] == name and fold["model"]["representation"] == REPRESENTATION[name]
    assert fold["test"]["n"] > 0 and len(fold["predictions"]["probabilities"][0]) == 2
    protocol = (out / "tables" / "PROTOCOL.md").read_text()
    assert f"Model: {name}, {MODELS[name].summary}" in protocol
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["name"] == name and fold["model"]["channels"] == run["channels"]
    assert fold["model"]["decision"] == ("margin" if name == "de_svm" else "probability")
    assert fold["model"]["sampling_rate"] == {"stft": 8.0, "raw": 128.0, "de": 1.0}[REPRESENTATION[name]]
    if name == "eegnet":  # DEAP at 128 Hz: the paper's half-second kernels, as used
        params = fold["model"]["params"]
        assert (params["kernel_length"], params["separable_kernel_length"]) == (64, 16)
    if name.startswith("de_"):
        assert [entry["params"]["classifier__C"] for entry in fold["history"]] == [0.01, 0.1, 1.0, 10.0]
        assert "training.* keys" in protocol and fold["chosen_params"]["classifier__C"] in (0.01, 0.1, 1.0, 10.0)


def test_de_logreg_learns_the_band_signal_and_stays_at_chance_on_shuffled_labels(synthetic_root, shuffled_root,
                                                                                 tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="loso")
    runs = {}
    for label, root in (("planted", synthetic_root), ("shuffled", shuffled_root)):
        out = tmp_path / label
        assert loso_main(["--config", config_file(root, tmp_path, datasets=("DEAP", "GAMEEMO", "SEEDIV")),
                          "--data-root", str(root), "--model", "de_logreg", "--local", "--output", str(out)]) == 0
        runs[label] = per_dataset(out)
    assert (runs["planted"]["balanced_accuracy_mean"] > 75).all()
    shuffled = runs["shuffled"]
    assert (shuffled["p_vs_chance"] > 0.05).all() and 35 < shuffled["balanced_accuracy_mean"].mean() < 65
    assert "on the CPU (scikit-learn: no torch threads)" in caplog.text and "torch thread(s)" not in caplog.text


@pytest.mark.ray
def test_your_own_model_from_a_file_outside_the_repository_runs_on_ray(ray_session, synthetic_root, tmp_path, caplog):
    model_file = outside_copy(tmp_path)
    out = tmp_path / "out"
    args = ["--config", config_file(synthetic_root, tmp_path), "--model", f"{model_file}:make",
            "--model.params", '{"width": 8}', "--subjects", "s01", "s02", "--output", str(out)]
    assert loso_main(args) == 0
    folds = folds_of(out)
    assert len(folds) == 2 and all("node" in fold for fold in folds)  # trained by Ray workers
    record = folds[0]["model"]
    assert record["path"] == str(model_file) and record["params"] == {"width": 8} and record["representation"] == "stft"
    assert json.loads((out / "run.json").read_text())["model_source_sha256"] == record["source_sha256"]
    model_file.write_text(model_file.read_text() + "\n# edited\n")
    assert loso_main([*args, "--resume"]) == 2  # another source is another model: its folds are not mixed in
    assert "model_source_sha256" in caplog.text


@pytest.mark.ray
def test_the_de_pipelines_run_as_ray_cpu_tasks(ray_session, synthetic_root, tmp_path):
    out = tmp_path / "out"
    assert loso_main(["--config", config_file(synthetic_root, tmp_path), "--model", "de_svm", "--subjects", "s01",
                      "s02", "--output", str(out)]) == 0
    folds = folds_of(out)
    assert len(folds) == 2 and all(f["node"]["id"] and f["autocast"].startswith("none") for f in folds)
    assert not (out / "ray").exists()  # no Ray Train run state: plain tasks


@pytest.mark.parametrize("reference, message", [
    ("{dir}/missing.py:make", "cannot read"),
    ("{dir}/my_model.py:build", "defines no function 'build'"),
    ("{dir}/bad.py:make", "bad.py failed: NameError"),
    ("{dir}/odd.py:make", "representation = 'wavelet'"),
    ("no_such_package.models:make", "cannot import no_such_package.models"),
    ("resnet", "expected one of gru_xnet, eegnet"),
])
def test_a_model_that_cannot_load_gives_one_error_naming_it(tmp_path, reference, message):
    outside_copy(tmp_path)
    (tmp_path / "elsewhere" / "bad.py").write_text("undefined_name\n")
    (tmp_path / "elsewhere" / "odd.py").write_text("def make(**kw):\n    pass\nmake.representation = 'wavelet'\n")
    with pytest.raises(ConfigError, match=message):
        model_spec(reference.format(dir=tmp_path / "elsewhere"))


def test_resume_refuses_a_folder_whose_svm_decided_by_platt_probabilities(tmp_path):
    platt = {"name": "de_svm", "params": {"C": 1.0, "kernel": "linear", "seed": 0}, "representation": "de"}
    older = {"config_hash": "abc", "seeds": [0], "permutations": 0, "permutation_scheme": 2, "model": platt}
    margin = {**platt, "params": {"C": 1.0, "kernel": "linear"}, "decision": "margin"}
    (tmp_path / "run.json").write_text(json.dumps(older))  # written before the record said how the model decides
    with pytest.raises(ConfigError, match=r'model\.decision: "probability" there, "margin" now'):
        check_output(tmp_path, {**older, "model": margin}, resume=True)
    (tmp_path / "run.json").write_text(json.dumps({**older, "model": margin}))
    check_output(tmp_path, {**older, "model": margin}, resume=True)  # the same model goes on
    with pytest.raises(ConfigError, match=r"different model\.params \(model\.params: "):  # e.g. EEGNet at a new rate
        check_output(tmp_path, {**older, "model": {**margin, "params": {"C": 1.0, "kernel": "rbf"}}}, resume=True)


AWARE_MODEL = """
from torch import nn


class Aware(nn.Module):
    def __init__(self, n_channels, n_classes, sampling_rate, channels):
        super().__init__()
        self.sampling_rate, self.channels = sampling_rate, channels
        self.conv = nn.Conv1d(n_channels, 4, int(sampling_rate // 4))  # a quarter-second kernel
        self.head = nn.Linear(4, n_classes)

    def forward(self, x):
        return self.head(self.conv(x).mean(-1))


def make(input_shape, n_classes, sampling_rate, channels, **params):
    assert len(channels) == input_shape[0]
    return Aware(input_shape[0], n_classes, sampling_rate, channels)


make.representation = "raw"
"""


def test_a_builder_naming_sampling_rate_and_channels_gets_them_and_its_checkpoint_rebuilds_with_them(
        synthetic_root, tmp_path):
    model_file = tmp_path / "aware.py"
    model_file.write_text(AWARE_MODEL)
    assert train_main(["--config", config_file(synthetic_root, tmp_path), "--model", f"{model_file}:make"]) == 0
    path = next(tmp_path.glob("outputs/*/checkpoints/best_model.pth"))
    saved = torch.load(path, weights_only=True)
    assert saved["model"]["sampling_rate"] == 128.0 and saved["model"]["channels"] == saved["channel_names"]
    assert "sampling_rate" not in saved["model"]["params"]  # given as the input, not as a parameter
    loaded = load_model(path)
    assert loaded.sampling_rate == 128.0 and loaded.conv.kernel_size == (32,)
    assert list(loaded.channels) == saved["channel_names"]
    assert predict(path, "DEAP", synthetic_root, subjects=["s01"]).rows


def test_a_models_unknown_parameter_is_refused_naming_model_params(synthetic_root, tmp_path, caplog):
    assert loso_main(["--config", config_file(synthetic_root, tmp_path), "--model", "eegnet", "--model.params",
                      '{"filters": 3}', "--local", "--output", str(tmp_path / "out")]) == 2
    assert "model.params" in caplog.text and "filters" in caplog.text


@pytest.mark.parametrize("model", ["de_svm", "eegnet", "user"])
def test_checkpoints_of_any_model_load_weights_only_and_predict(synthetic_root, tmp_path, model):
    if model == "user":
        model = f"{outside_copy(tmp_path)}:make"
    config = config_file(synthetic_root, tmp_path)
    assert train_main(["--config", config, "--model", model]) == 0
    path = next(tmp_path.glob("outputs/*/checkpoints/best_model.pth"))
    saved = torch.load(path, weights_only=True)
    assert saved["model"]["name"] == model
    loaded = load_model(path)
    assert isinstance(loaded, EstimatorModule) == (model == "de_svm")
    result = predict(path, "DEAP", synthetic_root, subjects=["s01"])
    test_results = json.loads(next(tmp_path.glob("outputs/*/test_results.json")).read_text())
    assert result.rows and test_results["model"]["name"] == model
    if model.endswith(":make"):
        Path(model.rsplit(":", 1)[0]).unlink()
        with pytest.raises(CheckpointError, match="cannot read"):
            load_model(path)


def test_declared_search_spaces_set_the_models_parameters(synthetic_root, tmp_path):
    config = tiny_config(synthetic_root, tmp_path)
    config.model.name = "eegnet"
    space = load_space(None, config, MODELS["eegnet"].space)
    tuned = space.apply(config, {"F1": 4, "dropout": 0.3, "learning_rate": 1e-3})
    assert tuned.model.params == {"F1": 4, "dropout": 0.3} and tuned.training.learning_rate == 1e-3
    file = tmp_path / "space.json"
    file.write_text(json.dumps({"width": {"key": "model.params.width", "choices": [8, 16]}}))
    assert load_space(file, config, {}).to_dict() == {"width": {"key": "model.params.width", "choices": [8, 16]}}
    with pytest.raises(ConfigError, match="declares no search space"):
        load_space(None, config, {})


@pytest.mark.ray
def test_tune_search_searches_eegnets_declared_space_in_ddp_trials(ray_session, synthetic_root, tmp_path, caplog):
    out = tmp_path / "tune"
    args = ["--config", config_file(synthetic_root, tmp_path, epochs=3), "--num-samples", "1", "--grace-period", "1",
            "--output", str(out)]
    assert tune_main([*args, "--model", "eegnet", "--workers-per-trial", "2", "--cpus-per-worker", "0.49"]) == 0
    [reports] = [[json.loads(line) for line in path.read_text().splitlines()]
                 for path in (out / "ray").glob("search*/*/result.json")]
    assert [r["epoch"] for r in reports] == [1, 2, 3, 3] and not reports[0]["fold_done"]  # each epoch forwarded
    assert reports[-1]["fold_complete"] and len(list((out / "ray" / "train").iterdir())) == 1  # a Ray Train job
    best = json.loads((out / "best_config.json").read_text())
    assert best["model"]["name"] == "eegnet" and set(best["model"]["params"]) == {"F1", "dropout"}
    assert {"F1", "dropout", "learning_rate"} <= set(pd.read_csv(out / "trials.csv").columns)
    assert tune_main([*args, "--model", "de_logreg"]) == 2 and "needs no search" in caplog.text


@pytest.fixture(scope="module")
def field_benchmarks(tmp_path_factory) -> dict[str, Path]:
    """`loso.benchmark --models tsception dgcnn`, seeds 0-2, on DEAP with a strong planted signal and on the same data
    with shuffled labels: 4 subjects, 6 trials of 12 s, 10 epochs (the raw CNN needs them on so little data)."""
    tmp = tmp_path_factory.mktemp("field")
    commands = {}
    for label, shuffle in (("planted", False), ("shuffled", True)):
        root = tmp / f"{label}-data"
        write_synthetic(root, ["DEAP"], 4, trials=6, seconds=12.0, signal_strength=3.0, shuffle_labels=shuffle)
        commands[label] = ["loso.benchmark", "--config", config_file(root, tmp / f"{label}-config", epochs=10),
                           "--models", "tsception", "dgcnn", "--seeds", "0", "1", "2", "--local", "--output",
                           str(tmp / label)]
    run_side_by_side(commands)  # the two benchmarks at once, one per core
    return {label: tmp / label for label in commands}


def test_benchmark_runs_each_model_on_the_same_folds_and_compares_them(field_benchmarks):
    out = field_benchmarks["planted"]
    folds = {m: [f["fold"]["fold_id"] for f in folds_of(out / m)] for m in ("tsception", "dgcnn")}
    assert folds["tsception"] == folds["dgcnn"] and len(folds["dgcnn"]) == 12  # 4 subjects x 3 seeds
    comparison = pd.read_csv(out / "comparison" / "comparison.csv")
    assert set(comparison["model"]) == {"tsception", "dgcnn"} and set(comparison["level"]) == {"window", "trial"}
    pairs = pd.read_csv(out / "comparison" / "pairwise.csv")
    assert list(pairs[["run_a", "run_b"]].drop_duplicates().itertuples(index=False, name=None)) == [
        ("tsception", "dgcnn")]
    assert (pairs["wins_b"] + pairs["ties"] + pairs["losses_b"] == 4).all()
    assert (out / "comparison" / "figures" / "subject_lines.png").is_file()
    written = {p: p.stat().st_mtime_ns for p in out.glob("*/folds/*.json")}
    config = str(out.parent / "planted-config" / "config.json")
    assert benchmark_main(["--config", config, "--models", "tsception", "dgcnn", "--seeds", "0", "1", "2", "--local",
                           "--output", str(out), "--resume"]) == 0  # every model resumes: nothing is trained again
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/folds/*.json")} == written


def test_tsception_and_dgcnn_learn_the_planted_signal_and_stay_at_chance_on_shuffled_labels(field_benchmarks):
    """Seed-averaged subjects (seeds 0-2): no claim rests on one seed's training trajectory."""
    for model in ("tsception", "dgcnn"):
        planted, shuffled = (per_dataset(field_benchmarks[label] / model).iloc[0] for label in ("planted", "shuffled"))
        assert planted["balanced_accuracy_mean"] > 80, (model, planted["balanced_accuracy_mean"])
        assert abs(shuffled["balanced_accuracy_mean"] - 50) < 15 and shuffled["p_vs_chance"] > 0.05, model