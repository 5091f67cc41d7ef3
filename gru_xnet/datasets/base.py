"""Shared pieces of the dataset readers: the Trial record, the Reader contract, errors and checks.

A dataset is one module: its `Reader` subclass says how its folder looks, which files it reads, its
channels and rate, its options (and the older `data.*` config keys that set them), default filters,
classes, each trial's stimulus, its stimulus statement and how the synthetic generator writes a subject.
The registry, the config, the feature cache and the generator ask the reader; none branches on a name.
A reader module imports only numpy at module level: the registry imports every reader, and every command
checks a dataset's name and options through it before a heavy library loads, so a file reader
(`scipy.io`, h5py, ...) is imported inside the function that reads or writes the files.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

logger = logging.getLogger(__name__)

MARKER_NAME = "SYNTHETIC.json"
"""File the synthetic generator leaves in each dataset folder, so outputs can say the data are synthetic."""

INNER_FOLDERS = ("data_preprocessed_python", "eeg_raw_data", "Preprocessed_EEG", "Sessions")
"""Inner folders a user may pass instead of the dataset folder (DEAP, SEED-IV, SEED, MAHNOB)."""


class DatasetError(ValueError):
    """Bad dataset input: the message names the file (and variable/column), what was expected and what was found."""


class OptionError(DatasetError):
    """A reader option holds a value that is not allowed; `option` names it (the config maps it to its key)."""

    def __init__(self, option: str, value: Any, allowed: str):
        super().__init__(f"option {option}={value!r} is not allowed; allowed values: {allowed}")
        self.option, self.value, self.allowed = option, value, allowed


MAINS_HZ = 50.0
"""Mains frequency where the Chinese and Turkish datasets were recorded: notched in their unfiltered signals."""


@dataclass(frozen=True)
class Trial:
    """One recorded trial: a (C, T) float32 signal in µV with its label and where it came from."""

    signal: np.ndarray
    """(C, T) EEG; or (C, bands, frames) released DE frames when the reader `delivers` 'de'."""
    label: int
    subject: str
    session: str
    trial: int
    channel_names: tuple[str, ...]
    sampling_rate: float
    dataset: str
    baseline: np.ndarray | None = None
    """(C, T) pre-stimulus signal whose mean feature is subtracted from every window (a reader option), or None."""
    stimulus: str | None = None
    """What the trial showed when the file names it (AMIGOS `VideoIDs`); None: `Reader.stimulus(session, trial)`."""


def stimulus_confound(shown: str, stimuli: str, recognised: str, *, rated: bool, verb: str = "saw") -> str:
    """The statement every dataset makes about its stimuli: what every subject was `shown`, whether the labels are
    the subjects' own ratings (`rated`) or fixed by the stimulus, and why holding out the subject is not enough."""
    lead = "The labels are each subject's own ratings, but the training subjects" if rated else "The training subjects"
    return (f"STIMULI: {shown}. {lead} {verb} the very {stimuli} the test subject {verb}, so cross-subject accuracy can "
            f"partly reflect recognising the {recognised} rather than the emotion; holding out the subject does not hold "
            "out the stimulus, and the within-subject label permutation does not guard against it.")


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers numerically (s2 < s10, '2' < '10')."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def check_option(option: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise an OptionError naming the option, the value and the allowed values when value is not allowed."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise OptionError(option, value, str(allowed))


def check_number(option: str, value: Any, low: float, high: float) -> float:
    """`value` as a float within [low, high], or an OptionError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise OptionError(option, value, f"a number in [{low:g}, {high:g}]")
    return float(value)


def check_subset(option: str, values: Iterable[Any], allowed: Iterable[Any]) -> tuple:
    """Validate a non-empty proper subset of allowed values, returned as a sorted tuple."""
    allowed = tuple(allowed)
    try:
        chosen = tuple(sorted(set(values)))
    except TypeError:
        raise OptionError(option, values, f"a collection of values from {allowed}") from None
    if not chosen or len(chosen) == len(allowed) or any(v not in allowed for v in chosen):
        raise OptionError(option, values, f"a non-empty proper subset of {allowed}")
    return chosen


FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Trials are handed on as float32: a larger |sample| would turn into Inf."""


