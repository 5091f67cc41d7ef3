"""Bad input, drawn at random: readers, STFT and config give a valid result or one clear error; CLIs exit with one line.

Each reader test starts from a valid synthetic file and corrupts it (truncation, overwritten bytes, arrays of
other shapes, dtypes and values, renamed or missing keys and columns). The outcome must be finite float32
trials of the dataset's channel count with labels in range, or one DatasetError naming the file: never another
exception type, a NaN/Inf in the output or a numpy overflow/complex warning (errors in this module). The
`@example`s are the defects these tests found, pinned so they stay fixed whatever the random draws.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gru_xnet.config import ConfigError, ExperimentConfig, get_quick_test_config, resolve_config
from gru_xnet.datasets import DatasetError, get_reader, write_synthetic
from gru_xnet.datasets.safe_pickle import load_pickle
from gru_xnet.preprocessing import STFTPreprocessor

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.bad_input,
              pytest.mark.filterwarnings("error::RuntimeWarning", "error::numpy.exceptions.ComplexWarning")]

FUZZ = settings(database=None, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
"""Reproducible in CI: the same examples every run, no example database."""

DTYPES = ("float64", "float32", "float16", "int16", "int64", "uint8", "bool", "complex128", "object", "str")
SPECIAL = (np.nan, np.inf, -np.inf, 1e300, -1e300, 3.5e38, 1e20, 0.0, 1e-320)
"""Planted values: non-finite, beyond float32, large enough to overflow a float32 power, subnormal."""


@st.composite
def arrays(draw, valid: tuple[int, ...], dims: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """The valid shape in another dtype, or with special values planted, or another shape (axis i from dims[i])."""
    mode = draw(st.sampled_from(["dtype", "values", "shape"]))
    shape = valid
    if mode == "shape":
        shape = tuple(draw(st.sampled_from(sizes)) for sizes in dims[:draw(st.integers(0, len(dims)))])
    dtype = draw(st.sampled_from(DTYPES[:3] if mode == "values" else DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    values = rng.normal(0.0, 20.0, size=shape)
    if mode == "values" and values.size:
        for _ in range(draw(st.integers(1, 3))):
            values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(SPECIAL))
    if dtype == "complex128":
        return values + 1j * rng.normal(size=shape)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return values.astype(dtype)


BYTE_CHANGES = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0, exclude_max=True)),
    st.tuples(st.just("overwrite"), st.one_of(st.integers(0, 600), st.integers(0, 10 ** 6)),
              st.binary(min_size=1, max_size=16)),
)


def change_bytes(raw: bytes, change: tuple) -> bytes:
    """The file truncated to a fraction of its length, or with a run of bytes overwritten at an offset."""
    if change[0] == "truncate":
        return raw[:int(change[1] * len(raw))]
    offset = change[1] % len(raw)
    return raw[:offset] + change[2] + raw[offset + len(change[2]):]


def check_read(name: str, root: Path, subject: str, corrupted: Path, n_channels: int, n_classes: int) -> list:
    """Read with default options: valid trials, or a DatasetError naming the corrupted file. Returns the trials."""
    try:
        trials = get_reader(name, root).read_subject(subject)
    except DatasetError as exc:
        assert corrupted.name in str(exc), str(exc)
        return []
    assert trials
    for trial in trials:
        assert trial.signal.dtype == np.float32 and trial.signal.ndim == 2
        assert trial.signal.shape[0] == n_channels == len(trial.channel_names) and trial.signal.shape[1] > 0
        assert np.isfinite(trial.signal).all()
        assert trial.label in range(n_classes)
    return trials


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    """One valid synthetic subject per dataset: 2 trials (per session) of 2 s."""
    return write_synthetic(tmp_path_factory.mktemp("pristine"), ["DEAP", "SEEDIV", "GAMEEMO"], 1, trials=2,
                           seconds=2.0)


def corrupted_copy(pristine: dict[str, Path], name: str, tmp_path: Path, relative: str) -> tuple[Path, Path]:
    """A fresh copy of the pristine dataset under tmp_path, and the path of the file to corrupt in it."""
    root = tmp_path / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(pristine[name], root)
    return root, next(root.glob(relative))


# ---------------------------------------------------------------- DEAP pickles

DEAP_SHAPE = (2, 40, 384 + 256)
DEAP_CHANGES = st.one_of(
    BYTE_CHANGES,
    st.tuples(st.just("data"), arrays(DEAP_SHAPE, ((0, 1, 2), (0, 1, 32, 40, 41), (0, 1, 384, 385, 420), (1, 2)))),
    st.tuples(st.just("labels"), arrays((2, 4), ((0, 1, 2, 3), (0, 1, 3, 4, 5), (1, 2)))),
    st.tuples(st.just("rating"), st.sampled_from([0.0, 0.99, 1.0, 9.0, 9.01, 100.0, -5.0, np.nan, np.inf])),
    st.tuples(st.just("rename"), st.sampled_from(["data", "labels"]), st.sampled_from(["drop", "upper", "bytes"])),
    st.tuples(st.just("container"), st.sampled_from(["list", None, 3, "text", (1, 2)])),
)


def change_deap(raw: bytes, content: dict, change: tuple) -> tuple[bytes, object]:
    """The file's new bytes and (when still a pickle of our making) its new content."""
    if change[0] in ("truncate", "overwrite"):
        return change_bytes(raw, change), None
    content = dict(content)
    if change[0] in ("data", "labels"):
        content[change[0]] = change[1]
    elif change[0] == "rating":
        content["labels"] = content["labels"].copy()
        content["labels"][1, 0] = change[1]
    elif change[0] == "rename":
        value = content.pop(change[1])
        if change[2] != "drop":
            content[change[1].upper() if change[2] == "upper" else change[1].encode()] = value
    else:
        content = [content["data"]] if change[1] == "list" else change[1]
    return pickle.dumps(content, protocol=2), content


