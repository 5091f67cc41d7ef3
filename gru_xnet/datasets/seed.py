"""SEED reader: `Preprocessed_EEG/<subject>_<YYYYMMDD>.mat` + `label.mat` -> 62-channel trials, 3 classes (or 2).

15 subjects x 3 sessions (a session is the order of a subject's recording dates) x 15 film clips, the
same clips in every session; each file holds `<initials>_eeg1` ... `<initials>_eeg15` (62 x T at 200 Hz,
down-sampled and band-passed 0-75 Hz by the authors) and `label.mat` the clips' labels (-1, 0, 1).
With `source: released` the trials are the authors' DE frames instead: `ExtractedFeatures/<subject>_<date>.mat`,
`de_LDS<k>` (or `de_movingAve<k>`) of (62, T, 5), one frame per second (see `released.py`).
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .base import (MAINS_HZ, DatasetError, OptionError, Reader, Trial, check_option, drained, inner_folder,
                   natural_key, signal_problem, stimulus_confound)
from .released import RELEASED_BANDS, RELEASED_FEATURES, SOURCES, read_released, write_released
from .seediv import SEEDIV_CHANNELS, SUBJECT_PREFIXES, read_eeg_variables
from .synthetic_signal import SubjectModel

SEED_CHANNELS = SEEDIV_CHANNELS
"""The same 62-channel ESI NeuroScan montage and order as SEED-IV."""
SAMPLING_RATE = 200.0
CLIP_LABELS = (1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1)
"""label.mat's `label`: the 15 clips of every session (1 positive, 0 neutral, -1 negative)."""
CLASS_NAMES = {3: ("negative", "neutral", "positive"), 2: ("negative", "non-negative")}
SYNTHETIC_FACTORS = {-1: (0, 0), 0: (1, 0), 1: (1, 1)}
"""Clip label -> (valence level, arousal level) planted by the generator: the binary mapping follows valence."""
SESSIONS = ("1", "2", "3")
FEATURE_FOLDER = "ExtractedFeatures"
FRAME_SECONDS = 1.0
"""One released DE frame per second of signal."""
_FILE_PATTERN = re.compile(r"^(\d+)_(\d{8})\.mat$")


