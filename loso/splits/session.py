"""`cross-session`: per subject, train on its earlier sessions and test on its last one (datasets with sessions);
validation is a seeded ~20 % of the training sessions' trials, whole trials only. A subject-dependent protocol:
the model never sees another subject."""

from __future__ import annotations

import numpy as np

from gru_xnet.config import ConfigError
from gru_xnet.features import FeatureSet
from gru_xnet.split import Only, Split
from loso.folds import Fold
from loso.splits.spec import PlanOptions, SplitSpec, sessions_present, subject_trials, validation_trials


def plan(features: FeatureSet, options: PlanOptions, _parameter: None) -> list[Fold]:
    """One fold per (seed, subject): its earlier sessions' trials (less validation) against its last session."""
    folds = []
    for seed in options.seeds:
        for subject in features.subject_ids(options.subjects):
            key = features.subjects[subject]
            sessions = sessions_present(features, subject)
            if len(sessions) < 2:
                raise ConfigError(f"--split cross-session: {key} has {len(sessions)} session(s); {key.dataset} has no "
                                  "sessions to train and test across")
            earlier, last = sessions[:-1], sessions[-1]
            trials, labels = subject_trials(features, subject, earlier)
            train, val = validation_trials(trials, labels, options.val_fraction, np.random.default_rng([seed, subject]))
            folds.append(Fold(f"{key.dataset}-{key.subject}-cross-session-seed{seed}", (str(key),), None, seed,
                              Split((subject,), (subject,) if val else (), (subject,),
                                    only=(Only(trials=tuple(train)), Only(trials=tuple(val)),
                                          Only(sessions=(last,))))))
    return folds


SPLIT = SplitSpec(
    name="cross-session", plan=plan, subject_dependent=True,
    sessions=lambda _: ("a subject's earlier sessions pooled for training, its last session tested: one score per "
                        "subject (the sessions option does not apply)"),
    statement=lambda *_: ("cross-session: per subject, train on its earlier sessions and test on its last one; "
                         "validation is a seeded ~20% of the training sessions' trials (whole trials); a "
                         "subject-dependent protocol, no other subject is seen"))