@settings(FUZZ, max_examples=100)
@given(change=DEAP_CHANGES)
@example(change=("data", np.full(DEAP_SHAPE, 1e300)))  # was: silently Inf after the float32 cast
@example(change=("data", np.ones(DEAP_SHAPE, dtype=complex)))  # was: imaginary part silently dropped
@example(change=("labels", np.full((2, 4), 5.0 + 1j)))  # was: complex rating compared as its real part
def test_deap_reader_on_corrupted_pickles(pristine, tmp_path, change):
    source = pristine["DEAP"] / "data_preprocessed_python" / "s01.dat"
    blob, content = change_deap(source.read_bytes(), load_pickle(source), change)
    path = tmp_path / "data_preprocessed_python" / "s01.dat"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(blob)
    trials = check_read("DEAP", tmp_path, "s01", path, 32, 2)
    if trials and isinstance(content, dict):
        ratings = content.get("labels", content.get(b"labels"))[:, 0]
        assert all(1.0 <= ratings[t.trial - 1] <= 9.0 for t in trials)


# ---------------------------------------------------------------- SEED-IV .mat files

SEEDIV_CHANGES = st.one_of(
    BYTE_CHANGES,
    st.tuples(st.just("array"), arrays((62, 300), ((0, 1, 61, 62, 63), (0, 1, 5, 300), (1, 2)))),
    st.tuples(st.just("drop")),
    st.tuples(st.sampled_from(["rename", "extra"]),
              st.sampled_from(["cz_eeg0", "cz_eeg2", "cz_eeg3", "cz_eeg25", "cz_eegX", "eeg1", "cz_eeg01", "labels"])),
)


@settings(FUZZ, max_examples=50)
@given(change=SEEDIV_CHANGES)
@example(change=("rename", "cz_eeg99999999999999999999"))  # was: a list up to that trial number (memory, hang)
@example(change=("extra", "cz_eeg01"))  # was: two variables for trial 1, one silently dropped
@example(change=("array", np.full((62, 300), -1e300)))  # was: silently -Inf after the float32 cast
@example(change=("array", np.ones((62, 300), dtype=complex)))  # was: imaginary part silently dropped
def test_seediv_reader_on_corrupted_mat_files(pristine, tmp_path, change):
    root, path = corrupted_copy(pristine, "SEEDIV", tmp_path, "eeg_raw_data/1/1_*.mat")
    if change[0] in ("truncate", "overwrite"):
        path.write_bytes(change_bytes(path.read_bytes(), change))
    else:
        variables = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        if change[0] == "array":
            variables["cz_eeg1"] = change[1]
        elif change[0] == "drop":
            variables.pop("cz_eeg1")
        else:
            variables[change[1]] = variables["cz_eeg1"] if change[0] == "extra" else variables.pop("cz_eeg1")
        scipy.io.savemat(path, variables, do_compression=True)
    check_read("SEEDIV", root, "1", path, 62, 2)


# ---------------------------------------------------------------- GAMEEMO CSV files

