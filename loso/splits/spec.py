"""The contract of a split planner: how a run's folds hold data out, what it is called and what it states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from gru_xnet.config import ConfigError
from gru_xnet.features import FeatureSet
from loso.folds import Fold


@dataclass(frozen=True)
class PlanOptions:
    """What every planner is asked with: the pool (`within`: a fold trains on its own dataset's subjects;
    `joint`: on every dataset's), sessions (`pooled` or `separate`), seeds, tested subjects, validation share."""

    protocol: str = "within"
    sessions: str = "pooled"
    seeds: Sequence[int] = (0,)
    subjects: Sequence[str] | None = None
    val_fraction: float = 0.2


@dataclass(frozen=True)
class SplitSpec:
    """A registered split: `plan(features, options, parameter)` gives its folds; `statement(parameter)` says in one
    sentence what a fold holds out and what it trains on (PROTOCOL.md, captions)."""

    name: str
    plan: Callable[[FeatureSet, PlanOptions, int | None], list[Fold]]
    statement: Callable[[int | None], str]
    parameter: str | None = None
    """The name of its `:N` parameter (e.g. 'K'), or None when it takes none."""
    default: int | None = None
    minimum: int = 2
    takes_subjects: bool = True
    """Whether `--subjects` may restrict the tested subjects."""

    def parse(self, text: str | None) -> int | None:
        """The parameter given after the colon (its default when absent); one error naming the split and the range."""
        if text is None:
            return self.default
        if self.parameter is None:
            raise ConfigError(f"--split {self.name}:{text}: {self.name} takes no parameter")
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < self.minimum:
            raise ConfigError(f"--split {self.name}:{text}: expected {self.parameter} an integer >= {self.minimum}")
        return value

    def label(self, parameter: int | None) -> str:
        """The split as written on the command line and recorded in run.json, e.g. 'kfold:5'."""
        return self.name if parameter is None else f"{self.name}:{parameter}"


def training_pool(features: FeatureSet, tests: Sequence[int], protocol: str) -> list[int]:
    """Subjects a fold may train and validate on: the others of the test subjects' datasets (`within`) or of every
    dataset (`joint`); one error when none is left."""
    datasets = {features.subjects[t].dataset for t in tests}
    pool = [i for i in range(len(features.subjects)) if i not in set(tests)
            and (protocol == "joint" or features.subjects[i].dataset in datasets)]
    if not pool:
        raise ConfigError(f"{', '.join(str(features.subjects[t]) for t in tests)}: no other subject to train on")
    return pool


def sessions_of(features: FeatureSet, subject: int, sessions: str) -> list[int | None]:
    """The sessions a subject is tested in one at a time (`separate`, datasets with several), else [None] (all)."""
    present = sorted({int(s) for s in features.sessions[features.windows_of([subject])]})
    return present if sessions == "separate" and len(present) > 1 else [None]
