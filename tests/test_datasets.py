"""Dataset readers on real files: written by the generator and by small independent writers in this file."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from gru_xnet.datasets import (
    DATASET_NAMES, DatasetError, Trial, canonical_name, find_dataset_root, get_reader, is_synthetic, write_synthetic,
)
from gru_xnet.datasets.safe_pickle import load_pickle
from gru_xnet.datasets.synthetic import main as synthetic_main

REPO = Path(__file__).resolve().parents[1]

# Written out here, not imported, so a mistake in the library's constants cannot hide in the tests.
GAMEEMO_HEADER = "AF3,AF4,F3,F4,F7,F8,FC5,FC6,O1,O2,P7,P8,T7,T8".split(",")
SEEDIV_LABELS = {
    "1": [1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3],
    "2": [2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1],
    "3": [1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0],
}


# ---------------------------------------------------------------- independent writers

def write_deap(root: Path, subject: str, data: np.ndarray, labels: np.ndarray) -> Path:
    """DEAP/data_preprocessed_python/<subject>.dat with Python 3's own protocol-2 pickler."""
    folder = root / "data_preprocessed_python"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{subject}.dat"
    path.write_bytes(pickle.dumps({"labels": labels, "data": data}, protocol=2))
    return path


def deap_arrays(n_trials: int = 4, n_samples: int = 384 + 256) -> tuple[np.ndarray, np.ndarray]:
    """Data whose baseline is 1000, EEG rows hold their channel index, non-EEG rows -7; labels all 5.0."""
    data = np.full((n_trials, 40, n_samples), -7.0)
    data[:, :32, :] = np.arange(32)[None, :, None]
    data[:, :, :384] = 1000.0
    return data, np.full((n_trials, 4), 5.0)


def write_seediv(root: Path, session: str, subject: str, variables: dict) -> Path:
    """SEEDIV/eeg_raw_data/<session>/<subject>_20150101.mat, compressed MAT v5."""
    folder = root / "eeg_raw_data" / session
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{subject}_20150101.mat"
    scipy.io.savemat(path, variables, do_compression=True)
    return path


def seediv_trials(prefix: str, n: int = 24, fill: float | None = None) -> dict:
    """n trial variables <prefix>_eegK of shape (62, 20 + K), value K (or fill), in reverse order."""
    return {f"{prefix}_eeg{k}": np.full((62, 20 + k), k if fill is None else fill) for k in range(n, 0, -1)}


