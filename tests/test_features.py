"""Feature building, the STFT cache, subject-wise splits, normalisation, augmentation and sampling."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from gru_xnet.config import ConfigError, DataConfig
from gru_xnet.data_loader import Normalizer
from gru_xnet.datasets import DatasetError
from gru_xnet.features import build_feature_set
from gru_xnet.representations import window_trial
from gru_xnet.preprocessing import (EDGE_TIME_CONSTANTS, FEATURE_TOLERANCE, FILTER_TOLERANCE, STFTPreprocessor,
                                    zero_phase_filter)
from gru_xnet.split import Split, subject_split, validation_subjects


def data_config(root: Path, tmp_path: Path, datasets=("DEAP",), **kwargs) -> DataConfig:
    return DataConfig(datasets=list(datasets), data_root=str(root), cache_dir=str(tmp_path / "cache"), **kwargs)


@pytest.mark.parametrize("datasets, channels", [(("DEAP",), 32), (("SEEDIV",), 62), (("GAMEEMO",), 14),
                                                (("DEAP", "SEEDIV", "GAMEEMO"), 14), (("DEAP", "SEEDIV"), 32)])
def test_any_subset_gives_one_shape(synthetic_root, tmp_path, datasets, channels):
    features = build_feature_set(data_config(synthetic_root, tmp_path, datasets))
    n, c, f, t = features.features.shape
    assert c == channels == len(features.channel_names) and f == len(features.frequencies)
    assert features.datasets == list(datasets) and features.synthetic
    assert len(features.labels) == len(features.subject_index) == len(features.trials) == n
    assert {s.dataset for s in features.subjects} == set(datasets) and len(features.subjects) == 4 * len(datasets)
    if len(datasets) == 3:
        assert features.channel_names == ("AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6", "O1", "O2",
                                          "P7", "P8", "T7", "T8")


def test_windows_and_stft_match_direct_computation(synthetic_root, tmp_path):
    from gru_xnet.datasets import get_reader

    config = data_config(synthetic_root, tmp_path, window_seconds=2.0, window_overlap=0.5)
    features = build_feature_set(config)
    trial = get_reader("DEAP", synthetic_root / "DEAP").read_subject("s01")[0]
    windows = window_trial(trial.signal, 256, 128)
    assert len(windows) == (trial.signal.shape[1] - 256) // 128 + 1
    expected = STFTPreprocessor.for_sampling_rate(128, 0.5, 0.75, (0.5, 50.0)).transform(windows)
    first = features.windows_of([0])[: len(windows)]
    np.testing.assert_allclose(features.features[first], expected, rtol=1e-5)
    assert (features.trials[first] == 1).all() and (features.labels[first] == trial.label).all()


def test_cache_hit_miss_and_invalidation(synthetic_root, tmp_path, caplog):
    config = data_config(synthetic_root, tmp_path)
    cold = build_feature_set(config)
    entries = sorted((tmp_path / "cache" / "features" / "DEAP").iterdir())
    assert len(entries) == 4
    stamps = {e: (e / "features.npy").stat().st_mtime_ns for e in entries}
    warm = build_feature_set(config)
    np.testing.assert_array_equal(cold.features, warm.features)
    assert {e: (e / "features.npy").stat().st_mtime_ns for e in entries} == stamps  # hit: nothing rewritten
    changed = build_feature_set(data_config(synthetic_root, tmp_path, stft_overlap=0.875))
    assert changed.features.shape[-1] > cold.features.shape[-1]  # a parameter change is a miss
    relabelled = build_feature_set(data_config(synthetic_root, tmp_path, deap_label="arousal"))
    assert not np.array_equal(relabelled.labels, cold.labels)  # label options are part of the key
    assert len(list((tmp_path / "cache" / "features" / "DEAP").iterdir())) == 12


def test_cache_written_trial_by_trial_holds_what_a_build_without_cache_computes(synthetic_root, tmp_path):
    config = data_config(synthetic_root, tmp_path, ("SEEDIV",))  # 3 session files per subject, filtered
    cold, warm = build_feature_set(config), build_feature_set(config)
    uncached = build_feature_set(data_config(synthetic_root, tmp_path, ("SEEDIV",), cache_stft=False))
    for built in (cold, warm):
        for name in ("features", "labels", "subject_index", "trials", "sessions", "stimulus"):
            np.testing.assert_array_equal(getattr(built, name), getattr(uncached, name))
    assert sorted(np.unique(cold.sessions).tolist()) == [1, 2, 3] and cold.features.dtype == np.float32
    for entry in (tmp_path / "cache" / "features" / "SEEDIV").iterdir():  # each .npy whole, its header rewritten
        meta = json.loads((entry / "meta.json").read_text())
        assert list(np.load(entry / "features.npy", allow_pickle=False).shape) == meta["features"]["shape"]


def test_changed_source_file_is_a_miss(synthetic_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "DEAP", root / "DEAP")
    config = data_config(root, tmp_path)
    before = build_feature_set(config)
    source = root / "DEAP" / "data_preprocessed_python" / "s02.dat"
    shutil.copy(root / "DEAP" / "data_preprocessed_python" / "s03.dat", source)
    os.utime(source, ns=(1, 1))
    after = build_feature_set(config)
    rows_before, rows_after = before.windows_of([1]), after.windows_of([1])
    assert not np.array_equal(before.features[rows_before], after.features[rows_after])
    np.testing.assert_array_equal(after.features[rows_after], after.features[after.windows_of([2])])


def test_truncated_cache_entry_is_rebuilt_and_others_kept(synthetic_root, tmp_path, caplog):
    config = data_config(synthetic_root, tmp_path)
    reference = build_feature_set(config)
    entries = sorted((tmp_path / "cache" / "features" / "DEAP").iterdir())
    victim = entries[1] / "features.npy"
    victim.write_bytes(victim.read_bytes()[:1000])
    (entries[2] / "meta.json").write_text("{not json")
    untouched = (entries[0] / "features.npy").stat().st_mtime_ns
    rebuilt = build_feature_set(config)
    np.testing.assert_array_equal(reference.features, rebuilt.features)
    assert "corrupt" in caplog.text
    assert (entries[0] / "features.npy").stat().st_mtime_ns == untouched


def test_an_entry_another_process_stored_meanwhile_is_kept_for_its_reader(synthetic_root, tmp_path):
    # Two runs on one cache both miss a subject and compute it. The later one keeps the entry the earlier one stored,
    # which that run may be reading (it used to delete it to put its own copy in place: the reader failed).
    from gru_xnet.features import _ARRAYS, SubjectFeatures, _load_entry, _store_entry

    build_feature_set(data_config(synthetic_root, tmp_path))
    folder = tmp_path / "cache" / "features" / "DEAP"
    entry = sorted(folder.iterdir())[0]
    reading = _load_entry(entry)  # the earlier run's memory-mapped arrays
    files = {p.name: p.stat().st_ino for p in entry.iterdir()}
    _store_entry(entry, [SubjectFeatures(**{name: np.array(getattr(reading, name)) for name in _ARRAYS})])
    assert {p.name: p.stat().st_ino for p in entry.iterdir()} == files
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # its own copy cleaned up
    np.testing.assert_array_equal(reading.features, _load_entry(entry).features)


def test_an_entry_from_before_stimulus_ids_were_cached_is_rebuilt_under_its_key(synthetic_root, tmp_path, caplog):
    config = data_config(synthetic_root, tmp_path)
    reference = build_feature_set(config)
    entry = sorted((tmp_path / "cache" / "features" / "DEAP").iterdir())[0]
    meta = json.loads((entry / "meta.json").read_text())
    del meta["stimulus"]
    (entry / "meta.json").write_text(json.dumps(meta))
    (entry / "stimulus.npy").unlink()
    rebuilt = build_feature_set(config)
    np.testing.assert_array_equal(rebuilt.stimulus, reference.stimulus)
    assert (entry / "stimulus.npy").is_file() and "corrupt" not in caplog.text
    assert rebuilt.protocol["data_fingerprint"] == reference.protocol["data_fingerprint"]


def test_cache_is_read_without_pickle(synthetic_root, tmp_path):
    build_feature_set(data_config(synthetic_root, tmp_path))
    entry = next((tmp_path / "cache" / "features" / "DEAP").iterdir())
    meta = json.loads((entry / "meta.json").read_text())
    for name in meta:
        array = np.load(entry / f"{name}.npy", allow_pickle=False)
        assert list(array.shape) == meta[name]["shape"]


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="DEAP, SEEDIV, GAMEEMO"):
        DataConfig(datasets=["MNIST"])
    with pytest.raises(DatasetError, match=str(tmp_path / "nowhere")):
        build_feature_set(DataConfig(datasets=["DEAP"], data_root=str(tmp_path / "nowhere"), cache_stft=False))


def test_subject_split_is_disjoint_and_per_dataset(synthetic_root, tmp_path):
    features = build_feature_set(data_config(synthetic_root, tmp_path, ("DEAP", "GAMEEMO"),
                                             train_ratio=0.5, val_ratio=0.25, test_ratio=0.25))
    split = subject_split(features, DataConfig(train_ratio=0.5, val_ratio=0.25, test_ratio=0.25), seed=3)
    sides = [set(split.train), set(split.val), set(split.test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert set().union(*sides) == set(range(8))
    for side in sides:  # every dataset on every side
        assert {features.subjects[s].dataset for s in side} == {"DEAP", "GAMEEMO"}
    windows = {name: set(features.subject_index[split.windows(features, name)]) for name in ("train", "val", "test")}
    assert windows["train"] == sides[0] and windows["test"] == sides[2]
    with pytest.raises(ValueError, match="two sides"):
        Split((0, 1), (1,), (2,))


def test_validation_subjects_come_from_the_pool(synthetic_root, tmp_path):
    features = build_feature_set(data_config(synthetic_root, tmp_path))
    train, val = validation_subjects(features, [1, 2, 3], 0.34, seed=0)
    assert set(train) | set(val) == {1, 2, 3} and len(val) == 1 and 0 not in train + val


def test_normalizer_uses_training_windows_only(synthetic_root, tmp_path):
    features = build_feature_set(data_config(synthetic_root, tmp_path))
    train = features.windows_of([0, 1])
    norm = Normalizer.fit(features.features, train)
    expected = features.features[train].mean(axis=(0, 3))
    np.testing.assert_allclose(norm.mean[..., 0], expected, rtol=1e-4, atol=1e-4)
    shifted = features.features.copy()
    shifted[features.windows_of([3])] += 100.0  # a test subject's values cannot move the statistics
    np.testing.assert_allclose(Normalizer.fit(shifted, train).mean, norm.mean)


def test_normalizer_summed_per_subject_reuses_each_subjects_part_with_the_same_bits(synthetic_root, tmp_path):
    features = build_feature_set(data_config(synthetic_root, tmp_path))
    parts: dict = {}
    fold_a = Normalizer.fit(features.features, features.windows_of([0, 1, 2]), features.subject_index, parts)
    assert len(parts) == 3  # one part per training subject
    fold_b = Normalizer.fit(features.features, features.windows_of([1, 2, 3]), features.subject_index, parts)
    assert len(parts) == 4  # subjects 1 and 2 came from the cache
    fresh = Normalizer.fit(features.features, features.windows_of([1, 2, 3]), features.subject_index)
    assert fold_b.sha256() == fresh.sha256() != fold_a.sha256()
    whole = Normalizer.fit(features.features, features.windows_of([1, 2, 3]))  # one group: summed in another order
    np.testing.assert_allclose(fresh.std, whole.std, rtol=1e-6)


def test_data_fingerprint_follows_the_files(synthetic_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "DEAP", root / "DEAP")
    config = data_config(root, tmp_path)
    first = build_feature_set(config).protocol["data_fingerprint"]
    assert build_feature_set(config).protocol["data_fingerprint"] == first
    os.utime(root / "DEAP" / "data_preprocessed_python" / "s01.dat", ns=(5, 5))
    assert build_feature_set(config).protocol["data_fingerprint"] != first


def test_zero_phase_filters_remove_mains_and_drift_without_shifting_the_signal():
    rate = 200.0
    t = np.arange(int(20 * rate)) / rate
    alpha = np.sin(2 * np.pi * 10 * t)
    raw = alpha + 2.0 * np.sin(2 * np.pi * 50 * t) + 30.0 + 1.0 * t  # mains, DC offset, drift
    clean = zero_phase_filter(raw[None], rate, bandpass_hz=[0.5, 70.0], notch_hz=50.0)[0]
    inner = slice(int(3 * rate), int(17 * rate))  # away from the edges
    np.testing.assert_allclose(clean[inner], alpha[inner], atol=0.05)  # same phase: no lag left
    spectrum = np.abs(np.fft.rfft(clean[inner]))
    freqs = np.fft.rfftfreq(len(clean[inner]), 1 / rate)
    assert spectrum[np.argmin(abs(freqs - 50))] < 0.01 * spectrum[np.argmin(abs(freqs - 10))]


def test_fft_filtering_matches_sosfiltfilt_in_float64_within_its_tolerance():
    from scipy import signal

    rate, n = 200.0, int(240 * 200.0)  # one SEED trial: 4 minutes at 200 Hz
    rng = np.random.default_rng(7)
    t = np.arange(n) / rate
    background = np.fft.irfft(np.fft.rfft(rng.standard_normal((8, n)), axis=-1)
                              / np.maximum(np.fft.rfftfreq(n, 1 / rate), 0.5), n=n, axis=-1)  # 1/f, as EEG
    raw = (20 * background / background.std() + 5 * np.sin(2 * np.pi * 10 * t) + 3 * np.sin(2 * np.pi * 50 * t)
           + 5000.0 + 40.0 * t / t[-1]).astype(np.float32)  # alpha, mains, a large DC offset and a drift
    filtered = zero_phase_filter(raw, rate, bandpass_hz=[0.5, 70.0], notch_hz=50.0)
    padding = int(np.ceil(EDGE_TIME_CONSTANTS / 0.5 * rate))  # the band-pass's 0.5 Hz edge is the narrowest width
    both = np.concatenate([signal.butter(4, [0.5, 70.0], btype="bandpass", fs=rate, output="sos"),
                           signal.tf2sos(*signal.iirnotch(50.0, 30.0, fs=rate))])
    reference = signal.sosfiltfilt(both, raw.astype(np.float64), axis=-1, padlen=padding)
    assert filtered.dtype == np.float32 and filtered.shape == raw.shape
    assert np.abs(filtered - reference).max() / reference.std() <= FILTER_TOLERANCE  # the edges included
    stft = STFTPreprocessor.for_sampling_rate(rate)
    log_power = np.abs(stft.transform(filtered) - stft.transform(reference.astype(np.float32)))
    assert log_power.max() <= FEATURE_TOLERANCE  # every bin, the notched 50 Hz one included

    notched = zero_phase_filter(raw, rate, notch_hz=50.0)  # a notch alone passes the mean and the drift
    np.testing.assert_allclose(notched.mean(axis=-1), raw.mean(axis=-1), rtol=1e-6)
    notch_only = signal.sosfiltfilt(both[-1:], raw.astype(np.float64), axis=-1, padlen=int(np.ceil(
        EDGE_TIME_CONSTANTS / (50.0 / 30.0) * rate)))
    assert np.abs(notched - notch_only).max() / notch_only.std() <= FILTER_TOLERANCE
    short = zero_phase_filter(raw[:, :300], rate, bandpass_hz=[0.5, 70.0], notch_hz=50.0)  # 1.5 s, under the padding
    assert short.shape == (8, 300) and np.isfinite(short).all() and abs(short.mean()) < 0.05 * short.std()


def test_raw_recordings_are_filtered_by_default_and_the_filters_key_the_cache(synthetic_root, tmp_path):
    default = data_config(synthetic_root, tmp_path, ("SEEDIV",))
    assert default.signal_filters("SEEDIV") == {"bandpass_hz": [0.5, 70.0], "notch_hz": 50.0}
    assert default.signal_filters("DEAP") == {"bandpass_hz": None, "notch_hz": None}
    assert DataConfig(gameemo_source="raw").signal_filters("GAMEEMO") == {"bandpass_hz": [0.5, 60.0], "notch_hz": 50.0}
    assert DataConfig().signal_filters("GAMEEMO") == {"bandpass_hz": None, "notch_hz": None}
    filtered = build_feature_set(default)
    unfiltered = build_feature_set(data_config(synthetic_root, tmp_path, ("SEEDIV",),
                                               bandpass_hz={"SEEDIV": []}, notch_hz={"seed-iv": 0}))
    assert filtered.protocol["data_fingerprint"] != unfiltered.protocol["data_fingerprint"]
    assert not np.allclose(filtered.features, unfiltered.features)
    assert len(list((tmp_path / "cache" / "features" / "SEEDIV").iterdir())) == 8  # two entries per subject


@pytest.mark.parametrize("options, message", [
    ({"bandpass_hz": {"GAMEEMO": [0.5, 80.0]}}, r"data.bandpass_hz\['GAMEEMO'\].*0 < low < high < 64"),
    ({"bandpass_hz": {"DEAP": [4.0]}}, r"data.bandpass_hz\['DEAP'\]"),
    ({"notch_hz": {"SEEDIV": 120.0}}, r"data.notch_hz\['SEEDIV'\].*\(0, 100\)"),
    ({"notch_hz": {"EEG": 50.0}}, r"data.notch_hz key"),
])
def test_bad_filter_settings_name_the_key(options, message):
    with pytest.raises(ConfigError, match=message):
        DataConfig(**options)


def test_datasets_whose_frequency_grids_differ_by_value_are_refused(synthetic_root, tmp_path):
    # 0.35 s frames: 45 samples at 128 Hz, 70 at 200 Hz -> 17 bins each, 2.844 vs 2.857 Hz apart.
    config = data_config(synthetic_root, tmp_path, ("DEAP", "SEEDIV"), stft_window_seconds=0.35)
    with pytest.raises(DatasetError, match=r"SEEDIV's STFT frequency grid at 200 Hz \(17 bins.*differs from DEAP's"):
        build_feature_set(config)
