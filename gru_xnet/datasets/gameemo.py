"""GAMEEMO reader: per-subject per-game CSV files -> 14-channel trials labelled by game."""

from __future__ import annotations

import itertools
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .base import (MAINS_HZ, DatasetError, Reader, Trial, check_option, check_subset, natural_key, signal_problem,
                   stimulus_confound)
from .synthetic_signal import SubjectModel

GAMEEMO_CHANNELS = ("AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6", "O1", "O2", "P7", "P8", "T7", "T8")
"""The 14 Emotiv EPOC channels, alphabetical as in the CSV header."""

SAMPLING_RATE = 128.0
GAMES = (1, 2, 3, 4)
GAME_NAMES = {1: "boring", 2: "calm", 3: "horror", 4: "funny"}
DEFAULT_POSITIVE_GAMES = {"valence": (2, 4), "arousal": (3, 4)}
"""Alakuş et al. 2020: positive valence = calm, funny; high arousal = horror, funny."""

CLASS_NAMES = {"valence": ("negative", "positive"), "arousal": ("low arousal", "high arousal")}
SOURCES = {
    "preprocessed": ("Preprocessed EEG Data", ("AllChannels",)),
    "raw": ("Raw EEG Data", ("AllRawChannels", "AllChannels")),
}
"""source -> (folder inside each subject folder, accepted file-name suffixes in order of preference)."""

SUBJECT_FOLDER = re.compile(r"^\(?(S\d+)\)?$", re.IGNORECASE)
SYNTHETIC_FACTORS = {1: (0, 0), 2: (1, 0), 3: (0, 1), 4: (1, 1)}
"""Game -> (valence level, arousal level) planted by the generator."""


