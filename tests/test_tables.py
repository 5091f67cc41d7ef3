"""What the LOSO tables state (issue 18): tuned subjects kept out of the tests, incomplete runs flagged,
p-value bounds, the whole protocol in PROTOCOL.md, the stimulus confound, the per-subject plot.

Fold files are written by hand (no training) except for one tiny `--local` run, shared by the
end-to-end checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from gru_xnet.config import get_quick_test_config
from gru_xnet.datasets import get_reader, write_synthetic
from gru_xnet.datasets.registry import DATASET_NAMES
from loso.aggregate import aggregate, print_tables
from loso.aggregate import main as aggregate_main
from loso.compare import main as compare_main
from loso.figures import subject_figure
from loso.run import main as run_main
from tests.conftest import tiny_config
from tests.test_reporting import fold_record, predictions, write_run

ACCURACIES = [60, 65, 70, 75]


def deap_records(accuracies=ACCURACIES, seed=0, tuned=()) -> list[dict]:
    records = []
    for i, accuracy in enumerate(accuracies, start=1):
        record = fold_record("DEAP", f"s0{i}", *predictions(accuracy, rng=np.random.default_rng(i)), seed=seed)
        record["tuned_on_test_subject"] = f"DEAP/s0{i}" in tuned
        records.append(record)
    return records


def test_tuned_subjects_stay_out_of_every_test_of_the_dataset(tmp_path):
    # Defect: subjects a config was tuned on counted in the per-dataset mean, CI, Wilcoxon and permutation test.
    tables = aggregate(write_run(tmp_path / "run", deap_records(tuned={"DEAP/s01"}), tuned_on=["DEAP/s01"]))
    window = tables["datasets"].query("level == 'window'").set_index("subjects")
    untuned, everyone = window.loc["untuned"], window.loc["all"]
    assert (untuned["n_subjects"], everyone["n_subjects"]) == (3, 4)
    assert untuned["n_tuned_on"] == everyone["n_tuned_on"] == 1
    others = tables["subjects"].query("subject != 's01'")["balanced_accuracy"]
    assert untuned["balanced_accuracy_mean"] == pytest.approx(others.mean())
    assert np.isfinite(untuned["p_vs_chance"]) and np.isnan(everyone["p_vs_chance"])
    assert untuned["p_vs_chance_holm"] == pytest.approx(untuned["p_vs_chance"])  # the 'all' row is no test
    assert everyone["balanced_accuracy_mean"] == pytest.approx(tables["subjects"]["balanced_accuracy"].mean())
    assert everyone["p_vs_chance_method"].startswith("not tested")
    shown = (tmp_path / "run" / "tables" / "per_dataset.md").read_text()
    assert "tuned on" in shown and "untuned" in shown


def test_a_dataset_tuned_on_every_subject_has_an_empty_untuned_row_and_no_test(tmp_path):
    tuned = {f"DEAP/s0{i}" for i in (1, 2, 3, 4)}
    records = deap_records(tuned=tuned)
    records += [{**r, "variant": k} for r in deap_records(tuned=tuned) for k in (1, 2)]
    datasets = aggregate(write_run(tmp_path / "run", records, tuned_on=sorted(tuned), permutations=2))["datasets"]
    untuned = datasets.query("subjects == 'untuned'")
    assert untuned["n_subjects"].eq(0).all() and untuned["p_vs_chance"].isna().all() and untuned["perm_p"].isna().all()
    assert datasets.query("subjects == 'all'")["n_subjects"].eq(4).all()


def test_without_tuned_subjects_there_is_one_all_row_per_dataset_and_level(tmp_path):
    datasets = aggregate(write_run(tmp_path / "run", deap_records()))["datasets"]
    assert list(datasets["subjects"]) == ["all", "all"] and list(datasets["n_tuned_on"]) == [0, 0]


def test_compare_drops_subjects_tuned_in_either_run(tmp_path, capsys):
    # Defect: comparing an untuned run with one tuned on some subjects counted them silently.
    a = write_run(tmp_path / "a", deap_records([55, 60, 62, 58]))
    b = write_run(tmp_path / "b", deap_records(tuned={"DEAP/s02"}), tuned_on=["DEAP/s02"])
    assert compare_main([str(a), str(b), "--output", str(tmp_path / "cmp")]) == 0
    row = pd.read_csv(tmp_path / "cmp" / "comparison.csv").query("level == 'window'").iloc[0]
    assert row["n_subjects"] == 3 and row["excluded_tuned"] == "s02"
    assert "DEAP/s02 (tuned in b)" in capsys.readouterr().out
    wide = pd.read_csv(tmp_path / "cmp" / "per_subject.csv", keep_default_na=False)
    assert wide.set_index("subject").loc["s02", "tuned_in"].tolist() == ["b", "b"]


def test_a_run_with_missing_results_is_flagged_incomplete(tmp_path, capsys):
    # Defect: run.json did not record the plan and aggregate never compared the fold files with it.
    records = deap_records()[:3]
    out = write_run(tmp_path / "run", records, planned_folds=[f"DEAP-s0{i}-seed0" for i in (1, 2, 3, 4)],
                    permutations=0)
    assert aggregate_main([str(out)]) == 0
    printed = capsys.readouterr().out
    assert "# INCOMPLETE: 3 of 4 fold results; missing: DEAP-s04-seed0" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["missing_results"] == ["DEAP-s04-seed0"]
    assert "INCOMPLETE: 3 of 4" in (out / "tables" / "PROTOCOL.md").read_text()
    assert "INCOMPLETE: 3 of 4" in (out / "tables" / "per_dataset.md").read_text()
    older = write_run(tmp_path / "older", records)  # a run.json without a plan still aggregates
    assert any("plan unknown" in line for line in aggregate(older)["header"])


def test_seed_sd_uses_the_subjects_present_in_every_seed(tmp_path):
    records = deap_records(seed=0) + deap_records([62, 69, 66], seed=1)
    datasets = aggregate(write_run(tmp_path / "run", records, seeds=(0, 1)))["datasets"]
    folds = pd.read_csv(tmp_path / "run" / "tables" / "per_fold.csv").query("level == 'window'")
    shared = folds[folds["subject"] != "s04"].groupby("seed")["balanced_accuracy"].mean()
    assert datasets.query("level == 'window'")["seed_sd"].iloc[0] == pytest.approx(shared.std(ddof=1))


def test_confusion_caption_gives_the_true_counts_per_seed(tmp_path, capsys):
    # Defect: "2 seeds x 220 windows = 440" for 240 + 200 windows.
    records = deap_records(seed=0) + deap_records([62, 69, 66], seed=1)
    print_tables(aggregate(write_run(tmp_path / "run", records, seeds=(0, 1))))
    assert "n = 280 windows (seed 0: 160, seed 1: 120)" in capsys.readouterr().out


def test_small_n_bounds_count_the_tested_subjects_and_holm(tmp_path):
    # Defect: the warning counted one-class subjects that the test against chance leaves out.
    records = deap_records()
    records.append(fold_record("DEAP", "s05", np.ones(40, int), np.ones(40, int)))
    records += [fold_record("SEEDIV", f"{i}", *predictions(70)) for i in (1, 2, 3, 4, 5, 6)]
    records += [{**r, "variant": k} for r in records for k in range(1, 20)]
    header = aggregate(write_run(tmp_path / "run", records, permutations=19))["header"]
    text = "\n".join(header)
    assert "DEAP: 4 subjects in the test against chance: the smallest reachable one-sided Wilcoxon p is 0.0625 " \
           "(0.125 after Holm over 2 dataset(s)); too few subjects" in text
    assert "smallest reachable 0.05 with 19 replicates (0.1 after Holm over 2 dataset(s))" in text
    assert "per-subject permutation p-values are uncorrected" in text


def test_all_differences_zero_report_p_1_and_count_in_holm(tmp_path):
    # Defect: every subject exactly at chance showed "--" and Holm dropped the test.
    records = [fold_record("DEAP", f"s0{i}", np.r_[np.zeros(20, int), np.ones(20, int)], np.zeros(40, int))
               for i in (1, 2, 3, 4)]
    row = aggregate(write_run(tmp_path / "run", records))["datasets"].query("level == 'window'").iloc[0]
    assert row["p_vs_chance"] == 1.0 and row["p_vs_chance_holm"] == 1.0


def test_lowering_permutations_on_resume_aggregates_only_the_current_replicates(tmp_path):
    records = deap_records()
    records += [{**r, "variant": k} for r in deap_records([50, 52, 49, 51]) for k in (1, 2, 3)]
    datasets = aggregate(write_run(tmp_path / "run", records, permutations=2))["datasets"]
    assert datasets["n_permutations"].eq(2).all()


def test_every_reader_states_its_stimulus_confound(tmp_path):
    write_synthetic(tmp_path, list(DATASET_NAMES), 1, trials=4, seconds=4.0)
    for name in DATASET_NAMES:
        statement = get_reader(name, tmp_path / name).stimulus_statement()
        assert statement.startswith("STIMULI:") and "does not hold out the stimulus" in statement
    gameemo = get_reader("GAMEEMO", tmp_path / "GAMEEMO").stimulus_statement()
    assert "0/25/50/75/100 %" in gameemo and "only 6 distinct labellings" in gameemo


def test_per_subject_plot_labels_one_class_subjects_and_uses_each_subjects_chance(tmp_path):
    # Defect: a one-class subject was an empty unlabelled bar, and 1/K came from the global class count.
    records = deap_records(tuned={"DEAP/s02"}) + [fold_record("DEAP", "s05", np.ones(40, int), np.ones(40, int))]
    aggregate(write_run(tmp_path / "run", records, tuned_on=["DEAP/s02"]))
    subjects = pd.read_csv(tmp_path / "run" / "tables" / "per_subject.csv")
    subjects = subjects.rename(columns={"hyperparameters_tuned_on_subject": "tuned"})
    figure = subject_figure(subjects)
    ax = figure.axes[0]
    assert any("1 class" in text.get_text() for text in ax.texts)
    chance = next(line for line in ax.lines if "chance" in line.get_label())
    assert np.isnan(chance.get_ydata()[-1]) and np.allclose(chance.get_ydata()[:-1], 50.0)
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["s01", "s02*"]
    plt.close(figure)


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory) -> Path:
    """A real `--local` LOSO on 4 synthetic DEAP subjects whose config says it was tuned on DEAP/s01."""
    tmp = tmp_path_factory.mktemp("tuned")
    write_synthetic(tmp / "data", ["DEAP"], 4, trials=6, seconds=12.0)
    config = tiny_config(tmp / "data", tmp, num_epochs=1)
    config.tuned_on = ["DEAP/s01"]
    config.save(tmp / "config.json")
    assert run_main(["--config", str(tmp / "config.json"), "--output", str(tmp / "run"), "--local"]) == 0
    return tmp / "run"


def test_a_config_tuned_on_one_of_four_subjects_gives_an_untuned_row_of_three(tuned_run):
    datasets = pd.read_csv(tuned_run / "tables" / "per_dataset.csv")
    row = datasets.query("level == 'window' and subjects == 'untuned'").iloc[0]
    assert row["dataset"] == "DEAP" and row["n_subjects"] == 3 and row["n_tuned_on"] == 1


def test_protocol_md_holds_the_methods_section(tuned_run):
    protocol = (tuned_run / "tables" / "PROTOCOL.md").read_text()
    for section in ("## Data", "## Split", "## Training", "## Statistics", "## Provenance", "## Columns"):
        assert section in protocol
    config = get_quick_test_config()
    for fact in ("Windows: 4 s, overlap 0", "0.5 s frames every 0.125 s", "Filters (zero-phase", "DEAP: none",
                 "STIMULI: every DEAP subject watched the same 40 music videos", "Validation (early stopping only)",
                 "trainable parameters", "Adam, learning rate", f"patience {config.training.patience}",
                 "balanced sampling", "fitted on the fold's training windows only", "autocast",
                 "Student t interval", "Folds are not independent", "git_commit", "Hyper-parameters tuned on: DEAP/s01"):
        assert fact in protocol, fact
    caption = (tuned_run / "tables" / "per_subject.md").read_text()
    assert "STIMULI: every DEAP subject" in caption


def test_every_csv_and_the_summary_say_synthetic(tuned_run):
    for path in sorted((tuned_run / "tables").glob("*.csv")):
        assert pd.read_csv(path)["synthetic"].all(), path.name
    summary = json.loads((tuned_run / "summary.json").read_text())
    assert summary["synthetic"] is True and summary["complete"] is True


def test_deleting_a_fold_file_makes_aggregate_flag_the_run(tuned_run, capsys, tmp_path):
    copy = tmp_path / "copy"
    (copy / "folds").mkdir(parents=True)
    (copy / "run.json").write_text((tuned_run / "run.json").read_text())
    kept = sorted((tuned_run / "folds").glob("*.json"))[1:]
    for path in kept:
        (copy / "folds" / path.name).write_text(path.read_text())
    assert aggregate_main([str(copy)]) == 0
    assert "INCOMPLETE: 3 of 4 fold results; missing: DEAP-s01-seed42" in capsys.readouterr().out
