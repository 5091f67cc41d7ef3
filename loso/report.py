"""`report.html`: one self-contained page per run folder, the first look at a run and the file to send a colleague.

Rendered from a Jinja2 template (`loso/templates/report.html.j2`) with the CSS inline and every figure an inline
PNG data URI: the page fetches nothing and needs no JavaScript. Sections, in order: banners (synthetic data, an
incomplete run, tuned subjects, failed leakage checks), the headline per dataset and level, the per-subject figure
and table, confusion matrices, learning curves, calibration, the permutation null (when run), PROTOCOL.md, and
provenance. Built by `loso.aggregate` from the same tables and fold files as everything else, never recomputed.
"""

from __future__ import annotations

import base64
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from gru_xnet.config import write_text_atomic
from loso.certificate import failed, read_certificate

SECTIONS = ("banners", "headline", "subjects", "confusions", "learning-curves", "calibration", "permutation-null",
            "protocol", "provenance")
"""Every section's id, in page order (`permutation-null` only in runs with permutations)."""


def _fmt(value: Any, digits: int = 1) -> str:
    return "--" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "--" if not np.isfinite(p) else (f"{p:.2g}" if p < 0.01 else f"{p:.3f}")


def _rows(frame) -> dict[str, Any]:
    """A DataFrame as a header and rows of strings for the template."""
    shown = frame.astype(object).where(frame.notna(), "--")
    return {"columns": [str(c) for c in shown.columns], "rows": [[str(v) for v in row] for row in shown.to_numpy()]}


def _banners(tables: dict, certificate: dict | None) -> list[dict[str, str]]:
    manifest, header = tables["manifest"], tables["header"]
    banners = []
    if manifest.get("synthetic"):
        banners.append({"kind": "warning", "text": "SYNTHETIC DATA: generated in the real file formats, not a result "
                                                   "on real EEG."})
    banners += [{"kind": "warning", "text": line} for line in header if line.startswith(("INCOMPLETE", "WARNING"))]
    banners += [{"kind": "error", "text": f"LEAKAGE CHECK FAILED: {c['statement']}: {c['detail']}"}
                for c in failed(certificate)]
    return banners


def _headline(datasets) -> dict[str, Any]:
    """Per dataset, level and subject set: balanced accuracy [CI] beside 1/K and accuracy beside the majority
    baseline, each p with Holm and its method; subjects above chance when the run has the column."""
    rows = []
    for _, r in datasets.iterrows():
        row = {"dataset": r["dataset"], "level": r["level"], "subjects": f"{r['subjects']} ({int(r['n_subjects'])})",
               "balanced accuracy [95% CI]": f"{_fmt(r['balanced_accuracy_mean'])} [{_fmt(r['balanced_accuracy_ci_low'])}, "
                                             f"{_fmt(r['balanced_accuracy_ci_high'])}]",
               "chance 1/K": _fmt(r["chance_balanced_accuracy"]),
               "p vs chance (Holm)": f"{_fmt_p(r['p_vs_chance'])} ({_fmt_p(r['p_vs_chance_holm'])})",
               "accuracy [95% CI]": f"{_fmt(r['accuracy_mean'])} [{_fmt(r['accuracy_ci_low'])}, "
                                    f"{_fmt(r['accuracy_ci_high'])}]",
               "majority baseline": _fmt(r["majority_accuracy_mean"]),
               "p vs majority (Holm)": f"{_fmt_p(r['p_vs_majority'])} ({_fmt_p(r['p_vs_majority_holm'])})",
               "methods": f"CI: {r['balanced_accuracy_ci_method']}; p: {r['p_vs_chance_method']}"}
        if "n_above_chance" in r.index:
            row["subjects above chance (Holm)"] = f"{int(r['n_above_chance'])} of {int(r['n_tested_vs_chance'])}"
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return {"columns": columns, "rows": [[row.get(c, "") for c in columns] for row in rows]}


def _confusions(tables: dict, records: list[dict]) -> list[dict[str, Any]]:
    """Per dataset its pooled window and trial matrices, and each subject's window matrix (summed over seeds)."""
    manifest, confusions = tables["manifest"], tables["confusions"]
    shown = []
    for dataset, names in manifest["class_names"].items():
        if dataset not in confusions["window"]:
            continue
        subjects: dict[str, np.ndarray] = {}
        for record in records:
            if record["fold"]["dataset"] == dataset:
                cm = np.asarray(record["test"]["confusion_matrix"])
                subjects[record["fold"]["subject"]] = subjects.get(record["fold"]["subject"], 0) + cm
        shown.append({"dataset": dataset, "classes": names,
                      "levels": {level: confusions[level][dataset] for level in ("window", "trial")},
                      "subjects": {s: cm.tolist() for s, cm in subjects.items()}})
    return shown


