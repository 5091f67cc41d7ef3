"""Figures of a search: validation score per trial, and the parameters' importance."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

log = logging.getLogger("tune")


def plot_scores(table: pd.DataFrame, path: Path, title: str) -> None:
    """Validation score per trial in trial order, marked by status, with the running best of finished trials."""
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(1, len(table) + 1)
    for status, marker in (("complete", "o"), ("stopped early (ASHA)", "x"), ("error", "s")):
        mask = (table["status"] == status).to_numpy()
        if mask.any():
            ax.scatter(x[mask], table["val_score"][mask], marker=marker, s=45, label=f"{status} ({mask.sum()})")
    best = table["val_score"].where(table["status"] == "complete").cummax().ffill()
    ax.step(x, best, where="post", color="k", alpha=0.6, label="best finished so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("best validation accuracy (%)")
    ax.set_title(f"{title}\nvalidation scores: optimistic, not test results", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def finished_study(params: list[dict], scores: list[float], distributions: dict) -> optuna.Study:
    """An in-memory Optuna study holding the finished trials (the searches ran in Ray Tune, whose ASHA stops
    Optuna cannot see): what Optuna's importance and plots read."""
    study = optuna.create_study(direction="maximize")
    study.add_trials([optuna.trial.create_trial(params=p, distributions=distributions, value=v)
                      for p, v in zip(params, scores)])
    return study


def plot_parallel_coordinate(study: optuna.Study, path: Path, title: str) -> None:
    """Optuna's parallel-coordinate plot of the finished trials (each line a trial, coloured by its score)."""
    import warnings

    from optuna.visualization.matplotlib import plot_parallel_coordinate as optuna_plot

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = optuna_plot(study)
    fig = ax.figure
    fig.set_size_inches(7.5, 4)
    ax.set_title(f"{title}\nfinished trials (validation scores: optimistic, not test results)", fontsize=9)
    _save(fig, path)


def plot_param_importance(params: list[dict], scores: list[float], distributions: dict, path: Path,
                          title: str) -> None:
    """PED-ANOVA importance of each varied parameter, from an Optuna study rebuilt from the finished trials.

    (Optuna's default fANOVA evaluator needs scikit-learn, which this project does not install.)
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    try:
        if len(scores) < 2:
            raise ValueError(f"{len(scores)} finished trial(s); at least 2 are needed")
        study = finished_study(params, scores, distributions)
        varied = [name for name, dist in distributions.items() if not dist.single()]
        if not varied:
            raise ValueError("every parameter has a single value")
        importance = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), params=varied)
        names = list(importance)[::-1]
        ax.barh(names, [importance[n] for n in names], color="tab:blue")
        ax.set_xlabel(f"importance (PED-ANOVA, {len(scores)} finished trials)")
    except (ValueError, RuntimeError) as exc:
        log.warning("parameter importance not computed: %s", exc)
        ax.text(0.5, 0.5, f"parameter importance not available:\n{exc}", ha="center", va="center", wrap=True)
        ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
