"""`within-subject`: per subject and session, train and test on different trials, never windows of one trial on
both sides: the dataset's published convention where it has one (`Reader.within_subject_trials`: SEED first 9 /
last 6 clips, SEED-IV first 16 / last 8), else a seeded, class-stratified 75 / 25 trial split. Validation is a
seeded ~20 % of the training trials; a subject's sessions are pooled into one score."""

from __future__ import annotations

import numpy as np

from gru_xnet.config import ConfigError
from gru_xnet.datasets.registry import READERS
from gru_xnet.features import FeatureSet
from gru_xnet.split import Only, Split
from loso.folds import Fold
from loso.splits.spec import PlanOptions, SplitSpec, deal, sessions_present, subject_trials, validation_trials

TEST_SHARE = 4
"""Without a published convention, one trial in TEST_SHARE (25 %) is tested, class-stratified."""


def test_trials(trials: list, labels: list[int], convention: tuple[int, int] | None, where: str,
                rng: np.random.Generator) -> tuple[list, list]:
    """(learning, test) trials of one subject's session under the dataset's convention or the stratified rule."""
    if convention:
        first, last = convention
        if len(trials) < first + last:
            raise ConfigError(f"--split within-subject: {where} has {len(trials)} trial(s); the dataset's convention "
                              f"needs {first} to train and {last} to test")
        return trials[:first], trials[first:first + last]
    if len(trials) < TEST_SHARE or len(set(labels)) < 2:
        raise ConfigError(f"--split within-subject: {where} has {len(trials)} trial(s) of {len(set(labels))} "
                          f"class(es); the 75/25 trial split needs at least {TEST_SHARE} trials of two classes")
    test = deal(trials, labels, TEST_SHARE, rng)[0]
    return [t for t in trials if t not in set(test)], test


def plan(features: FeatureSet, options: PlanOptions, _parameter: None) -> list[Fold]:
    """One fold per (seed, subject, session); the sides hold disjoint trials of that session."""
    folds = []
    for seed in options.seeds:
        for subject in features.subject_ids(options.subjects):
            key = features.subjects[subject]
            convention = READERS[key.dataset].within_subject_trials
            for session in sessions_present(features, subject):
                rng = np.random.default_rng([seed, subject, session])
                trials, labels = subject_trials(features, subject, [session])
                learn, test = test_trials(trials, labels, convention, f"{key} session {session}", rng)
                train, val = validation_trials(learn, [labels[trials.index(t)] for t in learn], options.val_fraction,
                                               rng)
                folds.append(Fold(f"{key.dataset}-{key.subject}-session{session}-within-seed{seed}", (str(key),), None,
                                  seed, Split((subject,), (subject,) if val else (), (subject,), (session,),
                                              only=(Only(trials=tuple(train)), Only(trials=tuple(val)),
                                                    Only(trials=tuple(test))))))
    return folds


SPLIT = SplitSpec(
    name="within-subject", plan=plan, subject_dependent=True,
    sessions=("each session is split into its own training and test trials (a fold per session); a subject's "
              "sessions' test predictions are pooled and scored once"),
    statement=lambda _: ("within-subject: per subject and session, train and test on different trials, never windows "
                         "of one trial on both sides (the dataset's published first/last trial convention where it has "
                         "one, else a seeded, class-stratified 75/25 trial split); validation is a seeded ~20% of the "
                         "training trials; a subject's sessions are pooled into one score; subject-dependent"))
