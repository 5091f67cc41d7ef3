"""DEAP reader: `data_preprocessed_python/sXX.dat` pickles -> 32-channel EEG trials with binarised ratings."""

from __future__ import annotations

import operator
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .base import (DatasetError, Reader, Trial, check_number, check_option, inner_folder, is_real_array, natural_key,
                   signal_problem, stimulus_confound)
from .safe_pickle import load_pickle
from .synthetic_signal import SubjectModel, rated_levels, rating

DEAP_CHANNELS = (
    "FP1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1", "OZ", "PZ",
    "FP2", "AF4", "FZ", "F4", "F8", "FC6", "FC2", "CZ", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)
"""The 32 EEG channels (rows 0..31 of 'data'), in TorchEEG's order."""

LABEL_DIMENSIONS = ("valence", "arousal", "dominance", "liking")
"""Columns of 'labels', each a 1-9 rating."""

SAMPLING_RATE = 128.0
BASELINE_SAMPLES = 384
"""3 s pre-trial baseline at 128 Hz, dropped from every trial."""
BASELINES = ("drop", "subtract_signal")
"""`baseline`: the 3 s dropped, or also their mean 1 s segment subtracted from every 1 s of the trial (LibEER)."""

N_RECORDED_CHANNELS = 40
COMPARISONS = {">=": operator.ge, ">": operator.gt}
FILE_PATTERN = re.compile(r"^(s\d+)\.dat$")


