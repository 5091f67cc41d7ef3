"""`loso`: every selected subject held out once per seed (once per session with sessions 'separate')."""

from __future__ import annotations

from gru_xnet.features import FeatureSet
from gru_xnet.split import Split, validation_subjects
from loso.folds import Fold
from loso.protocol import LOSO_STATEMENT
from loso.splits.spec import PlanOptions, SplitSpec, sessions_of, training_pool


def plan(features: FeatureSet, options: PlanOptions, _parameter: None) -> list[Fold]:
    """One fold per (seed, test subject[, session]); validation subjects drawn from the training pool per fold."""
    folds = []
    for seed in options.seeds:
        for test in features.subject_ids(options.subjects):
            key = features.subjects[test]
            pool = training_pool(features, [test], options.protocol)
            for session in sessions_of(features, test, options.sessions):
                train, val = validation_subjects(features, pool, options.val_fraction, seed=[seed, test])
                tag = "" if session is None else f"-session{session}"
                folds.append(Fold(f"{key.dataset}-{key.subject}{tag}-seed{seed}", (str(key),), session, seed,
                                  Split(train, val, (test,), None if session is None else (session,))))
    return folds


SPLIT = SplitSpec(
    name="loso", plan=plan, subject_level=True,
    statement=lambda *_: LOSO_STATEMENT)
