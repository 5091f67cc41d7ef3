"""`kfold:K`: each dataset's subjects dealt into K seeded groups (sizes differing by at most one), each group held
out once per seed; every test subject is still scored on its own. For big datasets, where a fold per subject is
too slow, and for nested tuning."""

from __future__ import annotations

import numpy as np

from gru_xnet.config import ConfigError
from gru_xnet.features import FeatureSet
from gru_xnet.split import Split, validation_subjects
from loso.folds import Fold
from loso.splits.spec import PlanOptions, SplitSpec, training_pool


def subject_groups(features: FeatureSet, dataset: str, k: int, seed: int) -> list[list[int]]:
    """A dataset's subjects in `k` groups, dealt from an order seeded by (seed, dataset name)."""
    members = features.subjects_of(dataset)
    if len(members) < k:
        raise ConfigError(f"--split kfold:{k}: {dataset} has {len(members)} subject(s), fewer than {k} groups")
    order = np.random.default_rng([seed, *dataset.encode()]).permutation(members)
    return [sorted(int(s) for s in group) for group in np.array_split(order, k)]


def plan(features: FeatureSet, options: PlanOptions, k: int) -> list[Fold]:
    """Per seed and group: one fold per dataset (`within`) or one over every dataset's group (`joint`)."""
    if options.sessions == "separate":
        raise ConfigError(f"--split kfold:{k} holds out whole subjects: use sessions 'pooled' with it")
    folds = []
    for seed in options.seeds:
        groups = {dataset: subject_groups(features, dataset, k, seed) for dataset in features.datasets}
        scopes = [[d] for d in features.datasets] if options.protocol == "within" else [features.datasets]
        for datasets in scopes:
            for g in range(k):
                tests = sorted(s for dataset in datasets for s in groups[dataset][g])
                pool = training_pool(features, tests, options.protocol)
                train, val = validation_subjects(features, pool, options.val_fraction, seed=[seed, k, g])
                name = datasets[0] if len(datasets) == 1 else "joint"
                folds.append(Fold(f"{name}-kfold{g + 1}of{k}-seed{seed}", tuple(str(features.subjects[t]) for t in tests),
                                  None, seed, Split(train, val, tuple(tests))))
    return folds


SPLIT = SplitSpec(
    name="kfold", plan=plan, subject_level=True, parameter="K", default=5,
    statement=lambda k, _: (f"{k}-fold over subjects: each dataset's subjects are dealt into {k} seeded groups (sizes "
                         "differing by at most one), each group is held out once and every test subject is scored on "
                         "its own; no subject is on two sides of a fold"),
    takes_subjects=False)
