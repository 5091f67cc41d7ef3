"""Which subjects, and which of their windows, each side of a training gets: `Split`, and the subject-wise splits.

Plain numpy over a FeatureSet's index arrays: split planners, fold plans and command lines use it without
torch; `gru_xnet.data_loader` turns a split into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gru_xnet.config import DataConfig
from gru_xnet.features import FeatureSet

SIDES = ("train", "val", "test")


@dataclass(frozen=True)
class Only:
    """What a side keeps of its subjects' windows; None keeps all: sessions, stimulus ids ('DEAP/12'), or
    (session, trial) pairs. Trial-level splits (leave-stimulus-out, cross-session, within-subject) use it."""

    sessions: tuple[int, ...] | None = None
    stimuli: tuple[str, ...] | None = None
    trials: tuple[tuple[int, int], ...] | None = None

    def keep(self, features: FeatureSet, rows: np.ndarray) -> np.ndarray:
        """The `rows` (window indices) this restriction keeps."""
        mask = np.ones(len(rows), dtype=bool)
        if self.sessions is not None:
            mask &= np.isin(features.sessions[rows], np.asarray(self.sessions))
        if self.stimuli is not None:
            mask &= np.isin(features.stimulus[rows], np.asarray(self.stimuli))
        if self.trials is not None:
            code = lambda s, t: np.asarray(s, dtype=np.int64) * 1_000_000 + np.asarray(t, dtype=np.int64)  # noqa: E731
            wanted = code(*np.asarray(self.trials, dtype=np.int64).reshape(-1, 2).T)
            mask &= np.isin(code(features.sessions[rows], features.trials[rows]), wanted)
        return rows[mask]


@dataclass(frozen=True)
class Split:
    """Subject indices (into FeatureSet.subjects) on each side, and what each side keeps of them.

    `sessions`, when set, restricts every side to those sessions (per-session LOSO). `only` restricts one
    side (train, val, test) to some sessions, stimuli or trials; a subject may be on two sides only when both
    are restricted, and `make_loaders` refuses a split that puts one window on two sides.
    """

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    sessions: tuple[int, ...] | None = None
    only: tuple[Only | None, Only | None, Only | None] = (None, None, None)

    def __post_init__(self) -> None:
        for a, b in ((0, 1), (0, 2), (1, 2)):
            shared = set(self.subjects(SIDES[a])) & set(self.subjects(SIDES[b]))
            if shared and (self.only[a] is None or self.only[b] is None):
                raise ValueError(f"split puts subject(s) {sorted(shared)} on two sides ({SIDES[a]} and {SIDES[b]}) "
                                 f"without restricting both to different data: {self}")
        if not self.train:
            raise ValueError("split has no training subject")

    def subjects(self, side: str) -> tuple[int, ...]:
        return getattr(self, side)

    def windows(self, features: FeatureSet, side: str) -> np.ndarray:
        rows = features.windows_of(self.subjects(side), self.sessions)
        only = self.only[SIDES.index(side)]
        return rows if only is None else only.keep(features, rows)


def _partition(subjects: Sequence[int], n_val: int, n_test: int, rng: np.random.Generator):
    order = [subjects[i] for i in rng.permutation(len(subjects))]
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def subject_split(features: FeatureSet, config: DataConfig, seed: int) -> Split:
    """Split each dataset's subjects by train/val/test ratios (at least one where a ratio is > 0)."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for dataset in features.datasets:
        subjects = features.subjects_of(dataset)
        n = len(subjects)
        n_test = max(1, round(config.test_ratio * n)) if config.test_ratio > 0 else 0
        n_val = max(1, round(config.val_ratio * n)) if config.val_ratio > 0 else 0
        if n - n_test - n_val < 1:
            raise ValueError(f"{dataset} has {n} subject(s): too few for train/val/test ratios "
                             f"{config.train_ratio}/{config.val_ratio}/{config.test_ratio}")
        tr, va, te = _partition(subjects, n_val, n_test, rng)
        train += tr
        val += va
        test += te
    return Split(tuple(sorted(train)), tuple(sorted(val)), tuple(sorted(test)))


def validation_subjects(features: FeatureSet, pool: Sequence[int], val_fraction: float,
                        seed: int | Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split a pool of training subjects into (train, val), per dataset, for early stopping."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for dataset in features.datasets:
        members = [s for s in pool if features.subjects[s].dataset == dataset]
        if not members:
            continue
        n_val = min(len(members) - 1, max(1, round(val_fraction * len(members)))) if val_fraction > 0 else 0
        tr, va, _ = _partition(members, n_val, 0, rng)
        train += tr
        val += va
    return tuple(sorted(train)), tuple(sorted(val))
