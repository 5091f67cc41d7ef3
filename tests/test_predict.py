"""`python -m gru_xnet.predict`: a trained checkpoint applied to recordings, per trial, with clear refusals."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from gru_xnet.predict import main, predict
from gru_xnet.trainer import Trainer

from conftest import tiny_config


def _train(root, tmp_path, dataset: str):
    """A tiny fp32 model trained 2 epochs on one dataset; returns the trainer, its test results and best checkpoint."""
    trainer = Trainer(tiny_config(root, tmp_path, datasets=(dataset,), num_epochs=2, use_amp=False,
                                  early_stopping=False))
    trainer.train()
    return trainer, trainer.test(), trainer.output_dir / "checkpoints" / "best_model.pth"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def deap_model(synthetic_root, tmp_path_factory):
    return _train(synthetic_root, tmp_path_factory.mktemp("deap_model"), "DEAP")


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_one_csv_row_per_trial_and_printed_accuracy_matches(deap_model, synthetic_root, tmp_path, capsys):
    _, _, checkpoint = deap_model
    output = tmp_path / "pred.csv"
    assert main(["--checkpoint", str(checkpoint), "--dataset", "deap", "--data-root", str(synthetic_root),
                 "--output", str(output)]) == 0
    rows = _rows(output)
    # The fixture writes 4 subjects x 6 trials of 12 s: 3 windows of 4 s per trial.
    assert len(rows) == 24 and len({(r["subject"], r["session"], r["trial"]) for r in rows}) == 24
    assert {r["subject"] for r in rows} == {"s01", "s02", "s03", "s04"}
    assert all(r["n_windows"] == "3" and r["dataset"] == "DEAP" and r["synthetic"] == "True" for r in rows)
    for r in rows:
        assert abs(float(r["prob_low valence"]) + float(r["prob_high valence"]) - 1.0) < 1e-5
        assert r["predicted_name"] == ("high valence" if r["predicted"] == "1" else "low valence")
        assert r["correct"] == str(r["predicted"] == r["true_label"])
    printed = capsys.readouterr().out
    trial_accuracy = float(re.search(r"Trial-level accuracy on SYNTHETIC data: ([\d.]+)% over 24 trials", printed)[1])
    assert trial_accuracy == pytest.approx(100.0 * sum(r["correct"] == "True" for r in rows) / 24, abs=0.005)
    assert "over 72 windows" in printed


def test_test_subject_predictions_match_the_trainers_test(deap_model, synthetic_root):
    _, results, checkpoint = deap_model
    (test_subject,) = results["test_subjects"]
    result = predict(checkpoint, "DEAP", synthetic_root, subjects=[test_subject.split("/")[1]])
    assert result.n_windows == results["n"]
    assert result.window_accuracy == pytest.approx(results["accuracy"])
    assert {r["subject"] for r in result.rows} == {test_subject.split("/")[1]} and len(result.rows) == 6


@pytest.mark.parametrize("model", ["tsception", "dgcnn", "eegconformer"])
def test_models_built_for_their_rate_and_channels_are_rebuilt_from_the_checkpoint(synthetic_root, tmp_path, model):
    config = tiny_config(synthetic_root, tmp_path, num_epochs=1, use_amp=False, early_stopping=False)
    config.model.name = model
    trainer = Trainer(config)
    trainer.train()
    results = trainer.test()
    checkpoint = trainer.output_dir / "checkpoints" / "best_model.pth"
    (test_subject,) = results["test_subjects"]
    result = predict(checkpoint, "DEAP", synthetic_root, subjects=[test_subject.split("/")[1]])
    assert result.n_windows == results["n"] and result.window_accuracy == pytest.approx(results["accuracy"])


def test_model_of_fewer_channels_applies_to_a_dataset_holding_them(synthetic_root, tmp_path):
    _, _, checkpoint = _train(synthetic_root, tmp_path, "GAMEEMO")  # 14 channels, all present in DEAP
    result = predict(checkpoint, "DEAP", synthetic_root, subjects=["s01"])
    assert len(result.rows) == 6 and result.n_windows == 18 and result.synthetic


def test_missing_channels_are_named(deap_model, synthetic_root, tmp_path, caplog):
    _, _, checkpoint = deap_model
    assert main(["--checkpoint", str(checkpoint), "--dataset", "GAMEEMO", "--data-root", str(synthetic_root),
                 "--output", str(tmp_path / "x.csv")]) == 2
    assert "GAMEEMO lacks 18 of the model's 32 channels" in caplog.text and "FP1" in caplog.text
    assert not (tmp_path / "x.csv").exists()


def test_unknown_subject_is_refused_listing_those_found(deap_model, synthetic_root, tmp_path, caplog):
    _, _, checkpoint = deap_model
    assert main(["--checkpoint", str(checkpoint), "--dataset", "DEAP", "--data-root", str(synthetic_root),
                 "--subjects", "s99", "--output", str(tmp_path / "x.csv")]) == 2
    assert "no subject s99" in caplog.text and "s01, s02, s03, s04" in caplog.text


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_bad_checkpoint_exits_2_naming_the_file(deap_model, synthetic_root, tmp_path, caplog, damage):
    _, _, checkpoint = deap_model
    bad = tmp_path / "bad.pth"
    if damage == "truncated":
        bad.write_bytes(checkpoint.read_bytes()[:1000])
    assert main(["--checkpoint", str(bad), "--dataset", "DEAP", "--data-root", str(synthetic_root),
                 "--output", str(tmp_path / "x.csv")]) == 2
    assert f"checkpoint {bad}" in caplog.text


def test_attention_weights_are_saved_per_window(deap_model, synthetic_root, tmp_path, capsys):
    trainer, _, checkpoint = deap_model
    path = tmp_path / "attention.npz"
    assert main(["--checkpoint", str(checkpoint), "--dataset", "DEAP", "--data-root", str(synthetic_root),
                 "--subjects", "s01", "--output", str(tmp_path / "p.csv"), "--attention", str(path)]) == 0
    saved = np.load(path, allow_pickle=False)
    steps = trainer.model.sequence_length
    assert saved["attention"].shape == (18, steps, steps) and steps == 8
    np.testing.assert_allclose(saved["attention"].sum(axis=-1), 1.0, atol=1e-4)  # each query's weights sum to 1
    assert set(saved["subject"]) == {"s01"} and len(set(zip(saved["session"], saved["trial"]))) == 6
    assert f"Attention weights (18, {steps}, {steps})" in capsys.readouterr().out
