"""A card's published table beside ours, cell by cell: `comparison/published.{csv,md,tex}` of `loso.benchmark --card`.

One row per published (dataset, task, model) of the datasets asked, cells not run saying so: the published value
(+- SD) of each of the card's metrics, ours under the card's metric definitions and aggregation (+- SD), the
difference, and the columns this project leads with (balanced accuracy with its 95 % CI, p against chance and
against the majority baseline, Holm-corrected over the rows of the table). The trivial row is computed from the
folds of a model run on the same (dataset, task): the same subjects, labels and training sides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from gru_xnet.features import SubjectKey
from gru_xnet.metrics import confusion_matrix, scores
from loso.cards import TRIVIAL, TRIVIAL_RULES, Card
from loso.outputs import load_results
from loso.stats import holm
from loso.tables import write_table

if TYPE_CHECKING:
    import pandas as pd

HONEST = ("balanced_accuracy_mean", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high", "chance_balanced_accuracy",
          "p_vs_chance", "p_vs_majority")
"""The columns of a run's per_dataset table (window level, every subject) shown beside the card's metrics."""


def _level(record: dict, level: str) -> dict:
    return record["test"] if level == "window" else record["test"]["trial"]


def model_scores(record: dict, card: Card, n_classes: int) -> dict[str, float]:
    """One fold record's card metrics (%), from its confusion matrix at the card's level."""
    computed = scores(np.asarray(_level(record, card.level)["confusion_matrix"]))
    return {m.name: computed[m.score_for(n_classes)] for m in card.metrics}


def trivial_scores(record: dict, card: Card, n_classes: int) -> dict[str, float]:
    """One fold record's trivial scores (%) at the card's level: per the card's rules, the training side's majority
    class for every test item, or a class drawn per item from the training side's class frequencies (seeded by the
    card's seed, the subject and the fold's seed)."""
    fold, predictions = record["fold"], record["predictions"]
    y_true = np.asarray(predictions["y_true"], dtype=np.int64)
    if card.level == "trial":  # one label per (session, trial), in order of first appearance
        keys = list(zip(predictions["session"], predictions["trial"]))
        y_true = y_true[sorted({key: i for i, key in reversed(list(enumerate(keys)))}.values())]
    prior = np.asarray(record["test"]["training_class_counts"]["windows" if card.level == "window" else "trials"],
                       dtype=np.float64)
    rng = np.random.default_rng([card.trivial["seed"], SubjectKey(fold["dataset"], fold["subject"]).stable_id,
                                 fold["seed"]])
    predicted = {"majority": np.full(len(y_true), np.argmax(prior)),
                 "prior": rng.choice(n_classes, size=len(y_true), p=prior / prior.sum())}
    computed = {rule: scores(confusion_matrix(y_true, guess, n_classes)) for rule, guess in predicted.items()}
    return {m.name: computed[card.trivial["rules"][m.name]][m.score_for(n_classes)] for m in card.metrics}


def aggregate_subjects(records: list[dict], score: Callable[[dict], dict[str, float]], card: Card) -> dict:
    """Each subject's scores (its seeds averaged), then the card's aggregation over subjects, in the card's units."""
    import pandas as pd

    rows = [{"subject": (r["fold"]["dataset"], r["fold"]["subject"]), **score(r)} for r in records]
    per_subject = pd.DataFrame(rows).groupby("subject", sort=False).mean()
    scale, ddof = card.aggregation["scale"], card.aggregation["ddof"]
    summary = {"n_subjects": len(per_subject)}
    for metric in card.metrics:
        values = per_subject[metric.name].dropna()
        summary[f"{metric.name}_ours"] = values.mean() * scale if len(values) else np.nan
        summary[f"{metric.name}_ours_sd"] = values.std(ddof=ddof) * scale if len(values) > ddof else np.nan
    return summary


def _honest(run: Path) -> dict:
    """The run's own per-dataset statistics at window level over all its subjects."""
    import pandas as pd

    table = pd.read_csv(run / "tables" / "per_dataset.csv")
    row = table[(table["level"] == "window") & (table["subjects"] == "all")].iloc[0]
    return {key: row[key] for key in HONEST}


def _ours(card: Card, model: str, run: Path) -> dict:
    """A row's columns from a run folder: the card's metrics aggregated over its subjects, and for a model the run's
    own statistics (the trivial row takes the run's folds only)."""
    records, _ = load_results(run)
    if not records:
        return {"status": f"no finished fold in {run}"}
    n_classes = json.loads((run / "run.json").read_text())["n_classes"]
    if model == TRIVIAL:
        ours = aggregate_subjects(records, lambda r: trivial_scores(r, card, n_classes), card)
        return {**ours, "status": f"computed from the folds of {run.name}", "run": str(run)}
    ours = aggregate_subjects(records, lambda r: model_scores(r, card, n_classes), card)
    return {**ours, **_honest(run), "status": "run", "run": str(run)}


