"""Input representations: shapes, the DE of a window, raw resampling, normalisation, augmentation, config rules."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from gru_xnet.config import ConfigError, ExperimentConfig
from gru_xnet.data_loader import Normalizer, make_loaders
from gru_xnet.features import build_feature_set
from gru_xnet.models import MODELS
from gru_xnet.preprocessing import band_filter, differential_entropy
from gru_xnet.representations import DifferentialEntropy, Raw, window_trial
from gru_xnet.split import subject_split

from conftest import tiny_config


@pytest.fixture(scope="module")
def data(synthetic_root, tmp_path_factory):
    """The DEAP data config of the tiny tests, its cache in a folder of this module."""
    return tiny_config(synthetic_root, tmp_path_factory.mktemp("representations")).data


@pytest.mark.parametrize("name, shape", [("stft", (32, 22, 29)), ("raw", (32, 512)), ("de", (32, 5, 4))])
def test_each_representation_gives_its_window_shape_and_says_so(data, name, shape):
    features = build_feature_set(data, representation=name)
    assert features.features.shape[1:] == shape and features.features.dtype == np.float32
    assert features.representation == name and np.isfinite(features.features).all()
    described = features.protocol["representation"]
    assert described["name"] == name and described["layout"].count(",") == len(shape) - 1
    stft = build_feature_set(data, representation="stft")
    assert features.protocol["data_fingerprint"] != stft.protocol["data_fingerprint"] or name == "stft"


def test_de_windows_are_the_de_of_each_segment_of_the_whole_filtered_trial():
    rng = np.random.default_rng(0)
    trial = rng.normal(size=(3, 128 * 10))  # 3 channels, 10 s at 128 Hz
    de = DifferentialEntropy({"bands": {"theta": [4, 8], "alpha": [8, 14]}, "segment_seconds": 1.0})
    windows = de.windows(trial, 128.0, window_seconds=4.0, overlap=0.5)  # windows start every 2 s
    assert windows.shape == (4, 3, 2, 4)
    filtered = band_filter(trial, 128.0, {"theta": (4, 8), "alpha": (8, 14)})  # (B, C, T), the whole trial
    segment = filtered[:, :, 2 * 128 + 3 * 128: 2 * 128 + 4 * 128]  # window 1, its 4th second
    expected = 0.5 * np.log(2 * np.pi * np.e * segment.var(axis=-1))  # (B, C)
    np.testing.assert_allclose(windows[1, :, :, 3], expected.T, rtol=1e-5)
    # filtering the segment alone (what a per-window DE would do) gives other numbers: edges differ
    alone = differential_entropy(trial[:, 5 * 128: 6 * 128], 128.0, {"theta": (4, 8), "alpha": (8, 14)})
    assert not np.allclose(windows[2, :, :, 1], alone, rtol=1e-3)


def test_a_flat_channel_in_de_is_refused_naming_the_channel():
    trial = np.random.default_rng(1).normal(size=(3, 128 * 8))
    trial[1] = 0.0
    with pytest.raises(ValueError, match="channel 1 is flat"):
        DifferentialEntropy({"bands": {"alpha": [8, 14]}, "segment_seconds": 1.0}).windows(trial, 128.0, 4.0, 0.0)


def test_raw_resamples_every_dataset_to_the_lowest_rate(synthetic_root, tmp_path):
    config = tiny_config(synthetic_root, tmp_path, datasets=("DEAP", "SEEDIV"))
    features = build_feature_set(config.data, representation="raw")
    assert features.features.shape[1:] == (len(features.channel_names), 512)  # 4 s at 128 Hz, SEED-IV's 200 Hz too
    assert "128 Hz" in features.protocol["representation"]["statement"]
    tone = np.sin(2 * np.pi * 10 * np.arange(200 * 8) / 200)[None]  # 10 Hz at 200 Hz, 8 s
    resampled = Raw({"sampling_rate": 128.0}).windows(tone, 200.0, 8.0, 0.0)[0, 0]
    np.testing.assert_allclose(resampled[100:-100], np.sin(2 * np.pi * 10 * np.arange(1024) / 128)[100:-100],
                               atol=0.02)


@pytest.mark.parametrize("shape, rows", [((40, 3, 100), (3, 1)), ((40, 3, 5, 4), (3, 5, 1))])
def test_normalisation_is_per_row_of_the_last_axis(shape, rows):
    x = np.random.default_rng(2).normal(3.0, 2.0, size=shape).astype(np.float32) * np.arange(1, shape[1] + 1).reshape(
        (1, -1) + (1,) * (len(shape) - 2))
    normalizer = Normalizer.fit(x, np.arange(30))
    assert normalizer.mean.shape == rows
    z = normalizer(x[:30])
    np.testing.assert_allclose(z.mean(axis=(0, -1)), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, -1)), 1, atol=1e-3)


def test_augmentation_applies_to_stft_only(data):
    sizes = {}
    for name in ("stft", "de"):
        features = build_feature_set(data, representation=name)
        split = subject_split(features, data, seed=0)
        loaders = make_loaders(features, split, data, batch_size=8, seed=0)
        sizes[name] = len(loaders.train) / len(loaders.train.windows)
    assert sizes == {"stft": 1 + data.augmentation_ratio, "de": 1.0}


def test_auto_takes_the_models_representation_and_an_explicit_other_one_is_refused(data):
    assert MODELS["eegnet"].representation_of(data) == "raw"
    assert MODELS["gru_xnet"].representation_of(data) == "stft"
    assert MODELS["de_svm"].representation_of(dataclasses.replace(data, representation="de")) == "de"
    with pytest.raises(ConfigError, match="data.representation.*'stft'.*eegnet.*expected 'auto' or 'raw'"):
        MODELS["eegnet"].representation_of(dataclasses.replace(data, representation="stft"))


def test_new_keys_at_their_defaults_keep_a_configs_hash():
    config = ExperimentConfig()
    data = config.to_dict()
    data.pop("experiment_name"), data.pop("output_dir"), data.pop("tuned_on")
    data["data"].pop("num_workers"), data["data"].pop("cache_dir")
    for section, key in (("model", "name"), ("model", "params"), ("data", "representation"), ("data", "de_bands"),
                         ("data", "de_segment_seconds"), ("data", "dataset_options"), ("data", "de_smoothing"),
                         ("data", "de_smoothing_frames"), ("data", "de_log_base"), ("data", "raw"),
                         ("training", "optimizer"), ("training", "adam_eps"), ("training", "cosine_period"),
                         ("training", "label_smoothing")):
        data[section].pop(key)  # what the config held before these keys existed
    before = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    assert config.fingerprint() == before
    config.data.representation = "raw"
    assert config.fingerprint() != before


@pytest.mark.parametrize("key, value, message", [
    ("data.representation", "wavelet", "data.representation"),
    ("data.de_bands", '{"alpha": [14, 8]}', "data.de_bands"),
    ("data.de_segment_seconds", "5", "data.de_segment_seconds"),
    ("model.name", "not a name", "model.name"),
])
def test_bad_representation_and_model_keys_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig().set_option(key, value)


def test_window_trial_cuts_any_leading_axes():
    x = np.arange(2 * 3 * 10).reshape(2, 3, 10)
    windows = window_trial(x, 4, 3)
    assert windows.shape == (3, 2, 3, 4)
    np.testing.assert_array_equal(windows[1], x[..., 3:7])
