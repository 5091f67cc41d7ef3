"""`leave-stimulus-out[:G]`: each dataset's stimuli in G seeded groups; a fold tests one subject on one group's
stimuli and trains on the other subjects' trials of the other groups only, so a model cannot score by recognising
a clip (or game) it was trained on. Every (subject, group) is tested once per seed; a subject's groups are pooled
into one score (`loso.pooling`)."""

from __future__ import annotations

import numpy as np

from gru_xnet.config import ConfigError
from gru_xnet.features import FeatureSet
from gru_xnet.split import Only, Split, validation_subjects
from loso.folds import Fold
from loso.splits.spec import PlanOptions, SplitSpec, deal, training_pool


def stimulus_groups(features: FeatureSet, dataset: str, groups: int, seed: int) -> list[list[str]]:
    """A dataset's stimuli in `groups` seeded groups: class-stratified where each stimulus has one label for every
    subject (SEED, SEED-IV, GAMEEMO, FACED), else (self-rated labels: DEAP, DREAMER, AMIGOS) balanced by size."""
    rows = np.flatnonzero(features.dataset_index == features.datasets.index(dataset))
    stimuli, inverse = np.unique(features.stimulus[rows], return_inverse=True)
    if len(stimuli) < groups:
        raise ConfigError(f"--split leave-stimulus-out:{groups}: {dataset} has {len(stimuli)} stimulus(i), fewer "
                          f"than {groups} groups")
    labels = [np.unique(features.labels[rows[inverse.ravel() == i]]) for i in range(len(stimuli))]
    fixed = all(len(label) == 1 for label in labels)
    rng = np.random.default_rng([seed, groups, *dataset.encode()])
    return deal(stimuli.tolist(), [int(label[0]) for label in labels] if fixed else None, groups, rng)


def plan(features: FeatureSet, options: PlanOptions, groups: int) -> list[Fold]:
    """One fold per (seed, test subject, stimulus group); both training sides keep only the other groups' stimuli."""
    if options.sessions == "separate":
        raise ConfigError("--split leave-stimulus-out groups the stimuli of every session: use sessions 'pooled'")
    if not len(features.stimulus):
        raise ConfigError("--split leave-stimulus-out: these features record no stimulus ids (rebuild the cache)")
    everything = set(features.stimulus.tolist())
    folds = []
    for seed in options.seeds:
        grouped = {dataset: stimulus_groups(features, dataset, groups, seed) for dataset in features.datasets}
        for test in features.subject_ids(options.subjects):
            key = features.subjects[test]
            pool = training_pool(features, [test], options.protocol)
            train, val = validation_subjects(features, pool, options.val_fraction, seed=[seed, test])
            for g, held_out in enumerate(grouped[key.dataset]):
                learn = Only(stimuli=tuple(sorted(everything - set(held_out))))
                folds.append(Fold(f"{key.dataset}-{key.subject}-stimuli{g + 1}of{groups}-seed{seed}", (str(key),),
                                  None, seed, Split(train, val, (test,), only=(learn, learn, Only(stimuli=tuple(held_out))))))
    return folds


SPLIT = SplitSpec(
    name="leave-stimulus-out", plan=plan, parameter="G", default=2, stimulus_level=True,
    statement=lambda g, _: (f"leave-stimulus-out: each dataset's stimuli are dealt into {g} seeded groups "
                         "(class-stratified where every stimulus has one label for all subjects, else balanced by "
                         "size); a fold tests one subject on one group's stimuli and trains on other subjects' trials "
                         "of the other groups only, so no stimulus and no subject is on two sides (this removes "
                         f"stimulus recognition and costs about 1/{g} of the training trials); a subject's groups are "
                         "pooled into one score"))
