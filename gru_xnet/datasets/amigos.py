"""AMIGOS reader: `Data_Preprocessed/Data_Preprocessed_P<NN>.mat` -> 14-channel Emotiv EEG trials at 128 Hz.

`joined_data{t}` is samples x 17 (14 EEG in the Emotiv order, 2 ECG, 1 GSR): the 14 EEG columns are kept
and transposed. `labels_selfassessment{t}` is 1 x 12: arousal, valence, dominance, liking, familiarity on
1-9, then 7 binary emotions. Trials 1-16 are the short videos, 17-20 the long ones (default: the 16 short).
The first 5 s of every trial are the pre-stimulus baseline (TorchEEG's `num_baseline=5`) and are dropped.
Empty trials or labels, known in several subjects, are skipped with a warning that counts them
(`skip_empty_trials`), or refused.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from .base import (DatasetError, Reader, Trial, check_number, check_option, inner_folder, natural_key, signal_problem,
                   stimulus_confound)
from .synthetic_signal import SubjectModel, rated_levels, rating

AMIGOS_CHANNELS = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")
"""Columns 0-13 of joined_data (Emotiv EPOC order); 14-15 ECG, 16 GSR."""
N_COLUMNS = 17
SAMPLING_RATE = 128.0
BASELINE_SECONDS = 5
N_SHORT, N_TRIALS = 16, 20
LABEL_COLUMNS = {"arousal": 0, "valence": 1, "dominance": 2, "liking": 3}
COMPARISONS = {">=": np.greater_equal, ">": np.greater}
_FILE_PATTERN = re.compile(r"^Data_Preprocessed_P(\d+)\.mat$")
log = logging.getLogger(__name__)


class AMIGOSReader(Reader):
    """AMIGOS preprocessed data; label = one self-assessment dimension compared with a threshold on 1-9."""

    name = "AMIGOS"
    n_classes = 2
    channel_names = AMIGOS_CHANNELS
    sampling_rate = SAMPLING_RATE
    synthetic_trials = (6, N_TRIALS)

    def __init__(self, root: str | Path, *, skip_bad_trials: bool = False, joint: bool = False,
                 label_dimension: str = "valence", threshold: float = 5.0, comparison: str = ">=",
                 videos: str = "short", skip_empty_trials: bool = True) -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(label_dimension=label_dimension, threshold=threshold, comparison=comparison,
                                     videos=videos, skip_empty_trials=skip_empty_trials)
        for key, value in options.items():
            setattr(self, key, value)
        self.class_names = (f"low {label_dimension}", f"high {label_dimension}")
        self.data_dir = next((self.root / name for name in ("Data_Preprocessed", "data_preprocessed")
                              if (self.root / name).is_dir()), inner_folder(self.root, "Data_Preprocessed"))

    @classmethod
    def check_options(cls, joint: bool = False, label_dimension: str = "valence", threshold: float = 5.0,
                      comparison: str = ">=", videos: str = "short", skip_empty_trials: bool = True) -> dict[str, Any]:
        """A rating dimension with a 1-9 threshold (DEAP's convention), the short (16) or all (20) videos, and
        whether empty trials are skipped."""
        check_option("label_dimension", label_dimension, tuple(LABEL_COLUMNS))
        check_option("comparison", comparison, tuple(COMPARISONS))
        check_option("videos", videos, ("short", "all"))
        check_option("skip_empty_trials", skip_empty_trials, (True, False))
        return {"label_dimension": label_dimension, "threshold": check_number("threshold", threshold, 1.0, 9.0),
                "comparison": comparison, "videos": videos, "skip_empty_trials": skip_empty_trials}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        entries = [p.name for p in folder.iterdir()]
        return (any(e.lower() == "data_preprocessed" for e in entries)
                or any(_FILE_PATTERN.match(e) for e in entries))

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        return f"video{trial:02d}"  # the preprocessed trials in the same video order for every participant

    def _files(self) -> dict[str, Path]:
        """Subject id ('P01', P1 spelled either way) -> its file."""
        return {f"P{int(m.group(1)):02d}": p for p in self.data_dir.iterdir() if (m := _FILE_PATTERN.match(p.name))}

    def subjects(self) -> list[str]:
        found = sorted(self._files(), key=natural_key)
        if not found:
            raise DatasetError(f"AMIGOS: expected Data_Preprocessed_P<NN>.mat files in {self.data_dir}, found none")
        return found

    def source_files(self, subject: str) -> list[Path]:
        files = self._files()
        self._check_subject(subject, sorted(files, key=natural_key))
        return [files[subject]]

    def read_subject(self, subject: str) -> list[Trial]:
        """The chosen videos' trials, baseline dropped, empty ones skipped (counted) or refused."""
        (path,) = self.source_files(subject)
        eeg, labels = self._load(path)
        column, above = LABEL_COLUMNS[self.label_dimension], COMPARISONS[self.comparison]
        trials: list[Trial] = []
        skipped: list[str] = []
        empty = 0
        for number in range(1, (N_SHORT if self.videos == "short" else N_TRIALS) + 1):
            if number > len(eeg):
                break
            data, label = np.asarray(eeg[number - 1]), np.asarray(labels[number - 1], dtype=object).ravel()
            where = f"{path} joined_data{{{number}}}"
            if data.size == 0 or label.size == 0:
                if not self.skip_empty_trials:
                    raise DatasetError(f"{where}: expected samples and labels, found an empty trial (known in some "
                                       "AMIGOS subjects; skip_empty_trials true skips them)")
                empty += 1
                continue
            signal = data[int(BASELINE_SECONDS * SAMPLING_RATE):, :len(AMIGOS_CHANNELS)].T if data.ndim == 2 else data
            problem = None if data.ndim == 2 and data.shape[1] == N_COLUMNS else (
                f"{where}: expected samples x {N_COLUMNS} columns, found shape {data.shape}")
            problem = problem or signal_problem(signal, where, len(AMIGOS_CHANNELS))
            score = _number(label[column]) if label.size > column else None
            if problem is None and not (score is not None and 1.0 <= score <= 9.0):
                problem = f"{path} labels_selfassessment{{{number}}}: expected a {self.label_dimension} rating in 1-9"
            if problem is not None:
                self._bad_trial(skipped, problem)
                continue
            trials.append(Trial(signal=np.ascontiguousarray(signal, dtype=np.float32), label=int(above(score, self.threshold)),
                                subject=subject, session="1", trial=number, channel_names=AMIGOS_CHANNELS,
                                sampling_rate=SAMPLING_RATE, dataset=self.name))
        if empty:
            log.warning("AMIGOS subject %s: %d empty trial(s) skipped (skip_empty_trials)", subject, empty)
        return self._finish(subject, trials, skipped)

    @staticmethod
    def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        """`joined_data` and `labels_selfassessment` as flat object arrays, one entry per trial."""
        import scipy.io

        try:
            content = scipy.io.loadmat(path, verify_compressed_data_integrity=False)
        except Exception as exc:  # scipy raises many types for bad files
            raise DatasetError(f"{path}: expected a readable MAT file, found an unreadable or truncated file ({exc})") from exc
        missing = [k for k in ("joined_data", "labels_selfassessment") if k not in content]
        if missing:
            raise DatasetError(f"{path}: expected variables joined_data and labels_selfassessment, missing {missing}")
        eeg, labels = (np.asarray(content[k], dtype=object).ravel() for k in ("joined_data", "labels_selfassessment"))
        if len(eeg) != len(labels) or not 1 <= len(eeg) <= N_TRIALS:
            raise DatasetError(f"{path}: expected up to {N_TRIALS} trials in joined_data and labels_selfassessment, "
                               f"found {len(eeg)} and {len(labels)}")
        return eeg, labels

    def options(self) -> dict:
        return {"label_dimension": self.label_dimension, "threshold": self.threshold, "comparison": self.comparison,
                "videos": self.videos, "skip_empty_trials": self.skip_empty_trials}

    def label_description(self) -> str:
        return (f"AMIGOS {self.label_dimension} {self.comparison} {self.threshold:g} (1-9) -> high (1), else low (0); "
                f"{'the 16 short' if self.videos == 'short' else 'all 20'} videos, first {BASELINE_SECONDS} s dropped")

    def stimulus_statement(self) -> str:
        return stimulus_confound("every AMIGOS participant watched the same videos", "videos", "video", rated=True)

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """AMIGOS/Data_Preprocessed/Data_Preprocessed_P<NN>.mat (P01 and P1 spellings alternate), 5 s baselines."""
        import scipy.io

        folder = root / "Data_Preprocessed"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, 5, subject])
        model = SubjectModel.draw(rng, len(AMIGOS_CHANNELS), planting)
        levels = rated_levels(rng, trials, planting)[:, 0]
        planted = rng.integers(0, 2, trials) if planting.shuffle else levels
        n, baseline = int(round(seconds * SAMPLING_RATE)), int(BASELINE_SECONDS * SAMPLING_RATE)
        joined = np.empty((1, trials), dtype=object)
        labels = np.empty((1, trials), dtype=object)
        for t, (level, written) in enumerate(zip(planted, levels)):
            eeg = np.concatenate([model.trial(rng, AMIGOS_CHANNELS, baseline, SAMPLING_RATE, None),
                                  model.trial(rng, AMIGOS_CHANNELS, n, SAMPLING_RATE, (int(level), int(level)),
                                              cls.stimulus(1, t + 1))], axis=1)
            other = rng.normal(0.0, 30.0, size=(N_COLUMNS - len(AMIGOS_CHANNELS), baseline + n))
            joined[0, t] = np.concatenate([eeg, other]).T
            labels[0, t] = np.array([[rating(rng, int(written)), rating(rng, int(written)), *rng.uniform(1, 9, 3),
                                      *rng.integers(0, 2, 7)]])
        name = f"P{subject:02d}" if subject % 2 else f"P{subject}"
        scipy.io.savemat(folder / f"Data_Preprocessed_{name}.mat",
                         {"joined_data": joined, "labels_selfassessment": labels,
                          "VideoIDs": np.array([[f"V{t + 1}" for t in range(trials)]], dtype=object)},
                         do_compression=True)


def _number(value: Any) -> float | None:
    """A label entry as a float, or None when it is not one number."""
    try:
        number = float(np.asarray(value, dtype=float).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if np.isfinite(number) else None
