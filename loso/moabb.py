"""`tables/moabb_results.csv`: a run's scores as MOABB's `Results.to_dataframe` lays them out, for its analysis and
meta-analysis plots (`moabb.analysis`), without MOABB as a dependency.

MOABB (NeuroTechX/moabb, commit 1d8a6382, `moabb/analysis/results.py`) stores per pipeline and dataset the float
columns `score`, `time`, `samples` (lines 135 and 164-166: an h5py dataset created without a dtype, so float32), the
string ids `subject` and `session` (lines 163, 229-230), and the integer attributes `channels` and `n_sessions`
(lines 168, 231-232), then adds `dataset` and `pipeline` (233-234). Here: one row per (subject, session) of the run's
model, seeds averaged, `score` the window-level balanced accuracy as a fraction, `time` the seconds a fold trained,
`samples` the windows it learnt from (training + validation; a subject pooled over several folds: their mean; empty
for results written before they were recorded), `seed_sd` the score's SD over seeds (an extra column, as is
`synthetic`, which every CSV of a run carries).
A subject tested with its sessions together has session 'all'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {"score": float, "time": float, "samples": float, "subject": str, "session": str, "channels": int,
           "n_sessions": int, "dataset": str, "pipeline": str}
"""MOABB's `Results.to_dataframe` columns and their types (see the module docstring for the source lines)."""


def moabb_results(records: list[dict], manifest: dict) -> pd.DataFrame:
    """The observed fold records as MOABB's results table, plus `seed_sd`."""
    import pandas as pd

    sessions = manifest.get("multi_session") or {}
    rows = [{"dataset": r["fold"]["dataset"], "subject": str(r["fold"]["subject"]),
             "session": "all" if r["fold"]["session"] is None else str(r["fold"]["session"]), "seed": r["fold"]["seed"],
             "score": r["test"]["balanced_accuracy"] / 100.0, "time": r.get("train_seconds", float("nan")),
             "samples": _samples(r["test"].get("training_class_counts", {}).get("windows", [float("nan")]))}
            for r in records]
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["dataset", "subject", "session"], sort=False)
    table = grouped[["score", "time", "samples"]].mean().reset_index()
    table["seed_sd"] = grouped["score"].std(ddof=1).to_numpy()
    table["channels"] = len(manifest["channels"])
    table["n_sessions"] = [int(sessions.get(d, 1)) for d in table["dataset"]]
    table["pipeline"] = (manifest.get("model") or {}).get("name", "gru_xnet")
    return table.astype(COLUMNS)[[*COLUMNS, "seed_sd"]]


def _samples(counts: list) -> float:
    """Training windows of a record: its class counts summed, or, pooled over folds (a row of counts per fold), the
    mean over its folds."""
    import numpy as np

    counts = np.asarray(counts, dtype=float)
    return float(counts.sum(axis=-1).mean())
