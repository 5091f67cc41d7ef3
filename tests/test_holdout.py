"""`--split holdout:FILE`: the listed subjects and only they are tested and validated on, the rest trains; the lists
come from a YAML or JSON file or as data (a card's); run.json keeps the file's content and SHA-256, so a resume
against an edited file is refused; bad lists get one error naming the file and the key; the pooled-over-subjects
score is computed from the per-subject results when the run asks for it."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from gru_xnet.config import ConfigError, DataConfig
from gru_xnet.features import build_feature_set
from gru_xnet.metrics import scores
from loso.aggregate import aggregate
from loso.pooling import pooled_over_subjects
from loso.run import main
from loso.splits import plan_folds, split_record, split_spec
from loso.splits.holdout import holdout_split
from tests.conftest import tiny_config

LISTS = "DEAP:\n  test: [s01, s02]\n  validation: [s03]\nGAMEEMO:\n  test: [S04]\n  validation: []\n"


@pytest.fixture(scope="module")
def features(synthetic_root, tmp_path_factory):
    return build_feature_set(DataConfig(datasets=["DEAP", "GAMEEMO"], data_root=str(synthetic_root),
                                        cache_dir=str(tmp_path_factory.mktemp("cache"))), representation="raw")


def names(features, indices):
    return sorted(str(features.subjects[i]) for i in indices)


def test_holdout_tests_and_validates_the_listed_subjects_and_trains_on_the_rest(features, tmp_path):
    path = tmp_path / "lists.yaml"
    path.write_text(LISTS)
    deap, gameemo, deap_again, _ = plan_folds(features, f"holdout:{path}", seeds=[0, 1])
    assert deap.tests == ("DEAP/s01", "DEAP/s02") and deap.fold_id == "DEAP-holdout-seed0"
    assert names(features, deap.split.val) == ["DEAP/s03"] and names(features, deap.split.train) == ["DEAP/s04"]
    assert gameemo.tests == ("GAMEEMO/S04",) and gameemo.split.val == ()
    assert names(features, gameemo.split.train) == ["GAMEEMO/S01", "GAMEEMO/S02", "GAMEEMO/S03"]
    assert deap_again.seed == 1 and deap_again.split == deap.split  # the lists are fixed: seeds change training only
    (joint, _) = plan_folds(features, f"holdout:{path}", protocol="joint", seeds=[0, 1])
    assert joint.tests == ("DEAP/s01", "DEAP/s02", "GAMEEMO/S04")
    assert names(features, joint.split.train) == ["DEAP/s04", "GAMEEMO/S01", "GAMEEMO/S02", "GAMEEMO/S03"]
    record = split_record(f"holdout:{path}", features, [deap, gameemo])
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["split"] == f"holdout:sha256={sha[:12]}" and str(tmp_path) not in json.dumps(record)
    assert record["split_file"] == {"sha256": sha, "content": LISTS} and record["split_subject_level"]
    assert "DEAP: test s01, s02, validation s03; GAMEEMO: test S04, validation none" in record["split_statement"]


def test_a_cards_own_lists_plan_the_same_folds_as_the_file(features, tmp_path):
    path = tmp_path / "lists.json"
    lists = {"DEAP": {"test": ["s01", "s02"], "validation": ["s03"]}, "GAMEEMO": {"test": ["S04"], "validation": []}}
    path.write_text(json.dumps(lists))
    card = holdout_split(lists, "card test-card")
    assert [f.split for f in plan_folds(features, card)] == [f.split for f in plan_folds(features, f"holdout:{path}")]
    assert split_record(card, features, [])["split_file"]["content"] == json.dumps(lists, sort_keys=True, indent=2)
    with pytest.raises(ConfigError, match="card test-card: DEAP.test: subject.*s09 not in the data; DEAP has s01"):
        plan_folds(features, holdout_split({**lists, "DEAP": {"test": ["s09"], "validation": []}}, "card test-card"))


@pytest.mark.parametrize("name, text, message", [
    ("lists.yaml", "SEDD:\n  test: [1]\n  validation: []\n", r"lists.yaml: key 'SEDD': unknown dataset 'SEDD'"),
    ("lists.yaml", "DEAP:\n  test: [s01]\n", r"lists.yaml: DEAP: expected exactly the keys test and validation"),
    ("lists.yaml", "DEAP:\n  test: [s01]\n  validation: [s01, s02]\n",
     r"lists.yaml: DEAP: subject\(s\) s01 in both test and validation"),
    ("lists.yaml", "DEAP:\n  test: [s01, s01]\n  validation: []\n",
     r"lists.yaml: DEAP.test: subject\(s\) s01 listed twice"),
    ("lists.yaml", "DEAP:\n  test: s01\n  validation: []\n", r"lists.yaml: DEAP.test: expected a list of subject ids"),
    ("lists.yaml", "DEAP: [s01\n", r"lists.yaml: cannot parse it"),
    ("lists.json", "{'DEAP': 1}", r"lists.json: cannot parse it"),
    ("lists.txt", "DEAP: {}", r"lists.txt: expected a .json, .yaml or .yml file"),
    ("lists.yaml", "[s01]", r"lists.yaml: expected a mapping of dataset names"),
    ("lists.yaml", "\xff", r"lists.yaml: cannot read"),
])
def test_bad_lists_get_one_error_naming_the_file_and_key(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=message):
        split_spec(f"holdout:{path}")


def test_lists_are_checked_against_the_data(features, tmp_path):
    path = tmp_path / "lists.yaml"
    for text, message in [("DEAP:\n  test: [s01]\n  validation: []\n", r"lists.yaml: no key GAMEEMO: expected test "
                                                                         r"and validation subjects for every dataset"),
                          (LISTS.replace("[s03]", "[s3]"),
                           r"lists.yaml: DEAP.validation: subject\(s\) s3 not in the data"),
                          (LISTS.replace("[S04]", "[S01, S02, S03]").replace("validation: []", "validation: [S04]"),
                           r"lists.yaml: GAMEEMO: no subject is left to train on")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            plan_folds(features, f"holdout:{path}")
    path.write_text(LISTS)
    with pytest.raises(ConfigError, match="chooses the subjects it tests itself, so --subjects does not apply"):
        plan_folds(features, f"holdout:{path}", subjects=["s01"])
    with pytest.raises(ConfigError, match="holds out whole subjects: use sessions 'pooled'"):
        plan_folds(features, f"holdout:{path}", sessions="separate")
    with pytest.raises(ConfigError, match=r"expected holdout:FILE, the path of its file"):
        split_spec("holdout")


def test_holdout_runs_end_to_end_is_resumed_only_on_the_same_lists_and_pools_when_asked(synthetic_root, tmp_path):
    lists = tmp_path / "lists.yaml"
    lists.write_text("DEAP:\n  test: [s01, s02]\n  validation: [s03]\n")
    config = tiny_config(synthetic_root, tmp_path, datasets=("DEAP",), num_epochs=1)
    config.save(tmp_path / "config.json")
    out = tmp_path / "out"
    command = ["--config", str(tmp_path / "config.json"), "--output", str(out), "--split", f"holdout:{lists}",
               "--local"]
    assert main(command) == 0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["split_file"]["sha256"] == hashlib.sha256(lists.read_bytes()).hexdigest()
    assert sorted(p.stem for p in (out / "folds").glob("*.json")) == ["DEAP-holdout-seed42-DEAP-s01",
                                                                       "DEAP-holdout-seed42-DEAP-s02"]
    assert pd.read_csv(out / "tables" / "per_subject.csv")["subject"].tolist() == ["s01", "s02"]
    assert not (out / "tables" / "pooled_over_subjects.csv").exists()  # only when the run asks for it
    assert main(command + ["--resume"]) == 0  # the same lists: nothing left to run
    lists.write_text("DEAP:\n  test: [s01, s02]\n  validation: [s04]\n")
    assert main(command + ["--resume"]) == 2  # edited lists: another split, refused

    manifest["pooled_over_subjects"] = True  # what a card asking for the pooled score records
    (out / "run.json").write_text(json.dumps(manifest))
    tables = aggregate(out)
    records = [json.loads(p.read_text()) for p in sorted((out / "folds").glob("*.json"))]
    summed = np.sum([r["test"]["confusion_matrix"] for r in records], axis=0)
    pooled = pd.read_csv(out / "tables" / "pooled_over_subjects.csv").set_index("level")
    assert pooled.loc["window", "accuracy_pooled"] == pytest.approx(scores(summed)["accuracy"])
    assert pooled.loc["window", "macro_f1_pooled"] == pytest.approx(scores(summed)["macro_f1"])
    assert pooled.loc["window", "n_per_seed"] == summed.sum() and pooled.loc["window", "n_subjects"] == 2
    assert len(tables["subjects"]) == 2  # beside the per-subject scores, never instead
    assert "pooled over test subjects" in (out / "tables" / "pooled_over_subjects.md").read_text()


def test_pooled_over_subjects_weighs_items_and_averages_seeds():
    def record(subject, seed, cm):
        return {"fold": {"dataset": "DEAP", "subject": subject, "seed": seed},
                "test": {"confusion_matrix": cm, "trial": {"confusion_matrix": cm}}}

    rows = pooled_over_subjects([record("s01", 0, [[9, 1], [0, 0]]), record("s02", 0, [[0, 0], [0, 2]]),
                                 record("s01", 1, [[5, 5], [0, 0]]), record("s02", 1, [[0, 0], [1, 1]])])
    window = next(r for r in rows if r["level"] == "window")
    # seed 0: 11 of 12 right; seed 1: 6 of 12; the per-subject mean of seed 0 would be (90 + 100) / 2 instead
    assert window["accuracy_pooled"] == pytest.approx((100 * 11 / 12 + 100 * 6 / 12) / 2)
    assert window["n_subjects"] == 2 and window["n_seeds"] == 2 and window["n_per_seed"] == 12