class GAMEEMOReader(Reader):
    """GAMEEMO CSVs; each game file is one trial, its label from the game (valence or arousal mapping)."""

    name = "GAMEEMO"
    n_classes = 2
    sampling_rate = SAMPLING_RATE
    channel_names = GAMEEMO_CHANNELS
    config_keys = {"gameemo_label": "label_dimension", "gameemo_positive_games": "positive_games",
                   "gameemo_source": "source"}
    synthetic_trials = (len(GAMES), len(GAMES))

    def __init__(
        self,
        root: str | Path,
        *,
        skip_bad_trials: bool = False,
        joint: bool = False,
        label_dimension: str = "valence",
        positive_games: tuple[int, ...] | None = None,
        source: str = "preprocessed",
    ) -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(label_dimension=label_dimension, positive_games=positive_games, source=source)
        self.label_dimension, self.positive_games, self.source = (options[k] for k in ("label_dimension",
                                                                                      "positive_games", "source"))
        self.class_names = CLASS_NAMES[label_dimension]

    @classmethod
    def check_options(cls, joint: bool = False, label_dimension: str = "valence",
                      positive_games: tuple[int, ...] | None = None, source: str = "preprocessed") -> dict[str, Any]:
        """Valence or arousal, the games on the positive side (default: Alakus et al. 2020's), the CSV folder."""
        check_option("label_dimension", label_dimension, tuple(DEFAULT_POSITIVE_GAMES))
        check_option("source", source, tuple(SOURCES))
        games = DEFAULT_POSITIVE_GAMES[label_dimension] if positive_games is None else positive_games
        return {"label_dimension": label_dimension, "positive_games": check_subset("positive_games", games, GAMES),
                "source": source}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        return any(SUBJECT_FOLDER.match(p.name) for p in folder.iterdir())

    @classmethod
    def default_filters(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Raw CSVs are unfiltered (band-pass 0.5-60 Hz, 50 Hz notch); the preprocessed ones get nothing more."""
        if options.get("source") == "raw":
            return {"bandpass_hz": [0.5, 60.0], "notch_hz": MAINS_HZ}
        return super().default_filters(options)

    @classmethod
    def stimulus(cls, session: int, trial: int) -> str:
        return f"G{trial}"  # the game

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """GAMEEMO/(Sxx)/{Preprocessed,Raw} EEG Data/.csv format/SxxGy{AllChannels,AllRawChannels}.csv."""
        n_samples = int(round(seconds * SAMPLING_RATE))
        rng = np.random.default_rng([seed, 2, subject])
        model = SubjectModel.draw(rng, len(GAMEEMO_CHANNELS), planting)
        dc_offset = 4200.0 + rng.normal(0.0, 50.0, size=(len(GAMEEMO_CHANNELS), 1))
        line_noise = 5.0 * np.sin(2 * np.pi * 50.0 * np.arange(n_samples) / SAMPLING_RATE)
        folder = root / f"(S{subject:02d})"
        for game in GAMES:
            planted = int(rng.choice(GAMES)) if planting.shuffle else game
            signal = model.trial(rng, GAMEEMO_CHANNELS, n_samples, SAMPLING_RATE, SYNTHETIC_FACTORS[planted],
                                 cls.stimulus(1, game))
            name = f"S{subject:02d}G{game}"
            write_csv(folder / "Preprocessed EEG Data" / ".csv format" / f"{name}AllChannels.csv", signal)
            write_csv(folder / "Raw EEG Data" / ".csv format" / f"{name}AllRawChannels.csv", signal + dc_offset + line_noise)

    def _subject_folders(self) -> dict[str, Path]:
        """subject id ('S01') -> its folder ('(S01)')."""
        return {m.group(1).upper(): p for p in self.root.iterdir() if p.is_dir() and (m := SUBJECT_FOLDER.match(p.name))}

    def subjects(self) -> list[str]:
        """Subject ids ('S01', ...) of the (Sxx) folders present."""
        found = sorted(self._subject_folders(), key=natural_key)
        if not found:
            raise DatasetError(f"GAMEEMO: expected subject folders (S01), (S02)... in {self.root}, found none")
        return found

    def source_files(self, subject: str) -> list[Path]:
        """The four game CSVs of that subject from the selected source folder."""
        folders = self._subject_folders()
        self._check_subject(subject, sorted(folders, key=natural_key))
        folder_name, suffixes = SOURCES[self.source]
        folder = folders[subject] / folder_name / ".csv format"
        paths = []
        for game in GAMES:
            candidates = [folder / f"{subject}G{game}{suffix}.csv" for suffix in suffixes]
            existing = [p for p in candidates if p.is_file()]
            if not existing:
                raise DatasetError(f"GAMEEMO: expected {' or '.join(map(str, candidates))}, found no such file")
            paths.append(existing[0])
        return paths

    def read_subject(self, subject: str) -> list[Trial]:
        """One trial per game, channels picked by header name."""
        trials: list[Trial] = []
        skipped: list[str] = []
        for game, path in zip(GAMES, self.source_files(subject)):
            signal = read_channels_csv(path, GAMEEMO_CHANNELS)
            problem = signal_problem(signal, str(path), len(GAMEEMO_CHANNELS))
            if problem is not None:
                self._bad_trial(skipped, problem)
                continue
            trials.append(Trial(
                signal=signal.astype(np.float32),
                label=int(game in self.positive_games),
                subject=subject, session="1", trial=game,
                channel_names=GAMEEMO_CHANNELS, sampling_rate=SAMPLING_RATE, dataset=self.name,
            ))
        return self._finish(subject, trials, skipped)

    def options(self) -> dict:
        """Label dimension, the positive games and the source folder."""
        return {"label_dimension": self.label_dimension, "positive_games": list(self.positive_games), "source": self.source}

    def label_description(self) -> str:
        """E.g. 'GAMEEMO valence: G2 calm, G4 funny -> positive (1), others -> negative (0) [preprocessed]'."""
        games = ", ".join(f"G{g} {GAME_NAMES[g]}" for g in self.positive_games)
        low, high = self.class_names
        return f"GAMEEMO {self.label_dimension}: {games} -> {high} (1), others -> {low} (0) [{self.source}]"


    def stimulus_statement(self) -> str:
        """GAMEEMO: the same 4 games for everyone, labels fixed per game; what 4 trials allow at trial level."""
        positive = len(self.positive_games)
        levels = sorted({100.0 * np.mean([np.mean(guess[:positive]), 1 - np.mean(guess[positive:])])
                         for guess in itertools.product((0, 1), repeat=len(GAMES))})
        shown = "every GAMEEMO subject played the same 4 games (one trial each), and a trial's label is fixed by its game"
        return (stimulus_confound(shown, "games", "game", rated=False, verb="played")
                + f" TRIAL LEVEL: each subject has {len(GAMES)} trials, so trial-level balanced "
                f"accuracy can only be {'/'.join(f'{v:.3g}' for v in levels)} %, and the within-subject permutation "
                f"has only {math.comb(len(GAMES), positive)} distinct labellings.")


def read_channels_csv(path: Path, channels: tuple[str, ...]) -> np.ndarray:
    """(C, T) float64 samples of the named columns of a CSV with a header row (trailing comma allowed)."""
    with path.open("r", encoding="utf-8-sig", errors="replace") as handle:
        header = [name.strip().strip('"').upper() for name in handle.readline().rstrip("\r\n").split(",")]
        missing = [c for c in channels if c not in header]
        if missing:
            raise DatasetError(f"{path}: expected columns {list(channels)}, missing {missing}; header has {header}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # numpy warns on a header-only file; handled below
                data = np.loadtxt(handle, delimiter=",", usecols=[header.index(c) for c in channels], ndmin=2)
        except ValueError as exc:
            raise DatasetError(
                f"{path}: expected {len(header)} comma-separated numeric fields per row, "
                f"found a malformed or truncated row ({exc})"
            ) from exc
    if data.shape[0] == 0:
        raise DatasetError(f"{path}: expected rows of samples after the header, found none")
    return data.T


def write_csv(path: Path, signal: np.ndarray) -> None:
    """GAMEEMO CSV: alphabetical header, one row per sample, a trailing comma on every line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, signal.T, fmt="%.4f", delimiter=",", newline=",\n", header=",".join(GAMEEMO_CHANNELS), comments="")
