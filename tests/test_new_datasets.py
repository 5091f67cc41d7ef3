"""SEED, DREAMER, AMIGOS and FACED in their exact formats, the dataset contract, a user's own dataset, and
`gru_xnet.datasets.check`: generator layouts, readers, joint training, one clear error for corrupted files."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st

from gru_xnet.config import ConfigError, DataConfig
from gru_xnet.datasets import DatasetError, get_reader, write_synthetic
from gru_xnet.datasets.base import MARKER_NAME
from gru_xnet.datasets.registry import DATASET_NAMES, READERS, USER_DATASETS, register_dataset_module
from gru_xnet.datasets.safe_pickle import load_pickle
from gru_xnet.features import build_feature_set
from loso.run import main as loso_main

from conftest import tiny_config
from test_bad_input import BYTE_CHANGES, FUZZ, change_bytes, check_read

REPO = Path(__file__).resolve().parents[1]
NEW = ("SEED", "DREAMER", "AMIGOS", "FACED")
SHAPES = {"SEED": (62, 3), "DREAMER": (14, 2), "AMIGOS": (14, 2), "FACED": (30, 3)}
"""(channels, classes alone) of each new dataset."""

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """3 synthetic subjects of each new dataset, 8 s trials (SEED, DREAMER, AMIGOS: 2-4 trials)."""
    return write_synthetic(tmp_path_factory.mktemp("new"), [*NEW, "SEEDIV"], 3, trials=2, seconds=8.0)


def test_the_generator_writes_the_released_layouts(roots):
    seed = roots["SEED"] / "Preprocessed_EEG"
    assert sorted(p.name for p in seed.iterdir())[-1] == "label.mat" and len(list(seed.glob("*_*.mat"))) == 9
    assert scipy.io.loadmat(seed / "label.mat")["label"].ravel().tolist() == [1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1,
                                                                              0, 1, -1]
    dreamer = scipy.io.loadmat(roots["DREAMER"] / "DREAMER.mat")  # TorchEEG's path into the struct
    clip = dreamer["DREAMER"][0, 0]["Data"][0, 1]["EEG"][0, 0]["stimuli"][0, 0][1, 0]
    baseline = dreamer["DREAMER"][0, 0]["Data"][0, 1]["EEG"][0, 0]["baseline"][0, 0][1, 0]
    assert clip.shape[1] == 14 and baseline.shape == (61 * 128, 14)
    assert dreamer["DREAMER"][0, 0]["Data"][0, 0]["ScoreValence"][0, 0].shape == (2, 1)
    amigos = sorted(p.name for p in (roots["AMIGOS"] / "Data_Preprocessed").iterdir())
    assert amigos == ["Data_Preprocessed_P01.mat", "Data_Preprocessed_P03.mat", "Data_Preprocessed_P2.mat"]
    joined = scipy.io.loadmat(roots["AMIGOS"] / "Data_Preprocessed" / amigos[0])["joined_data"]
    assert joined[0, 0].shape == (13 * 128, 17)  # 5 s baseline + 8 s, samples x (14 EEG, 2 ECG, 1 GSR)
    faced = load_pickle(roots["FACED"] / "Processed_data" / "sub002.pkl")
    assert faced.shape == (28, 32, 2000) and faced.dtype == np.float32
    for name, inner in (("SEED", "Preprocessed_EEG"), ("AMIGOS", "Data_Preprocessed"), ("FACED", "Processed_data")):
        assert (roots[name] / MARKER_NAME).is_file() and not (roots[name] / inner / MARKER_NAME).exists()


@pytest.mark.parametrize("name", NEW)
def test_each_reader_gives_its_channels_classes_and_stimuli(roots, name):
    channels, classes = SHAPES[name]
    reader = get_reader(name, roots[name])
    assert reader.subjects()[:1] and reader.n_classes == classes == len(reader.class_names)
    trials = reader.read_subject(reader.subjects()[0])
    assert all(t.signal.shape[0] == channels and t.signal.dtype == np.float32 for t in trials)
    assert {t.label for t in trials} <= set(range(classes)) and reader.synthetic


def test_seed_finds_trials_by_suffix_and_sessions_by_date(tmp_path):
    folder = tmp_path / "SEED" / "Preprocessed_EEG"
    folder.mkdir(parents=True)
    scipy.io.savemat(folder / "label.mat", {"label": np.array([[1, 0, -1]])})
    for date, value in (("20140611", 2.0), ("20140420", 1.0), ("20140702", 3.0)):
        # keys in a shuffled order, initials that are not any fixed list's
        scipy.io.savemat(folder / f"7_{date}.mat", {"xyz_eeg3": np.full((62, 400), value), "xyz_eeg1": np.full(
            (62, 400), value), "xyz_eeg2": np.full((62, 400), value)})
    trials = get_reader("SEED", tmp_path / "SEED").read_subject("7")
    assert [(t.session, t.trial, t.label, float(t.signal[0, 0])) for t in trials[:3]] == [
        ("1", 1, 2, 1.0), ("1", 2, 1, 1.0), ("1", 3, 0, 1.0)]
    assert [t.session for t in trials[3:]] == ["2"] * 3 + ["3"] * 3 and trials[-1].signal[0, 0] == 3.0


def test_the_four_datasets_run_through_loso_with_their_label_statements(roots, tmp_path):
    config = tiny_config(roots["SEED"].parent, tmp_path, datasets=NEW, num_epochs=1)
    config.save(tmp_path / "config.json")
    out = tmp_path / "out"
    assert loso_main(["--config", str(tmp_path / "config.json"), "--local", "--output", str(out)]) == 0
    table = pd.read_csv(out / "tables" / "per_dataset.csv")
    assert set(table["dataset"]) == set(NEW)
    labels = json.loads((out / "run.json").read_text())["labels"]
    assert set(labels) == set(NEW) and "neutral and positive -> non-negative" in labels["SEED"]
    assert "dropped" in labels["AMIGOS"] and "(1-5)" in labels["DREAMER"]


def test_amigos_stimuli_are_the_files_video_ids_and_its_participants_are_stated(roots, tmp_path):
    features = build_feature_set(DataConfig(datasets=["AMIGOS"], data_root=str(roots["AMIGOS"]),
                                            cache_dir=str(tmp_path)), representation="de")
    orders, reader = {}, get_reader("AMIGOS", roots["AMIGOS"])
    for index, key in enumerate(features.subjects):
        rows = np.flatnonzero(features.subject_index == index)
        shown = dict(zip(features.trials[rows].tolist(), features.stimulus[rows].tolist()))
        [file] = reader.source_files(key.subject)
        ids = [str(np.ravel(v)[0]) for v in scipy.io.loadmat(file)["VideoIDs"].ravel()]
        orders[key.subject] = [shown[t] for t in sorted(shown)]
        assert orders[key.subject] == [f"AMIGOS/video-{i}" for i in ids]
    assert len({tuple(o) for o in orders.values()}) > 1 and len({frozenset(o) for o in orders.values()}) == 1
    assert "every participant read (none skipped" in reader.label_description()
    leaving = get_reader("AMIGOS", roots["AMIGOS"], skip_participants=[2])
    assert leaving.subjects() == ["P01", "P03"] and "left out: participant(s) 2" in leaving.label_description()
    assert get_reader("AMIGOS", roots["AMIGOS"], skip_participants="torcheeg").options()["skip_participants"] == [
        9, 12, 21, 22, 23, 24, 33]
    with pytest.raises(ConfigError, match=r"dataset_options\['AMIGOS'\]\.skip_participants"):
        DataConfig(datasets=["AMIGOS"], dataset_options={"AMIGOS": {"skip_participants": ["P9"]}})


def test_faceds_passband_is_said_to_be_unknown_under_de(roots, tmp_path):
    features = build_feature_set(DataConfig(datasets=["FACED"], data_root=str(roots["FACED"]), cache_dir=str(tmp_path),
                                            max_subjects=1), representation="de")
    assert any("FACED" in note and "(unknown)" in note for note in features.protocol["passband_notes"])


def test_seed_and_seediv_train_together_on_their_62_shared_channels(roots, tmp_path):
    config = tiny_config(roots["SEED"].parent, tmp_path, datasets=("SEED", "SEEDIV")).data
    features = build_feature_set(config)
    assert len(features.channel_names) == 62 and features.n_classes == 2 and set(features.datasets) == {"SEED", "SEEDIV"}
    assert {s.split("/")[0] for s in features.stimulus} == {"SEED", "SEEDIV"}
    assert "SEED/c01" in set(features.stimulus) and "SEEDIV/s2-c01" in set(features.stimulus)


def test_dataset_options_reach_the_reader_and_bad_ones_name_their_key():
    config = DataConfig(datasets=["DREAMER"], dataset_options={"dreamer": {"label_dimension": "arousal"}})
    assert config.reader_options("DREAMER")["label_dimension"] == "arousal" and config.n_classes == 2
    assert DataConfig(datasets=["FACED"], dataset_options={"FACED": {"label": "emotion"}}).n_classes == 9
    with pytest.raises(ConfigError, match=r"data.dataset_options\['DREAMER'\].bogus"):
        DataConfig(datasets=["DREAMER"], dataset_options={"DREAMER": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"data.dataset_options\['FACED'\].label.*combined"):
        DataConfig(datasets=["FACED", "SEED"], dataset_options={"FACED": {"label": "emotion"}})
    with pytest.raises(ConfigError, match="data.deap_threshold"):
        DataConfig(deap_threshold=12.0)


@pytest.fixture
def own_registry():
    """The dataset registry as it was before the test: a user's dataset registered by it is forgotten after."""
    saved = dict(READERS), list(DATASET_NAMES), dict(USER_DATASETS)
    yield
    READERS.clear(), USER_DATASETS.clear(), DATASET_NAMES.clear()
    READERS.update(saved[0]), DATASET_NAMES.extend(saved[1]), USER_DATASETS.update(saved[2])