def _calibration(tables: dict, records: list[dict]) -> dict[str, Any]:
    """The reliability diagram of each dataset's pooled predictions and the ECE / Brier / NLL means, or why not."""
    from gru_xnet.metrics import reliability, trial_probabilities
    from loso.figures import png_data_uri, reliability_figure

    decision = (tables["manifest"].get("model") or {}).get("decision", "probability")
    if decision != "probability":
        return {"not_probabilities": f"{tables['manifest']['model']['name']} decides by its {decision}s: its class "
                                     "scores are not probabilities, so ECE, Brier score and NLL are not reported"}
    points = {}
    for dataset in dict.fromkeys(r["fold"]["dataset"] for r in records):
        mine = [r for r in records if r["fold"]["dataset"] == dataset and "probabilities" in (r.get("predictions") or {})]
        if not mine:
            continue
        y = np.concatenate([r["predictions"]["y_true"] for r in mine])
        p = np.concatenate([np.asarray(r["predictions"]["probabilities"], dtype=float) for r in mine])
        keys = np.concatenate([np.stack([np.full(len(r["predictions"]["y_true"]), i),
                                         r["predictions"]["session"], r["predictions"]["trial"]], axis=1)
                               for i, r in enumerate(mine)])
        trials = trial_probabilities(keys, y, p)
        points[dataset] = {"window": reliability(y, p), "trial": reliability(trials.labels, trials.probabilities)}
    table = tables["datasets"][["dataset", "level", "subjects", "ece_mean", "brier_mean", "nll_mean"]].copy()
    for column in ("ece_mean", "brier_mean", "nll_mean"):
        table[column] = table[column].map(lambda v: _fmt(v, 3))
    return {"figure": png_data_uri(reliability_figure(points)) if points else None,
            "table": _rows(table.rename(columns={"ece_mean": "ECE", "brier_mean": "Brier", "nll_mean": "NLL"}))}


def _learning_curves(tables: dict, records: list[dict]) -> list[dict[str, Any]]:
    from loso.figures import MAX_CURVE_PANELS, learning_curves_figure, png_data_uri

    monitor = (tables["manifest"].get("config") or {}).get("training", {}).get("monitor", "loss")
    curves = []
    for dataset in dict.fromkeys(r["fold"]["dataset"] for r in records):
        mine = [r for r in records if r["fold"]["dataset"] == dataset]
        fig = learning_curves_figure(mine, monitor)
        note = (f"the first {MAX_CURVE_PANELS} of {len(mine)} fold results" if len(mine) > MAX_CURVE_PANELS else
                f"{len(mine)} fold result(s)")
        curves.append({"dataset": dataset, "note": note,
                       "figure": png_data_uri(fig) if fig is not None else None})
    return curves


def _file_uri(path: Path) -> str | None:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


def _provenance(tables: dict, records: list[dict]) -> list[tuple[str, str]]:
    manifest = tables["manifest"]
    started = [r["started_at"] for r in records if "started_at" in r]
    finished = [r["finished_at"] for r in records if "finished_at" in r]
    rows = [("command line", " ".join(shlex.quote(a) for a in manifest["command"]) if manifest.get("command")
             else "not recorded (run.json written by an older version)"),
            ("config hash", manifest.get("config_hash", "?")),
            ("data fingerprint", manifest.get("data_fingerprint", "?")),
            ("devices", tables.get("runtime", {}).get("precision") or "not recorded"),
            ("fold wall time", f"{max(finished) - min(started):.0f} s from the first fold's start to the last one's end"
             if started and finished else "not recorded")]
    rows += [(key, str(value)) for key, value in (manifest.get("provenance") or {}).items()]
    return rows


def render_page(template: str, path: Path, **context: Any) -> Path:
    """One self-contained page from a template of `loso/templates` (every page extends `base.html.j2`: its CSS
    inline, no script), written atomically to `path`."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(loader=PackageLoader("loso", "templates"), autoescape=select_autoescape(["html", "j2"]))
    write_text_atomic(path, environment.get_template(template).render(**context))
    return path


def write_report(out: Path, tables: dict, records: list[dict]) -> Path:
    """`out/report.html` from the tables `loso.aggregate` built and the observed fold records; returns its path."""
    import markdown
    from markupsafe import Markup

    from loso.aggregate import subjects_display

    certificate = read_certificate(out)
    subjects = subjects_display(tables["subjects"], tables["manifest"])
    for column in ("ece", "brier", "nll"):
        subjects[column] = tables["subjects"][column].map(lambda v: _fmt(v, 3))
    protocol = (out / "tables" / "PROTOCOL.md").read_text()
    return render_page(
        "report.html.j2", out / "report.html", title=f"{out.name}: {tables['manifest'].get('model', {}).get('name', 'gru_xnet')} on "
              f"{', '.join(tables['manifest']['datasets'])}",
        statement=tables["header"], banners=_banners(tables, certificate), headline=_headline(tables["datasets"]),
        per_dataset=_rows(tables["datasets_display"]), subjects=_rows(subjects),
        subject_figure=_file_uri(out / "figures" / "per_subject_accuracy.png"),
        confusions=_confusions(tables, records), curves=_learning_curves(tables, records),
        calibration=_calibration(tables, records),
        null_figure=_file_uri(out / "figures" / "permutation_null.png") if tables["manifest"].get("permutations") else None,
        protocol=Markup(markdown.markdown(protocol, extensions=["tables"])),
        provenance=_provenance(tables, records))