class DEAPReader(Reader):
    """DEAP preprocessed-python files; label = rating of one dimension compared with a threshold."""

    name = "DEAP"
    n_classes = 2
    sampling_rate = SAMPLING_RATE
    channel_names = DEAP_CHANNELS
    passband_hz = (4.0, 45.0)
    config_keys = {"deap_label": "label_dimension", "deap_threshold": "threshold", "deap_comparison": "comparison"}
    synthetic_trials = (8, 40)

    def __init__(
        self,
        root: str | Path,
        *,
        skip_bad_trials: bool = False,
        joint: bool = False,
        label_dimension: str = "valence",
        threshold: float = 5.0,
        comparison: str = ">=",
        baseline: str = "drop",
    ) -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(label_dimension=label_dimension, threshold=threshold, comparison=comparison,
                                     baseline=baseline)
        self.label_dimension, self.threshold, self.comparison = (options[k] for k in ("label_dimension", "threshold",
                                                                                      "comparison"))
        self.baseline = options.get("baseline", "drop")
        self.class_names = (f"low {label_dimension}", f"high {label_dimension}")
        self.data_dir = inner_folder(self.root, "data_preprocessed_python")

    @classmethod
    def check_options(cls, joint: bool = False, label_dimension: str = "valence", threshold: float = 5.0,
                      comparison: str = ">=", baseline: str = "drop") -> dict[str, Any]:
        """A rating dimension, a threshold on the 1-9 scale, '>=' or '>', and the 3 s pre-trial `baseline`: 'drop'
        it, or 'subtract_signal': subtract the mean of its three 1 s segments from every 1 s of the trial (LibEER's
        read_deap_preprocessed), then drop it. Only a non-default baseline is listed (older caches keep their keys)."""
        check_option("label_dimension", label_dimension, LABEL_DIMENSIONS)
        check_option("comparison", comparison, tuple(COMPARISONS))
        check_option("baseline", baseline, BASELINES)
        return {"label_dimension": label_dimension, "threshold": check_number("threshold", threshold, 1.0, 9.0),
                "comparison": comparison, **({"baseline": baseline} if baseline != "drop" else {})}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        entries = [p.name for p in folder.iterdir()]
        return "data_preprocessed_python" in entries or any(FILE_PATTERN.match(e) for e in entries)

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        return f"v{trial:02d}"  # the 40 music videos, in the order of the files' trials

    def subjects(self) -> list[str]:
        """Subject ids ('s01', ...) of the sXX.dat files present."""
        found = [m.group(1) for p in self.data_dir.iterdir() if (m := FILE_PATTERN.match(p.name))]
        if not found:
            raise DatasetError(f"DEAP: expected sXX.dat files in {self.data_dir}, found none")
        return sorted(found, key=natural_key)

    def source_files(self, subject: str) -> list[Path]:
        """The one pickle of that subject."""
        self._check_subject(subject, self.subjects())
        return [self.data_dir / f"{subject}.dat"]

    def read_subject(self, subject: str) -> list[Trial]:
        """All trials of the subject: first 32 channels, baseline removed, binarised label."""
        (path,) = self.source_files(subject)
        data, labels = self._load(path)
        column = LABEL_DIMENSIONS.index(self.label_dimension)
        above = COMPARISONS[self.comparison]
        trials: list[Trial] = []
        skipped: list[str] = []
        for index in range(data.shape[0]):
            where = f"{path} variable 'data' trial {index + 1}"
            channels = data[index, : len(DEAP_CHANNELS)]
            signal = channels[:, BASELINE_SAMPLES:]
            if self.baseline == "subtract_signal":
                signal = signal - baseline_template(channels[:, :BASELINE_SAMPLES], signal.shape[1])
            problem = signal_problem(signal, where, len(DEAP_CHANNELS))
            rating = float(labels[index, column])
            if problem is None and not 1.0 <= rating <= 9.0:
                problem = f"{path} variable 'labels' trial {index + 1}: expected a {self.label_dimension} rating in 1-9, found {rating}"
            if problem is not None:
                self._bad_trial(skipped, problem)
                continue
            trials.append(Trial(
                signal=np.ascontiguousarray(signal, dtype=np.float32),
                label=int(above(rating, self.threshold)),
                subject=subject, session="1", trial=index + 1,
                channel_names=DEAP_CHANNELS, sampling_rate=SAMPLING_RATE, dataset=self.name,
            ))
        return self._finish(subject, trials, skipped)

    def options(self) -> dict:
        """Label dimension, threshold, comparison, and the baseline when it is not dropped."""
        return {"label_dimension": self.label_dimension, "threshold": self.threshold, "comparison": self.comparison,
                **({"baseline": self.baseline} if self.baseline != "drop" else {})}

    def label_description(self) -> str:
        """E.g. 'DEAP valence >= 5.0 -> high (1), else low (0)'."""
        subtracted = ("; the mean of the three 1 s pre-trial segments subtracted from every 1 s of the trial (LibEER)"
                      if self.baseline == "subtract_signal" else "")
        return f"DEAP {self.label_dimension} {self.comparison} {self.threshold} -> high (1), else low (0){subtracted}"

    def stimulus_statement(self) -> str:
        """DEAP: the same 40 music videos for everyone; labels are each subject's own ratings."""
        return stimulus_confound("every DEAP subject watched the same 40 music videos (one trial each)", "videos",
                                 "video", rated=True)

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """DEAP/data_preprocessed_python/sXX.dat: 'labels' (trials, 4) and 'data' (trials, 40, 384 + stimulus)."""
        folder = root / "data_preprocessed_python"
        folder.mkdir(parents=True, exist_ok=True)
        n_stimulus = int(round(seconds * SAMPLING_RATE))
        rng = np.random.default_rng([seed, 0, subject])
        model = SubjectModel.draw(rng, len(DEAP_CHANNELS), planting)
        written = rated_levels(rng, trials, planting, dimensions=2)  # (trials, 2)
        planted = rng.integers(0, 2, size=written.shape) if planting.shuffle else written
        data = np.empty((trials, N_RECORDED_CHANNELS, BASELINE_SAMPLES + n_stimulus))
        labels = np.empty((trials, len(LABEL_DIMENSIONS)))
        n_other = N_RECORDED_CHANNELS - len(DEAP_CHANNELS)
        for t in range(trials):
            data[t, : len(DEAP_CHANNELS), :BASELINE_SAMPLES] = model.trial(rng, DEAP_CHANNELS, BASELINE_SAMPLES, SAMPLING_RATE, None)
            data[t, : len(DEAP_CHANNELS), BASELINE_SAMPLES:] = model.trial(
                rng, DEAP_CHANNELS, n_stimulus, SAMPLING_RATE, (int(planted[t, 0]), int(planted[t, 1])),
                cls.stimulus(1, t + 1))
            data[t, len(DEAP_CHANNELS):] = rng.normal(0.0, 50.0, size=(n_other, 1)) + rng.normal(0.0, 5.0, size=(n_other, data.shape[2]))
            labels[t] = [rating(rng, written[t, 0]), rating(rng, written[t, 1]),
                         round(float(rng.uniform(1, 9)), 2), round(float(rng.uniform(1, 9)), 2)]
        (folder / f"s{subject:02d}.dat").write_bytes(py2_pickle({"labels": labels, "data": data}))

    @staticmethod
    def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        """The 'data' (trials, 40, samples) and 'labels' (trials, 4) arrays of one file, shape-checked."""
        content = load_pickle(path)
        if not isinstance(content, dict):
            raise DatasetError(f"{path}: expected a dict with keys 'data' and 'labels', found {type(content).__name__}")
        content = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}
        for key in ("data", "labels"):
            if not isinstance(content.get(key), np.ndarray):
                raise DatasetError(
                    f"{path}: expected variable {key!r} holding an array, found keys {sorted(map(str, content))}"
                )
        data, labels = content["data"], content["labels"]
        if (data.ndim != 3 or data.shape[0] == 0 or data.shape[1] not in (len(DEAP_CHANNELS), N_RECORDED_CHANNELS)
                or data.shape[2] <= BASELINE_SAMPLES or not is_real_array(data)):
            raise DatasetError(
                f"{path} variable 'data': expected a real numeric array (trials, 40 channels, >{BASELINE_SAMPLES} "
                f"samples), found {data.dtype} {data.shape}"
            )
        if labels.shape != (data.shape[0], len(LABEL_DIMENSIONS)) or not is_real_array(labels):
            raise DatasetError(
                f"{path} variable 'labels': expected a real numeric array ({data.shape[0]}, 4), found {labels.dtype} "
                f"{labels.shape}"
            )
        return data, labels


