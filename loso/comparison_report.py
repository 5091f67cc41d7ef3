"""`comparison/report.html` of `loso.benchmark`: the models compared on one self-contained page, beside the tables.

Rendered from `loso/templates/comparison.html.j2` on the run page's base and macros (CSS inline, every figure an
inline PNG data URI, no script). Sections, in order: banners, the heat-map of mean balanced accuracy [95% CI] per
model and dataset (and task, under a card) with its numbers, the paired tests with Holm, per-subject lines, the
card's published table beside ours (with `--card`), and a relative link to each run's own `report.html`. Read from
the tables the benchmark wrote (each run's per_dataset.csv, comparison/pairwise.csv and per_subject.csv with their
captions, published.*), never recomputed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from loso.report import _fmt, _fmt_p, _rows, render_page
from loso.tables import read_caption

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("loso")

COMPARISON_SECTIONS = ("banners", "heatmap", "pairwise", "subjects", "published", "runs")
"""Every section's id, in page order (`published` only under a card)."""


def _pairwise_display(table: pd.DataFrame) -> pd.DataFrame:
    """pairwise.csv for the page: each pair's means, difference [95% CI], p (Holm), r and wins / ties / losses."""
    import pandas as pd

    metric = table["metric"].iloc[0]
    return pd.DataFrame({
        "A": table["run_a"], "B": table["run_b"], "dataset": table["dataset"], "level": table["level"],
        "subjects": table["n_subjects"], "A mean": table[f"{metric}_a"].map(_fmt),
        "B mean": table[f"{metric}_b"].map(_fmt),
        "B - A [95% CI]": [f"{_fmt(d)} [{_fmt(lo)}, {_fmt(hi)}]" for d, lo, hi in
                           zip(table["mean_difference"], table["difference_ci_low"], table["difference_ci_high"])],
        "p Wilcoxon (Holm)": [f"{_fmt_p(p)} ({_fmt_p(h)})" for p, h in zip(table["p_wilcoxon"], table["p_holm"])],
        "r": table["r_rank_biserial"].map(lambda r: _fmt(r, 2)),
        "B wins / ties / losses": [f"{w} / {t} / {lo}" for w, t, lo in
                                   zip(table["wins_b"], table["ties"], table["losses_b"])],
        "excluded (tuned on)": table["excluded_tuned"].fillna(""),
        "methods": [f"CI: {c}; p: {p}" for c, p in zip(table["ci_method"], table["p_method"])]})


def _group(label: str, folder: Path, models: list[str]) -> dict[str, Any]:
    """One (dataset, task) folder's paired tests, per-subject lines and table, with its caption; or why none."""
    import pandas as pd

    from loso.figures import model_lines_figure, png_data_uri

    compared = folder / "comparison"
    if len(models) < 2:
        return {"label": label, "caption": [], "note": f"{models[0]} alone: nothing to pair"}
    pairs = pd.read_csv(compared / "pairwise.csv", dtype={"excluded_tuned": str})
    wide = pd.read_csv(compared / "per_subject.csv", dtype={"subject": str})
    window = wide[wide["level"] == "window"]
    return {"label": label, "caption": read_caption(compared / "pairwise.md"),
            "pairwise": _rows(_pairwise_display(pairs)),
            "lines": png_data_uri(model_lines_figure(window, models, pairs["metric"].iloc[0])),
            "subjects": _rows(wide.drop(columns=["synthetic"]).round(1))}


def write_comparison_report(out: Path, runs: Sequence[tuple[tuple[str, ...], str, Path]],
                            published: dict | None = None) -> Path:
    """`out/comparison/report.html` from the tables of a finished benchmark: `runs` holds each run's (dataset, task)
    key (empty without a card), model and folder; `published` is `loso.published.write_published`'s answer."""
    import pandas as pd

    from loso.benchmark import comparison_display, comparison_rows
    from loso.figures import heatmap_figure, png_data_uri

    target = out / "comparison"
    folders = {key: folder.parent for key, _, folder in runs}
    rows, groups = [], []
    for key, group in folders.items():
        models = [model for k, model, _ in runs if k == key]
        part = comparison_rows(group, models)
        part["dataset"] = "-".join(key) if key else part["dataset"]
        rows.append(part)
        groups.append(_group("-".join(key) if key else "every dataset", group, models))
    rows = pd.concat(rows, ignore_index=True)
    captions = [g["caption"] for g in groups if g["caption"]]
    statement = [line for line in captions[0] if all(line in c for c in captions)] if captions else []
    banners = [{"kind": "warning", "text": "SYNTHETIC DATA: generated in the real file formats, not a result on real "
                                           "EEG."}] if rows["synthetic"].any() else []
    banners += [{"kind": "warning", "text": f"{g['label']}: {line}"} for g in groups for line in g["caption"]
                if line.startswith("EXCLUDED")]
    for g in groups:  # each group says what the page's statement does not
        g["caption"] = [line for line in g["caption"] if line not in statement]
    links = [{"group": "-".join(key), "model": model, "folder": str(folder),
              "href": os.path.relpath(folder / "report.html", target) if (folder / "report.html").is_file() else None}
             for key, model, folder in runs]
    cells = rows.assign(column=[f"{r.dataset} {r.level}" for r in rows.itertuples()])
    page = render_page(
        "comparison.html.j2", target / "report.html",
        title=f"{out.name}: {', '.join(dict.fromkeys(m for _, m, _ in runs))} compared", statement=statement,
        banners=banners, heatmap=png_data_uri(heatmap_figure(cells)), numbers=_rows(comparison_display(rows)),
        groups=groups, runs=links,
        published=None if published is None else {"caption": published["header"], "table": _rows(published["display"])})
    log.info("Comparison page (every table on one page, each run's page linked; opens offline): %s", page)
    return page