CHANNELS = ["AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6", "O1", "O2", "P7", "P8", "T7", "T8"]
TOKENS = ("1.5", "-20.25", "0", "nan", "NaN", "inf", "-inf", "1e300", "-1e300", "1e400", "3.5e38", "", " 7 ", "abc",
          "0x1F", "1,5", '"3"', "1+2j", "\x00", "é")


@st.composite
def csv_texts(draw) -> str:
    """A CSV: header of drawn (dropped, renamed, repeated, extra) columns, rows of drawn tokens, drawn line ends."""
    header = draw(st.lists(st.sampled_from(CHANNELS + ["COUNTER", "af3", " O1 ", "Unnamed", ""]), max_size=18))
    if draw(st.booleans()):
        header = draw(st.permutations(CHANNELS)) + header[:2]
    rows = draw(st.lists(st.lists(st.sampled_from(TOKENS), min_size=max(0, len(header) - 1),
                                  max_size=len(header) + 1), max_size=4))
    end = draw(st.sampled_from([",\n", "\n", "\r\n"]))
    return "".join(",".join(line) + end for line in [header, *rows])


GAMEEMO_CHANGES = st.one_of(
    BYTE_CHANGES,
    st.tuples(st.just("value"), st.integers(1, 256), st.integers(0, 13), st.sampled_from(TOKENS)),
    st.tuples(st.just("rewrite"), csv_texts()),
)


@settings(FUZZ, max_examples=80)
@given(change=GAMEEMO_CHANGES)
@example(change=("value", 1, 0, "1e300"))  # was: silently Inf after the float32 cast
@example(change=("value", 9, 13, "-3.5e38"))
def test_gameemo_reader_on_corrupted_csv_files(pristine, tmp_path, change):
    root, path = corrupted_copy(pristine, "GAMEEMO", tmp_path, "(S01)/Preprocessed*/.csv format/S01G1AllChannels.csv")
    if change[0] in ("truncate", "overwrite"):
        path.write_bytes(change_bytes(path.read_bytes(), change))
    elif change[0] == "value":
        lines = path.read_text().splitlines(keepends=True)
        fields = lines[change[1]].split(",")
        fields[change[2]] = change[3]
        lines[change[1]] = ",".join(fields)
        path.write_text("".join(lines))
    else:
        path.write_text(change[1])
    check_read("GAMEEMO", root, "S01", path, 14, 2)


# ---------------------------------------------------------------- STFT

@settings(FUZZ, max_examples=300)
@given(x=arrays((2, 3, 70), ((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 31, 32, 33, 70), (0, 1, 31, 32, 33, 70))),
       pad_edges=st.booleans())
@example(x=np.full((2, 64), 1e300), pad_edges=False)  # was: Inf after the float32 cast, NaN/Inf log power
@example(x=np.full((2, 64), 1e20, dtype=np.float32), pad_edges=False)  # was: float32 power overflowed to Inf
@example(x=np.zeros((2, 64), dtype=object), pad_edges=False)  # was: TypeError from isfinite
@example(x=np.ones((2, 64), dtype=complex), pad_edges=False)  # was: imaginary part silently dropped
@example(x=np.zeros((0, 0)), pad_edges=True)  # was: reshape error naming nothing expected
def test_stft_transform_on_random_input(x, pad_edges):
    stft = STFTPreprocessor.for_sampling_rate(128, 0.25, 0.5, (2.0, 40.0), pad_edges=pad_edges)  # 32-sample frames
    try:
        out = stft.transform(x)
    except ValueError as exc:
        assert "expected" in str(exc), str(exc)
        return
    assert out.dtype == np.float32 and x.ndim in (2, 3)
    assert out.shape == x.shape[:-1] + (stft.n_freq_bins, stft.n_time_bins(x.shape[-1]))
    assert np.isfinite(out).all()


NUMBERS = st.one_of(st.sampled_from([0, 1, 2, 64, 128, 200, 0.5, -1, 1e-3, np.nan, np.inf, -np.inf, 1e300]),
                    st.floats(-1e3, 1e3))


@settings(FUZZ, max_examples=200)
@given(rate=NUMBERS, nperseg=st.one_of(st.integers(-2, 300), st.sampled_from([2.0, 64.5])),
       noverlap=st.one_of(st.none(), st.integers(-2, 300), st.sampled_from([10.5, np.nan])),
       freq_range=st.tuples(NUMBERS, NUMBERS), eps=st.sampled_from([1e-10, 1.0, 0.0, -1.0, np.nan, np.inf]))
