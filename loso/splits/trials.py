"""`within-subject`: per subject and session, train and test on different trials, never windows of one trial on
both sides: the dataset's published convention where it has one (`Reader.within_subject_trials`: SEED first 9 /
last 6 clips, SEED-IV first 16 / last 8), else a seeded, class-stratified 75 / 25 trial split. A class never
leaves the training side: under the stratified rule its only trials stay there; where the convention would put
every trial of a class on the test side, the session is refused by name.

`--within-subject-validation` chooses the validation side: `none` (the default and the papers' rule: every
training trial trains, torch models for `training.num_epochs` with the last epoch tested, scikit-learn models
choosing their grid over the training trials, see `gru_xnet.estimators.inner_folds`) or `trials` (a seeded ~20 %
of the training trials validates). `--sessions pooled` pools a subject's sessions' test predictions into one
score; `separate` scores each session on its own and averages a subject's sessions (the tables add the papers'
mean ± SD over subject-sessions, descriptive). Tests and CIs are over subjects either way.
"""

from __future__ import annotations

import numpy as np

from gru_xnet.config import ConfigError
from gru_xnet.datasets.registry import READERS
from gru_xnet.features import FeatureSet
from gru_xnet.split import Only, Split
from loso.folds import WITHIN_SUBJECT_VALIDATION, Fold
from loso.splits.spec import PlanOptions, SplitSpec, deal, sessions_present, subject_trials, validation_trials

TEST_SHARE = 4
"""Without a published convention, one trial in TEST_SHARE (25 %) is tested, class-stratified."""


def test_trials(trials: list, labels: list[int], convention: tuple[int, int] | None, where: str,
                class_names: tuple[str, ...], rng: np.random.Generator) -> tuple[list, list]:
    """(learning, test) trials of one subject's session under the dataset's convention or the stratified rule; every
    class of the session keeps a training trial (the stratified rule keeps it there; the convention refuses)."""
    label_of = dict(zip(trials, labels))
    if convention:
        first, last = convention
        if len(trials) < first + last:
            raise ConfigError(f"--split within-subject: {where} has {len(trials)} trial(s); the dataset's convention "
                              f"needs {first} to train and {last} to test")
        learn, test = trials[:first], trials[first:first + last]
        lost = sorted({label_of[t] for t in test} - {label_of[t] for t in learn})
        if lost:
            raise ConfigError(f"--split within-subject: {where}: class {_named(lost, class_names)} has no trial among "
                              f"the first {first} the dataset's convention trains on, only among the {last} it tests; "
                              "a model cannot learn a class it never sees: leave this subject out (--subjects)")
        return learn, test
    if len(trials) < TEST_SHARE or len(set(labels)) < 2:
        raise ConfigError(f"--split within-subject: {where} has {len(trials)} trial(s) of {len(set(labels))} "
                          f"class(es); the 75/25 trial split needs at least {TEST_SHARE} trials of two classes")
    test = deal(trials, labels, TEST_SHARE, rng)[0]
    for label in sorted(set(labels)):  # a class whose every trial was dealt to the test side keeps one for training
        own = [t for t in trials if label_of[t] == label]
        if all(t in test for t in own):
            test.remove(own[0])
    if not test:
        raise ConfigError(f"--split within-subject: {where}: its test share would take the only trial of class "
                          f"{_named(sorted(set(labels)), class_names)} off the training side, and no other trial is "
                          "left to test")
    return [t for t in trials if t not in set(test)], test


def _named(labels: list[int], class_names: tuple[str, ...]) -> str:
    return ", ".join(f"{label} ({class_names[label]!r})" if label < len(class_names) else str(label)
                     for label in labels)


def plan(features: FeatureSet, options: PlanOptions, _parameter: None) -> list[Fold]:
    """One fold per (seed, subject, session); the sides hold disjoint trials of that session."""
    validation = options.within_subject_validation or WITHIN_SUBJECT_VALIDATION[0]
    folds = []
    for seed in options.seeds:
        for subject in features.subject_ids(options.subjects):
            key = features.subjects[subject]
            convention = READERS[key.dataset].within_subject_trials
            sessions = sessions_present(features, subject)
            apart = options.sessions == "separate" and len(sessions) > 1
            for session in sessions:
                rng = np.random.default_rng([seed, subject, session])
                trials, labels = subject_trials(features, subject, [session])
                learn, test = test_trials(trials, labels, convention, f"{key} session {session}",
                                          features.class_names, rng)
                train, val = (validation_trials(learn, [labels[trials.index(t)] for t in learn], options.val_fraction,
                                                rng) if validation == "trials" else (learn, []))
                folds.append(Fold(f"{key.dataset}-{key.subject}-session{session}-within-seed{seed}", (str(key),),
                                  session if apart else None, seed,
                                  Split((subject,), (subject,) if val else (), (subject,), (session,),
                                        only=(Only(trials=tuple(train)), Only(trials=tuple(val)),
                                              Only(trials=tuple(test))))))
    return folds


def _validation(options: PlanOptions) -> str:
    if (options.within_subject_validation or WITHIN_SUBJECT_VALIDATION[0]) == "trials":
        return ("validation is a seeded ~20% of the training trials (whole trials, never a class's last): torch models "
                "stop early and test their best validation epoch, scikit-learn models choose their grid on it")
    return ("no validation (the papers' rule, --within-subject-validation none): torch models train on every training "
            "trial for training.num_epochs epochs and the last epoch is tested; scikit-learn models choose their grid "
            "by StratifiedGroupKFold over the training trials (k = min(3, the smallest class's training trials), "
            "seeded by the fold's seed)")


def _sessions(sessions: str) -> str:
    if sessions == "separate":
        return ("each session is split into its own training and test trials and scored on its own; a subject's "
                "sessions are averaged (tests and CIs over subjects); the per-subject table adds a row per (subject, "
                "session) and the per-dataset table the mean ± SD over subject-sessions (the papers' figure, "
                "descriptive)")
    return ("each session is split into its own training and test trials (a fold per session); a subject's sessions' "
            "test predictions are pooled and scored once (--sessions separate scores each session)")


SPLIT = SplitSpec(
    name="within-subject", plan=plan, subject_dependent=True, chooses_validation=True, sessions=_sessions,
    synthetic_trials=lambda dataset: sum(READERS[dataset].within_subject_trials or ()) or None,
    statement=lambda _, options: (
        "within-subject: per subject and session, train and test on different trials, never windows of one trial on "
        "both sides (the dataset's published first/last trial convention where it has one, else a seeded, "
        "class-stratified 75/25 trial split); a class never leaves the training side (its only trial stays there; a "
        f"session where the convention would take it away is refused); {_validation(options)}; "
        + ("each session scored on its own and a subject's sessions averaged" if options.sessions == "separate"
           else "a subject's sessions are pooled into one score")
        + "; tests and CIs over subjects; subject-dependent"))