def test_a_dataset_defined_outside_the_package_runs_through_loso(tmp_path, own_registry):
    module = tmp_path / "elsewhere" / "my_dataset.py"
    module.parent.mkdir()
    shutil.copy(REPO / "examples" / "my_dataset.py", module)
    out = tmp_path / "out"
    assert loso_main(["--dataset-module", str(module), "--datasets", "MYEEG", "GAMEEMO", "--model", "de_logreg",
                      "--synthetic", "--local", "--output", str(out), "--output_dir", str(tmp_path),
                      "--data.cache_dir", str(tmp_path / "cache")]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["dataset_modules"]["MYEEG"] == USER_DATASETS["MYEEG"] and set(run["datasets"]) == {"MYEEG", "GAMEEMO"}
    assert (pd.read_csv(out / "tables" / "per_dataset.csv")["balanced_accuracy_mean"] > 75).all()
    with pytest.raises(DatasetError, match="expected a new name"):
        (tmp_path / "clash.py").write_text("from gru_xnet.datasets.deap import DEAPReader\n"
                                           "class Clash(DEAPReader):\n    pass\n")
        register_dataset_module(tmp_path / "clash.py")


def test_check_reports_each_dataset_and_what_is_wrong(roots, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(roots["SEED"].parent, data)
    (data / "SEED" / "Preprocessed_EEG" / "label.mat").unlink()
    command = [sys.executable, "-m", "gru_xnet.datasets.check", "--data-root", str(data)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FACED: " in result.stdout and "84 trial(s)" in result.stdout and "label.mat" in result.stdout
    assert "DEAP" not in result.stdout  # not there, not named: not listed


NEW_FILES = {"SEED": "Preprocessed_EEG/1_*.mat", "DREAMER": "DREAMER.mat", "AMIGOS": "Data_Preprocessed/*P01.mat",
             "FACED": "Processed_data/sub000.pkl"}


@pytest.mark.bad_input
@settings(FUZZ, max_examples=60)
@given(name=st.sampled_from(NEW), change=BYTE_CHANGES)
def test_new_readers_on_corrupted_files_give_valid_trials_or_one_error_naming_the_file(roots, tmp_path_factory, name,
                                                                                      change):
    root = tmp_path_factory.mktemp("corrupt") / name
    shutil.copytree(roots[name], root)
    target = next(root.glob(NEW_FILES[name]))
    target.write_bytes(change_bytes(target.read_bytes(), change))
    subject = get_reader(name, root).subjects()[0] if name != "DREAMER" else "1"
    try:
        check_read(name, root, subject, target, *SHAPES[name])
    except DatasetError as exc:  # listing the subjects may already read the corrupted file
        assert target.name in str(exc)


@pytest.mark.bad_input
@pytest.mark.parametrize("content, message", [
    (np.zeros((28, 31, 100)), r"sub000\.pkl: expected a real numeric array"),
    ({"data": 1}, r"sub000\.pkl: expected a real numeric array"),
    (np.full((28, 32, 100), np.nan), r"sub000\.pkl clip 1: expected finite"),
])
def test_faced_refuses_other_arrays_naming_the_file(roots, tmp_path, content, message):
    root = tmp_path / "FACED"
    shutil.copytree(roots["FACED"], root)
    (root / "Processed_data" / "sub000.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(DatasetError, match=message):
        get_reader("FACED", root).read_subject("sub000")


def test_dreamer_baseline_subtraction_removes_the_pre_clip_mean_feature(roots, tmp_path):
    options = {"dataset_options": {"DREAMER": {"baseline": "subtract"}}}
    config = DataConfig(datasets=["DREAMER"], data_root=str(roots["DREAMER"]), cache_dir=str(tmp_path))
    subtracted = DataConfig(**{**config.__dict__, **options})
    plain, relative = build_feature_set(config), build_feature_set(subtracted)
    assert plain.features.shape == relative.features.shape
    assert plain.protocol["data_fingerprint"] != relative.protocol["data_fingerprint"]
    trial = get_reader("DREAMER", roots["DREAMER"], baseline="subtract").read_subject("1")[0]
    reference = config.stft("DREAMER").transform(trial.baseline.astype(np.float64)).mean(axis=-1)  # (C, F)
    rows = np.flatnonzero((plain.subject_index == 0) & (plain.trials == 1))
    difference = plain.features[rows] - relative.features[rows]  # (n, C, F, T): the reference at every frame
    np.testing.assert_allclose(difference, np.broadcast_to(reference[None, :, :, None], difference.shape), atol=1e-4)
    with pytest.raises(DatasetError, match="baseline subtraction is defined for stft and de"):
        build_feature_set(subtracted, representation="raw")
