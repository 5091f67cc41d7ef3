"""The leakage certificate: on a run's honest plan and records every check passes or does not apply; each check fails
on a plan or record crafted to break what it guards; aggregate renders a failure into every caption and an older run
as "not recorded"."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from gru_xnet.data_loader import Normalizer
from gru_xnet.features import build_feature_set
from gru_xnet.split import Only
from loso.aggregate import aggregate
from loso.certificate import (CERTIFICATE_FILE, FAILED, LAST_EPOCH, NOT_APPLICABLE, PASSED, certify, failure_line,
                              read_records, write_certificate)
from loso.folds import Fold
from loso.splits import plan_folds
from loso.training import fold_labels
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def setup(synthetic_root, tmp_path_factory):
    """DEAP's 4 synthetic subjects as DE features (cheap), and a config reading them."""
    config = tiny_config(synthetic_root, tmp_path_factory.mktemp("certificate"))
    return build_feature_set(config.data, representation="de"), config


def record(features, config, fold: Fold, variant: int = 0, **changes) -> dict:
    """What an honest worker writes for one test subject of `fold` (no training: the fields a check reads)."""
    sides = {side: fold.split.windows(features, side) for side in ("train", "val", "test")}
    test = fold.tests[0]
    subject = [i for i, key in enumerate(features.subjects) if str(key) == test][0]
    seen = {side: sorted({str(features.subjects[s]) for s in features.subject_index[rows]})
            for side, rows in sides.items()}
    history = [{"epoch": e, "val_subject_balanced_accuracy": v} for e, v in enumerate([50.0, 70.0, 70.0, 60.0], 1)]
    selection = ({"rule": "best validation epoch", "monitor": "val_subject_balanced_accuracy", "mode": "max"}
                 if len(sides["val"]) else {"rule": LAST_EPOCH})
    learnt = np.concatenate([sides["train"], sides["val"]])
    honest = {"fold": fold.record(test), "variant": variant, "tuned_on_test_subject": False,
              "predictions": {"window": sides["test"][features.subject_index[sides["test"]] == subject].tolist()},
              "seen_subjects": seen, "normalizer_sha256": Normalizer.fit(features.features, sides["train"],
                                                                      features.subject_index).sha256(),
              "selection": selection, "history": history, "best_epoch": 2 if len(sides["val"]) else 4, "epochs_run": 4,
              "label_hash": fold_labels(config, features, fold.split, variant).label_hash(learnt)}
    return {**honest, **changes}


def statuses(certificate: dict) -> dict[str, str]:
    return {check["check"]: check["status"] for check in certificate["checks"]}


def test_an_honest_loso_run_with_permutations_passes_every_check_that_applies(setup):
    features, config = setup
    folds = plan_folds(features, "loso")
    records = [record(features, config, fold, variant) for fold in folds for variant in (0, 1)]
    manifest = {"split_subject_dependent": False, "split_stimulus_level": False, "tuned_on": []}
    assert statuses(certify(features, folds, records, manifest, config)) == {
        "trials_on_one_side": PASSED, "test_subjects_held_out": PASSED, "test_stimuli_held_out": NOT_APPLICABLE,
        "normaliser_from_training_rows": PASSED, "checkpoint_rule": PASSED,
        "tuned_subjects_out_of_tests": NOT_APPLICABLE, "permutations_relabel_training_side": PASSED}


def failing(certificate: dict) -> dict[str, str]:
    return {check["check"]: check["detail"] for check in certificate["checks"] if check["status"] == FAILED}


