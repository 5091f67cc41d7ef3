"""SEED-IV reader: `eeg_raw_data/<session>/<subject>_<date>.mat` -> 62-channel trials, 4 classes or 2."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from .base import DatasetError, Reader, Trial, check_option, check_subset, inner_folder, natural_key, signal_problem

SEEDIV_CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8", "FT7", "FC5",
    "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ", "C2", "C4", "C6", "T8",
    "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "P7", "P5", "P3", "P1", "PZ", "P2", "P4",
    "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6", "PO8", "CB1", "O1", "OZ", "O2", "CB2",
)

SESSION_LABELS = {
    "1": (1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3),
    "2": (2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1),
    "3": (1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0),
}
"""Emotion of each of the 24 trials per session (0 neutral, 1 sad, 2 fear, 3 happy)."""

EMOTIONS = ("neutral", "sad", "fear", "happy")
SAMPLING_RATE = 200.0
"""Rate of the released raw files per TorchEEG (the original recordings were 1000 Hz): overridable."""
SUBJECT_PREFIXES = ("cz", "ha", "hql", "ldy", "ly", "mhw", "mz", "qyt", "rx", "tyc", "whh", "wll", "wq", "zjd", "zjy")
"""Variable-name prefixes of subjects 1..15 in the released files (the reader matches any prefix)."""

_TRIAL_VARIABLE = re.compile(r"^.*_eeg(\d+)$")
_FILE_PATTERN = re.compile(r"^([^_]+)_(\d+)\.mat$")


class SEEDIVReader(Reader):
    """SEED-IV raw EEG; 4 emotion classes, or 2 with negative_classes -> 0 and the rest -> 1.

    Binary label 1 means non-negative (higher valence), as label 1 means high valence in DEAP and
    positive games in GAMEEMO, so the three datasets can be trained on together.
    """

    name = "SEEDIV"
    channel_names = SEEDIV_CHANNELS

    def __init__(
        self,
        root: str | Path,
        *,
        skip_bad_trials: bool = False,
        n_classes: int = 2,
        negative_classes: tuple[int, ...] = (1, 2),
        sampling_rate: float = SAMPLING_RATE,
        sessions: tuple[str, ...] = ("1", "2", "3"),
    ) -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        check_option("n_classes", n_classes, (2, 4))
        if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, float)) or not sampling_rate > 0:
            raise DatasetError(f"option sampling_rate={sampling_rate!r} is not allowed; allowed values: a number > 0")
        self.n_classes = n_classes
        self.negative_classes = check_subset("negative_classes", negative_classes, range(len(EMOTIONS)))
        self.sampling_rate = float(sampling_rate)
        self.sessions = tuple(sorted({str(s) for s in sessions}, key=natural_key))
        if not self.sessions or any(s not in SESSION_LABELS for s in self.sessions):
            raise DatasetError(f"option sessions={sessions!r} is not allowed; allowed values: non-empty subset of ('1', '2', '3')")
        self.class_names = EMOTIONS if n_classes == 4 else ("negative", "non-negative")
        self.data_dir = inner_folder(self.root, "eeg_raw_data")

    def _files(self) -> dict[str, dict[str, list[Path]]]:
        """subject -> session -> .mat files found, for the selected sessions."""
        files: dict[str, dict[str, list[Path]]] = {}
        for session in self.sessions:
            folder = self.data_dir / session
            if not folder.is_dir():
                raise DatasetError(f"SEEDIV: expected session folder {folder}, found none")
            for path in folder.iterdir():
                if match := _FILE_PATTERN.match(path.name):
                    files.setdefault(match.group(1), {}).setdefault(session, []).append(path)
        return files

    def subjects(self) -> list[str]:
        """Subject ids ('1', '2', ...) of the files present in any selected session."""
        found = sorted(self._files(), key=natural_key)
        if not found:
            raise DatasetError(
                f"SEEDIV: expected <subject>_<YYYYMMDD>.mat files in {self.data_dir}/{{{','.join(self.sessions)}}}, found none"
            )
        return found

    def source_files(self, subject: str) -> list[Path]:
        """One file per selected session for that subject."""
        files = self._files()
        self._check_subject(subject, sorted(files, key=natural_key))
        paths = []
        for session in self.sessions:
            found = files[subject].get(session, [])
            if len(found) != 1:
                raise DatasetError(
                    f"SEEDIV: expected one file {subject}_<YYYYMMDD>.mat in {self.data_dir / session}, "
                    f"found {sorted(p.name for p in found)}"
                )
            paths.append(found[0])
        return paths

    def read_subject(self, subject: str) -> list[Trial]:
        """All trials of the selected sessions of that subject."""
        trials: list[Trial] = []
        skipped: list[str] = []
        for path in self.source_files(subject):
            session = path.parent.name
            for number, variable, data in self._load(path):
                problem = signal_problem(data, f"{path} variable {variable!r}", len(SEEDIV_CHANNELS))
                if problem is not None:
                    self._bad_trial(skipped, problem)
                    continue
                emotion = SESSION_LABELS[session][number - 1]
                trials.append(Trial(
                    signal=np.ascontiguousarray(data, dtype=np.float32),
                    label=emotion if self.n_classes == 4 else int(emotion not in self.negative_classes),
                    subject=subject, session=session, trial=number,
                    channel_names=SEEDIV_CHANNELS, sampling_rate=self.sampling_rate, dataset=self.name,
                ))
        return self._finish(subject, trials, skipped)

    def options(self) -> dict:
        """Class count, the 2-class mapping, sampling rate and sessions."""
        options = {"n_classes": self.n_classes, "sampling_rate": self.sampling_rate, "sessions": list(self.sessions)}
        if self.n_classes == 2:
            options["negative_classes"] = list(self.negative_classes)
        return options

    def label_description(self) -> str:
        """E.g. 'SEEDIV negative {sad, fear} -> 0, non-negative {neutral, happy} -> 1'."""
        if self.n_classes == 4:
            return "SEEDIV 4 classes: " + ", ".join(f"{i} {e}" for i, e in enumerate(EMOTIONS))
        negative = [EMOTIONS[i] for i in self.negative_classes]
        rest = [e for i, e in enumerate(EMOTIONS) if i not in self.negative_classes]
        return f"SEEDIV negative {{{', '.join(negative)}}} -> 0, non-negative {{{', '.join(rest)}}} -> 1"

    def stimulus_statement(self) -> str:
        """SEED-IV: the same clips in the same order for everyone, labels fixed per clip."""
        return ("STIMULI: every SEED-IV subject watched the same 24 film clips per session, in the same order, and "
                "a trial's label is fixed by its clip (not rated by the subject). The training subjects saw the "
                "very clips the test subject saw, so cross-subject accuracy can partly reflect recognising the clip "
                "(or its place in the session) rather than the emotion; holding out the subject does not hold out "
                "the stimulus, and the within-subject label permutation does not guard against it.")

    @staticmethod
    def _load(path: Path) -> list[tuple[int, str, object]]:
        """(trial number, variable name, value) of the `<prefix>_eegN` variables, numbered 1..N without gaps."""
        try:
            content = scipy.io.loadmat(path, verify_compressed_data_integrity=False)
        except Exception as exc:  # scipy raises many types (ValueError, zlib.error, MatReadError...) for bad files
            raise DatasetError(f"{path}: expected a readable MAT v5 file, found an unreadable or truncated file ({exc})") from exc
        matched = [(int(m.group(1)), name) for name in content if (m := _TRIAL_VARIABLE.match(name))]
        variables = dict(matched)
        found = sorted(name for name in content if not name.startswith("__"))
        if not variables:
            raise DatasetError(f"{path}: expected variables <prefix>_eeg1..<prefix>_eeg24, found {found}")
        numbers = sorted(variables)
        last = min(numbers[-1], len(SESSION_LABELS["1"]))
        missing = [n for n in range(1, last + 1) if n not in variables]
        if missing or numbers[0] < 1 or numbers[-1] > last or len(matched) > len(variables):
            raise DatasetError(
                f"{path}: expected trial variables <prefix>_eeg1..<prefix>_eegN (N <= 24), one per trial number, "
                f"without gaps, found {found} (missing trial numbers {missing})"
            )
        return [(n, variables[n], content[variables[n]]) for n in numbers]