def is_real_array(data: Any) -> bool:
    """True for a numpy array of integers or floats (not bool, complex, strings or objects)."""
    return isinstance(data, np.ndarray) and (np.issubdtype(data.dtype, np.integer)
                                             or np.issubdtype(data.dtype, np.floating))


def signal_problem(data: Any, where: str, n_channels: int) -> str | None:
    """Describe what is wrong with one trial's (C, T) signal, or return None when it is usable."""
    if not is_real_array(data):
        found = f"a {data.dtype} array" if isinstance(data, np.ndarray) else type(data).__name__
        return f"{where}: expected a real numeric array of shape ({n_channels}, T), found {found}"
    if data.ndim != 2 or data.shape[0] != n_channels or data.shape[1] == 0:
        return f"{where}: expected shape ({n_channels}, T>0), found {data.shape}"
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        return f"{where}: expected finite samples, found {bad} NaN/Inf of {data.size}"
    peak = max(float(data.max()), -float(data.min()))
    if peak > FLOAT32_MAX:
        return f"{where}: expected samples within float32 range (|x| <= {FLOAT32_MAX:.3g}), found |x| = {peak:.3g}"
    return None


def drained(items: list) -> Iterator[Any]:
    """Yield `items` front to back, taking each out of the list as it goes: a file's trials, each freed once handed on
    (not held until the whole file is done, nor while the next file is read)."""
    items.reverse()
    while items:
        yield items.pop()


def inner_folder(root: Path, inner: str) -> Path:
    """The folder holding the data files: root/inner when the user passed the dataset folder, else root."""
    return root / inner if (root / inner).is_dir() else root


def is_synthetic(root: str | Path) -> bool:
    """True when the dataset folder (or the inner folder's parent) holds the generator's marker file."""
    root = Path(root)
    if (root / MARKER_NAME).is_file():
        return True
    return root.name in INNER_FOLDERS and (root.parent / MARKER_NAME).is_file()