@example(rate=128, nperseg=64, noverlap=None, freq_range=(0.5, 50.0), eps=0.0)  # was: -Inf for a silent channel
@example(rate=np.inf, nperseg=64, noverlap=None, freq_range=(0.5, 50.0), eps=1e-10)  # was: NaN frequencies
@example(rate=1, nperseg=2, noverlap=None, freq_range=(1, 2), eps=1e-10)  # was: error naming nothing expected
def test_stft_parameters_are_checked(rate, nperseg, noverlap, freq_range, eps):
    try:
        stft = STFTPreprocessor(rate, nperseg, noverlap, freq_range, eps=eps)
    except ValueError as exc:
        assert "expected" in str(exc), str(exc)
        return
    x = np.zeros((2, 300))
    x[1] = np.random.default_rng(0).normal(0.0, 20.0, 300)
    out = stft.transform(x)
    assert out.shape == (2, stft.n_freq_bins, stft.n_time_bins(300)) and np.isfinite(out).all()
    assert np.isfinite(stft.frequencies).all()


# ---------------------------------------------------------------- config

QUICK = get_quick_test_config().to_dict()
SECTIONS = ("model", "training", "data")
KEYS = [f"{s}.{k}" for s in SECTIONS for k in QUICK[s]] + [k for k in QUICK if k not in SECTIONS]
"""Every setting's dotted key ('training.learning_rate', 'data.data_roots', ..., 'seed')."""
DELETE = "<delete>"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=5,
)
VALUES = st.one_of(
    st.sampled_from([DELETE, 0, -1, 1, 2, 3, 4, 2 ** 32, 10 ** 30, 0.5, 0.999, 1.0, 1e-9, 1e9, float("nan"),
                     float("inf"), "DEAP", "seed-iv", "standard", "cuda:x", "cuda:1", "raw", "", [], [1, 2], [0.5, 0.6],
                     ["SEEDIV"], ["DEAP", "deap"], {"DEAP": [1.0, 2.0]}, {"FOO": 1.0}, None]),
    JSON_VALUES,
)


def check_valid(config: ExperimentConfig) -> None:
    """A config that loaded is valid, strictly JSON (no NaN/Inf), round-trips, and seeds numpy."""
    config.validate()
    text = json.dumps(config.to_dict(), allow_nan=False)
    assert ExperimentConfig.from_dict(json.loads(text)).to_dict() == config.to_dict()
    np.random.RandomState(config.seed)


def check_names(exc: ConfigError, *names: str) -> None:
    """One line, naming one of the keys (or the file)."""
    message = str(exc)
    assert "\n" not in message and any(name in message for name in names), (names, message)


def changed_config(key: str, value: object) -> dict:
    """The quick config as a plain dict with `key` set to `value` (or deleted)."""
    config = json.loads(json.dumps(QUICK))
    *sections, name = key.split(".")
    target = config
    for section in sections:
        target = target[section]
    if value == DELETE:
        target.pop(name, None)
    else:
        target[name] = value
    return config


@settings(FUZZ, max_examples=250)
@given(key=st.sampled_from(KEYS + [*SECTIONS, "nope", "data.nope"]), value=VALUES)
@example(key="training.learning_rate", value=float("nan"))  # was: accepted
@example(key="data.seediv_sampling_rate", value=1)  # was: a ValueError from the STFT, naming no key
@example(key="data.stft_overlap", value=0.999)  # was: the same
@example(key="seed", value=2 ** 32)  # was: accepted, then np.random.seed failed in training
def test_config_from_random_dicts(key, value):
    try:
        loaded = ExperimentConfig.from_dict(changed_config(key, value))
    except ConfigError as exc:
        check_names(exc, key.split(".")[-1])
        return
    check_valid(loaded)


@settings(FUZZ, max_examples=250)
@given(key=st.one_of(st.sampled_from(KEYS + ["model", "data.n_classes", "training..lr", "", "x.y.z"]),
                     st.text(max_size=8)),
       raw=st.one_of(st.sampled_from(["NaN", "Infinity", "-1", "0", "1e999", "[1,2]", "{}", "null", "true", '"x"',
                                      "DEAP,SEEDIV", "seed-iv", "0.5,0.6", "4", "standard", "cuda:0", "2.5", ""]),
                     st.text(max_size=10)))
