"""DE smoothing (LDS, moving average, log base) within a trial, and the DE features SEED and SEED-IV release, read by
key name and agreeing with the raw source on everything but the values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from gru_xnet.config import ConfigError, DataConfig
from gru_xnet.datasets import write_synthetic
from gru_xnet.datasets.base import DatasetError
from gru_xnet.datasets.registry import get_reader
from gru_xnet.de_smoothing import OBSERVATION_NOISE, PRIOR_VARIANCE, PROCESS_NOISE, lds, moving_average
from gru_xnet.features import build_feature_set
from gru_xnet.representations import DifferentialEntropy


def test_lds_leaves_a_constant_series_unchanged_and_matches_three_hand_computed_steps():
    np.testing.assert_allclose(lds(np.full((6, 2, 3), -4.2)), -4.2)
    # x = 1, 2, 3 (mean 2): the Kalman recursion of a random walk, LibEER's parameters, by hand
    k0 = PRIOR_VARIANCE / (PRIOR_VARIANCE + OBSERVATION_NOISE)
    u0, v0 = 2 + k0 * (1 - 2), (1 - k0) * PRIOR_VARIANCE
    p1 = v0 + PROCESS_NOISE
    k1 = p1 / (p1 + OBSERVATION_NOISE)
    u1, v1 = u0 + k1 * (2 - u0), (1 - k1) * p1
    p2 = v1 + PROCESS_NOISE
    u2 = u1 + p2 / (p2 + OBSERVATION_NOISE) * (3 - u1)
    np.testing.assert_allclose(lds(np.array([1.0, 2.0, 3.0])), [u0, u1, u2], rtol=1e-12)
    np.testing.assert_allclose([u0, u1, u2], [1.990099, 1.990197, 2.000197], atol=1e-6)


def test_moving_average_is_centred_and_cut_at_the_trial_ends():
    np.testing.assert_allclose(moving_average(np.arange(5.0), 3), [0.5, 1, 2, 3, 3.5])
    with pytest.raises(ValueError, match="odd"):
        moving_average(np.arange(5.0), 4)


def test_smoothing_restarts_at_every_trial():
    """Two trials: the second's smoothed DE equals that trial smoothed alone; nothing of the first leaks in."""
    rng = np.random.default_rng(3)
    first, second = rng.normal(size=(2, 128 * 8)), 5 * rng.normal(size=(2, 128 * 8))
    de = DifferentialEntropy({"bands": {"alpha": [8, 14]}, "segment_seconds": 1.0, "smoothing": "lds"})
    alone = de.windows(second, 128.0, 4.0, 0.0)
    joined = np.concatenate([de.windows(first, 128.0, 4.0, 0.0), de.windows(second, 128.0, 4.0, 0.0)])
    np.testing.assert_array_equal(joined[2:], alone)
    plain = DifferentialEntropy({"bands": {"alpha": [8, 14]}, "segment_seconds": 1.0}).windows(second, 128.0, 4.0, 0.0)
    assert alone.shape == plain.shape == (2, 2, 1, 4) and not np.allclose(alone, plain)
    base2 = DifferentialEntropy({"bands": {"alpha": [8, 14]}, "segment_seconds": 1.0, "log_base": "2"})
    np.testing.assert_allclose(base2.windows(second, 128.0, 4.0, 0.0), plain / np.log(2), rtol=1e-5)


def test_smoothing_needs_windows_of_whole_segments_and_released_frames_are_not_smoothed_again():
    with pytest.raises(ConfigError, match="data.window_seconds/window_overlap.*whole number of data.de_segment_seconds"):
        DataConfig(datasets=["DEAP"], de_smoothing="lds", window_seconds=4.0, window_overlap=0.3)
    with pytest.raises(ConfigError, match="data.de_smoothing.*'none' with data.dataset_options\\['SEED'\\].source"):
        DataConfig(datasets=["SEED"], de_smoothing="lds", dataset_options={"SEED": {"source": "released"}})
    with pytest.raises(ConfigError, match="data.window_seconds.*whole number of SEEDIV's released 4 s DE frames"):
        DataConfig(datasets=["SEEDIV"], window_seconds=6.0, dataset_options={"SEEDIV": {"source": "released"}})


