"""FACED reader: `Processed_data/sub000.pkl` ... `sub122.pkl` -> 28 clips x 30 channels at 250 Hz per subject.

Each file is a pickled array (28 clips, 32 channels, 30 s x 250 Hz), read with the restricted unpickler
(numpy arrays only); the last two channels are the mastoid references and are dropped, as TorchEEG does.
Labels are fixed per clip: valence in 3 classes (clips 1-12 negative, 13-16 neutral, 17-28 positive) or the
9 discrete emotions; with other datasets the shared binary mapping negative -> 0, neutral and positive -> 1.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from .base import DatasetError, OptionError, Reader, Trial, check_option, inner_folder, is_real_array, natural_key
from .base import signal_problem, stimulus_confound
from .safe_pickle import load_pickle
from .synthetic_signal import SubjectModel

FACED_CHANNELS = ("FP1", "FP2", "FZ", "F3", "F4", "F7", "F8", "FC1", "FC2", "FC5", "FC6", "CZ", "C3", "C4", "T7",
                  "T8", "CP1", "CP2", "CP5", "CP6", "PZ", "P3", "P4", "P7", "P8", "PO3", "PO4", "OZ", "O1", "O2")
"""TorchEEG's FACED_CHANNEL_LIST: the 30 scalp channels, rows 0-29 (rows 30-31 are the mastoids)."""
N_RECORDED_CHANNELS = 32
SAMPLING_RATE = 250.0
N_CLIPS = 28
EMOTIONS = ("anger", "disgust", "fear", "sadness", "neutral", "amusement", "inspiration", "joy", "tenderness")
CLIP_EMOTION = (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8)
"""The emotion of clips 1-28 (TorchEEG's faced.py); valence: 0-3 negative, 4 neutral, 5-8 positive."""
VALENCE = ("negative", "neutral", "positive")
SYNTHETIC_FACTORS = {0: (0, 0), 1: (1, 0), 2: (1, 1)}
"""Valence class -> (valence level, arousal level) planted by the generator."""
_FILE_PATTERN = re.compile(r"^sub(\d+)\.pkl$")


def clip_valence(clip: int) -> int:
    """0 negative, 1 neutral, 2 positive for clip 1..28."""
    emotion = CLIP_EMOTION[clip - 1]
    return 0 if emotion < 4 else 1 if emotion == 4 else 2