@example(key="experiment_name", raw="NaN")  # was: TypeError from the name check
@example(key="seed", raw="1.5")  # was: accepted
@example(key="output_dir", raw="5")  # was: accepted as an int
@example(key="training.learning_rate", raw="NaN")  # was: accepted
@example(key="data.window_seconds", raw="1" * 5000)  # was: ValueError (int too long) from json.loads
@example(key="\n", raw="1")  # was: a two-line error
def test_config_overrides_from_the_command_line(key, raw):
    config = get_quick_test_config()
    before = config.to_dict()
    try:
        config.set_option(key, raw)
    except ConfigError as exc:
        name = key.split(".")[-1]
        check_names(exc, *((name, repr(name)) if name else (repr(key),)))
        assert config.to_dict() == before  # a refused override leaves the config as it was
        return
    check_valid(config)


CONFIG_FILES = st.one_of(
    st.builds(lambda key, value: json.dumps(changed_config(key, value)).encode(), st.sampled_from(KEYS), VALUES),
    st.builds(lambda cut: json.dumps(QUICK).encode()[:cut], st.integers(0, 2000)),
    st.binary(max_size=20),
    st.sampled_from([b"[]", b"3", b"null", b'{"seed": NaN}', '{"experiment_name": "\u00e9"}'.encode("latin1")]),
)


@settings(FUZZ, max_examples=120)
@given(blob=CONFIG_FILES)
@example(blob=b"\xff\xfe{}")  # was: UnicodeDecodeError
@example(blob=b"1" * 5000)  # was: ValueError (int too long)
@example(blob=b"[" * 3000)  # was: RecursionError
@example(blob=b'{"training": {"learning_rate": NaN}}')  # was: accepted
def test_config_files(tmp_path, blob):
    path = tmp_path / "config.json"
    path.write_bytes(blob)
    try:
        config = resolve_config(str(path))
    except ConfigError as exc:
        check_names(exc, str(path))
        return
    check_valid(config)


# ---------------------------------------------------------------- CLIs: one line and a non-zero exit, before Ray

CLI_CASES = [
    ("loso.run", ["--datasets", "NOPE"], "data.datasets"),
    ("loso.run", ["--protocol", "bogus"], "usage"),
    ("loso.run", ["--model", "resnet"], "model.name"),
    ("loso.run", ["--model", "{tmp}/missing.py:make"], "missing.py"),
    ("loso.benchmark", ["--models", "de_svm", "nope"], "model.name"),
    ("loso.benchmark", ["--models", "eegnet", "--data.representation", "stft"], "data.representation"),
    ("tune.search", ["--model", "de_svm"], "needs no search"),
    ("tune.search", ["--training.learning_rate", "-1"], "training.learning_rate"),
    ("tune.search", ["--space", "{tmp}/space.json"], "gru_hidden_size"),
    ("gru_xnet.train", ["--datasets", "DEAP", "--data-root", "{tmp}/missing"], "missing"),
    ("gru_xnet.predict", ["--checkpoint", "{tmp}/garbage.pth", "--dataset", "DEAP", "--data-root", "{tmp}"],
     "garbage.pth"),
    ("loso.compare", ["{tmp}/missing", "{tmp}/run_a"], "missing"),
    ("loso.aggregate", ["{tmp}/run_a"], "run_a"),
    ("gru_xnet.datasets.synthetic", ["--out", "{tmp}/syn", "--datasets", "NOPE"], "NOPE"),
    ("gru_xnet.datasets.synthetic", ["--out", "{tmp}/syn", "--subjects", "0"], "n_subjects"),
    ("loso.run", ["--dataset-module", "{tmp}/missing.py"], "missing.py"),
    ("gru_xnet.datasets.check", ["--data-root", "{tmp}/nope"], "nope"),
    ("loso.run", ["--data.dataset_options", '{"DREAMER": {"comparison": "=="}}'], "dataset_options['DREAMER'].comparison"),
]


@pytest.mark.parametrize("module, args, named", CLI_CASES)
def test_cli_user_error_is_one_line(tmp_path, module, args, named):
    (tmp_path / "space.json").write_text('{"gru_hidden_size": {"choices": [[16, 32]]}}')
    (tmp_path / "garbage.pth").write_bytes(b"\x00\x01 not a checkpoint")
    (tmp_path / "run_a").mkdir()
    (tmp_path / "run_a" / "run.json").write_text("{garbage")
    command = [sys.executable, "-m", module, *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)})
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert result.returncode != 0, output
    assert "Traceback" not in output and "Ray instance" not in output, output
    if named == "usage":  # argparse's own usage and error lines
        assert lines[0].startswith("usage:") and re.search(r": error: .*bogus", lines[-1]), output
    else:
        assert len(lines) == 1 and "error" in lines[0] and named in lines[0], output
