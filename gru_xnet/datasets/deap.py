"""DEAP reader: `data_preprocessed_python/sXX.dat` pickles -> 32-channel EEG trials with binarised ratings."""

from __future__ import annotations

import operator
import re
from pathlib import Path

import numpy as np

from .base import DatasetError, Reader, Trial, check_option, inner_folder, is_real_array, natural_key, signal_problem
from .safe_pickle import load_pickle

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

    def __init__(
        self,
        root: str | Path,
        *,
        skip_bad_trials: bool = False,
        label_dimension: str = "valence",
        threshold: float = 5.0,
        comparison: str = ">=",
    ) -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        check_option("label_dimension", label_dimension, LABEL_DIMENSIONS)
        check_option("comparison", comparison, tuple(COMPARISONS))
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
            raise DatasetError(f"option threshold={threshold!r} is not allowed; allowed values: a finite number")
        self.label_dimension = label_dimension
        self.threshold = float(threshold)
        self.comparison = comparison
        self.class_names = (f"low {label_dimension}", f"high {label_dimension}")
        self.data_dir = inner_folder(self.root, "data_preprocessed_python")

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
            signal = data[index, : len(DEAP_CHANNELS), BASELINE_SAMPLES:]
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
        """Label dimension, threshold and comparison."""
        return {"label_dimension": self.label_dimension, "threshold": self.threshold, "comparison": self.comparison}

    def label_description(self) -> str:
        """E.g. 'DEAP valence >= 5.0 -> high (1), else low (0)'."""
        return f"DEAP {self.label_dimension} {self.comparison} {self.threshold} -> high (1), else low (0)"

    def stimulus_statement(self) -> str:
        """DEAP: the same 40 music videos for everyone; labels are each subject's own ratings."""
        return ("STIMULI: every DEAP subject watched the same 40 music videos (one trial each). The labels are each "
                "subject's own ratings, but the training subjects saw the very videos the test subject saw, so "
                "cross-subject accuracy can partly reflect recognising the video rather than the emotion; holding "
                "out the subject does not hold out the stimulus, and the within-subject label permutation does not "
                "guard against it.")

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