class Reader:
    """Reads one dataset as the user unpacked it and yields its trials subject by subject.

    Class-level facts and classmethods are the dataset contract (usable without a folder); an instance
    reads one copy on disk with validated options.
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    """Folder names besides `name` tried under a common data root (any case, '-', '_' and spaces ignored)."""
    n_classes: int = 2
    class_names: tuple[str, ...] = ()
    sampling_rate: float = 0.0
    channel_names: tuple[str, ...] = ()
    passband_hz: tuple[float, float] | str | None = None
    """The band the distributed files were already filtered to by the dataset's authors (None: unfiltered;
    'unknown': preprocessed by the authors with a band the sources at hand do not establish, said, never guessed)."""
    config_keys: dict[str, str] = {}
    """Older `data.*` config keys -> this reader's options (datasets added since take `data.dataset_options`)."""
    within_subject_trials: tuple[int, int] | None = None
    """The published within-subject convention (train on a session's first n trials, test on the next m), or None:
    `--split within-subject` then splits trials 75/25, seeded and class-stratified."""
    synthetic_trials: tuple[int, int] = (8, 40)
    """(default, most) trials per subject (per session where there are sessions) the synthetic generator writes."""

    def __init__(self, root: str | Path, *, skip_bad_trials: bool = False) -> None:
        self.root = Path(root)
        self.skip_bad_trials = bool(skip_bad_trials)
        if not self.root.is_dir():
            raise DatasetError(f"{self.name}: dataset folder {self.root} does not exist")

    @classmethod
    def check_options(cls, joint: bool = False, **options: Any) -> dict[str, Any]:
        """The options an instance would use, validated (OptionError naming the option); `joint`: trained with
        other datasets, so labelled by the shared binary mapping."""
        return options

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        """Whether `folder` is this dataset's folder (or its inner data folder)."""
        raise NotImplementedError

    @classmethod
    def rate(cls, options: dict[str, Any]) -> float:
        """The sampling rate of the trials under these options (DE frames per second when they deliver 'de')."""
        return cls.sampling_rate

    @classmethod
    def delivers(cls, options: dict[str, Any]) -> str:
        """What a trial's `signal` holds under these options: 'signal', EEG (C, T); or 'de', the differential-entropy
        frames the dataset's authors released, (C, bands, frames), which only the `de` representation takes."""
        return "signal"

    @classmethod
    def default_filters(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Band-pass and notch applied before windowing unless the config says otherwise (None: off)."""
        return {"bandpass_hz": None, "notch_hz": None}

    @classmethod
    def classes(cls, options: dict[str, Any]) -> int:
        """The number of classes under these (checked) options."""
        return cls.n_classes

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        """The id of what every subject was shown in that trial, equal across subjects (e.g. 'v07'); a reader whose
        files name each trial's stimulus sets `Trial.stimulus` instead."""
        return f"t{trial:02d}"

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """Write one synthetic subject in the dataset's exact format under `root` (see synthetic_signal)."""
        raise NotImplementedError

    @classmethod
    def write_synthetic(cls, root: Path, n_subjects: int, trials: int, seconds: float, planting: Any,
                        seed: int) -> None:
        """Write subjects 1..n_subjects, on threads (FFT and zlib release the GIL); a dataset kept in one file
        overrides this."""
        with ThreadPoolExecutor(max_workers=min(n_subjects, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda subject: cls.write_subject(root, subject, trials, seconds, planting, seed),
                          range(1, n_subjects + 1)))

    def subjects(self) -> list[str]:
        """Subject ids found on disk, sorted naturally."""
        raise NotImplementedError

    def source_files(self, subject: str) -> list[Path]:
        """Files read for that subject (for cache keys)."""
        raise NotImplementedError

    def read_subject(self, subject: str) -> list[Trial]:
        """All trials (all sessions) of one subject. A reader defines this or `iter_trials` (then this lists them)."""
        if type(self).iter_trials is Reader.iter_trials:
            raise NotImplementedError(f"{type(self).__name__} defines neither read_subject nor iter_trials")
        return list(self.iter_trials(subject))

    def iter_trials(self, subject: str) -> Iterator[Trial]:
        """The subject's trials one at a time, as features are built from them: a reader whose subject spans several
        files yields each file's trials before it reads the next, so only one file's recording is held."""
        yield from self.read_subject(subject)

    def options(self) -> dict:
        """JSON-able options that change the output (for cache keys and the protocol statement)."""
        raise NotImplementedError

    def label_description(self) -> str:
        """One line describing how labels are made, for tables."""
        raise NotImplementedError

    def stimulus_statement(self) -> str:
        """What every subject was shown and what that means for cross-subject scores (captions, PROTOCOL.md).

        Subject-wise splits hold the subject out, not the stimulus: each dataset states its own confound.
        """
        raise NotImplementedError

    @property
    def synthetic(self) -> bool:
        """True when the data were written by the synthetic generator."""
        return is_synthetic(self.root)

    def _check_subject(self, subject: str, found: list[str]) -> None:
        """Raise a DatasetError when the subject is not on disk."""
        if subject not in found:
            raise DatasetError(f"{self.name}: no subject {subject!r} in {self.root}; found {found}")

    def _bad_trial(self, skipped: list[str], message: str) -> None:
        """Raise for a bad trial, or record it for the warning when skip_bad_trials is set."""
        if not self.skip_bad_trials:
            raise DatasetError(message)
        skipped.append(message)

    def _finish(self, subject: str, trials: list[Trial], skipped: list[str]) -> list[Trial]:
        """Log what was skipped and refuse a subject left with no trials."""
        self._check_kept(subject, len(trials), skipped)
        return trials

    def _check_kept(self, subject: str, kept: int, skipped: list[str]) -> None:
        """`_finish` for a reader that yields its trials: log what was skipped, refuse a subject that kept none."""
        if skipped:
            logger.warning(
                "%s subject %s: skipped %d bad trial(s), kept %d; first: %s",
                self.name, subject, len(skipped), kept, skipped[0],
            )
        if not kept:
            raise DatasetError(
                f"{self.name} subject {subject}: expected at least one usable trial in "
                f"{[str(p) for p in self.source_files(subject)]}, found none"
            )
