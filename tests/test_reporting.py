"""Paper tables from fold files (no training): subjects as the unit, plain CSVs, one-class subjects,
baselines, trial-level scores, statistics and run comparison refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gru_xnet.metrics import average_ranks, baselines, level_scores, macro_auc, scores, trial_probabilities
from loso.aggregate import aggregate, print_tables
from loso.compare import main as compare_main
from loso.stats import holm, mean_ci, permutation_p, signed_rank

CLASSES = {"SEEDIV": ["negative", "non-negative"], "DEAP": ["low valence", "high valence"]}


def fold_record(dataset: str, subject: str, y_true, y_pred, *, session=None, seed=0, variant=0,
                train_counts=(60, 40), windows_per_trial=4) -> dict:
    """A fold file as loso.run writes it, with scores computed by the library from these predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    probs = np.where(np.eye(2, dtype=bool)[y_pred], 0.8, 0.2)
    trials = np.arange(len(y_true)) // windows_per_trial + 1
    sessions = np.full(len(y_true), 1 if session is None else session)
    test = level_scores(y_true, probs, 2, list(train_counts))
    per_trial = trial_probabilities(np.stack([sessions, trials], 1), y_true, probs)
    test["trial"] = level_scores(per_trial.labels, per_trial.probabilities, 2, [c // windows_per_trial for c in train_counts])
    test["training_class_counts"] = {"windows": list(train_counts),
                                     "trials": [c // windows_per_trial for c in train_counts]}
    fold_id = f"{dataset}-{subject}{'' if session is None else f'-session{session}'}-seed{seed}"
    return {"fold": {"fold_id": fold_id, "dataset": dataset, "subject": subject, "session": session, "seed": seed},
            "variant": variant, "test": test,
            "predictions": {"session": sessions.tolist(), "trial": trials.tolist(), "y_true": y_true.tolist()}}


def write_run(out: Path, records: list[dict], seeds=(0,), protocol="within", sessions="pooled", **manifest) -> Path:
    datasets = list(dict.fromkeys(r["fold"]["dataset"] for r in records))
    (out / "folds").mkdir(parents=True)
    (out / "permutations").mkdir()
    (out / "run.json").write_text(json.dumps({
        "protocol": protocol, "seediv_sessions": sessions, "datasets": datasets, "seeds": list(seeds),
        "labels": {d: f"{d} labels" for d in datasets}, "config_hash": "abc", "channels": ["FZ"],
        "n_classes": 2, "class_names": {d: CLASSES[d] for d in datasets}, "synthetic": True,
        "provenance": {"torch": "x"}, **manifest}))
    for r in records:
        folder = "folds" if r["variant"] == 0 else "permutations"
        name = r["fold"]["fold_id"] + ("" if r["variant"] == 0 else f"-perm{r['variant']:03d}")
        (out / folder / f"{name}.json").write_text(json.dumps(r))
    return out


def predictions(accuracy: float, n: int = 40, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels and predictions with about `accuracy` (%) correct."""
    y = np.arange(n) // (n // 2)
    wrong = (rng or np.random.default_rng(0)).random(n) > accuracy / 100
    return y, np.where(wrong, 1 - y, y)


@pytest.fixture
def sessions_run(tmp_path) -> tuple[Path, dict]:
    """5 SEED-IV subjects x 3 separate sessions x 2 seeds, each session-fold with its own accuracy."""
    rng = np.random.default_rng(1)
    records, truth = [], {}
    for s, base in enumerate([52, 58, 61, 66, 71], start=1):
        for seed in (0, 1):
            for session in (1, 2, 3):
                y, p = predictions(base + rng.normal(0, 4), rng=rng)
                records.append(fold_record("SEEDIV", str(s), y, p, session=session, seed=seed))
                truth.setdefault(str(s), []).append(records[-1]["test"]["balanced_accuracy"])
    return write_run(tmp_path / "run", records, seeds=(0, 1), sessions="separate"), truth


def test_tests_and_means_are_over_subjects_not_sessions_or_seeds(sessions_run):
    # Defect: each SEED-IV subject counted 3 times (sessions) in the Wilcoxon test.
    out, truth = sessions_run
    tables = aggregate(out)
    subjects = tables["subjects"]
    assert len(subjects) == 5 and subjects["n_sessions"].eq(3).all() and subjects["n_seeds"].eq(2).all()
    means = np.array([np.mean(truth[s]) for s in subjects["subject"]])
    np.testing.assert_allclose(subjects["balanced_accuracy"], means)
    row = tables["datasets"].query("level == 'window'").iloc[0]
    assert row["n_subjects"] == 5
    expected = stats.wilcoxon(means - 50.0, alternative="greater", zero_method="zsplit").pvalue
    assert row["p_vs_chance"] == pytest.approx(expected)
    assert row["balanced_accuracy_mean"] == pytest.approx(means.mean())
    assert row["balanced_accuracy_sd"] == pytest.approx(np.std(means, ddof=1))
    assert len(pd.read_csv(out / "tables" / "per_fold.csv").query("level == 'window'")) == 30


def test_every_csv_reads_with_pandas_defaults(sessions_run):
    # Defect: tables/*.csv opened with '#' protocol lines.
    out, _ = sessions_run
    aggregate(out)
    for path in sorted(p for p in (out / "tables").glob("*.csv") if p.name != "moabb_results.csv"):  # MOABB's order
        assert not path.read_text().startswith("#")
        table = pd.read_csv(path)
        assert table.columns[0] == "dataset" and len(table) > 0 and not table.columns.str.startswith("#").any()
    protocol = (out / "tables" / "PROTOCOL.md").read_text()
    assert "sessions 'separate' (SEEDIV: 3 sessions)" in protocol and "SYNTHETIC DATA" in protocol and "bootstrap" in protocol
    for suffix in (".md", ".tex"):  # the protocol stays the caption of the formatted tables
        assert "sessions 'separate' (SEEDIV: 3 sessions)" in (out / "tables" / f"per_dataset{suffix}").read_text()
    assert r"\caption{" in (out / "tables" / "per_subject.tex").read_text()
    summary = json.loads((out / "summary.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    assert summary["per_dataset"][0]["n_subjects"] == 5 and summary["provenance"] == {"torch": "x"}


def test_one_class_subjects_are_flagged_and_kept_out_of_tests_against_chance(tmp_path):
    # Defect: a constant predictor scored 100 % balanced accuracy on a subject whose test set is one class.
    records = [fold_record("DEAP", f"s0{i}", *predictions(acc)) for i, acc in enumerate([60, 65, 70, 75], start=1)]
    records.append(fold_record("DEAP", "s05", np.ones(40, int), np.ones(40, int)))
    tables = aggregate(write_run(tmp_path / "run", records))
    subjects = tables["subjects"].set_index("subject")
    assert subjects.loc["s05", "single_class"] and np.isnan(subjects.loc["s05", "balanced_accuracy"])
    assert (subjects.loc["s05", "n_class0"], subjects.loc["s05", "n_class1"]) == (0, 40)
    assert subjects.loc["s05", "accuracy"] == 100.0 and subjects.loc["s05", "majority_accuracy"] == 0.0
    assert not subjects.drop("s05")["single_class"].any()
    assert (subjects.drop("s05")[["n_class0", "n_class1"]] == 20).all().all()
    row = tables["datasets"].query("level == 'window'").iloc[0]
    assert row["n_subjects"] == 5 and row["n_single_class"] == 1
    others = subjects.drop("s05")["balanced_accuracy"].to_numpy()
    assert row["balanced_accuracy_mean"] == pytest.approx(others.mean())
    assert row["p_vs_chance"] == pytest.approx(stats.wilcoxon(others - 50, alternative="greater",
                                                              zero_method="zsplit").pvalue)
    assert any("one class only (DEAP/s05)" in line and "excluded" in line for line in tables["header"])


def test_baselines_sit_beside_every_score(tmp_path):
    # Test subject: 32 windows (8 trials) of class 0, 8 (2 trials) of class 1; the training pool's majority is 1.
    y = np.r_[np.zeros(32, int), np.ones(8, int)]
    record = fold_record("DEAP", "s01", y, y, train_counts=(40, 60))
    row = aggregate(write_run(tmp_path / "run", [record, fold_record("DEAP", "s02", *predictions(70))]))["subjects"]
    s01 = row.set_index("subject").loc["s01"]
    assert s01["majority_accuracy"] == pytest.approx(20.0)  # predicting class 1 for everyone
    assert s01["prior_accuracy"] == pytest.approx(100 * (0.4 * 0.8 + 0.6 * 0.2))
    assert s01["chance_balanced_accuracy"] == 50.0 and s01["trial_majority_accuracy"] == pytest.approx(20.0)
    assert (s01["accuracy"], s01["trial_accuracy"], s01["n_trials"]) == (100.0, 100.0, 10)


def test_a_subject_predicted_as_one_class_is_flagged_not_left_as_a_chance_number(tmp_path, capsys):
    y = np.arange(40) // 20
    collapsed = fold_record("DEAP", "s01", y, np.ones(40, int))  # every window 'high valence': 50.0 by construction
    assert collapsed["test"]["one_class_predicted"] == 1 and collapsed["test"]["trial"]["one_class_predicted"] == 1
    healthy = fold_record("DEAP", "s02", *predictions(70))
    assert healthy["test"]["one_class_predicted"] is None
    one_class_test_set = level_scores(np.zeros(8, int), np.tile([0.8, 0.2], (8, 1)), 2, [5, 5])
    assert one_class_test_set["one_class_predicted"] is None  # one class shown and predicted: no collapse to report
    tables = aggregate(write_run(tmp_path / "run", [collapsed, healthy]))
    flags = tables["subjects"].set_index("subject")["one_class_predicted"]
    assert flags.to_dict() == {"s01": True, "s02": False}
    print_tables(tables)
    printed = capsys.readouterr().out
    assert "50.0 *" in printed and "predicted one class for every test window" in printed and "DEAP/s01" in printed


def test_the_printout_fits_120_columns_and_names_methods_in_footnotes(tmp_path, capsys):
    # Defect: a ~240-column per-dataset table (headers to 472) whose method columns ran together
    # ("t exact (every sign flip)"). Every option that widens the view: 2 seeds (seed SDs), permutations,
    # tuned subjects (untuned/all rows), a one-class test set, a collapsed model, three Wilcoxon methods.
    rng = np.random.default_rng(0)
    records = []
    for seed in (0, 1):
        records += [fold_record("DEAP", f"s0{i}", *predictions(acc, rng=rng), seed=seed)
                    for i, acc in enumerate([60, 65, 70, 75, 80], start=1)]
        records.append(fold_record("DEAP", "s06", np.ones(40, int), np.ones(40, int), seed=seed))
        records.append(fold_record("DEAP", "s07", np.arange(40) // 20, np.ones(40, int), seed=seed))
        records += [fold_record("SEEDIV", str(s), *predictions(70, rng=rng), seed=seed) for s in range(1, 6)]
    for record in records:
        record["tuned_on_test_subject"] = record["fold"]["subject"] in ("s01", "1")
    records += [{**r, "variant": k} for r in records for k in (1, 2, 3)]
    out = write_run(tmp_path / "run", records, seeds=(0, 1), permutations=3)
    print_tables(aggregate(out))
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 120, max(lines, key=len)
    start = lines.index("Per dataset (over subjects):")
    notes = [line for line in lines[start:] if line.startswith("[")]
    assert notes == ["[1] 95% CI: t; Wilcoxon p: exact (every sign flip)",
                     "[2] 95% CI: t; Wilcoxon p: not tested (includes tuned subjects)", "[3] 95% CI: t; Wilcoxon p: exact"]
    methods = [line for line in lines if "exact" in line or "not tested" in line]
    assert methods == notes  # no method name inside a table row
    for label in ("window level", "trial level", "balanced accuracy vs chance", "accuracy vs majority baseline"):
        assert any(f" {label} " in line and line.lstrip().startswith("-") for line in lines), label
    assert any(line.split()[:3] == ["DEAP", "s07", "40"] and "50.0 *" in line for line in lines)
    assert any(line.split()[:2] == ["DEAP", "s06"] and "-- (1 class)" in line for line in lines)
    markdown = (out / "tables" / "per_dataset.md").read_text()  # the files keep the wide view
    assert "| Wilcoxon p method" in markdown and "| exact (every sign flip)" in markdown


def test_pooled_confusion_matrices_say_how_many_seeds_they_sum(sessions_run, capsys):
    out, _ = sessions_run
    print_tables(aggregate(out))
    saved = json.loads((out / "tables" / "confusion_matrices.json").read_text())
    assert saved["n_seeds"] == 2 and "the test items of every seed" in saved["summed_over"]
    assert np.sum(saved["window"]["SEEDIV"]) == 5 * 3 * 2 * 40
    assert saved["n_per_seed"]["window"]["SEEDIV"] == {"0": 600, "1": 600}
    assert "n = 1200 windows (seed 0: 600, seed 1: 600)" in capsys.readouterr().out


def test_trial_scores_average_window_probabilities():
    keys = np.array([[1, 1], [1, 1], [1, 1], [1, 2], [1, 2]])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    trials, labels, mean, n_windows = trial_probabilities(keys, np.array([0, 0, 0, 1, 1]), probs)
    assert trials.tolist() == [[1, 1], [1, 2]] and labels.tolist() == [0, 1] and n_windows.tolist() == [3, 2]
    np.testing.assert_allclose(mean, [[17 / 30, 13 / 30], [0.45, 0.55]])  # both trials right, 2 of 5 windows wrong
    with pytest.raises(ValueError, match="labels must be per trial"):
        trial_probabilities(keys, np.array([0, 1, 0, 1, 1]), probs)


def test_kappa_auc_and_baseline_definitions():
    cm = np.array([[20, 5], [10, 15]])
    po, pe = 35 / 50, (25 * 30 + 25 * 20) / 50 ** 2
    assert scores(cm)["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert np.isnan(scores(np.array([[0, 0], [3, 7]]))["balanced_accuracy"])
    y = np.array([0, 0, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.6, 0.8, 0.3])
    pairs = [(a > b) + 0.5 * (a == b) for a in p1[y == 1] for b in p1[y == 0]]
    assert macro_auc(y, np.stack([1 - p1, p1], 1)) == pytest.approx(np.mean(pairs))
    rng = np.random.default_rng(0)
    for values in (p1, rng.random(50), rng.integers(0, 4, 50).astype(float), np.array([0.5]), np.zeros(0)):
        assert np.array_equal(average_ranks(values), stats.rankdata(values))  # ties share their mean rank
    assert baselines([10, 30], [5, 5]) == {"majority_class": 1, "majority_accuracy": 50.0,
                                           "prior_accuracy": 50.0, "chance_balanced_accuracy": 50.0}


def test_statistics_helpers():
    assert holm([0.01, 0.04, np.nan, 0.03]).round(4).tolist()[:2] == [0.03, 0.06]
    assert np.isnan(holm([np.nan])[0])
    p, r, _ = signed_rank([5, 6, 7, 8, 9])
    assert p == pytest.approx(1 / 32) and r == 1.0
    assert signed_rank([1, -1, 2, -2])[1] == pytest.approx(0.0)
    low, high, method = mean_ci([50, 60, 70, 80])
    assert low < 65 < high and method == "t" and mean_ci([50, 60, 70, 80]) == (low, high, method)
    assert permutation_p(0.9, [0.5] * 19) == 0.05 and permutation_p(0.5, [0.5] * 19) == 1.0


def test_compare_refuses_runs_that_cannot_be_paired(tmp_path, caplog):
    a = write_run(tmp_path / "a", [fold_record("DEAP", f"s0{i}", *predictions(60)) for i in (1, 2)])
    b = write_run(tmp_path / "b", [fold_record("DEAP", f"s0{i}", *predictions(60)) for i in (1, 2)], protocol="joint")
    c = write_run(tmp_path / "c", [fold_record("DEAP", f"s0{i}", *predictions(60)) for i in (1, 3)])
    flipped = fold_record("DEAP", "s02", *predictions(60))
    flipped["predictions"]["y_true"] = flipped["predictions"]["y_true"][::-1]
    d = write_run(tmp_path / "d", [fold_record("DEAP", "s01", *predictions(60)), flipped])
    e = write_run(tmp_path / "e", [fold_record("DEAP", f"s0{i}", *predictions(60)) for i in (1, 2)],
                  split="leave-stimulus-out:2")
    for other, message in ((b, "their protocol differs ('joint' vs 'within')"),
                           (e, "their split differs ('leave-stimulus-out:2' vs 'loso')"),
                           (c, "different subjects (only in one: DEAP/s02, DEAP/s03)"),
                           (d, "the test labels of DEAP/s02 differ")):
        assert compare_main([str(a), str(other), "--output", str(tmp_path / "cmp")]) == 2
        assert message in caplog.text
        caplog.clear()