@pytest.fixture(scope="module")
def released_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    write_synthetic(root, ["SEED", "SEEDIV"], 2, trials=4, seconds=9.0, released=True)
    return root


@pytest.mark.parametrize("dataset, frame_seconds", [("SEED", 1.0), ("SEEDIV", 4.0)])
def test_the_released_source_has_the_raw_sources_labels_sessions_trials_and_stimuli(released_root, dataset,
                                                                                    frame_seconds):
    raw = get_reader(dataset, released_root / dataset)
    released = get_reader(dataset, released_root / dataset, source="released")
    for subject in raw.subjects():
        a, b = raw.read_subject(subject), released.read_subject(subject)
        key = lambda t: (t.label, t.session, t.trial, t.stimulus or raw.stimulus(int(t.session), t.trial))  # noqa: E731
        assert [key(t) for t in a] == [key(t) for t in b]
        for signal, frames in zip(a, b):  # one frame per whole frame_seconds of signal, (C, bands, frames)
            assert frames.signal.shape == (62, 5, int(signal.signal.shape[1] / 200.0 // frame_seconds))
            assert frames.sampling_rate == 1.0 / frame_seconds
    assert released.options()["source"] == "released" and "source" not in raw.options()  # so in the cache key


def test_released_keys_are_read_by_name_from_a_hand_built_file(tmp_path):
    """A SEED folder whose feature file lists its keys out of order, with known values: read back exactly."""
    features = tmp_path / "SEED" / "ExtractedFeatures"
    features.mkdir(parents=True)
    scipy.io.savemat(features / "label.mat", {"label": np.array([[1, 0, -1]])})
    trials = {k: np.arange(62 * k * 5, dtype=np.float64).reshape(62, k, 5) / 100 for k in (1, 2, 3)}
    variables = {"de_movingAve2": trials[2] + 1, "de_LDS3": trials[3], "psd_LDS1": trials[1] * 9, "de_LDS1": trials[1],
                 "de_LDS2": trials[2], "de_movingAve1": trials[1] + 1, "de_movingAve3": trials[3] + 1}
    for name in ("1_20130401", "1_20130402", "1_20130403"):
        scipy.io.savemat(features / f"{name}.mat", variables)
    reader = get_reader("SEED", tmp_path / "SEED", source="released")
    got = reader.read_subject("1")
    assert [(t.session, t.trial, t.label) for t in got[:3]] == [("1", 1, 2), ("1", 2, 1), ("1", 3, 0)]
    for trial in got[:3]:
        np.testing.assert_allclose(trial.signal, np.transpose(trials[trial.trial], (0, 2, 1)), rtol=1e-6)
    moving = get_reader("SEED", tmp_path / "SEED", source="released", released_feature="de_movingAve")
    np.testing.assert_allclose(moving.read_subject("1")[1].signal, np.transpose(trials[2] + 1, (0, 2, 1)), rtol=1e-6)


def test_a_folder_without_the_released_features_is_refused_naming_it(tmp_path):
    write_synthetic(tmp_path, ["SEED"], 1, trials=2, seconds=4.0)  # EEG only
    with pytest.raises(DatasetError, match=f"expected the released features folder {tmp_path / 'SEED' / 'ExtractedFeatures'}"):
        get_reader("SEED", tmp_path / "SEED", source="released")


def test_released_frames_feed_the_de_representation_only(released_root, tmp_path):
    data = DataConfig(datasets=["SEED"], data_root=str(released_root), cache_dir=str(tmp_path),
                      dataset_options={"SEED": {"source": "released"}})
    features = build_feature_set(data, representation="de")
    assert features.features.shape[1:] == (62, 5, 4) and features.sampling_rate == 1.0
    assert "released DE frames" in features.protocol["representation"]["statement"]
    with pytest.raises(ConfigError, match=r"source.*= 'released'.*'raw' representation cannot take"):
        build_feature_set(data, representation="raw")
    with pytest.raises(ConfigError, match="run them apart"):
        DataConfig(datasets=["SEED", "DEAP"], dataset_options={"SEED": {"source": "released"}})
