"""The contract of a split planner: how a run's folds hold data out, what it is called and what it states."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gru_xnet.config import ConfigError
from gru_xnet.features import FeatureSet
from loso.folds import Fold


@dataclass(frozen=True)
class PlanOptions:
    """What every planner is asked with: the pool (`within`: a fold trains on its own dataset's subjects;
    `joint`: on every dataset's), sessions (`pooled` or `separate`), seeds, tested subjects, validation share, and
    the validation of a split that chooses it (`none` or `trials`; None: not given, the split's default)."""

    protocol: str = "within"
    sessions: str = "pooled"
    seeds: Sequence[int] = (0,)
    subjects: Sequence[str] | None = None
    val_fraction: float = 0.2
    within_subject_validation: str | None = None


PARAMETER_KINDS = ("integer", "file")


@dataclass(frozen=True)
class SplitFile:
    """What a split's file parameter is kept as: the text and its SHA-256, never the path (run.json records both, so
    a resume against an edited file is refused)."""

    sha256: str
    content: str

    @classmethod
    def of_text(cls, content: str) -> "SplitFile":
        return cls(hashlib.sha256(content.encode()).hexdigest(), content)


@dataclass(frozen=True)
class SplitSpec:
    """A registered split: `plan(features, options, parameter)` gives its folds; `statement(parameter, options)` says
    in one sentence what a fold holds out and what it trains on (PROTOCOL.md, captions)."""

    name: str
    plan: Callable[[FeatureSet, PlanOptions, Any], list[Fold]]
    statement: Callable[[Any, PlanOptions], str]
    parameter: str | None = None
    """The name of its `:VALUE` parameter (e.g. 'K', 'FILE'), or None when it takes none."""
    kind: str = "integer"
    """What the parameter is: 'integer' (>= `minimum`), or 'file' (a path; `read` makes the parameter of its text,
    and the parameter's `source` is that `SplitFile`)."""
    read: Callable[[SplitFile, str], Any] | None = None
    """For a 'file' parameter: the parameter from the file's text and its path (for errors and its format)."""
    default: int | None = None
    minimum: int = 2
    takes_subjects: bool = True
    """Whether `--subjects` may restrict the tested subjects."""
    subject_level: bool = False
    """Whether every fold holds out whole subjects (what a nested search's outer folds must do)."""
    subject_dependent: bool = False
    """Whether a fold trains on its test subject's own other data (no other subject: `--protocol` does not apply)."""
    stimulus_level: bool = False
    """Whether every fold keeps its test stimuli off the training and validation sides (a leakage check verifies it)."""
    chooses_validation: bool = False
    """Whether `--within-subject-validation` (`none` or `trials`) chooses its validation side."""
    synthetic_trials: Callable[[str], int | None] = lambda _dataset: None
    """The trials per session a `--synthetic` copy of a dataset must hold for this split (None: the generator's)."""
    sessions: Callable[[str], str] | None = None
    """What the split does with a subject's sessions under the `--sessions` value given, said in PROTOCOL.md (None:
    `--sessions` means what it means for subject-level splits)."""

    def __post_init__(self) -> None:
        if self.kind not in PARAMETER_KINDS or (self.kind == "file") != (self.read is not None):
            raise ValueError(f"split {self.name}: kind {self.kind!r} expected one of {PARAMETER_KINDS}, with `read` "
                             "exactly for 'file'")

    def parse(self, text: str | None) -> Any:
        """The parameter given after the colon (its default when absent; a file read whole); one error naming the
        split and what it expects."""
        if text is None and self.kind == "file":
            raise ConfigError(f"--split {self.name}: expected {self.name}:{self.parameter}, the path of its file")
        if text is None:
            return self.default
        if self.parameter is None:
            raise ConfigError(f"--split {self.name}:{text}: {self.name} takes no parameter")
        if self.kind == "file":
            try:
                content = Path(text).expanduser().read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"--split {self.name}:{text}: cannot read {text}: {exc}") from None
            return self.read(SplitFile.of_text(content), text)
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < self.minimum:
            raise ConfigError(f"--split {self.name}:{text}: expected {self.parameter} an integer >= {self.minimum}")
        return value

    def label(self, parameter: Any) -> str:
        """The split as written on the command line and recorded in run.json, e.g. 'kfold:5'; a file parameter by the
        start of its SHA-256 ('holdout:sha256=3f2a9c1b0d4e'), never its path."""
        if parameter is None:
            return self.name
        if self.kind == "file":
            return f"{self.name}:sha256={parameter.source.sha256[:12]}"
        return f"{self.name}:{parameter}"

    def record(self, parameter: Any) -> dict:
        """What run.json keeps of a file parameter besides the label: the file's SHA-256 and content."""
        if self.kind != "file" or parameter is None:
            return {}
        return {"split_file": {"sha256": parameter.source.sha256, "content": parameter.source.content}}


def training_pool(features: FeatureSet, tests: Sequence[int], protocol: str) -> list[int]:
    """Subjects a fold may train and validate on: the others of the test subjects' datasets (`within`) or of every
    dataset (`joint`); one error when none is left."""
    datasets = {features.subjects[t].dataset for t in tests}
    pool = [i for i in range(len(features.subjects)) if i not in set(tests)
            and (protocol == "joint" or features.subjects[i].dataset in datasets)]
    if not pool:
        raise ConfigError(f"{', '.join(str(features.subjects[t]) for t in tests)}: no other subject to train on")
    return pool


def sessions_present(features: FeatureSet, subject: int) -> list[int]:
    """A subject's sessions, in order."""
    return sorted({int(s) for s in features.sessions[features.windows_of([subject])]})


def sessions_of(features: FeatureSet, subject: int, sessions: str) -> list[int | None]:
    """The sessions a subject is tested in one at a time (`separate`, datasets with several), else [None] (all)."""
    present = sessions_present(features, subject)
    return present if sessions == "separate" and len(present) > 1 else [None]


def deal(items: Sequence, labels: Sequence[int] | None, groups: int, rng: np.random.Generator) -> list[list]:
    """`items` in `groups` seeded groups of sizes differing by at most one; with `labels`, class-stratified: each
    class's items shuffled and dealt round-robin, continuing where the previous class stopped."""
    if labels is None:
        order = [items[i] for i in rng.permutation(len(items))]
    else:
        order = []
        for label in sorted(set(labels)):
            members = [item for item, own in zip(items, labels) if own == label]
            order += [members[i] for i in rng.permutation(len(members))]
    dealt: list[list] = [[] for _ in range(groups)]
    for position, item in enumerate(order):
        dealt[position % groups].append(item)
    return [sorted(group) for group in dealt]


def subject_trials(features: FeatureSet, subject: int, sessions: Sequence[int] | None = None) -> tuple[list, list[int]]:
    """A subject's (session, trial) pairs (of some sessions) in order, and each one's label."""
    rows = features.windows_of([subject], sessions)
    keys, first = np.unique(np.stack([features.sessions[rows], features.trials[rows]], axis=1), axis=0,
                            return_index=True)
    return [(int(s), int(t)) for s, t in keys], [int(label) for label in features.labels[rows[first]]]


def validation_trials(trials: list, labels: list[int], fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    """(training, validation) whole trials: a seeded, class-stratified share of about `fraction`, never a class's
    last training trial (so the training side keeps every class it had)."""
    groups = max(2, round(1 / fraction)) if fraction > 0 else 0
    if not groups or len(trials) < 2:
        return sorted(trials), []
    label_of = dict(zip(trials, labels))
    val: list = []
    for trial in deal(trials, labels, groups, rng)[0]:
        left = [t for t in trials if t not in val and t != trial and label_of[t] == label_of[trial]]
        if left:
            val.append(trial)
    return sorted(t for t in trials if t not in set(val)), sorted(val)