class SEEDReader(Reader):
    """SEED's preprocessed EEG; 3 classes alone (negative 0, neutral 1, positive 2), and with other datasets
    the shared binary mapping, as SEED-IV: negative -> 0, neutral and positive -> 1."""

    name = "SEED"
    n_classes = 3
    channel_names = SEED_CHANNELS
    sampling_rate = SAMPLING_RATE
    passband_hz = (0.0, 75.0)
    within_subject_trials = (9, 6)  # the SEED papers: first 9 clips of a session to train, last 6 to test
    synthetic_trials = (4, len(CLIP_LABELS))

    def __init__(self, root: str | Path, *, skip_bad_trials: bool = False, joint: bool = False,
                 n_classes: int | None = None, sessions: tuple[str, ...] = SESSIONS, source: str = "raw",
                 released_feature: str = "de_LDS") -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(joint, n_classes=n_classes, sessions=sessions, source=source,
                                     released_feature=released_feature)
        self.n_classes, self.sessions = options["n_classes"], options["sessions"]
        self.source, self.released_feature = options["source"], options["released_feature"]
        self.class_names = CLASS_NAMES[self.n_classes]
        self.data_dir = inner_folder(self.root, "Preprocessed_EEG")
        if self.source == "released":
            self.data_dir = (self.data_dir.parent if self.data_dir != self.root else self.root) / FEATURE_FOLDER
            if not self.data_dir.is_dir():
                raise DatasetError(f"SEED: expected the released features folder {self.data_dir} (dataset_options "
                                   "SEED source 'released'), found none")

    @classmethod
    def check_options(cls, joint: bool = False, n_classes: int | None = None, sessions: tuple[str, ...] = SESSIONS,
                      source: str = "raw", released_feature: str = "de_LDS") -> dict[str, Any]:
        """3 classes alone, 2 with other datasets (None: whichever applies), the sessions read, and the source: the
        EEG ('raw') or the authors' DE frames ('released', `released_feature` de_LDS or de_movingAve)."""
        if n_classes is not None:
            check_option("n_classes", n_classes, (2, 3))
        if joint and n_classes == 3:
            raise OptionError("n_classes", 3, "2 or null when SEED is combined with other (binary) datasets")
        chosen = tuple(sorted({str(s) for s in sessions}, key=natural_key))
        if not chosen or any(s not in SESSIONS for s in chosen):
            raise OptionError("sessions", sessions, f"a non-empty subset of {SESSIONS}")
        check_option("source", source, SOURCES)
        check_option("released_feature", released_feature, RELEASED_FEATURES)
        return {"n_classes": n_classes or (2 if joint else 3), "sessions": chosen, "source": source,
                "released_feature": released_feature}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        entries = [p.name for p in folder.iterdir()]
        return ("Preprocessed_EEG" in entries or FEATURE_FOLDER in entries
                or ("label.mat" in entries and any(_FILE_PATTERN.match(e) for e in entries)))

    @classmethod
    def delivers(cls, options: dict[str, Any]) -> str:
        return "de" if options.get("source") == "released" else "signal"

    @classmethod
    def rate(cls, options: dict[str, Any]) -> float:
        return 1.0 / FRAME_SECONDS if cls.delivers(options) == "de" else SAMPLING_RATE

    @classmethod
    def default_filters(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The files keep 0-75 Hz: a 0.5 Hz high edge removes the slow drift the authors left, 70 Hz trims the top
        before the 75 Hz edge, and a 50 Hz notch takes the mains (China). Released DE frames: nothing."""
        if cls.delivers(options) == "de":
            return super().default_filters(options)
        return {"bandpass_hz": [0.5, 70.0], "notch_hz": MAINS_HZ}

    @classmethod
    def classes(cls, options: dict[str, Any]) -> int:
        return int(options["n_classes"])

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        return f"c{trial:02d}"  # the 15 clips are the same in every session

    def _files(self) -> dict[str, list[Path]]:
        """subject -> its files in recording-date order (session 1, 2, 3)."""
        files: dict[str, list[Path]] = {}
        for path in self.data_dir.iterdir():
            if match := _FILE_PATTERN.match(path.name):
                files.setdefault(match.group(1), []).append(path)
        return {s: sorted(paths, key=lambda p: _FILE_PATTERN.match(p.name).group(2)) for s, paths in files.items()}

    def subjects(self) -> list[str]:
        """Subject ids ('1', ..., '15') of the files present."""
        found = sorted(self._files(), key=natural_key)
        if not found:
            raise DatasetError(f"SEED: expected <subject>_<YYYYMMDD>.mat files in {self.data_dir}, found none")
        return found

    def source_files(self, subject: str) -> list[Path]:
        """The subject's three session files (by recording date) and label.mat."""
        files = self._files()
        self._check_subject(subject, sorted(files, key=natural_key))
        if len(files[subject]) != len(SESSIONS):
            raise DatasetError(f"SEED: expected {len(SESSIONS)} files {subject}_<YYYYMMDD>.mat (one per session) in "
                               f"{self.data_dir}, found {[p.name for p in files[subject]]}")
        return [*files[subject], self.data_dir / "label.mat"]

    def iter_trials(self, subject: str) -> Iterator[Trial]:
        """The trials of the selected sessions, one session file at a time."""
        *sessions, label_file = self.source_files(subject)
        labels = self._labels(label_file)
        kept = 0
        skipped: list[str] = []
        for session, path in zip(SESSIONS, sessions):
            if session not in self.sessions:
                continue
            if self.source == "released":
                found = read_released(path, self.released_feature, len(SEED_CHANNELS), len(labels))
            else:
                found = read_eeg_variables(path, len(labels))
            for number, variable, data in drained(found):
                problem = None if self.source == "released" else signal_problem(
                    data, f"{path} variable {variable!r}", len(SEED_CHANNELS))
                if problem is not None:
                    self._bad_trial(skipped, problem)
                    continue
                clip = labels[number - 1]
                kept += 1
                yield Trial(
                    signal=np.ascontiguousarray(data, dtype=np.float32),
                    label=clip + 1 if self.n_classes == 3 else int(clip >= 0),
                    subject=subject, session=session, trial=number, channel_names=SEED_CHANNELS,
                    sampling_rate=self.rate({"source": self.source}), dataset=self.name)
        self._check_kept(subject, kept, skipped)

    @staticmethod
    def _labels(path: Path) -> list[int]:
        """label.mat's 15 clip labels, each -1, 0 or 1."""
        import scipy.io

        if not path.is_file():
            raise DatasetError(f"SEED: expected {path} (the clips' labels), found no such file")
        try:
            label = np.asarray(scipy.io.loadmat(path)["label"])
        except KeyError:
            raise DatasetError(f"{path}: expected a variable 'label', found none") from None
        except Exception as exc:  # scipy raises many types for bad files
            raise DatasetError(f"{path}: expected a readable MAT v5 file, found an unreadable file ({exc})") from exc
        values = label.ravel()
        if not (label.dtype.kind in "iuf" and 1 <= len(values) <= len(CLIP_LABELS) and np.isin(values, (-1, 0, 1)).all()):
            raise DatasetError(f"{path} variable 'label': expected up to {len(CLIP_LABELS)} values in -1, 0, 1, "
                               f"found {label.dtype} {label.shape}")
        return [int(v) for v in values]

    def options(self) -> dict:
        released = {"source": "released", "released_feature": self.released_feature} if self.source == "released" else {}
        return {"n_classes": self.n_classes, "sessions": list(self.sessions), **released}

    def label_description(self) -> str:
        labels = ("SEED clips: negative (0), neutral (1), positive (2)" if self.n_classes == 3 else
                  "SEED clips: negative -> 0, neutral and positive -> non-negative (1)")
        if self.source == "raw":
            return labels
        bands = ", ".join(f"{n} {lo:g}-{hi:g}" for n, (lo, hi) in RELEASED_BANDS.items())
        return (f"{labels}; the authors' released {self.released_feature} features ({FEATURE_FOLDER}/, one DE frame "
                f"per {FRAME_SECONDS:g} s in {bands} Hz), not computed here")

    def stimulus_statement(self) -> str:
        return stimulus_confound("every SEED subject watched the same 15 film clips in every session (three times "
                                 "each), in the same order, and a trial's label is fixed by its clip (not rated by the "
                                 "subject)", "clips", "clip", rated=False)

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """SEED/Preprocessed_EEG/<subject>_<date>.mat x 3 (variables <initials>_eeg1..N, 62 x T) and label.mat, and
        with `planting.released` their DE features in ExtractedFeatures/ (same names, de_LDS<k> and de_movingAve<k>,
        from this signal)."""
        import scipy.io

        folder = root / "Preprocessed_EEG"
        for where in (folder, root / FEATURE_FOLDER) if planting.released else (folder,):
            where.mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(where / "label.mat", {"label": np.array([CLIP_LABELS], dtype=np.int16)})
        rng = np.random.default_rng([seed, 3, subject])
        model = SubjectModel.draw(rng, len(SEED_CHANNELS), planting)
        prefix = SUBJECT_PREFIXES[::-1][(subject - 1) % len(SUBJECT_PREFIXES)]
        n_samples = int(round(seconds * SAMPLING_RATE))
        for session in range(1, len(SESSIONS) + 1):
            variables = {}
            for number, clip in enumerate(CLIP_LABELS[:trials], start=1):
                planted = int(rng.choice((-1, 0, 1))) if planting.shuffle else clip
                length = n_samples + int(rng.integers(0, int(SAMPLING_RATE)))
                variables[f"{prefix}_eeg{number}"] = model.trial(rng, SEED_CHANNELS, length, SAMPLING_RATE,
                                                                 SYNTHETIC_FACTORS[planted], cls.stimulus(session, number))
            day = datetime.date(2013, 4, 1) + datetime.timedelta(days=11 * subject + 7 * session)
            scipy.io.savemat(folder / f"{subject}_{day:%Y%m%d}.mat", variables, do_compression=True)
            if planting.released:
                write_released(root / FEATURE_FOLDER / f"{subject}_{day:%Y%m%d}.mat", list(variables.values()),
                               SAMPLING_RATE, FRAME_SECONDS)