def write_gameemo_csv(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    """A CSV with a trailing comma on every line, as GAMEEMO's files have."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(line) + ",\n" for line in [columns, *rows]))


def write_gameemo_subject(root: Path, subject: str, *, raw_name: str = "AllRawChannels", n_rows: int = 50) -> None:
    """Preprocessed and raw CSVs for 4 games, columns shuffled plus an extra one; each channel's value = its index."""
    order = GAMEEMO_HEADER[::-1][:7] + ["COUNTER"] + GAMEEMO_HEADER[::-1][7:]
    row = [str(99.5) if name == "COUNTER" else f"{GAMEEMO_HEADER.index(name)}.25" for name in order]
    for game in range(1, 5):
        base = root / f"({subject})"
        write_gameemo_csv(base / "Preprocessed EEG Data" / ".csv format" / f"{subject}G{game}AllChannels.csv",
                          order, [row] * n_rows)
        raw_row = [str(float(v) + 4000) for v in row]
        write_gameemo_csv(base / "Raw EEG Data" / ".csv format" / f"{subject}G{game}{raw_name}.csv",
                          order, [raw_row] * (n_rows + 1))


# ---------------------------------------------------------------- generator + readers

@pytest.fixture(scope="module")
def synthetic_roots(tmp_path_factory) -> dict[str, Path]:
    """Small synthetic copies of all three datasets."""
    return write_synthetic(tmp_path_factory.mktemp("syn"), ["deap", "SEED-IV", "GameEmo"], 2, trials=4, seconds=4)


def test_generator_layout_and_marker(synthetic_roots):
    roots = synthetic_roots
    assert set(roots) == {"DEAP", "SEEDIV", "GAMEEMO"}
    assert sorted(p.name for p in (roots["DEAP"] / "data_preprocessed_python").iterdir()) == ["s01.dat", "s02.dat"]
    session_files = sorted(p.name for p in (roots["SEEDIV"] / "eeg_raw_data" / "2").iterdir())
    assert [name.split("_")[0] for name in session_files] == ["1", "2"]
    assert all(len(name.split("_")[1]) == len("20150101.mat") for name in session_files)
    csv = roots["GAMEEMO"] / "(S01)" / "Preprocessed EEG Data" / ".csv format" / "S01G3AllChannels.csv"
    lines = csv.read_text().splitlines()
    assert lines[0] == ",".join(GAMEEMO_HEADER) + ","
    assert all(line.endswith(",") for line in lines) and len(lines) == 1 + 4 * 128
    assert (roots["GAMEEMO"] / "(S02)" / "Raw EEG Data" / ".csv format" / "S02G4AllRawChannels.csv").is_file()
    for name, root in roots.items():
        marker = json.loads((root / "SYNTHETIC.json").read_text())
        assert marker["dataset"] == name and marker["synthetic"] is True and marker["seed"] == 0
        assert is_synthetic(root) and get_reader(name, root).synthetic


def test_generator_deap_is_a_python2_style_latin1_pickle(synthetic_roots):
    raw = (synthetic_roots["DEAP"] / "data_preprocessed_python" / "s01.dat").read_bytes()
    assert raw.startswith(b"\x80\x02") and b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    content = load_pickle(synthetic_roots["DEAP"] / "data_preprocessed_python" / "s01.dat")
    assert list(content) == ["labels", "data"]
    assert content["data"].dtype == np.float64 and content["data"].shape == (4, 40, 384 + 4 * 128)
    assert content["labels"].shape == (4, 4)
    assert ((content["labels"] >= 1) & (content["labels"] <= 9)).all() and not (content["labels"] == 5).any()


def test_generator_seediv_prefixes_and_dtypes(synthetic_roots):
    path = sorted((synthetic_roots["SEEDIV"] / "eeg_raw_data" / "3").glob("2_*.mat"))[0]
    content = scipy.io.loadmat(path)
    assert sorted(k for k in content if not k.startswith("__")) == [f"ha_eeg{k}" for k in range(1, 5)]
    assert content["ha_eeg1"].dtype == np.float64 and content["ha_eeg1"].shape[0] == 62


@pytest.mark.parametrize("name, options, n_channels, n_trials, n_samples, labels", [
    ("DEAP", {}, 32, 4, 4 * 128, None),
    ("SEEDIV", {"n_classes": 4}, 62, 12, None, [l for s in "123" for l in SEEDIV_LABELS[s][:4]]),
    ("SEEDIV", {}, 62, 12, None, [int(l not in (1, 2)) for s in "123" for l in SEEDIV_LABELS[s][:4]]),
    ("GAMEEMO", {}, 14, 4, 4 * 128, [0, 1, 0, 1]),
    ("GAMEEMO", {"label_dimension": "arousal", "source": "raw"}, 14, 4, 4 * 128, [0, 0, 1, 1]),
])
def test_readers_on_generated_files(synthetic_roots, name, options, n_channels, n_trials, n_samples, labels):
    reader = get_reader(name, synthetic_roots[name], **options)
    subjects = reader.subjects()
    assert len(subjects) == 2
    trials = reader.read_subject(subjects[1])
    assert len(trials) == n_trials and all(isinstance(t, Trial) for t in trials)
    for t in trials:
        assert t.signal.dtype == np.float32 and t.signal.shape[0] == n_channels == len(t.channel_names)
        assert n_samples is None or t.signal.shape[1] == n_samples
        assert np.isfinite(t.signal).all() and t.dataset == name and t.subject == subjects[1]
        assert 1.0 < t.signal.std() < 200.0
    if labels is not None:
        assert [t.label for t in trials] == labels
    assert reader.source_files(subjects[0])[0].is_file()
    json.dumps(reader.options())


def test_generated_gameemo_raw_differs_from_preprocessed(synthetic_roots):
    raw = get_reader("GAMEEMO", synthetic_roots["GAMEEMO"], source="raw").read_subject("S01")[0].signal
    pre = get_reader("GAMEEMO", synthetic_roots["GAMEEMO"]).read_subject("S01")[0].signal
    assert abs(raw.mean() - pre.mean()) > 1000


def _alpha_accuracy(root: Path) -> float:
    """Leave-one-subject-out accuracy of a one-feature threshold (frontal alpha/theta log-power) on DEAP valence."""
    reader = get_reader("DEAP", root)
    frontal = [reader.channel_names.index(c) for c in ("AF3", "AF4", "F3", "F4", "F7", "F8")]
    features, labels, groups = [], [], []
    for subject in reader.subjects():
        for trial in reader.read_subject(subject):
            spectrum = np.abs(np.fft.rfft(trial.signal[frontal], axis=1)) ** 2
            freqs = np.fft.rfftfreq(trial.signal.shape[1], 1 / trial.sampling_rate)
            band = [spectrum[:, (freqs >= lo) & (freqs < hi)].mean() for lo, hi in ((8, 13), (4, 8))]
            features.append(np.log(band[0] / band[1]))
            labels.append(trial.label)
            groups.append(subject)
    features, labels, groups = map(np.array, (features, labels, groups))
    correct = 0
    for subject in np.unique(groups):
        train, test = groups != subject, groups == subject
        cut = (features[train & (labels == 1)].mean() + features[train & (labels == 0)].mean()) / 2
        sign = np.sign(features[train & (labels == 1)].mean() - features[train & (labels == 0)].mean())
        correct += int(((sign * (features[test] - cut) > 0) == labels[test]).sum())
    return correct / len(labels)


@pytest.mark.parametrize("options, low, high", [
    ({}, 0.8, 1.0),
    ({"shuffle_labels": True}, 0.35, 0.65),
    ({"signal_strength": 0.0}, 0.35, 0.65),
])
def test_planted_signal_and_its_controls(tmp_path, options, low, high):
    root = write_synthetic(tmp_path, ["DEAP"], 6, trials=20, seconds=4, **options)["DEAP"]
    assert low <= _alpha_accuracy(root) <= high


def test_cli_writes_and_marks_shuffled_data(tmp_path):
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "gru_xnet.datasets.synthetic", "--out", str(tmp_path),
         "--datasets", "gameemo", "--subjects", "1", "--seconds", "1", "--shuffle-labels", "--seed", "3"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
    )
    assert "GAMEEMO" in result.stdout
    marker = json.loads((tmp_path / "GAMEEMO" / "SYNTHETIC.json").read_text())
    assert marker["shuffle_labels"] is True and marker["seed"] == 3 and marker["subjects"] == 1


