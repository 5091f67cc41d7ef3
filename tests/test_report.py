"""report.html: calibration numbers checked by hand, every section of a real run's page in headless Chromium with
nothing fetched from outside, margin models said to give no probabilities, the page's size at 45 folds; a benchmark's
comparison/report.html: its numbers are the comparison tables', it links each run's page, Chromium shows it."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gru_xnet.metrics import calibration
from loso.aggregate import aggregate
from loso.benchmark import main as benchmark_main
from loso.comparison_report import COMPARISON_SECTIONS
from loso.moabb import COLUMNS
from loso.report import SECTIONS, _fmt, _fmt_p
from loso.run import main
from tests.conftest import tiny_config
from tests.test_reporting import fold_record, predictions, write_run

pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_report", REPO / "scripts" / "check_report.py")
check_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_report)


def test_ece_is_zero_when_confidence_equals_the_hit_rate_and_as_computed_by_hand_otherwise():
    y = np.array([0] * 8 + [1] * 2)
    assert calibration(y, np.tile([0.8, 0.2], (10, 1)))["ece"] == 0.0  # 10 at 0.8 confidence, exactly 8 right
    # bins of width 1/15: 0.9 (2 items, 1 right) and 0.6 (2 items, both right): 2/4 |0.5 - 0.9| + 2/4 |1 - 0.6| = 0.4
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    result = calibration(np.array([0, 1, 1, 1]), p)
    assert result["ece"] == pytest.approx(0.4)
    assert result["brier"] == pytest.approx((0.02 + 1.62 + 0.32 + 0.32) / 4)
    assert result["nll"] == pytest.approx(-(np.log(0.9) + np.log(0.1) + 2 * np.log(0.6)) / 4)
    assert calibration(np.array([0]), np.array([[0.0, 1.0]]))["nll"] == pytest.approx(-np.log(1e-5))  # clipped


@pytest.fixture(scope="module")
def real_run(synthetic_root, tmp_path_factory) -> Path:
    """A tiny `--local` LOSO with one permutation: every section of the page has something to show."""
    tmp = tmp_path_factory.mktemp("report")
    tiny_config(synthetic_root, tmp, num_epochs=2).save(tmp / "config.json")
    assert main(["--config", str(tmp / "config.json"), "--output", str(tmp / "run"), "--local",
                 "--permutations", "1", "--subjects", "s01", "s02"]) == 0
    return tmp / "run"


def test_the_page_holds_every_section_in_order_and_fetches_nothing(real_run):
    html = (real_run / "report.html").read_text()
    positions = [html.find(f'<section id="{section}">') for section in SECTIONS]
    assert -1 not in positions and positions == sorted(positions)
    assert check_report.external_references(html) == []
    assert "<script" not in html and "SYNTHETIC DATA" in html
    assert json.loads((real_run / "run.json").read_text())["command"][:3] == ["python", "-m", "loso.run"]
    subjects = pd.read_csv(real_run / "tables" / "per_subject.csv")
    assert subjects[["ece", "brier", "nll", "trial_ece"]].notna().all().all()
    assert (subjects["ece"].between(0, 1)).all() and (subjects["brier"] >= 0).all()
    datasets = pd.read_csv(real_run / "tables" / "per_dataset.csv")
    assert datasets["ece_mean"].notna().all()


def needs_chromium() -> None:
    if check_report.chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and no chromium on PATH: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no chromium on PATH")


def test_headless_chromium_shows_every_section_and_decodes_every_image(real_run):
    needs_chromium()
    seen = check_report.browser_check(real_run / "report.html")
    assert seen["sections"] == list(SECTIONS)
    assert seen["images"] == 4 and seen["decoded"] == 4  # subjects, learning curves, reliability, null
    assert seen["scroll_width"] <= 1280


def test_a_margin_model_says_it_gives_no_probabilities(tmp_path):
    records = [fold_record("DEAP", f"s0{i}", *predictions(80, rng=np.random.default_rng(i))) for i in (1, 2)]
    for record in records:
        record["model"] = {"name": "de_svm", "decision": "margin"}
        record["predictions"]["probabilities"] = [[0.6, 0.4]] * len(record["predictions"]["y_true"])
    out = write_run(tmp_path / "run", records, model={"name": "de_svm", "decision": "margin", "params": {}},
                    model_kind="scikit-learn", model_input="de_svm on de windows", model_summary="linear SVM")
    tables = aggregate(out)
    assert tables["subjects"]["ece"].isna().all()
    assert "de_svm decides by its margins: its class scores are not probabilities" in (out / "report.html").read_text()


def test_the_page_of_45_folds_stays_under_5_mb(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for i in range(45):
        record = fold_record("DEAP", f"s{i + 1:02d}", *predictions(70, n=80, rng=rng))
        record["predictions"]["probabilities"] = rng.dirichlet([2, 2], size=80).tolist()
        record["history"] = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e} for e in range(1, 31)]
        record["best_epoch"] = 30
        records.append(record)
    out = write_run(tmp_path / "run", records)
    aggregate(out)
    assert (out / "report.html").stat().st_size <= 5 * 2 ** 20
    assert "the first 30 of 45 fold results" in (out / "report.html").read_text()


def test_moabb_results_have_its_columns_and_types_one_row_per_subject_and_session(real_run):
    # MOABB's Results.to_dataframe (moabb/analysis/results.py, commit 1d8a6382): float score, time, samples (lines
    # 135, 164-166), str subject and session (229-230), int channels and n_sessions (231-232), dataset, pipeline
    table = pd.read_csv(real_run / "tables" / "moabb_results.csv", dtype={"subject": str, "session": str})
    assert list(table.columns) == ["score", "time", "samples", "subject", "session", "channels", "n_sessions",
                                   "dataset", "pipeline", "seed_sd", "synthetic"] == [*COLUMNS, "seed_sd", "synthetic"]
    assert [table[c].dtype.kind for c in COLUMNS] == ["f", "f", "f", "O", "O", "i", "i", "O", "O"]
    assert table[["subject", "session"]].values.tolist() == [["s01", "all"], ["s02", "all"]]
    subjects = pd.read_csv(real_run / "tables" / "per_subject.csv")
    np.testing.assert_allclose(table["score"], subjects["balanced_accuracy"] / 100)
    assert (table["channels"] == 32).all() and (table["pipeline"] == "gru_xnet").all() and (table["time"] > 0).all()


@pytest.fixture(scope="module")
def benchmark_run(synthetic_root, tmp_path_factory) -> tuple[Path, list[Path], bool]:
    """`loso.benchmark --models de_logreg eegnet`, 2 subjects, 1 epoch, `--local`: first with `--no-report`, then
    `--resume` writes the pages; the folder, the pages the first call left, whether the fold files stayed as they
    were."""
    tmp = tmp_path_factory.mktemp("benchmark")
    tiny_config(synthetic_root, tmp, num_epochs=1).save(tmp / "config.json")
    args = ["--config", str(tmp / "config.json"), "--models", "de_logreg", "eegnet", "--subjects", "s01", "s02",
            "--local", "--output", str(tmp / "bench")]
    assert benchmark_main([*args, "--no-report"]) == 0
    pages = sorted((tmp / "bench").rglob("*.html"))
    folds = {p: p.stat().st_mtime_ns for p in (tmp / "bench").glob("*/folds/*.json")}
    assert benchmark_main([*args, "--resume"]) == 0
    again = {p: p.stat().st_mtime_ns for p in (tmp / "bench").glob("*/folds/*.json")}
    return tmp / "bench", pages, bool(folds) and folds == again


@pytest.mark.ray
def test_benchmark_on_ray_serves_every_model_from_one_queue_with_the_local_predictions(ray_session, benchmark_run,
                                                                                       tmp_path):
    """The same benchmark as `benchmark_run` on Ray: the scikit-learn and the torch model's fold jobs go through one
    queue, model-major, on the same runners; every fold predicts what `--local` predicted; `--resume` reruns only
    the results deleted, of each model, on one runner that fits the one and trains the other."""
    local = benchmark_run[0]
    out = tmp_path / "bench"
    args = ["--config", str(local.parent / "config.json"), "--models", "de_logreg", "eegnet", "--subjects", "s01",
            "s02", "--output", str(out), "--no-report"]
    assert benchmark_main(args) == 0
    records = {m: [json.loads(p.read_text()) for p in sorted((out / m / "folds").glob("*.json"))]
               for m in ("de_logreg", "eegnet")}
    assert {r["runner"] for rs in records.values() for r in rs} <= {"bench-runner0", "bench-runner1"}
    assert max(r["started_at"] for r in records["de_logreg"]) <= min(r["started_at"] for r in records["eegnet"])
    for model, rs in records.items():
        assert [r["predictions"] for r in rs] == [json.loads(p.read_text())["predictions"]
                                                  for p in sorted((local / model / "folds").glob("*.json"))], model
        assert (out / model / "tables" / "per_dataset.csv").is_file()
    assert (out / "comparison" / "pairwise.csv").is_file()

    kept = {p: p.stat().st_mtime_ns for p in out.glob("*/folds/*.json")}
    deleted = [out / "de_logreg" / "folds" / "DEAP-s02-seed42.json", out / "eegnet" / "folds" / "DEAP-s01-seed42.json"]
    for path in deleted:
        path.unlink()
        kept.pop(path)
    assert benchmark_main([*args, "--resume", "--max-concurrent-folds", "1"]) == 0
    assert {json.loads(path.read_text())["runner"] for path in deleted} == {"bench-runner0"}  # one runner, both kinds
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/folds/*.json") if p not in deleted} == kept


def test_the_benchmark_page_shows_the_comparison_tables_and_links_each_runs_page(benchmark_run):
    out, pages_without_report, nothing_trained_again = benchmark_run
    assert pages_without_report == [] and nothing_trained_again
    page = out / "comparison" / "report.html"
    html = page.read_text()
    positions = [html.find(f'<section id="{section}">') for section in COMPARISON_SECTIONS if section != "published"]
    assert -1 not in positions and positions == sorted(positions) and '<section id="published">' not in html
    assert "<script" not in html and "SYNTHETIC DATA" in html
    links = check_report.external_references(html)
    assert links == ["../de_logreg/report.html", "../eegnet/report.html"]
    assert all((page.parent / link).resolve() == out / link[3:] and (out / link[3:]).is_file() for link in links)
    for row in pd.read_csv(out / "comparison" / "comparison.csv").itertuples():  # the heat-map's numbers
        assert (f"{row.balanced_accuracy_mean:.1f} [{row.balanced_accuracy_ci_low:.1f}, "
                f"{row.balanced_accuracy_ci_high:.1f}]; acc. {row.accuracy_mean:.1f}") in html
    pairs = pd.read_csv(out / "comparison" / "pairwise.csv")
    assert len(pairs) == 2  # de_logreg vs eegnet, window and trial level
    for row in pairs.itertuples():
        assert (f"<td>{_fmt(row.mean_difference)} [{_fmt(row.difference_ci_low)}, {_fmt(row.difference_ci_high)}]"
                f"</td><td>{_fmt_p(row.p_wilcoxon)} ({_fmt_p(row.p_holm)})</td>") in html


def test_headless_chromium_shows_the_benchmark_page_and_decodes_its_figures(benchmark_run):
    needs_chromium()
    seen = check_report.browser_check(benchmark_run[0] / "comparison" / "report.html")
    assert seen["sections"] == [s for s in COMPARISON_SECTIONS if s != "published"]
    assert seen["images"] == 2 and seen["decoded"] == 2  # the heat-map, the per-subject lines
    assert seen["scroll_width"] <= 1280