def baseline_template(baseline: np.ndarray, samples: int) -> np.ndarray:
    """The pre-trial baseline's 1 s segments averaged into one (C, rate) template, repeated over `samples` (a last
    partial second takes the template's start, as LibEER's baseline_removal)."""
    second = int(SAMPLING_RATE)
    template = baseline.reshape(len(baseline), -1, second).mean(axis=1)
    return np.tile(template, (1, -(-samples // second)))[:, :samples]


def py2_pickle(content: dict[str, np.ndarray]) -> bytes:
    """Protocol-2 pickle of a dict of arrays as Python 2 wrote DEAP's files (str keys and data, numpy.core names)."""
    # Opcodes: \x80\x02 PROTO 2, } EMPTY_DICT, ( MARK, u SETITEMS, . STOP, U/T SHORT_BINSTRING/BINSTRING,
    # c GLOBAL, K/J BININT1/BININT, t TUPLE, \x85/\x87 TUPLE1/TUPLE3, R REDUCE, b BUILD, N None, \x89 False.

    def string(data: bytes) -> bytes:
        return (b"U" + struct.pack("<B", len(data)) if len(data) < 256 else b"T" + struct.pack("<I", len(data))) + data

    def array(value: np.ndarray) -> bytes:
        value = np.ascontiguousarray(value)
        shape = b"(" + b"".join(b"J" + struct.pack("<i", n) for n in value.shape) + b"t"
        dtype = (b"cnumpy\ndtype\n" + string(value.dtype.str[1:].encode()) + b"K\x00K\x01\x87R"
                 + b"(K\x03" + string(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + string(b"b") + b"\x87R"
                + b"(K\x01" + shape + dtype + b"\x89" + string(value.tobytes()) + b"tb")

    body = b"".join(string(key.encode("ascii")) + array(value) for key, value in content.items())
    return b"\x80\x02}(" + body + b"u."