def test_each_check_fails_on_a_plan_or_record_crafted_to_break_it(setup):
    features, config = setup
    loso = {"split_subject_dependent": False, "split_stimulus_level": False, "tuned_on": []}
    fold = plan_folds(features, "loso", subjects=["s01"])[0]
    s01 = fold.split.test[0]
    trials = sorted({int(t) for t in features.trials[features.windows_of([s01])]})

    def check(folds, records, manifest=loso) -> dict[str, str]:
        return failing(certify(features, folds, records, manifest, config))

    # s01's first trial on the training side and the test side (the split allows it: both sides are restricted)
    leaky = Fold("leaky", fold.tests, None, 0, dataclasses.replace(
        fold.split, train=(*fold.split.train, s01), val=(),
        only=(Only(sessions=(1,)), None, Only(trials=((1, trials[0]),)))))
    failed = check([leaky], [record(features, config, leaky)])
    assert "1 trial(s) on the train and test sides, e.g. (subject, session, trial) (0, 1, 1)" in failed[
        "trials_on_one_side"]
    assert "test subject DEAP/s01 has windows on a training side" in failed["test_subjects_held_out"]
    relabelled = [check([leaky], [record(features, config, leaky, variant=k)]) for k in range(1, 6)]
    assert any("test window(s) relabelled" in f.get("permutations_relabel_training_side", "") for f in relabelled)
    # a result that tested a window its fold did not plan, and one whose loaders delivered the test subject
    other = features.windows_of([fold.split.train[0]])[:1].tolist()
    honest = record(features, config, fold)
    failed = check([fold], [{**honest, "predictions": {"window": honest["predictions"]["window"] + other}},
                            {**honest, "seen_subjects": {**honest["seen_subjects"], "val": ["DEAP/s01"]}}])
    assert "1 not planned" in failed["trials_on_one_side"]
    assert "training loaders delivered windows of DEAP/s01" in failed["test_subjects_held_out"]
    # stimuli: LOSO on DEAP shares the 6 videos between sides; a split claiming to hold stimuli out fails
    failed = check([fold], [honest], {**loso, "split_stimulus_level": True})
    assert "on the training and test sides" in failed["test_stimuli_held_out"]
    # a normaliser fitted on other windows than the fold's training side (e.g. with the test subject's)
    everything = Normalizer.fit(features.features, np.arange(len(features.labels))).sha256()
    failed = check([fold], [record(features, config, fold, normalizer_sha256=everything)])
    assert "differs from the one recomputed from its training windows" in failed["normaliser_from_training_rows"]
    # a checkpoint not the best validation epoch; a fold without validation testing an earlier epoch; a grid point
    # that is not the best one
    no_val = Fold("no-val", fold.tests, None, 0,
                  dataclasses.replace(fold.split, train=fold.split.train + fold.split.val, val=()))
    grid = {"selection": {"rule": "grid", "scored_on": "validation subjects"}, "chosen_params": {"C": 1},
            "history": [{"params": {"C": 1}, "val_subject_balanced_accuracy": 60.0},
                        {"params": {"C": 10}, "val_subject_balanced_accuracy": 80.0}]}
    failed = check([fold, no_val], [record(features, config, fold, best_epoch=4),
                                    record(features, config, no_val, best_epoch=3),
                                    record(features, config, no_val, variant=0, **grid)])
    detail = failed["checkpoint_rule"]
    assert "tested epoch 4, the best validation epoch of its history is 2" in detail
    assert "tested epoch 3 of 4, not the last" in detail
    assert "grid scored on 'validation subjects' although the fold has no validation side" in detail
    failed = check([fold], [record(features, config, fold, **grid)])
    assert "chose {'C': 1}, not a best-scoring grid point" in failed["checkpoint_rule"]
    # a result testing a tuned subject that is not marked
    failed = check([fold], [honest], {**loso, "tuned_on": ["DEAP/s01"]})
    assert "DEAP/s01 is a tuned subject but is not marked" in failed["tuned_subjects_out_of_tests"]
    # a replicate whose labels were not the ones the plan's training side gives (recorded hash of other labels)
    failed = check([fold], [record(features, config, fold, variant=3, label_hash=honest["label_hash"])])
    assert "is not the replicate's recomputed" in failed["permutations_relabel_training_side"]


def test_a_failed_check_heads_every_caption_and_an_older_run_says_not_recorded(tmp_path):
    from tests.test_reporting import fold_record, predictions, write_run

    out = write_run(tmp_path / "run", [fold_record("DEAP", f"s0{i}", *predictions(70)) for i in (1, 2, 3)])
    aggregate(out)
    assert "## Leakage checks\n\n- Not recorded" in (out / "tables" / "PROTOCOL.md").read_text()
    check = {"check": "normaliser_from_training_rows", "statement": "the normaliser ...", "status": FAILED,
             "detail": "result DEAP-s01-seed0: normaliser 1 differs"}
    write_certificate(out, {"version": 1, "folds": 3, "results": 3, "checks": [check]})
    assert failure_line(json.loads((out / CERTIFICATE_FILE).read_text())).startswith("LEAKAGE CHECK FAILED: ")
    tables = aggregate(out)
    assert tables["header"][0] == ("LEAKAGE CHECK FAILED: the normaliser ... (result DEAP-s01-seed0: normaliser 1 "
                                   "differs)")
    for name in ("per_subject.md", "per_dataset.md", "per_fold.md", "PROTOCOL.md"):
        assert "LEAKAGE CHECK FAILED: the normaliser" in (out / "tables" / name).read_text(), name
    assert "- **failed**: the normaliser ...: result DEAP-s01-seed0" in (out / "tables" / "PROTOCOL.md").read_text()
    assert read_records(out)[0]["fold"]["subject"] == "s01"