class FACEDReader(Reader):
    """FACED's processed data; label `valence` (3 classes alone, 2 with other datasets) or `emotion` (9, alone)."""

    name = "FACED"
    n_classes = 3
    channel_names = FACED_CHANNELS
    sampling_rate = SAMPLING_RATE
    passband_hz = "unknown"  # Processed_data is the authors' preprocessing; its band is in no source at hand
    synthetic_trials = (N_CLIPS, N_CLIPS)

    def __init__(self, root: str | Path, *, skip_bad_trials: bool = False, joint: bool = False,
                 label: str = "valence") -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(joint, label=label)
        self.label, self.n_classes = options["label"], self.classes(options)
        self.binary = joint
        self.class_names = (("negative", "non-negative") if joint else VALENCE) if label == "valence" else EMOTIONS
        self.data_dir = inner_folder(self.root, "Processed_data")

    @classmethod
    def check_options(cls, joint: bool = False, label: str = "valence") -> dict[str, Any]:
        """`valence` or `emotion` (9 classes, FACED alone only)."""
        check_option("label", label, ("valence", "emotion"))
        if joint and label == "emotion":
            raise OptionError("label", label, "'valence' when FACED is combined with other (binary) datasets")
        return {"label": label, "joint": joint}

    @classmethod
    def classes(cls, options: dict[str, Any]) -> int:
        return len(EMOTIONS) if options["label"] == "emotion" else 2 if options.get("joint") else len(VALENCE)

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        entries = [p.name for p in folder.iterdir()]
        return "Processed_data" in entries or any(_FILE_PATTERN.match(e) for e in entries)

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        return f"clip{trial:02d}"

    def subjects(self) -> list[str]:
        """Subject ids ('sub000', ...) of the pickles present."""
        found = sorted((p.stem for p in self.data_dir.iterdir() if _FILE_PATTERN.match(p.name)), key=natural_key)
        if not found:
            raise DatasetError(f"FACED: expected sub000.pkl ... files in {self.data_dir}, found none")
        return found

    def source_files(self, subject: str) -> list[Path]:
        self._check_subject(subject, self.subjects())
        return [self.data_dir / f"{subject}.pkl"]

    def read_subject(self, subject: str) -> list[Trial]:
        """The 28 clips, the 30 scalp channels, labelled by clip."""
        (path,) = self.source_files(subject)
        data = load_pickle(path)
        if not (is_real_array(data) and data.ndim == 3 and data.shape[1] in (len(FACED_CHANNELS), N_RECORDED_CHANNELS)
                and 1 <= data.shape[0] <= N_CLIPS and data.shape[2] > 0):
            found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise DatasetError(f"{path}: expected a real numeric array (up to {N_CLIPS} clips, {N_RECORDED_CHANNELS} "
                               f"channels, samples), found {found}")
        trials: list[Trial] = []
        skipped: list[str] = []
        for clip in range(1, data.shape[0] + 1):
            signal = data[clip - 1, :len(FACED_CHANNELS)]
            problem = signal_problem(signal, f"{path} clip {clip}", len(FACED_CHANNELS))
            if problem is not None:
                self._bad_trial(skipped, problem)
                continue
            valence = clip_valence(clip)
            label = CLIP_EMOTION[clip - 1] if self.label == "emotion" else int(valence > 0) if self.binary else valence
            trials.append(Trial(signal=np.ascontiguousarray(signal, dtype=np.float32), label=label, subject=subject,
                                session="1", trial=clip, channel_names=FACED_CHANNELS, sampling_rate=SAMPLING_RATE,
                                dataset=self.name))
        return self._finish(subject, trials, skipped)

    def options(self) -> dict:
        return {"label": self.label, "n_classes": self.n_classes}

    def label_description(self) -> str:
        if self.label == "emotion":
            return "FACED clips' emotions: " + ", ".join(f"{i} {e}" for i, e in enumerate(EMOTIONS))
        if self.binary:
            return "FACED clips: negative (1-12) -> 0, neutral (13-16) and positive (17-28) -> non-negative (1)"
        return "FACED clips: negative 1-12 (0), neutral 13-16 (1), positive 17-28 (2)"

    def stimulus_statement(self) -> str:
        return stimulus_confound("every FACED subject watched the same 28 film clips, and a trial's label is fixed by "
                                 "its clip (not rated by the subject)", "clips", "clip", rated=False)

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """FACED/Processed_data/subNNN.pkl: a pickled (28, 32, T) array; the mastoids a slow reference drift."""
        folder = root / "Processed_data"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, 6, subject])
        model = SubjectModel.draw(rng, len(FACED_CHANNELS), planting)
        n = int(round(seconds * SAMPLING_RATE))
        data = np.empty((N_CLIPS, N_RECORDED_CHANNELS, n), dtype=np.float32)
        for clip in range(1, N_CLIPS + 1):
            valence = int(rng.integers(0, 3)) if planting.shuffle else clip_valence(clip)
            data[clip - 1, :len(FACED_CHANNELS)] = model.trial(rng, FACED_CHANNELS, n, SAMPLING_RATE,
                                                               SYNTHETIC_FACTORS[valence], cls.stimulus(1, clip))
            data[clip - 1, len(FACED_CHANNELS):] = rng.normal(0.0, 20.0, size=(2, 1)) + np.cumsum(
                rng.normal(0.0, 0.05, size=(2, n)), axis=1)
        (folder / f"sub{subject - 1:03d}.pkl").write_bytes(pickle.dumps(data, protocol=4))
