"""The single-process Trainer: the seed's API, learning on planted signal, outputs, resume, checkpoints, AMP, CLI."""

from __future__ import annotations

import json
import logging
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gru_xnet.checkpoint import CheckpointError, read_checkpoint
from gru_xnet.config import ExperimentConfig, TrainingConfig
from gru_xnet.engine import make_reproducible, resolve_precision
from gru_xnet.model import load_model
from gru_xnet.train import main
from gru_xnet.trainer import Trainer

from conftest import tiny_config

EPOCHS = 3


pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.heavy]


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """One tiny DEAP run (fp32, 2 checkpoints kept), trained and tested: the seed's API example."""
    config = tiny_config(synthetic_root, tmp_path_factory.mktemp("trained"), num_epochs=EPOCHS,
                         keep_last_checkpoints=2, use_amp=False, early_stopping=False)
    trainer = Trainer(config)
    history = trainer.train()
    return trainer, history, trainer.test()


def test_python_api_gives_percent_accuracy_and_full_confusion_matrix(trained):
    trainer, history, results = trained
    n_test = len(trainer.split.windows(trainer.features, "test"))
    assert 0.0 <= results["accuracy"] <= 100.0 and len(history) == EPOCHS
    assert np.asarray(results["confusion_matrix"]).shape == (2, 2)
    assert np.asarray(results["confusion_matrix"]).sum() == results["n"] == n_test > 0


def _mean_test_accuracy(root, tmp_path, seeds) -> float:
    """Mean test accuracy over seeds of a 12-epoch DEAP+GAMEEMO run with 2 train and 2 test subjects per dataset."""
    accuracies = []
    for seed in seeds:
        config = tiny_config(root, tmp_path / str(seed), datasets=("DEAP", "GAMEEMO"), num_epochs=12)
        config.seed = seed
        config.data.train_ratio, config.data.val_ratio, config.data.test_ratio = 0.5, 0.0, 0.5
        trainer = Trainer(config)
        trainer.train()
        accuracies.append(trainer.test()["accuracy"])
    return float(np.mean(accuracies))


def test_learns_planted_signal_on_unseen_subjects(synthetic_root, tmp_path):
    # Test set: 2 unseen subjects x (6 DEAP + 4 GAMEEMO trials) = 20 trials, 60 windows. Measured over
    # seeds 0-7: 65.0-83.3% (mean 76, SD 6), so the mean of two seeds has SD ~4 and 65% sits ~2.5 SD
    # below it, while a model without signal scores 50 +- 8 (see the shuffled test).
    assert _mean_test_accuracy(synthetic_root, tmp_path, seeds=(0, 1)) >= 65.0


def test_stays_at_chance_when_labels_carry_no_signal(shuffled_root, tmp_path):
    # Windows of one trial share its jitter, so the 20 test trials are the independent units: chance
    # accuracy has SD 50/sqrt(20) ~ 11 points per run, ~8 for the mean of two. Measured over seeds 0-7:
    # 43.3-51.7%. 15 points is ~2 SD: a leak of labels into features (or test subjects into training)
    # on this data would score like the planted signal does, far above 65%.
    assert abs(_mean_test_accuracy(shuffled_root, tmp_path, seeds=(0, 1)) - 50.0) <= 15.0


def test_outputs_layout_and_json_contents(trained):
    trainer, history, results = trained
    out = trainer.output_dir
    assert out == Path(trainer.config.output_dir) / trainer.config.experiment_name
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["best_model.pth", f"checkpoint_epoch_{EPOCHS - 1}.pth", f"checkpoint_epoch_{EPOCHS}.pth"]
    assert (out / "figures" / "training_curves.png").stat().st_size > 0
    assert (out / "logs" / "train.log").is_file()
    assert ExperimentConfig.load(out / "config.json") == trainer.config
    saved_history = json.loads((out / "training_history.json").read_text())
    assert saved_history == history and [r["epoch"] for r in saved_history] == list(range(1, EPOCHS + 1))
    for record in saved_history:
        assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"} <= set(record)
    saved = json.loads((out / "test_results.json").read_text())
    assert saved["synthetic"] is True and saved["confusion_matrix"] == results["confusion_matrix"]
    assert set(saved["per_class"]) == set(trainer.features.class_names)
    assert set(saved["per_dataset"]) == {"DEAP"} and saved["per_dataset"]["DEAP"]["n"] == results["n"]


def test_training_log_records_every_epoch(trained):
    trainer, _, _ = trained
    assert (trainer.output_dir / "logs" / "train.log").read_text().count("epoch ") >= EPOCHS


