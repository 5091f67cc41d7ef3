"""`holdout:FILE`: fixed test and validation subjects per dataset, every other subject trains: one fold per dataset
(`within`; `joint`: one over every dataset) and seed, each test subject scored on its own. The lists are data: a
YAML or JSON file names them, or a card gives its own (`holdout_split`); run.json keeps their text and SHA-256.

    SEED:
      test: [1, 6, 9]
      validation: [2, 13, 14]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from gru_xnet.config import ConfigError
from gru_xnet.datasets.base import DatasetError
from gru_xnet.datasets.registry import canonical_name
from gru_xnet.features import FeatureSet
from gru_xnet.split import Split
from loso.folds import Fold
from loso.splits.spec import PlanOptions, SplitFile, SplitSpec, training_pool

SIDES = ("test", "validation")
"""The keys of each dataset's entry; training is every other subject."""


@dataclass(frozen=True)
class HoldoutLists:
    """Per dataset (registered name): its test and validation subject ids, disjoint; `source` is the text they were
    read from, `where` names it in errors (the file's path, or the card)."""

    test: dict[str, tuple[str, ...]]
    validation: dict[str, tuple[str, ...]]
    source: SplitFile
    where: str

    def chosen(self, features: FeatureSet, dataset: str) -> tuple[list[int], list[int]]:
        """The (test, validation) subject indices of `dataset` in `features`; one error naming the source and the key
        when the dataset has no entry or a subject is not in the data."""
        if dataset not in self.test:
            raise ConfigError(f"{self.where}: no key {dataset}: expected test and validation subjects for every "
                              f"dataset of the run ({', '.join(features.datasets)})")
        members = {features.subjects[i].subject: i for i in features.subjects_of(dataset)}
        indices = []
        for side, lists in zip(SIDES, (self.test, self.validation)):
            missing = [s for s in lists[dataset] if s not in members]
            if missing:
                raise ConfigError(f"{self.where}: {dataset}.{side}: subject(s) {', '.join(missing)} not in the data; "
                                  f"{dataset} has {', '.join(members)}")
            indices.append(sorted(members[s] for s in lists[dataset]))
        return indices[0], indices[1]


def holdout_lists(content: Any, source: SplitFile, where: str) -> HoldoutLists:
    """The lists of a parsed mapping {dataset: {test: [...], validation: [...]}}, checked: known datasets, both keys,
    subject ids as text, no subject twice; each error names `where` and the key."""
    if not isinstance(content, Mapping) or not content:
        raise ConfigError(f"{where}: expected a mapping of dataset names to their test and validation subjects, "
                          f"found {type(content).__name__}")
    test: dict[str, tuple[str, ...]] = {}
    validation: dict[str, tuple[str, ...]] = {}
    for key, entry in content.items():
        try:
            dataset = canonical_name(str(key))
        except DatasetError as exc:
            raise ConfigError(f"{where}: key {key!r}: {exc}") from None
        if dataset in test:
            raise ConfigError(f"{where}: key {key!r}: {dataset} is named twice")
        if not isinstance(entry, Mapping) or set(entry) != set(SIDES):
            found = sorted(map(str, entry)) if isinstance(entry, Mapping) else type(entry).__name__
            raise ConfigError(f"{where}: {key}: expected exactly the keys {' and '.join(SIDES)} (training is every "
                              f"other subject), found {found}")
        test[dataset], validation[dataset] = (_subjects(entry[side], f"{where}: {key}.{side}") for side in SIDES)
        if not test[dataset]:
            raise ConfigError(f"{where}: {key}.test: expected at least one subject, found none")
        both = sorted(set(test[dataset]) & set(validation[dataset]))
        if both:
            raise ConfigError(f"{where}: {key}: subject(s) {', '.join(both)} in both test and validation")
    return HoldoutLists(test, validation, source, where)


def _subjects(values: Any, where: str) -> tuple[str, ...]:
    """Subject ids as the readers name them ('s01', '1'): text, or integers written as text; none twice."""
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, (str, int)) for v in values):
        raise ConfigError(f"{where}: expected a list of subject ids (text or integers), found {values!r}")
    ids = tuple(str(v) for v in values)
    twice = sorted({s for s in ids if ids.count(s) > 1})
    if twice:
        raise ConfigError(f"{where}: subject(s) {', '.join(twice)} listed twice")
    return ids


def read_lists(source: SplitFile, path: str) -> HoldoutLists:
    """The lists in a .json, .yaml or .yml file's text; errors name the file."""
    import yaml

    where = f"--split holdout:{path}"
    if not path.lower().endswith((".json", ".yaml", ".yml")):
        raise ConfigError(f"{where}: expected a .json, .yaml or .yml file")
    try:
        content = json.loads(source.content) if path.lower().endswith(".json") else yaml.safe_load(source.content)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot parse it: {exc}") from None
    return holdout_lists(content, source, where)


def holdout_split(lists: Mapping[str, Mapping[str, list]], where: str) -> tuple[SplitSpec, HoldoutLists]:
    """The holdout split of lists given as data (a card's own), for `plan_folds` and `split_record`; run.json keeps
    their canonical JSON and its SHA-256."""
    source = SplitFile.of_text(json.dumps(lists, sort_keys=True, indent=2, default=str))
    return SPLIT, holdout_lists(lists, source, where)


def plan(features: FeatureSet, options: PlanOptions, lists: HoldoutLists) -> list[Fold]:
    """Per seed: one fold per dataset (`within`) or one over every dataset (`joint`), testing the listed subjects,
    validating on the listed ones and training on the rest of the pool."""
    if options.sessions == "separate":
        raise ConfigError(f"--split {SPLIT.label(lists)} holds out whole subjects: use sessions 'pooled' with it")
    chosen = {dataset: lists.chosen(features, dataset) for dataset in features.datasets}
    scopes = [[d] for d in features.datasets] if options.protocol == "within" else [features.datasets]
    folds = []
    for seed in options.seeds:
        for datasets in scopes:
            tests = sorted(t for d in datasets for t in chosen[d][0])
            val = sorted(v for d in datasets for v in chosen[d][1])
            train = tuple(i for i in training_pool(features, tests, options.protocol) if i not in set(val))
            if not train:
                raise ConfigError(f"{lists.where}: {', '.join(datasets)}: no subject is left to train on")
            name = datasets[0] if len(datasets) == 1 else "joint"
            folds.append(Fold(f"{name}-holdout-seed{seed}", tuple(str(features.subjects[t]) for t in tests), None,
                              seed, Split(train, tuple(val), tuple(tests))))
    return folds


def statement(lists: HoldoutLists | None) -> str:
    """What the split holds out, with the lists themselves when known."""
    named = "" if lists is None else ("; " + "; ".join(
        f"{d}: test {', '.join(lists.test[d])}, validation {', '.join(lists.validation[d]) or 'none'}"
        for d in lists.test) + f" (lists sha256 {lists.source.sha256[:12]})")
    return ("holdout: fixed subject lists name each dataset's test and validation subjects; every other subject of the "
            "pool trains; one fold per dataset and seed, each test subject scored on its own; no subject is on two "
            f"sides{named}")


SPLIT = SplitSpec(name="holdout", plan=plan, statement=lambda lists, _: statement(lists), parameter="FILE", kind="file",
                  read=read_lists,
                  subject_level=True, takes_subjects=False)
