"""DREAMER reader: one `DREAMER.mat` struct -> 23 subjects x 18 clips of 14-channel Emotiv EEG at 128 Hz.

`DREAMER.Data{s}.EEG.stimuli{t}` is samples x 14 (transposed here), `EEG.baseline{t}` the 61 s before the
clip (ignored by default; `baseline: subtract` removes its mean feature from every window), and `ScoreValence` / `ScoreArousal` / `ScoreDominance` the subject's 1-5 rating per clip.
Binary labels: rating > 3 -> high (1), as EEGain counts 1-3 as low; TorchEEG's `Binary(3.0)` counts 3 as high
(`comparison ">="`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from .base import DatasetError, Reader, Trial, check_number, check_option, natural_key, signal_problem, stimulus_confound
from .synthetic_signal import SubjectModel, rated_levels

DREAMER_CHANNELS = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")
"""`EEG_Electrodes`, the Emotiv EPOC order of the stimuli columns."""
SAMPLING_RATE = 128.0
N_CLIPS = 18
BASELINE_SECONDS = 61
SCORES = {"valence": "ScoreValence", "arousal": "ScoreArousal", "dominance": "ScoreDominance"}
COMPARISONS = {">": np.greater, ">=": np.greater_equal}
FILE = "DREAMER.mat"
_LOADED: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def _cell(value: Any, where: str) -> Any:
    """The one element a MATLAB 1x1 struct or cell wrapper holds."""
    array = np.asarray(value)
    if array.size != 1:
        raise DatasetError(f"{where}: expected a 1x1 struct or cell, found shape {array.shape}")
    return array.flat[0]


def _cells(items: list) -> np.ndarray:
    """An n x 1 MATLAB cell array of `items` (numpy would stack equal-shaped arrays into one)."""
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = item
    return out


def _field(struct: Any, name: str, where: str) -> Any:
    """A field of a (1x1) MATLAB struct as loaded by scipy, naming what is missing."""
    record = _cell(struct, where) if isinstance(struct, np.ndarray) else struct
    if record.dtype.names is None or name not in record.dtype.names:
        raise DatasetError(f"{where}: expected a field {name!r}, found {record.dtype.names}")
    return record[name]


class DREAMERReader(Reader):
    """DREAMER.mat; each clip one trial, labelled by the subject's own rating of one dimension."""

    name = "DREAMER"
    n_classes = 2
    channel_names = DREAMER_CHANNELS
    sampling_rate = SAMPLING_RATE
    synthetic_trials = (6, N_CLIPS)

    def __init__(self, root: str | Path, *, skip_bad_trials: bool = False, joint: bool = False,
                 label_dimension: str = "valence", threshold: float = 3.0, comparison: str = ">",
                 baseline: str = "ignore") -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(label_dimension=label_dimension, threshold=threshold, comparison=comparison,
                                     baseline=baseline)
        self.label_dimension, self.threshold, self.comparison, self.baseline = (
            options[k] for k in ("label_dimension", "threshold", "comparison", "baseline"))
        self.class_names = (f"low {label_dimension}", f"high {label_dimension}")
        self.path = self.root / FILE

    @classmethod
    def check_options(cls, joint: bool = False, label_dimension: str = "valence", threshold: float = 3.0,
                      comparison: str = ">", baseline: str = "ignore") -> dict[str, Any]:
        """A rating dimension, a threshold on the 1-5 scale, '>' (EEGain, the default) or '>=' (TorchEEG), and
        `baseline`: 'ignore' the 61 s pre-clip recording, or 'subtract' its mean feature (log power per channel
        and frequency for stft, DE per channel and band for de) from every window of the clip."""
        check_option("label_dimension", label_dimension, tuple(SCORES))
        check_option("comparison", comparison, tuple(COMPARISONS))
        check_option("baseline", baseline, ("ignore", "subtract"))
        return {"label_dimension": label_dimension, "threshold": check_number("threshold", threshold, 1.0, 5.0),
                "comparison": comparison, "baseline": baseline}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        return (folder / FILE).is_file()

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        return f"clip{trial:02d}"

    def _data(self) -> np.ndarray:
        """`DREAMER.Data`, one entry per subject; the file (hundreds of MB) is read once per process and change."""
        import scipy.io

        if not self.path.is_file():
            raise DatasetError(f"DREAMER: expected {self.path}, found no such file")
        key = (str(self.path.resolve()), self.path.stat().st_mtime_ns)
        with _LOCK:
            if key not in _LOADED:
                try:
                    content = scipy.io.loadmat(self.path, verify_compressed_data_integrity=False)
                except Exception as exc:  # scipy raises many types for bad files
                    raise DatasetError(f"{self.path}: expected a readable MAT file, found an unreadable or truncated "
                                       f"file ({exc})") from exc
                if "DREAMER" not in content:
                    raise DatasetError(f"{self.path}: expected a struct 'DREAMER', found "
                                       f"{sorted(k for k in content if not k.startswith('__'))}")
                _LOADED.clear()
                _LOADED[key] = np.asarray(_field(content["DREAMER"], "Data", f"{self.path} DREAMER")).ravel()
            return _LOADED[key]

    def subjects(self) -> list[str]:
        """Subject ids '1' ... '23' (their place in DREAMER.Data)."""
        return [str(i) for i in range(1, len(self._data()) + 1)]

    def source_files(self, subject: str) -> list[Path]:
        self._check_subject(subject, sorted(self.subjects(), key=natural_key))
        return [self.path]

    def read_subject(self, subject: str) -> list[Trial]:
        """The 18 clips (baselines not used), samples x channels transposed, labelled by the chosen rating."""
        self._check_subject(subject, self.subjects())
        where = f"{self.path} DREAMER.Data{{{subject}}}"
        entry = self._data()[int(subject) - 1]
        eeg = _field(entry, "EEG", where)
        clips = np.asarray(_field(eeg, "stimuli", f"{where}.EEG"), dtype=object).ravel()
        baselines = (np.asarray(_field(eeg, "baseline", f"{where}.EEG"), dtype=object).ravel()
                     if self.baseline == "subtract" else [None] * len(clips))
        if len(baselines) != len(clips):
            raise DatasetError(f"{where}.EEG.baseline: expected one baseline per clip ({len(clips)}), found "
                               f"{len(baselines)}")
        try:
            scores = np.asarray(_field(entry, SCORES[self.label_dimension], where), dtype=float).ravel()
        except (TypeError, ValueError):
            raise DatasetError(f"{where}.{SCORES[self.label_dimension]}: expected numeric ratings") from None
        if len(scores) != len(clips):
            raise DatasetError(f"{where}.{SCORES[self.label_dimension]}: expected one rating per clip "
                               f"({len(clips)}), found {len(scores)}")
        above = COMPARISONS[self.comparison]
        trials: list[Trial] = []
        skipped: list[str] = []
        for number, (clip, score, base) in enumerate(zip(clips, scores, baselines), start=1):
            signal = np.asarray(clip).T if isinstance(clip, np.ndarray) else clip
            problem = signal_problem(signal, f"{where}.EEG.stimuli{{{number}}}", len(DREAMER_CHANNELS))
            if base is not None:
                base = np.asarray(base).T if isinstance(base, np.ndarray) else base
                problem = problem or signal_problem(base, f"{where}.EEG.baseline{{{number}}}", len(DREAMER_CHANNELS))
            if problem is None and not 1.0 <= score <= 5.0:
                problem = f"{where}.{SCORES[self.label_dimension]}({number}): expected a rating in 1-5, found {score}"
            if problem is not None:
                self._bad_trial(skipped, problem)
                continue
            trials.append(Trial(signal=np.ascontiguousarray(signal, dtype=np.float32),
                                label=int(above(score, self.threshold)), subject=subject, session="1", trial=number,
                                channel_names=DREAMER_CHANNELS, sampling_rate=SAMPLING_RATE, dataset=self.name,
                                baseline=None if base is None else np.ascontiguousarray(base, dtype=np.float32)))
        return self._finish(subject, trials, skipped)

    def options(self) -> dict:
        return {"label_dimension": self.label_dimension, "threshold": self.threshold, "comparison": self.comparison,
                "baseline": self.baseline}

    def label_description(self) -> str:
        base = "; each clip's 61 s baseline: mean feature subtracted" if self.baseline == "subtract" else ""
        return f"DREAMER {self.label_dimension} {self.comparison} {self.threshold:g} (1-5) -> high (1), else low (0){base}"

    def stimulus_statement(self) -> str:
        return stimulus_confound("every DREAMER subject watched the same 18 film clips (one trial each)", "clips", "clip",
                                 rated=True)

    @classmethod
    def write_synthetic(cls, root: Path, n_subjects: int, trials: int, seconds: float, planting: Any,
                        seed: int) -> None:
        """DREAMER/DREAMER.mat: the one struct, `Data` a 1 x n cell of subject structs as the released file."""
        import scipy.io

        data = np.empty((1, n_subjects), dtype=object)
        for subject in range(1, n_subjects + 1):
            data[0, subject - 1] = cls._synthetic_subject(subject, trials, seconds, planting, seed)
        root.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / FILE, {"DREAMER": {
            "Data": data, "EEG_SamplingRate": SAMPLING_RATE, "ECG_SamplingRate": 256.0,
            "EEG_Electrodes": np.array([list(DREAMER_CHANNELS)], dtype=object), "noOfSubjects": float(n_subjects),
            "noOfVideoSequences": float(N_CLIPS), "Disclaimer": "SYNTHETIC", "Provider": "gru_xnet"}},
            do_compression=True)

    @staticmethod
    def _synthetic_subject(subject: int, trials: int, seconds: float, planting: Any, seed: int) -> dict[str, Any]:
        """One subject struct: EEG.stimuli and EEG.baseline (samples x 14 cells, 61 s baselines), 1-5 scores."""
        rng = np.random.default_rng([seed, 4, subject])
        model = SubjectModel.draw(rng, len(DREAMER_CHANNELS), planting)
        levels = rated_levels(rng, trials, planting)[:, 0]
        planted = rng.integers(0, 2, trials) if planting.shuffle else levels
        n = int(round(seconds * SAMPLING_RATE))
        stimuli = _cells([model.trial(rng, DREAMER_CHANNELS, n + int(rng.integers(0, 64)), SAMPLING_RATE,
                                     (int(level), int(level)), f"clip{t + 1:02d}").T for t, level in enumerate(planted)])
        baselines = _cells([model.trial(rng, DREAMER_CHANNELS, BASELINE_SECONDS * int(SAMPLING_RATE), SAMPLING_RATE,
                                       None).T for _ in range(trials)])
        scores = {field: np.array([[rng.integers(4, 6) if level else rng.integers(1, 3)] for level in levels],
                                  dtype=float) for field in SCORES.values()}  # 4-5 or 1-2: one side of 3 either way
        return {"Age": 25.0, "Gender": "female", "EEG": {"stimuli": stimuli, "baseline": baselines}, **scores}