def published_rows(card: Card, pairs: Sequence[tuple[str, str]],
                   runs: dict[tuple[str, str, str], Path]) -> pd.DataFrame:
    """One row per published cell (and per model run without one) of the (dataset, task) pairs asked; `runs` maps
    (dataset, task, model) to the run folder of each model run."""
    import pandas as pd

    rows = []
    for dataset, task in pairs:
        done = {model: path for (d, t, model), path in runs.items() if (d, t) == (dataset, task)}
        cells = {cell.model: cell for cell in card.cells(dataset, task)}
        models = [m for m in card.models if m in cells or m in done] + ([TRIVIAL] if TRIVIAL in cells or done else [])
        for model in models:
            cell = cells.get(model)
            name = card.trivial["published_as"] if model == TRIVIAL else card.models[model].published_as
            row = {"dataset": dataset, "task": task, "model": model, "published_as": name,
                   "source": cell.source if cell else "", "run": "", "status": "not run", "n_subjects": np.nan}
            for metric in card.metrics:
                value, sd = cell.values.get(metric.name, (np.nan, None)) if cell else (np.nan, None)
                row.update({f"{metric.name}_published": value,
                            f"{metric.name}_published_sd": np.nan if sd is None else sd})
            source = done.get(model) or (next(iter(done.values())) if model == TRIVIAL and done else None)
            if source is not None:
                row.update(_ours(card, model, source))
            for metric in card.metrics:
                ours, published = row.get(f"{metric.name}_ours", np.nan), row[f"{metric.name}_published"]
                row[f"{metric.name}_difference"] = ours - published
            rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("p_vs_chance", "p_vs_majority"):
        if column not in table:
            table[column] = np.nan
        table[f"{column}_holm"] = holm(table[column])
    return table


def _pm(value: float, sd: float, digits: int = 2) -> str:
    if not np.isfinite(value):
        return "--"
    return f"{value:.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")


def _p(p: float, adjusted: float) -> str:
    fmt = lambda v: "--" if not np.isfinite(v) else (f"{v:.2g}" if v < 0.01 else f"{v:.3f}")  # noqa: E731
    return f"{fmt(p)} ({fmt(adjusted)})"


def published_display(table: pd.DataFrame, card: Card) -> pd.DataFrame:
    """The .md/.tex view: per metric published, ours and the difference; then the honest columns and the status."""
    import pandas as pd

    shown = pd.DataFrame({"dataset": table["dataset"], "task": table["task"],
                          "model": [f"{p} ({m})" for p, m in zip(table["published_as"], table["model"])]})
    for metric in card.metrics:
        name = metric.name
        shown[f"{name} published"] = [_pm(v, s) for v, s in
                                      zip(table[f"{name}_published"], table[f"{name}_published_sd"])]
        if f"{name}_ours" in table:
            shown[f"{name} ours"] = [_pm(v, s) for v, s in zip(table[f"{name}_ours"], table[f"{name}_ours_sd"])]
            shown[f"{name} difference"] = [_pm(v, np.nan) for v in table[f"{name}_difference"]]
    if "balanced_accuracy_mean" in table:
        shown["bal. acc. % [95% CI]"] = [
            "--" if not np.isfinite(m) else f"{m:.1f} [{lo:.1f}, {hi:.1f}]" for m, lo, hi in
            zip(table["balanced_accuracy_mean"], table["balanced_accuracy_ci_low"], table["balanced_accuracy_ci_high"])]
        shown["chance"] = table["chance_balanced_accuracy"].map(lambda v: "--" if not np.isfinite(v) else f"{v:.1f}")
    shown["p vs chance (Holm)"] = [_p(p, h) for p, h in zip(table["p_vs_chance"], table["p_vs_chance_holm"])]
    shown["p vs majority (Holm)"] = [_p(p, h) for p, h in zip(table["p_vs_majority"], table["p_vs_majority_holm"])]
    shown["subjects"] = table["n_subjects"].map(lambda n: "--" if not np.isfinite(n) else f"{int(n)}")
    shown["ours"] = table["status"]
    return shown


def caption(card: Card, table: pd.DataFrame, synthetic: bool) -> list[str]:
    """What every published table states: the card, how each column is computed, and every deviation."""
    metrics = "; ".join(f"{m.name}: {m.definition} ({m.source})" for m in card.metrics)
    rules = ", ".join(f"{name}: {TRIVIAL_RULES[rule]}" for name, rule in card.trivial["rules"].items())
    n_tested = int(np.isfinite(table["p_vs_chance"]).sum())
    lines = (["SYNTHETIC DATA: the published column is not comparable"] if synthetic else []) + [
        f"card {card.id}: {card.title}; {card.citation}; {card.repository} at {card.commit[:7]}, {card.table}",
        f"published: the card's table as printed there (mean ± SD over subjects); ours: the same metrics under the "
        f"card's definitions at {card.level} level ({metrics}) and its aggregation ({card.aggregation['statement']}; "
        f"{card.aggregation['source']}); difference: ours - published",
        f"{card.trivial['published_as']} ({TRIVIAL}): {rules}; from the folds of a model run on the same dataset and "
        f"task (same subjects, labels and training sides), draws seeded by {card.trivial['seed']}, the subject and the "
        "fold's seed",
        "this project's columns (ours only): balanced accuracy (%) mean over subjects [95% CI: Student t below 30 "
        "subjects, percentile bootstrap from 30]; p vs chance: one-sided Wilcoxon signed-rank of balanced accuracy - "
        "1/K over subjects; p vs majority: one-sided paired Wilcoxon of accuracy - the majority-class baseline; Holm "
        f"over the {n_tested} model row(s) of this table, each test apart; each run folder's tables/PROTOCOL.md states "
        "the rest",
        "not run: a published cell whose model, dataset or task this benchmark did not run"]
    return lines + [f"deviation: {d}" for d in card.deviations] + [f"note: {n}" for n in card.notes]


def write_published(card: Card, pairs: Sequence[tuple[str, str]], runs: dict[tuple[str, str, str], Path],
                    out: Path) -> dict:
    """Write `<out>/published.{csv,md,tex}`; returns the table, its view and its caption."""
    synthetic = any(json.loads((path / "run.json").read_text()).get("synthetic") for path in runs.values())
    table = published_rows(card, pairs, runs).assign(card=card.id, synthetic=synthetic)
    header = caption(card, table, synthetic)
    shown = published_display(table, card)
    write_table(table, out / "published", header, shown)
    return {"table": table, "display": shown, "header": header, "out": out}
