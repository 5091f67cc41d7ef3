"""AMIGOS reader: `Data_Preprocessed/Data_Preprocessed_P<NN>.mat` -> 14-channel Emotiv EEG trials at 128 Hz.

`joined_data{t}` is samples x 17 (14 EEG in the Emotiv order, 2 ECG, 1 GSR): the 14 EEG columns are kept
and transposed. `labels_selfassessment{t}` is 1 x 12: arousal, valence, dominance, liking, familiarity on
1-9, then 7 binary emotions. Trials 1-16 are the short videos, 17-20 the long ones (default: the 16 short).
The first 5 s of every trial are the pre-stimulus baseline (TorchEEG's `num_baseline=5`): dropped, or kept as part of
the trial (`baseline: keep`, as EEGain reads it).
Participants saw the videos in their own order: `VideoIDs{t}` names trial t's video, the stimulus id.
Empty trials or labels, known in several subjects, are skipped with a warning that counts them
(`skip_empty_trials`), or refused. Every participant is read unless `skip_participants` lists some
('torcheeg': TorchEEG's default list, participants 9, 12, 21, 22, 23, 24 and 33).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .base import (DatasetError, OptionError, Reader, Trial, check_number, check_option, inner_folder, natural_key,
                   signal_problem, stimulus_confound)
from .synthetic_signal import SubjectModel, rated_levels, rating

AMIGOS_CHANNELS = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")
"""Columns 0-13 of joined_data (Emotiv EPOC order); 14-15 ECG, 16 GSR."""
N_COLUMNS = 17
SAMPLING_RATE = 128.0
BASELINE_SECONDS = 5
N_SHORT, N_TRIALS = 16, 20
LABEL_COLUMNS = {"arousal": 0, "valence": 1, "dominance": 2, "liking": 3}
TORCHEEG_SKIPPED = (9, 12, 21, 22, 23, 24, 33)
"""The participants TorchEEG's AMIGOSDataset leaves out by default."""
SYNTHETIC_VIDEOS = tuple(f"S{k:02d}" for k in range(1, N_SHORT + 1)) + tuple(f"L{k}" for k in range(1, 5))
"""Video ids the generator writes to VideoIDs: short ones first (trials 1-16), then long ones (17-20)."""
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
                 videos: str = "short", skip_empty_trials: bool = True,
                 skip_participants: Sequence[int] | str = (), baseline: str = "drop") -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(label_dimension=label_dimension, threshold=threshold, comparison=comparison,
                                     videos=videos, skip_empty_trials=skip_empty_trials,
                                     skip_participants=skip_participants, baseline=baseline)
        for key, value in options.items():
            setattr(self, key, value)
        self.class_names = (f"low {label_dimension}", f"high {label_dimension}")
        self.data_dir = next((self.root / name for name in ("Data_Preprocessed", "data_preprocessed")
                              if (self.root / name).is_dir()), inner_folder(self.root, "Data_Preprocessed"))

    @classmethod
    def check_options(cls, joint: bool = False, label_dimension: str = "valence", threshold: float = 5.0,
                      comparison: str = ">=", videos: str = "short", skip_empty_trials: bool = True,
                      skip_participants: Sequence[int] | str = (), baseline: str = "drop") -> dict[str, Any]:
        """A rating dimension with a 1-9 threshold (DEAP's convention), the short (16) or all (20) videos, whether
        empty trials are skipped, the participants left out (numbers, or 'torcheeg' for TorchEEG's list), and whether
        each trial's first 5 s (the pre-stimulus baseline) are dropped or kept."""
        check_option("baseline", baseline, ("drop", "keep"))
        check_option("label_dimension", label_dimension, tuple(LABEL_COLUMNS))
        check_option("comparison", comparison, tuple(COMPARISONS))
        check_option("videos", videos, ("short", "all"))
        check_option("skip_empty_trials", skip_empty_trials, (True, False))
        skipped = TORCHEEG_SKIPPED if skip_participants == "torcheeg" else skip_participants
        if not isinstance(skipped, (list, tuple)) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                                                             for n in skipped):
            raise OptionError("skip_participants", skip_participants,
                              f"a list of participant numbers (e.g. {list(TORCHEEG_SKIPPED)}) or 'torcheeg'")
        return {"label_dimension": label_dimension, "threshold": check_number("threshold", threshold, 1.0, 9.0),
                "comparison": comparison, "videos": videos, "skip_empty_trials": skip_empty_trials,
                "skip_participants": sorted(set(skipped)), "baseline": baseline}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        entries = [p.name for p in folder.iterdir()]
        return (any(e.lower() == "data_preprocessed" for e in entries)
                or any(_FILE_PATTERN.match(e) for e in entries))

    def _files(self) -> dict[str, Path]:
        """Subject id ('P01', P1 spelled either way) -> its file."""
        return {f"P{int(m.group(1)):02d}": p for p in self.data_dir.iterdir() if (m := _FILE_PATTERN.match(p.name))}

    def subjects(self) -> list[str]:
        """The participants with a file, less those `skip_participants` leaves out."""
        files = self._files()
        if not files:
            raise DatasetError(f"AMIGOS: expected Data_Preprocessed_P<NN>.mat files in {self.data_dir}, found none")
        return sorted((s for s in files if int(s[1:]) not in self.skip_participants), key=natural_key)

    def source_files(self, subject: str) -> list[Path]:
        self._check_subject(subject, self.subjects())
        return [self._files()[subject]]

    def read_subject(self, subject: str) -> list[Trial]:
        """The chosen videos' trials, baseline dropped, empty ones skipped (counted) or refused."""
        (path,) = self.source_files(subject)
        eeg, labels, videos = self._load(path)
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
            first = int(BASELINE_SECONDS * SAMPLING_RATE) if self.baseline == "drop" else 0
            signal = data[first:, :len(AMIGOS_CHANNELS)].T if data.ndim == 2 else data
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
                                sampling_rate=SAMPLING_RATE, dataset=self.name, stimulus=f"video-{videos[number - 1]}"))
        if empty:
            log.warning("AMIGOS subject %s: %d empty trial(s) skipped (skip_empty_trials)", subject, empty)
        return self._finish(subject, trials, skipped)

    @staticmethod
    def _load(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """`joined_data` and `labels_selfassessment` as flat object arrays, one entry per trial, and each trial's
        video id from `VideoIDs`."""
        import scipy.io

        try:
            content = scipy.io.loadmat(path, verify_compressed_data_integrity=False)
        except Exception as exc:  # scipy raises many types for bad files
            raise DatasetError(f"{path}: expected a readable MAT file, found an unreadable or truncated file ({exc})") from exc
        missing = [k for k in ("joined_data", "labels_selfassessment", "VideoIDs") if k not in content]
        if missing:
            raise DatasetError(f"{path}: expected variables joined_data, labels_selfassessment and VideoIDs, "
                               f"missing {missing}")
        eeg, labels, ids = (np.asarray(content[k], dtype=object).ravel()
                            for k in ("joined_data", "labels_selfassessment", "VideoIDs"))
        if not len(eeg) == len(labels) == len(ids) or not 1 <= len(eeg) <= N_TRIALS:
            raise DatasetError(f"{path}: expected up to {N_TRIALS} trials in joined_data, labels_selfassessment and "
                               f"VideoIDs, found {len(eeg)}, {len(labels)} and {len(ids)}")
        return eeg, labels, [_video_id(path, t + 1, entry) for t, entry in enumerate(ids)]

    def options(self) -> dict:
        return {"label_dimension": self.label_dimension, "threshold": self.threshold, "comparison": self.comparison,
                "videos": self.videos, "skip_empty_trials": self.skip_empty_trials,
                "skip_participants": self.skip_participants, "baseline": self.baseline}

    def label_description(self) -> str:
        participants = (f"left out: participant(s) {', '.join(map(str, self.skip_participants))} (skip_participants)"
                        if self.skip_participants else "every participant read (none skipped; TorchEEG skips 9, 12, "
                        "21, 22, 23, 24, 33: skip_participants 'torcheeg')")
        kept = "dropped" if self.baseline == "drop" else "kept (the pre-stimulus baseline, read as part of the trial)"
        return (f"AMIGOS {self.label_dimension} {self.comparison} {self.threshold:g} (1-9) -> high (1), else low (0); "
                f"{'the 16 short' if self.videos == 'short' else 'all 20'} videos, first {BASELINE_SECONDS} s {kept}; "
                f"stimulus ids from VideoIDs; {participants}")

    def stimulus_statement(self) -> str:
        return stimulus_confound("every AMIGOS participant watched the same videos", "videos", "video", rated=True)

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """AMIGOS/Data_Preprocessed/Data_Preprocessed_P<NN>.mat (P01 and P1 spellings alternate), 5 s baselines; each
        participant sees the same videos in its own order (short ones in trials 1-16, long ones after)."""
        import scipy.io

        folder = root / "Data_Preprocessed"
        folder.mkdir(parents=True, exist_ok=True)
        shift = subject - 1  # participant p sees the videos rotated by p - 1: neighbours differ in order
        short, long = SYNTHETIC_VIDEOS[:min(trials, N_SHORT)], SYNTHETIC_VIDEOS[N_SHORT:trials]
        videos = [str(video) for video in (*np.roll(short, -shift), *np.roll(long, -shift))]
        rng = np.random.default_rng([seed, 5, subject])
        model = SubjectModel.draw(rng, len(AMIGOS_CHANNELS), planting)
        by_video = rated_levels(rng, trials, planting)[:, 0]  # under the stimulus signal: fixed by the video
        levels = by_video[[SYNTHETIC_VIDEOS.index(video) for video in videos]]
        planted = rng.integers(0, 2, trials) if planting.shuffle else levels
        n, baseline = int(round(seconds * SAMPLING_RATE)), int(BASELINE_SECONDS * SAMPLING_RATE)
        joined = np.empty((1, trials), dtype=object)
        labels = np.empty((1, trials), dtype=object)
        for t, (level, written) in enumerate(zip(planted, levels)):
            eeg = np.concatenate([model.trial(rng, AMIGOS_CHANNELS, baseline, SAMPLING_RATE, None),
                                  model.trial(rng, AMIGOS_CHANNELS, n, SAMPLING_RATE, (int(level), int(level)),
                                              videos[t])], axis=1)
            other = rng.normal(0.0, 30.0, size=(N_COLUMNS - len(AMIGOS_CHANNELS), baseline + n))
            joined[0, t] = np.concatenate([eeg, other]).T
            labels[0, t] = np.array([[rating(rng, int(written)), rating(rng, int(written)), *rng.uniform(1, 9, 3),
                                      *rng.integers(0, 2, 7)]])
        name = f"P{subject:02d}" if subject % 2 else f"P{subject}"
        scipy.io.savemat(folder / f"Data_Preprocessed_{name}.mat",
                         {"joined_data": joined, "labels_selfassessment": labels,
                          "VideoIDs": np.array([videos], dtype=object)},
                         do_compression=True)


def _video_id(path: Path, trial: int, entry: Any) -> str:
    """`VideoIDs{trial}` as text (a string, or a number written without a trailing '.0')."""
    values = np.asarray(entry, dtype=object).ravel()
    value = values[0] if values.size == 1 else None
    if isinstance(value, (np.ndarray, list)) and np.size(value) == 1:
        value = np.ravel(value)[0]
    if isinstance(value, (str, np.str_)) and value.strip():
        return str(value).strip()
    if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
        return f"{float(value):g}"
    raise DatasetError(f"{path} VideoIDs{{{trial}}}: expected one video id (a string or a number), found {entry!r}")


def _number(value: Any) -> float | None:
    """A label entry as a float, or None when it is not one number."""
    try:
        number = float(np.asarray(value, dtype=float).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if np.isfinite(number) else None
