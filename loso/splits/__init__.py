"""Split planners behind `--split`: each module here registers one `SplitSpec` (see `spec.py`); the rest of the
code asks this registry, never a split's name.

    loso                    every subject held out once (the default)
    leave-stimulus-out[:G]  a subject tested on one group of stimuli, trained on other subjects' other stimuli
    kfold[:K]               each dataset's subjects in K seeded groups, each group held out once
    cross-session           per subject, its earlier sessions against its last one
    within-subject          per subject and session, disjoint trials on each side
    holdout:FILE            fixed test and validation subjects per dataset (a file, or a card's own lists)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gru_xnet.config import ConfigError
from gru_xnet.features import FeatureSet
from loso.folds import PROTOCOLS, SESSIONS, WITHIN_SUBJECT_VALIDATION, Fold
from loso.splits import holdout, kfold, session, stimulus, subject, trials
from loso.splits.spec import PlanOptions, SplitSpec

SPLITS: dict[str, SplitSpec] = {spec.name: spec for spec in (subject.SPLIT, stimulus.SPLIT, kfold.SPLIT, session.SPLIT,
                                                               trials.SPLIT, holdout.SPLIT)}

SplitChoice = str | tuple[SplitSpec, Any]
"""A split as written ('kfold:5', 'holdout:lists.yaml') or already made: (spec, parameter), e.g. a card's own lists
(`holdout.holdout_split`)."""


def split_spec(split: SplitChoice) -> tuple[SplitSpec, Any]:
    """The registered split and its parameter from 'name' or 'name:VALUE' (a made pair is returned as it is); one
    error naming what is known."""
    if isinstance(split, tuple):
        return split
    name, colon, parameter = split.partition(":")
    if name not in SPLITS:
        raise ConfigError(f"--split {split}: unknown split {name!r}; expected one of {', '.join(SPLITS)}")
    spec = SPLITS[name]
    return spec, spec.parse(parameter if colon else None)


def check_validation_choice(split: SplitChoice, validation: str | None) -> None:
    """Refuse a `--within-subject-validation` value that is unknown or given to a split that does not take it."""
    spec, parameter = split_spec(split)
    if validation is not None and not spec.chooses_validation:
        raise ConfigError(f"--within-subject-validation {validation}: --split {spec.label(parameter)} does not choose "
                          "its validation this way; leave it out")
    if validation not in (None, *WITHIN_SUBJECT_VALIDATION):
        raise ConfigError(f"--within-subject-validation {validation!r}: expected one of "
                          f"{', '.join(WITHIN_SUBJECT_VALIDATION)}")


def split_record(split: SplitChoice, features: FeatureSet, folds: list[Fold], **options) -> dict:
    """What run.json records of a split planned with `options` (see `PlanOptions`): its label (parameter filled in; a
    file's content and SHA-256, not its path), its statement, what kind of split it is, its own use of sessions and
    its validation, and, checked on the plan, whether its folds score sessions apart and keep every stimulus on one
    side (not assumed: SEED's cross-session tests the clips it trained on)."""
    spec, parameter = split_spec(split)
    chosen = PlanOptions(**options)
    return {"split": spec.label(parameter), **spec.record(parameter), "split_statement": spec.statement(parameter,
                                                                                                       chosen),
            "split_subject_dependent": spec.subject_dependent, "split_subject_level": spec.subject_level,
            "split_stimulus_level": spec.stimulus_level,
            **({"split_sessions": spec.sessions(chosen.sessions)} if spec.sessions else {}),
            **({"split_validation": chosen.within_subject_validation or WITHIN_SUBJECT_VALIDATION[0]}
               if spec.chooses_validation else {}),
            "split_sessions_scored_apart": any(fold.session is not None for fold in folds),
            "split_removes_stimulus": not any(shared_stimuli(features, fold) for fold in folds)}


def shared_stimuli(features: FeatureSet, fold: Fold) -> set[str]:
    """The stimuli a fold both learns from (training, validation) and tests on."""
    if not len(features.stimulus):
        return {"unknown"}
    learnt = np.concatenate([fold.split.windows(features, "train"), fold.split.windows(features, "val")])
    return set(features.stimulus[learnt].tolist()) & set(features.stimulus[fold.split.windows(features, "test")].tolist())


def subject_level_splits() -> list[str]:
    """The splits whose folds hold out whole subjects and can be re-planned from their label (a nested search's outer
    splits: no file parameter), as written on the command line."""
    return [spec.label(None) + (f":{spec.parameter}" if spec.parameter else "") for spec in SPLITS.values()
            if spec.subject_level and spec.kind != "file"]


def plan_folds(features: FeatureSet, split: SplitChoice = "loso", **options) -> list[Fold]:
    """The folds of `split` on `features` (options: see `PlanOptions`), after checking what every split shares."""
    spec, parameter = split_spec(split)
    chosen = PlanOptions(**options)
    if chosen.protocol not in PROTOCOLS:
        raise ConfigError(f"protocol {chosen.protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if chosen.sessions not in SESSIONS:
        raise ConfigError(f"sessions {chosen.sessions!r}: expected one of {', '.join(SESSIONS)}")
    if chosen.sessions == "separate" and chosen.protocol == "joint" and len(features.datasets) > 1:
        raise ConfigError("sessions 'separate' restricts training to one session of each dataset; combine it with "
                          "protocol 'within', not 'joint'")
    if not chosen.seeds:
        raise ConfigError("seeds: expected at least one seed")
    if spec.subject_dependent and chosen.protocol == "joint":
        raise ConfigError(f"--split {spec.label(parameter)} trains each subject on its own data alone: --protocol "
                          "joint does not apply")
    check_validation_choice(split, chosen.within_subject_validation)
    if chosen.subjects and not spec.takes_subjects:
        raise ConfigError(f"--split {spec.label(parameter)} chooses the subjects it tests itself, so --subjects "
                          "does not apply; leave it out")
    return spec.plan(features, chosen, parameter)
