"""SEED-IV reader: `eeg_raw_data/<session>/<subject>_<date>.mat` -> 62-channel trials, 4 classes or 2.

With `source: released` the trials are the authors' DE frames instead: `eeg_feature_smooth/<session>/<subject>_<date>
.mat`, `de_LDS<k>` (or `de_movingAve<k>`) of (62, W, 5), one frame per 4 s window (see `released.py`).
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .base import (MAINS_HZ, DatasetError, OptionError, Reader, Trial, check_number, check_option, check_subset,
                   drained, inner_folder, natural_key, signal_problem, stimulus_confound)
from .released import RELEASED_BANDS, RELEASED_FEATURES, SOURCES, read_released, write_released
from .synthetic_signal import SubjectModel

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

SYNTHETIC_FACTORS = {0: (1, 0), 1: (0, 0), 2: (0, 1), 3: (1, 1)}
"""Emotion -> (valence level, arousal level) planted by the generator: neutral non-negative/low, sad negative/low,
fear negative/high, happy non-negative/high."""

FEATURE_FOLDER = "eeg_feature_smooth"
FRAME_SECONDS = 4.0
"""One released DE frame per 4 s window of signal."""

_TRIAL_VARIABLE = re.compile(r"^.*_eeg(\d+)$")
_FILE_PATTERN = re.compile(r"^([^_]+)_(\d+)\.mat$")


class SEEDIVReader(Reader):
    """SEED-IV raw EEG; 4 emotion classes, or 2 with negative_classes -> 0 and the rest -> 1.

    Binary label 1 means non-negative (higher valence), as label 1 means high valence in DEAP and
    positive games in GAMEEMO, so the three datasets can be trained on together.
    """

    name = "SEEDIV"
    aliases = ("SEED-IV", "SEED_IV")
    channel_names = SEEDIV_CHANNELS
    sampling_rate = SAMPLING_RATE
    config_keys = {"seediv_classes": "n_classes", "seediv_negative_classes": "negative_classes",
                   "seediv_sampling_rate": "sampling_rate"}
    within_subject_trials = (16, 8)  # the SEED-IV paper: first 16 trials of a session to train, last 8 to test
    synthetic_trials = (6, len(SESSION_LABELS["1"]))  # 6: every session holds happy and other clips (binary labels)

    def __init__(
        self,
        root: str | Path,
        *,
        skip_bad_trials: bool = False,
        joint: bool = False,
        n_classes: int = 2,
        negative_classes: tuple[int, ...] = (1, 2),
        sampling_rate: float = SAMPLING_RATE,
        sessions: tuple[str, ...] = ("1", "2", "3"),
        source: str = "raw",
        released_feature: str = "de_LDS",
    ) -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(joint, n_classes=n_classes, negative_classes=negative_classes,
                                     sampling_rate=sampling_rate, sessions=sessions, source=source,
                                     released_feature=released_feature)
        self.n_classes, self.negative_classes, self.sessions, self.source, self.released_feature = (
            options[k] for k in ("n_classes", "negative_classes", "sessions", "source", "released_feature"))
        self.sampling_rate = self.rate(options)
        self.class_names = EMOTIONS if self.n_classes == 4 else ("negative", "non-negative")
        self.data_dir = inner_folder(self.root, "eeg_raw_data")
        if self.source == "released":
            self.data_dir = (self.data_dir.parent if self.data_dir != self.root else self.root) / FEATURE_FOLDER
            if not self.data_dir.is_dir():
                raise DatasetError(f"SEEDIV: expected the released features folder {self.data_dir} (dataset_options "
                                   "SEEDIV source 'released'), found none")

    @classmethod
    def check_options(cls, joint: bool = False, n_classes: int = 2, negative_classes: tuple[int, ...] = (1, 2),
                      sampling_rate: float = SAMPLING_RATE, sessions: tuple[str, ...] = ("1", "2", "3"),
                      source: str = "raw", released_feature: str = "de_LDS") -> dict[str, Any]:
        """4 emotions (alone) or 2 (negative_classes -> 0), the files' rate, the sessions read, and the source: the
        EEG ('raw') or the authors' DE frames ('released', `released_feature` de_LDS or de_movingAve)."""
        check_option("source", source, SOURCES)
        check_option("released_feature", released_feature, RELEASED_FEATURES)
        check_option("n_classes", n_classes, (2, 4))
        if joint and n_classes == 4:
            raise OptionError("n_classes", 4, "2 when SEEDIV is combined with other (binary) datasets")
        chosen = tuple(sorted({str(s) for s in sessions}, key=natural_key))
        if not chosen or any(s not in SESSION_LABELS for s in chosen):
            raise OptionError("sessions", sessions, "a non-empty subset of ('1', '2', '3')")
        return {"n_classes": n_classes,
                "negative_classes": check_subset("negative_classes", negative_classes, range(len(EMOTIONS))),
                "sampling_rate": check_number("sampling_rate", sampling_rate, 1.0, 100000.0), "sessions": chosen,
                "source": source, "released_feature": released_feature}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        entries = [p.name for p in folder.iterdir()]
        return "eeg_raw_data" in entries or FEATURE_FOLDER in entries or all(s in entries for s in SESSION_LABELS)

    @classmethod
    def delivers(cls, options: dict[str, Any]) -> str:
        return "de" if options.get("source") == "released" else "signal"

    @classmethod
    def rate(cls, options: dict[str, Any]) -> float:
        if cls.delivers(options) == "de":
            return 1.0 / FRAME_SECONDS
        return float(options.get("sampling_rate", SAMPLING_RATE))

    @classmethod
    def default_filters(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The released eeg_raw_data are unfiltered: band-pass 0.5-70 Hz and a 50 Hz mains notch (released DE
        frames: nothing)."""
        if cls.delivers(options) == "de":
            return super().default_filters(options)
        return {"bandpass_hz": [0.5, 70.0], "notch_hz": MAINS_HZ}

    @classmethod
    def classes(cls, options: dict[str, Any]) -> int:
        return int(options.get("n_classes", 2))

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        return f"s{session}-c{trial:02d}"  # clip `trial` of session `session`: the same for every subject

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

    def iter_trials(self, subject: str) -> Iterator[Trial]:
        """The trials of the selected sessions, one session file at a time."""
        kept = 0
        skipped: list[str] = []
        most = len(SESSION_LABELS["1"])
        for path in self.source_files(subject):
            session = path.parent.name
            found = (read_released(path, self.released_feature, len(SEEDIV_CHANNELS), most)
                     if self.source == "released" else read_eeg_variables(path, most))
            for number, variable, data in drained(found):
                problem = None if self.source == "released" else signal_problem(
                    data, f"{path} variable {variable!r}", len(SEEDIV_CHANNELS))
                if problem is not None:
                    self._bad_trial(skipped, problem)
                    continue
                emotion = SESSION_LABELS[session][number - 1]
                kept += 1
                yield Trial(
                    signal=np.ascontiguousarray(data, dtype=np.float32),
                    label=emotion if self.n_classes == 4 else int(emotion not in self.negative_classes),
                    subject=subject, session=session, trial=number,
                    channel_names=SEEDIV_CHANNELS, sampling_rate=self.sampling_rate, dataset=self.name,
                )
        self._check_kept(subject, kept, skipped)

    def options(self) -> dict:
        """Class count, the 2-class mapping, sampling rate and sessions."""
        options = {"n_classes": self.n_classes, "sampling_rate": self.sampling_rate, "sessions": list(self.sessions)}
        if self.n_classes == 2:
            options["negative_classes"] = list(self.negative_classes)
        if self.source == "released":
            options.update(source="released", released_feature=self.released_feature)
        return options

    def label_description(self) -> str:
        """E.g. 'SEEDIV negative {sad, fear} -> 0, non-negative {neutral, happy} -> 1'."""
        if self.n_classes == 4:
            labels = "SEEDIV 4 classes: " + ", ".join(f"{i} {e}" for i, e in enumerate(EMOTIONS))
        else:
            negative = [EMOTIONS[i] for i in self.negative_classes]
            rest = [e for i, e in enumerate(EMOTIONS) if i not in self.negative_classes]
            labels = f"SEEDIV negative {{{', '.join(negative)}}} -> 0, non-negative {{{', '.join(rest)}}} -> 1"
        if self.source == "raw":
            return labels
        bands = ", ".join(f"{n} {lo:g}-{hi:g}" for n, (lo, hi) in RELEASED_BANDS.items())
        return (f"{labels}; the authors' released {self.released_feature} features ({FEATURE_FOLDER}/, one DE frame "
                f"per {FRAME_SECONDS:g} s window in {bands} Hz), not computed here")

    def stimulus_statement(self) -> str:
        """SEED-IV: the same clips in the same order for everyone, labels fixed per clip."""
        return stimulus_confound("every SEED-IV subject watched the same 24 film clips per session, in the same order, "
                                 "and a trial's label is fixed by its clip (not rated by the subject)", "clips",
                                 "clip (or its place in the session)", rated=False)

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """SEEDIV/eeg_raw_data/{1,2,3}/<subject>_<date>.mat with variables <prefix>_eeg1..N of shape (62, T), and with
        `planting.released` their DE features in eeg_feature_smooth/{1,2,3}/ (same names, de_LDS<k> and de_movingAve<k>,
        from this signal)."""
        import scipy.io

        n_samples = int(round(seconds * SAMPLING_RATE))
        rng = np.random.default_rng([seed, 1, subject])
        model = SubjectModel.draw(rng, len(SEEDIV_CHANNELS), planting)
        prefix = SUBJECT_PREFIXES[subject - 1] if subject <= len(SUBJECT_PREFIXES) else f"sub{subject}"
        for session, labels in SESSION_LABELS.items():
            variables = {}
            for number, label in enumerate(labels[:trials], start=1):
                emotion = int(rng.integers(0, 4)) if planting.shuffle else label
                length = n_samples + int(rng.integers(0, int(SAMPLING_RATE)))  # trial lengths differ, as in the real files
                variables[f"{prefix}_eeg{number}"] = model.trial(rng, SEEDIV_CHANNELS, length, SAMPLING_RATE,
                                                                 SYNTHETIC_FACTORS[emotion], cls.stimulus(int(session), number))
            folder = root / "eeg_raw_data" / session
            folder.mkdir(parents=True, exist_ok=True)
            name = synthetic_file_name(subject, int(session))
            scipy.io.savemat(folder / name, variables, do_compression=True)
            if planting.released:
                write_released(root / FEATURE_FOLDER / session / name, list(variables.values()), SAMPLING_RATE,
                               FRAME_SECONDS)


def read_eeg_variables(path: Path, most: int) -> list[tuple[int, str, object]]:
    """(trial number, variable name, value) of a MAT file's `<prefix>_eegN` variables, numbered 1..N (N <= `most`)
    without gaps: trials are found by their suffix, never by key order (the prefix is each subject's initials)."""
    import scipy.io

    try:
        content = scipy.io.loadmat(path, verify_compressed_data_integrity=False)
    except Exception as exc:  # scipy raises many types (ValueError, zlib.error, MatReadError...) for bad files
        raise DatasetError(f"{path}: expected a readable MAT v5 file, found an unreadable or truncated file ({exc})") from exc
    matched = [(int(m.group(1)), name) for name in content if (m := _TRIAL_VARIABLE.match(name))]
    variables = dict(matched)
    found = sorted(name for name in content if not name.startswith("__"))
    if not variables:
        raise DatasetError(f"{path}: expected variables <prefix>_eeg1..<prefix>_eeg{most}, found {found}")
    numbers = sorted(variables)
    last = min(numbers[-1], most)
    missing = [n for n in range(1, last + 1) if n not in variables]
    if missing or numbers[0] < 1 or numbers[-1] > last or len(matched) > len(variables):
        raise DatasetError(
            f"{path}: expected trial variables <prefix>_eeg1..<prefix>_eegN (N <= {most}), one per trial number, "
            f"without gaps, found {found} (missing trial numbers {missing})"
        )
    return [(n, variables[n], content[variables[n]]) for n in numbers]


def synthetic_file_name(subject: int, session: int) -> str:
    """`<subject>_<YYYYMMDD>.mat` with a made-up recording date, later for later sessions."""
    day = datetime.date(2015, 3, 2) + datetime.timedelta(days=13 * subject + 9 * session)
    return f"{subject}_{day:%Y%m%d}.mat"