def test_checkpoint_round_trip_reproduces_predictions(trained):
    trainer, _, _ = trained
    path = trainer.output_dir / "checkpoints" / "best_model.pth"
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "gru_xnet-checkpoint" and raw["channel_names"] == list(trainer.features.channel_names)
    loaded = load_model(path)
    x = next(iter(trainer.loaders.test))[0]
    trainer.model.eval()  # test() loaded the best weights into it
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trainer.model(x))
    assert loaded.checkpoint_meta["class_names"] == list(trainer.features.class_names)


def test_broken_and_foreign_checkpoints_are_refused_naming_the_file(trained, tmp_path):
    trainer, _, _ = trained
    good = (trainer.output_dir / "checkpoints" / "best_model.pth").read_bytes()
    truncated, foreign, noise = tmp_path / "truncated.pth", tmp_path / "foreign.pth", tmp_path / "noise.pth"
    truncated.write_bytes(good[: len(good) // 2])
    torch.save({"model_state": {}, "hparams": {}, "config": {}}, foreign)
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    for path in (truncated, foreign, noise):
        with pytest.raises(CheckpointError, match=path.name):
            load_model(path)
    pickled = tmp_path / "pickled.pth"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2]}, protocol=2))
    with pytest.raises(CheckpointError, match="pickled.pth"):
        read_checkpoint(pickled)


def test_resume_after_interruption_matches_uninterrupted_run(synthetic_root, tmp_path, caplog):
    def config(where):
        return tiny_config(synthetic_root, tmp_path / where, num_epochs=4, use_amp=False, keep_last_checkpoints=1)

    full = Trainer(config("full"))
    full_history, full_results = full.train(), full.test()

    class Interrupted(Trainer):
        """Stops the process right after epoch 2's checkpoint is written, like a killed job."""

        def _on_epoch_end(self, state, record):
            super()._on_epoch_end(state, record)
            if state.epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Interrupted(config("resumed")).train()
    caplog.clear()
    caplog.set_level(logging.INFO, logger="gru_xnet")
    resumed = Trainer(config("resumed"))
    resumed_history = resumed.train(resume=True)
    assert "checkpoint_epoch_2.pth (epoch 2 done)" in caplog.text
    assert "epoch 3/4" in caplog.text and "epoch 2/4" not in caplog.text  # only the missing epochs ran
    assert [r["epoch"] for r in resumed_history] == [1, 2, 3, 4]
    assert resumed_history == full_history
    assert resumed.test()["confusion_matrix"] == full_results["confusion_matrix"]


def test_resolve_precision_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision(cpu, True, "auto").dtype == torch.bfloat16
    assert resolve_precision(cpu, True, "bf16").dtype == torch.bfloat16
    assert resolve_precision(cpu, False, "fp16").dtype is None
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        resolve_precision(cpu, True, "fp16")


def test_make_reproducible_switches_deterministic_kernels_warning_only():
    try:
        make_reproducible(0, TrainingConfig(num_threads=1, deterministic=True))
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()  # a kernel without one warns, never fails a fold
        make_reproducible(0, TrainingConfig(num_threads=1, deterministic=False))
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("use_amp, dtype", [(True, torch.bfloat16), (False, None)])
def test_one_epoch_with_and_without_cpu_autocast(synthetic_root, tmp_path, use_amp, dtype):
    trainer = Trainer(tiny_config(synthetic_root, tmp_path, num_epochs=1, use_amp=use_amp))
    history = trainer.train()
    assert trainer.precision.dtype == dtype
    assert math.isfinite(history[0]["train_loss"]) and math.isfinite(history[0]["val_loss"])


def test_cli_trains_and_writes_outputs(synthetic_root, tmp_path, capsys):
    argv = ["--config", "quick", "--datasets", "DEAP", "--data-root", str(synthetic_root),
            "--training.num_epochs", "1", "--model.cnn_channels", "[4, 8, 16]", "--model.gru_hidden_size", "16",
            "--model.fusion_dim", "32", "--model.fc_dims", "[32, 16]", "--data.cache_dir", str(tmp_path / "cache"),
            "--output_dir", str(tmp_path / "out"), "--experiment_name", "cli"]
    assert main(argv) == 0
    out = tmp_path / "out" / "cli"
    assert (out / "checkpoints" / "best_model.pth").is_file() and (out / "test_results.json").is_file()
    config = ExperimentConfig.load(out / "config.json")
    assert config.model.cnn_channels == [4, 8, 16] and config.data.datasets == ["DEAP"]
    assert "Test accuracy on SYNTHETIC data" in capsys.readouterr().out


def test_cli_refuses_a_bad_override_naming_the_key(tmp_path, caplog):
    assert main(["--config", "quick", "--output_dir", str(tmp_path), "--training.batch_size", "-1"]) == 2
    assert "training.batch_size" in caplog.text and "-1" in caplog.text
