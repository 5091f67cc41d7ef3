"""Figures of a LOSO run and of run comparisons: per-subject scores with baselines, permutation nulls, subject lines."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: Path, title: str) -> None:
    """Save under `title`, each of its lines wrapped to the figure's width (a split's statement is a long line)."""
    width = int(fig.get_figwidth() * 15)  # characters of 9-point text per inch, roughly
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in title.splitlines()), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _panels(n: int, width: float):
    fig, axes = plt.subplots(1, n, figsize=(max(6.0, width), 4.2), squeeze=False, sharey=True)
    return fig, axes[0]


def plot_subjects(subjects: pd.DataFrame, path: Path, title: str) -> None:
    """figures/per_subject_accuracy.png: `subject_figure` saved under `title`."""
    _save(subject_figure(subjects), path, title)


def subject_figure(subjects: pd.DataFrame):
    """Per dataset: each subject's balanced accuracy (bars) beside its own chance 1/K (red ticks), accuracy (dots)
    beside the majority-class baseline (black dashes); one-class subjects labelled, tuned-on subjects hatched."""
    datasets = list(dict.fromkeys(subjects["dataset"]))
    fig, axes = _panels(len(datasets), 0.45 * len(subjects) + 2.5 * len(datasets))
    for ax, dataset in zip(axes, datasets):
        group = subjects[subjects["dataset"] == dataset]
        x = np.arange(len(group))
        err = group["balanced_accuracy_seed_sd"] if "balanced_accuracy_seed_sd" in group else None
        tuned = group["tuned"].to_numpy(bool)
        for mask, style in ((~tuned, {"label": "balanced accuracy"}),
                            (tuned, {"label": "balanced accuracy, tuned on (not unbiased)", "hatch": "//",
                                     "edgecolor": "k"})):
            if mask.any():
                ax.bar(x[mask], group["balanced_accuracy"].fillna(0)[mask],
                       yerr=None if err is None else err[mask], color="tab:blue", alpha=0.75, **style)
        for position, single in zip(x, group["single_class"]):
            if single:
                ax.text(position, 2, "1 class: no bal. acc.", rotation=90, ha="center", va="bottom", fontsize=6)
        ax.plot(x, group["chance_balanced_accuracy"], "_", color="tab:red", markersize=14, markeredgewidth=2,
                label="chance 1/K (classes in the subject's test set)")
        ax.plot(x, group["accuracy"], "o", color="tab:orange", label="accuracy")
        ax.plot(x, group["majority_accuracy"], "_", color="k", markersize=14, markeredgewidth=2,
                label="majority baseline (accuracy)")
        ax.axhline(group["majority_accuracy"].mean(), color="0.4", linestyle=":",
                   label=f"mean majority {group['majority_accuracy'].mean():.1f}%")
        labels = [f"{s}*" if tuned else s for s, tuned in zip(group["subject"], group["tuned"])]
        ax.set_xticks(x, labels, rotation=90, fontsize=7)
        ax.set_title(dataset)
        ax.set_ylim(0, 105)
        ax.legend(fontsize=6, loc="lower right")
    axes[0].set_ylabel("test score (%)")
    return fig


def plot_nulls(nulls: dict[str, tuple[np.ndarray, float, float]], path: Path, title: str) -> None:
    """Per dataset: the permutation null of the mean balanced accuracy, the observed mean and 1/K."""
    fig, axes = _panels(len(nulls), 4.0 * len(nulls))
    for ax, (dataset, (null, observed, chance)) in zip(axes, nulls.items()):
        ax.hist(null, bins=max(5, min(30, len(null) // 2)), color="0.6", label=f"null ({len(null)} permutations)")
        ax.axvline(observed, color="tab:blue", linewidth=2, label=f"observed {observed:.1f}%")
        ax.axvline(chance, color="tab:red", linestyle="--", label=f"1/K = {chance:.0f}%")
        ax.set_xlabel("mean balanced accuracy over subjects (%)")
        ax.set_title(dataset)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("permutations")
    _save(fig, path, title)


def plot_subject_lines(wide: pd.DataFrame, runs: Sequence[str], metric: str, path: Path, title: str) -> None:
    """Per dataset: one line per subject across the compared runs, the mean over subjects in black."""
    datasets = list(dict.fromkeys(wide["dataset"]))
    fig, axes = _panels(len(datasets), 1.6 * len(runs) * len(datasets) + 2)
    x = np.arange(len(runs))
    for ax, dataset in zip(axes, datasets):
        group = wide[wide["dataset"] == dataset]
        for _, row in group.iterrows():
            ax.plot(x, [row[r] for r in runs], "o-", color="tab:blue", alpha=0.35)
        ax.plot(x, [group[r].mean() for r in runs], "s-", color="k", linewidth=2, label="mean over subjects")
        ax.set_xticks(x, runs, rotation=20, fontsize=7)
        ax.set_title(f"{dataset} ({len(group)} subjects)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"{metric.replace('_', ' ')} (%)")
    _save(fig, path, title)


def heatmap_figure(cells: pd.DataFrame):
    """Models (rows) x columns (dataset, task, level): each cell's mean balanced accuracy [95% CI] written in it,
    coloured by its distance from chance 1/K (red below, blue above); a cell not run is left blank."""
    means = cells.pivot(index="model", columns="column", values="balanced_accuracy_mean")
    order = (list(dict.fromkeys(cells["model"])), list(dict.fromkeys(cells["column"])))
    means = means.reindex(index=order[0], columns=order[1])
    above = means - cells.pivot(index="model", columns="column", values="chance_balanced_accuracy").reindex_like(means)
    reach = max(5.0, float(np.nanmax(np.abs(above.to_numpy()))))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.7 * len(order[1]) + 2.5), max(3.0, 0.6 * len(order[0]) + 1.6)))
    image = ax.imshow(np.ma.masked_invalid(above.to_numpy(float)), cmap="RdBu", vmin=-reach, vmax=reach,
                      aspect="auto")
    for r in cells.itertuples():
        ax.text(order[1].index(r.column), order[0].index(r.model),
                f"{r.balanced_accuracy_mean:.1f}\n"
                f"[{r.balanced_accuracy_ci_low:.1f}, {r.balanced_accuracy_ci_high:.1f}]",
                ha="center", va="center", fontsize=8,
                color="white" if abs(above.loc[r.model, r.column]) > 0.6 * reach else "black")
    ax.set_xticks(range(len(order[1])), order[1], rotation=20, fontsize=8)
    ax.set_yticks(range(len(order[0])), order[0], fontsize=8)
    fig.colorbar(image, ax=ax, label="above chance 1/K (points)")
    ax.set_title("mean balanced accuracy over subjects (%) [95% CI]", fontsize=9)
    fig.tight_layout()
    return fig


def model_lines_figure(wide: pd.DataFrame, models: Sequence[str], metric: str):
    """Per dataset: one line per model across the subjects (in table order), its mean over subjects dashed."""
    datasets = list(dict.fromkeys(wide["dataset"]))
    fig, axes = _panels(len(datasets), 0.45 * len(wide) + 2.5 * len(datasets))
    for ax, dataset in zip(axes, datasets):
        group = wide[wide["dataset"] == dataset]
        x = np.arange(len(group))
        for model, color in zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"] * len(models)):
            ax.plot(x, group[model], "o-", color=color, label=model)
            ax.axhline(group[model].mean(), color=color, linestyle="--", linewidth=0.8)
        ax.set_xticks(x, group["subject"], rotation=90, fontsize=7)
        ax.set_title(f"{dataset} ({len(group)} subjects)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"{metric.replace('_', ' ')} (%)")
    fig.tight_layout()
    return fig


MAX_CURVE_PANELS = 30


def learning_curves_figure(records: list[dict], monitor: str):
    """One panel per fold result (at most MAX_CURVE_PANELS): training and validation loss over epochs, the monitored
    validation metric on a second axis, the epoch whose weights were tested marked; None when no record has epochs."""
    shown = [r for r in records if r.get("history") and "train_loss" in r["history"][0]][:MAX_CURVE_PANELS]
    if not shown:
        return None
    columns = min(6, len(shown))
    rows = -(-len(shown) // columns)
    width, height = 2.3 * columns, 1.9 * rows + 0.6
    fig, axes = plt.subplots(rows, columns, figsize=(width, height), squeeze=False)
    key = f"val_{monitor}" if monitor != "loss" else None
    for ax, record in zip(axes.flat, shown):
        history = record["history"]
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], color="tab:blue", label="training loss")
        if "val_loss" in history[0]:
            ax.plot(epochs, [h["val_loss"] for h in history], color="tab:orange", label="validation loss")
        if key and key in history[0]:
            twin = ax.twinx()
            twin.plot(epochs, [h[key] for h in history], color="tab:green", linestyle=":", label=key)
            twin.tick_params(labelsize=5)
        if record.get("best_epoch"):
            ax.axvline(record["best_epoch"], color="k", linewidth=0.8, linestyle="--", label="tested epoch")
        ax.set_title(f"{record['fold']['subject']} seed {record['fold']['seed']}", fontsize=7)
        ax.tick_params(labelsize=5)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    handles = [h for ax in fig.axes for h in ax.get_legend_handles_labels()[0]]
    labels = [lab for ax in fig.axes for lab in ax.get_legend_handles_labels()[1]]
    unique = dict(zip(labels, handles))
    ncol = len(unique) if columns >= 3 else 2
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=ncol, fontsize=6, frameon=False)
    # fixed margins in inches (the legend's rows at the bottom), not tight_layout: with up to 30 panels and their
    # twin axes it measured every label and took 0.8 s of a report's 1.4 s for 20 folds
    fig.subplots_adjust(left=0.4 / width, right=1 - 0.35 / width, top=1 - 0.25 / height,
                        bottom=(0.45 + 0.15 * -(-len(unique) // ncol)) / height, wspace=0.45, hspace=0.7)
    return fig


def reliability_figure(points: dict[str, dict[str, dict[str, np.ndarray]]]):
    """Per dataset: the reliability diagram of its pooled windows and trials (hit rate against mean confidence per
    confidence bin, marker area by items), the diagonal of perfect calibration."""
    fig, axes = _panels(len(points), 3.4 * len(points))
    for ax, (dataset, levels) in zip(axes, points.items()):
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfectly calibrated")
        for (level, p), color in zip(levels.items(), ("tab:blue", "tab:orange")):
            ax.plot(p["confidence"], p["accuracy"], "-", color=color, alpha=0.6)
            ax.scatter(p["confidence"], p["accuracy"], s=12 + 60 * p["count"] / max(1, p["count"].max()), color=color,
                       label=f"{level}s ({int(p['count'].sum())})")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("confidence (top probability)")
        ax.set_title(dataset)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("hit rate")
    fig.tight_layout()
    return fig


def png_data_uri(fig) -> str:
    """A figure as an inline `data:image/png;base64,...` URI (closed after): pages that embed it fetch nothing."""
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