def test_generator_is_deterministic_and_refuses_real_folders(tmp_path, capsys):
    a = write_synthetic(tmp_path / "a", ["DEAP"], 1, trials=2, seconds=1)["DEAP"] / "data_preprocessed_python"
    b = write_synthetic(tmp_path / "b", ["DEAP"], 1, trials=2, seconds=1)["DEAP"] / "data_preprocessed_python"
    assert (a / "s01.dat").read_bytes() == (b / "s01.dat").read_bytes()
    write_synthetic(tmp_path / "a", ["DEAP"], 1, trials=2, seconds=1)  # rewriting a synthetic copy is fine
    (tmp_path / "real" / "DEAP").mkdir(parents=True)
    (tmp_path / "real" / "DEAP" / "s01.dat").write_bytes(b"precious")
    assert synthetic_main(["--out", str(tmp_path / "real"), "--datasets", "DEAP", "--subjects", "1"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "real" / "DEAP" / "s01.dat").read_bytes() == b"precious"


# ---------------------------------------------------------------- DEAP on independently written files

@pytest.mark.parametrize("dimension, comparison, column, expected", [
    ("valence", ">=", 0, [1, 0, 1, 1]),
    ("valence", ">", 0, [0, 0, 1, 1]),
    ("arousal", ">=", 1, [1, 0, 1, 1]),
    ("liking", ">", 3, [0, 0, 1, 1]),
])
def test_deap_labels_baseline_and_channels(tmp_path, dimension, comparison, column, expected):
    data, labels = deap_arrays()
    labels[:, column] = [5.0, 4.99, 5.01, 9.0]
    write_deap(tmp_path / "DEAP", "s01", data.astype(np.float32), labels)
    reader = get_reader("DEAP", tmp_path / "DEAP", label_dimension=dimension, comparison=comparison)
    trials = reader.read_subject("s01")
    assert [t.label for t in trials] == expected
    signal = trials[0].signal
    assert signal.dtype == np.float32 and signal.shape == (32, 256)
    assert (signal != 1000).all() and (signal != -7).all()
    np.testing.assert_array_equal(signal[:, 0], np.arange(32))
    assert trials[0].channel_names[:3] == ("FP1", "AF3", "F3") and trials[0].channel_names[-1] == "O2"
    assert [t.trial for t in trials] == [1, 2, 3, 4] and trials[0].session == "1" and trials[0].sampling_rate == 128
    assert f"{dimension} {comparison} 5.0" in reader.label_description()
    assert not reader.synthetic


def test_deap_threshold_inner_folder_and_natural_order(tmp_path):
    data, labels = deap_arrays(n_trials=2)
    labels[:, 0] = [6.0, 7.0]
    for subject in ("s10", "s02", "s01"):
        write_deap(tmp_path / "DEAP", subject, data, labels)
    reader = get_reader("deap", tmp_path / "DEAP" / "data_preprocessed_python", threshold=6.5)
    assert reader.subjects() == ["s01", "s02", "s10"]
    assert [t.label for t in reader.read_subject("s10")] == [0, 1]
    assert reader.options() == {"label_dimension": "valence", "threshold": 6.5, "comparison": ">="}
    assert reader.source_files("s02") == [tmp_path / "DEAP" / "data_preprocessed_python" / "s02.dat"]


class _Exploit:
    """Pickles as a call of os.system: what a hostile .dat file could do on load."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_restricted_unpickler_refuses_code(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "DEAP" / "data_preprocessed_python" / "s01.dat"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"labels": np.zeros((1, 4)), "data": _Exploit(target)}, protocol=2))
    with pytest.raises(DatasetError, match=r"s01\.dat.*refused.*(posix|os)\.system"):
        get_reader("DEAP", tmp_path / "DEAP").read_subject("s01")
    assert not target.exists()
    path.write_bytes(pickle.dumps(eval, protocol=2))
    with pytest.raises(DatasetError, match=r"refused.*(__builtin__|builtins)\.eval"):
        load_pickle(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
    (lambda p: p.write_bytes(pickle.dumps({"data": np.zeros((2, 40, 500))}, protocol=2)), "'labels'"),
    (lambda p: p.write_bytes(pickle.dumps({"data": np.zeros((2, 30, 500)), "labels": np.zeros((2, 4))}, protocol=2)),
     r"'data'.*40 channels.*\(2, 30, 500\)"),
    (lambda p: p.write_bytes(pickle.dumps({"data": np.zeros((2, 40, 500)), "labels": np.zeros((3, 4))}, protocol=2)),
     r"'labels'.*\(2, 4\).*\(3, 4\)"),
    (lambda p: p.write_bytes(pickle.dumps([1, 2], protocol=2)), "expected a dict"),
])
def test_deap_bad_files(tmp_path, mutate, message):
    path = write_deap(tmp_path / "DEAP", "s01", *deap_arrays())
    mutate(path)
    with pytest.raises(DatasetError, match=message) as info:
        get_reader("DEAP", tmp_path / "DEAP", skip_bad_trials=True).read_subject("s01")
    assert "s01.dat" in str(info.value)


def test_deap_nan_trial_raises_or_is_skipped(tmp_path, caplog):
    data, labels = deap_arrays()
    data[2, 5, 500] = np.nan
    write_deap(tmp_path / "DEAP", "s01", data, labels)
    with pytest.raises(DatasetError, match=r"s01\.dat variable 'data' trial 3.*1 NaN/Inf"):
        get_reader("DEAP", tmp_path / "DEAP").read_subject("s01")
    with caplog.at_level(logging.WARNING):
        trials = get_reader("DEAP", tmp_path / "DEAP", skip_bad_trials=True).read_subject("s01")
    assert [t.trial for t in trials] == [1, 2, 4]
    assert "skipped 1 bad trial(s), kept 3" in caplog.text
    data[:, 0, 400] = np.inf
    write_deap(tmp_path / "DEAP", "s01", data, labels)
    with pytest.raises(DatasetError, match="no usable trial|found none"):
        get_reader("DEAP", tmp_path / "DEAP", skip_bad_trials=True).read_subject("s01")


def test_deap_empty_folder_and_unknown_subject(tmp_path):
    (tmp_path / "DEAP" / "data_preprocessed_python").mkdir(parents=True)
    reader = get_reader("DEAP", tmp_path / "DEAP")
    with pytest.raises(DatasetError, match=r"sXX\.dat.*data_preprocessed_python.*found none"):
        reader.subjects()
    write_deap(tmp_path / "DEAP", "s01", *deap_arrays())
    with pytest.raises(DatasetError, match=r"no subject 's09'.*\['s01'\]"):
        reader.read_subject("s09")


# ---------------------------------------------------------------- SEED-IV on independently written files

def test_seediv_prefixes_labels_and_mapping(tmp_path):
    root = tmp_path / "SEEDIV"
    for session in "123":
        write_seediv(root, session, "1", seediv_trials("cz"))
        write_seediv(root, session, "2", seediv_trials("ha"))
        write_seediv(root, session, "10", seediv_trials("sub10", n=2))
    four = get_reader("SEEDIV", root, n_classes=4, sampling_rate=1000)
    assert four.subjects() == ["1", "2", "10"]
    trials = four.read_subject("2")
    assert [(t.session, t.trial) for t in trials] == [(s, k) for s in "123" for k in range(1, 25)]
    assert [t.label for t in trials] == SEEDIV_LABELS["1"] + SEEDIV_LABELS["2"] + SEEDIV_LABELS["3"]
    assert trials[4].signal.shape == (62, 25) and trials[4].signal.dtype == np.float32
    assert (trials[4].signal == 5).all() and trials[0].sampling_rate == 1000.0
    assert trials[0].channel_names[:3] == ("FP1", "FPZ", "FP2") and trials[0].channel_names[-1] == "CB2"
    two = get_reader("SEEDIV", root / "eeg_raw_data")
    assert [t.label for t in two.read_subject("1")] == [int(l not in (1, 2)) for s in "123" for l in SEEDIV_LABELS[s]]
    assert two.sampling_rate == 200.0 and "negative {sad, fear} -> 0" in two.label_description()
    assert two.class_names == ("negative", "non-negative")
    custom = get_reader("SEEDIV", root, negative_classes=(1,), sessions=("2",))
    assert [t.label for t in custom.read_subject("10")] == [int(l != 1) for l in SEEDIV_LABELS["2"][:2]]
    assert custom.options() == {"n_classes": 2, "sampling_rate": 200.0, "sessions": ["2"], "negative_classes": [1]}
    assert [p.parent.name for p in four.source_files("10")] == ["1", "2", "3"]


def test_seediv_bad_trial_variable_raises_or_is_skipped(tmp_path, caplog):
    variables = seediv_trials("cz", n=4)
    variables["cz_eeg2"] = np.zeros((61, 30))
    variables["cz_eeg3"] = np.full((62, 30), np.nan)
    for session in "123":
        write_seediv(tmp_path, session, "1", variables)
    with pytest.raises(DatasetError, match=r"1_20150101\.mat variable 'cz_eeg2'.*\(62, T>0\).*\(61, 30\)"):
        get_reader("SEEDIV", tmp_path).read_subject("1")
    with caplog.at_level(logging.WARNING):
        trials = get_reader("SEEDIV", tmp_path, skip_bad_trials=True).read_subject("1")
    assert [t.trial for t in trials] == [1, 4, 1, 4, 1, 4]
    assert "skipped 6 bad trial(s), kept 6" in caplog.text


@pytest.mark.parametrize("variables, message", [
    ({"cz_eeg1": np.zeros((62, 5)), "cz_eeg3": np.zeros((62, 5))}, r"without gaps.*missing trial numbers \[2\]"),
    ({"something": np.zeros((62, 5))}, r"expected variables <prefix>_eeg1.*found \['something'\]"),
    ({"cz_eeg25": np.zeros((62, 5))}, "N <= 24"),
])
def test_seediv_bad_variables(tmp_path, variables, message):
    for session in "123":
        write_seediv(tmp_path, session, "1", variables)
    with pytest.raises(DatasetError, match=message) as info:
        get_reader("SEEDIV", tmp_path, skip_bad_trials=True).read_subject("1")
    assert "1_20150101.mat" in str(info.value)


def test_seediv_trials_come_one_session_file_at_a_time(tmp_path):
    for session in "123":
        path = write_seediv(tmp_path, session, "1", seediv_trials("cz", n=3))
    path.write_bytes(path.read_bytes()[:300])  # session 3 unreadable: sessions 1 and 2 are handed on before it is read
    trials = get_reader("SEEDIV", tmp_path).iter_trials("1")
    first_two = [next(trials) for _ in range(6)]
    assert [(t.session, t.trial) for t in first_two] == [(s, k) for s in "12" for k in (1, 2, 3)]
    assert first_two[0].signal.dtype == np.float32 and first_two[0].signal.shape == (62, 21)
    with pytest.raises(DatasetError, match=r"3/1_20150101\.mat.*truncated"):
        next(trials)


def test_seediv_truncated_missing_session_and_empty(tmp_path):
    for session in "123":
        path = write_seediv(tmp_path, session, "1", seediv_trials("cz", n=3))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"3/1_20150101\.mat.*truncated"):
        get_reader("SEEDIV", tmp_path).read_subject("1")
    path.unlink()
    with pytest.raises(DatasetError, match=r"expected one file 1_<YYYYMMDD>\.mat in .*3, found \[\]"):
        get_reader("SEEDIV", tmp_path).read_subject("1")
    assert len(get_reader("SEEDIV", tmp_path, sessions=("1", "2")).read_subject("1")) == 6
    empty = tmp_path / "empty"
    for session in "123":
        (empty / "eeg_raw_data" / session).mkdir(parents=True)
    with pytest.raises(DatasetError, match="found none"):
        get_reader("SEEDIV", empty).subjects()


# ---------------------------------------------------------------- GAMEEMO on independently written files

@pytest.mark.parametrize("options, expected", [
    ({}, [0, 1, 0, 1]),
    ({"label_dimension": "arousal"}, [0, 0, 1, 1]),
    ({"positive_games": (1,)}, [1, 0, 0, 0]),
    ({"label_dimension": "arousal", "positive_games": [2, 3]}, [0, 1, 1, 0]),
])
def test_gameemo_mapping_and_channel_selection(tmp_path, options, expected):
    write_gameemo_subject(tmp_path, "S01")
    reader = get_reader("GAMEEMO", tmp_path, **options)
    trials = reader.read_subject("S01")
    assert [t.label for t in trials] == expected and [t.trial for t in trials] == [1, 2, 3, 4]
    signal = trials[0].signal
    assert signal.shape == (14, 50) and signal.dtype == np.float32
    np.testing.assert_array_equal(signal[:, 0], np.arange(14) + 0.25)
    assert trials[0].channel_names == tuple(GAMEEMO_HEADER) and trials[0].sampling_rate == 128.0


@pytest.mark.parametrize("raw_name", ["AllRawChannels", "AllChannels"])
def test_gameemo_raw_source_accepts_both_names(tmp_path, raw_name):
    write_gameemo_subject(tmp_path, "S01", raw_name=raw_name)
    write_gameemo_subject(tmp_path, "S10", raw_name=raw_name)
    write_gameemo_subject(tmp_path, "S02", raw_name=raw_name)
    reader = get_reader("GAMEEMO", tmp_path, source="raw")
    assert reader.subjects() == ["S01", "S02", "S10"]
    trials = reader.read_subject("S10")
    assert trials[3].signal.shape == (14, 51) and trials[3].signal[13, 0] == 4013.25
    assert reader.source_files("S01")[0].name == f"S01G1{raw_name}.csv"
    assert "[raw]" in reader.label_description()


def _csv(tmp_path: Path) -> Path:
    write_gameemo_subject(tmp_path, "S01")
    return tmp_path / "(S01)" / "Preprocessed EEG Data" / ".csv format" / "S01G2AllChannels.csv"


def test_gameemo_missing_column_truncated_row_and_missing_file(tmp_path):
    path = _csv(tmp_path)
    path.write_text(path.read_text().replace("O2,", "X2,", 1))
    with pytest.raises(DatasetError, match=r"S01G2AllChannels\.csv.*missing \['O2'\]"):
        get_reader("GAMEEMO", tmp_path, skip_bad_trials=True).read_subject("S01")
    write_gameemo_subject(tmp_path, "S01")
    path.write_text(path.read_text() + "1.0,2.0,3")
    with pytest.raises(DatasetError, match=r"S01G2AllChannels\.csv.*truncated"):
        get_reader("GAMEEMO", tmp_path, skip_bad_trials=True).read_subject("S01")
    path.unlink()
    with pytest.raises(DatasetError, match=r"S01G2AllChannels\.csv.*no such file"):
        get_reader("GAMEEMO", tmp_path).read_subject("S01")


def test_gameemo_nan_raises_or_is_skipped(tmp_path, caplog):
    path = _csv(tmp_path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(",3.25,", ",nan,")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"S01G2AllChannels\.csv.*1 NaN/Inf"):
        get_reader("GAMEEMO", tmp_path).read_subject("S01")
    with caplog.at_level(logging.WARNING):
        trials = get_reader("GAMEEMO", tmp_path, skip_bad_trials=True).read_subject("S01")
    assert [t.trial for t in trials] == [1, 3, 4] and "skipped 1 bad trial(s)" in caplog.text


def test_gameemo_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"subject folders \(S01\).*found none"):
        get_reader("GAMEEMO", tmp_path).subjects()


# ---------------------------------------------------------------- registry and options

def test_registry_names():
    assert DATASET_NAMES[:3] == ["DEAP", "SEEDIV", "GAMEEMO"]
    assert [canonical_name(n) for n in ("deap", "Seed-IV", "seed_iv", "SEEDIV", "gameemo")] == [
        "DEAP", "SEEDIV", "SEEDIV", "SEEDIV", "GAMEEMO"]
    with pytest.raises(DatasetError, match="unknown dataset 'MNIST'.*DEAP, SEEDIV, GAMEEMO"):
        canonical_name("MNIST")


@pytest.mark.parametrize("name, options, message", [
    ("DEAP", {"comparison": "=>"}, r"comparison='=>'.*\('>=', '>'\)"),
    ("DEAP", {"label_dimension": "joy"}, "label_dimension='joy'.*valence"),
    ("DEAP", {"threshold": "five"}, "threshold"),
    ("SEEDIV", {"n_classes": 3}, r"n_classes=3.*\(2, 4\)"),
    ("SEEDIV", {"negative_classes": (0, 1, 2, 3)}, "negative_classes"),
    ("SEEDIV", {"sessions": ("4",)}, "sessions"),
    ("SEEDIV", {"sampling_rate": 0}, "sampling_rate"),
    ("GAMEEMO", {"source": "edf"}, r"source='edf'.*preprocessed"),
    ("GAMEEMO", {"positive_games": (5,)}, "positive_games"),
    ("GAMEEMO", {"treshold": 1}, r"unknown option\(s\) \['treshold'\]"),
])
def test_bad_options(tmp_path, name, options, message):
    with pytest.raises(DatasetError, match=message):
        get_reader(name, tmp_path, **options)


def test_find_dataset_root(tmp_path):
    write_deap(tmp_path / "deap", "s01", *deap_arrays())
    write_seediv(tmp_path / "SEED-IV", "1", "1", seediv_trials("cz", n=1))
    write_gameemo_subject(tmp_path / "GAMEEMO", "S01")
    assert find_dataset_root("DEAP", tmp_path) == tmp_path / "deap"
    assert find_dataset_root("seed_iv", tmp_path) == tmp_path / "SEED-IV"
    assert find_dataset_root("GAMEEMO", tmp_path) == tmp_path / "GAMEEMO"
    assert find_dataset_root("GAMEEMO", tmp_path / "GAMEEMO") == tmp_path / "GAMEEMO"
    assert find_dataset_root("SEEDIV", tmp_path / "SEED-IV") == tmp_path / "SEED-IV"
    with pytest.raises(DatasetError, match=r"SEEDIV.*SEED-IV"):
        find_dataset_root("SEEDIV", tmp_path / "deap")
    with pytest.raises(DatasetError, match="GAMEEMO"):
        find_dataset_root("GAMEEMO", tmp_path / "missing")
