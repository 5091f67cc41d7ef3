"""Apply a trained checkpoint to recordings: per-window and per-trial predictions, `python -m gru_xnet.predict`.

Features are built with the checkpoint's own data settings (windows, STFT, labels), the model's
channels are picked by name in the model's order, and the stored training normaliser is applied, so
a recording is seen exactly as the training subjects were. The model is rebuilt from its record (parameters,
sampling rate, channels). A trial's prediction is the class with the highest mean probability over its
windows (a soft majority vote; for a model deciding by its margins, the softmax of the margins). The command
checks the dataset's name before torch loads; the functions that run the model import it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from gru_xnet.config import DataConfig
from gru_xnet.datasets import canonical_name
from gru_xnet.datasets.registry import add_dataset_module_argument, register_dataset_modules
from gru_xnet.features import FeatureSet, build_feature_set

if TYPE_CHECKING:
    import torch

    from gru_xnet.engine import Evaluation

log = logging.getLogger(__name__)

REQUIRED_META = ("config", "class_names", "channel_names", "frequencies", "normalizer")


class PredictionError(ValueError):
    """The requested data cannot be fed to the checkpoint's model (channels, frequencies, classes, subjects)."""


@dataclass
class Prediction:
    """Per-trial rows plus window- and trial-level accuracy of one prediction run."""

    rows: list[dict[str, Any]]
    class_names: tuple[str, ...]
    window_accuracy: float
    trial_accuracy: float
    n_windows: int
    synthetic: bool
    attention: dict[str, np.ndarray] | None = None


def prediction_config(meta: dict[str, Any], dataset: str, data_root: str) -> DataConfig:
    """The checkpoint's data settings, pointed at one dataset under `data_root`, every subject, all channels.

    All channels are read because the STFT is computed per channel: picking the model's channels
    afterwards gives exactly the features a training run restricted to them would have built.
    """
    trained = DataConfig.from_dict(meta["config"]["data"])
    return dataclasses.replace(trained, datasets=[dataset], data_root=str(data_root), data_roots={},
                               max_subjects=0, channels="all")


def match_checkpoint(features: FeatureSet, meta: dict[str, Any], n_classes: int) -> FeatureSet:
    """The feature set restricted to the model's channels, in its order; refuses a differing grid or class count."""
    dataset = features.datasets[0]
    wanted = [c.upper() for c in meta["channel_names"]]
    missing = [c for c in wanted if c not in features.channel_names]
    if missing:
        policy = meta["config"]["data"]["channels"]
        raise PredictionError(
            f"{dataset} lacks {len(missing)} of the model's {len(wanted)} channels: {', '.join(missing)} "
            f"(the model was trained on {meta['config']['data']['datasets']} with data.channels={policy!r}; "
            f"{dataset} has {', '.join(features.channel_names)}). Train with data.channels='common' on "
            f"datasets that include {dataset} to get a model for it.")
    frequencies = np.asarray(meta["frequencies"], dtype=np.float64)
    if features.frequencies.shape != frequencies.shape or not np.allclose(features.frequencies, frequencies):
        raise PredictionError(f"{dataset} gives the feature grid (STFT frequencies or band edges, Hz) "
                              f"{features.frequencies.tolist()}, the model expects {frequencies.tolist()}")
    trained_shape = meta.get("input_shape")
    if trained_shape is not None and list(features.features.shape[2:]) != list(trained_shape[1:]):
        raise PredictionError(f"{dataset} gives windows of shape {features.features.shape[1:]}, the model was trained "
                              f"on {tuple(trained_shape)} (channels first); its data settings do not fit this dataset")
    if features.n_classes != n_classes:
        raise PredictionError(f"{dataset} is labelled with {features.n_classes} classes "
                              f"{list(features.class_names)}; the model predicts {n_classes} {meta['class_names']}")
    order = [features.channel_names.index(c) for c in wanted]
    return dataclasses.replace(features, features=np.ascontiguousarray(features.features[:, order]),
                               channel_names=tuple(wanted))


def predict_windows(model: torch.nn.Module, features: FeatureSet, windows: np.ndarray, *, device: torch.device,
                    batch_size: int, attention: bool = False) -> Evaluation:
    """Every window's class probabilities (and attention weights), normalised with the checkpoint's statistics."""
    from gru_xnet.data_loader import EvalBatches, Normalizer, Windows, fits_on_device
    from gru_xnet.engine import evaluate, resolve_precision

    norm = model.checkpoint_meta["normalizer"]
    normalizer = Normalizer(norm["mean"].numpy(), norm["std"].numpy())
    on_device = fits_on_device(len(windows), features.features.shape[1:], device)
    loader = EvalBatches(Windows.build(features, windows, normalizer, device, on_device), batch_size)
    return evaluate(model.to(device), loader, device=device, precision=resolve_precision(device, use_amp=False),
                    n_classes=len(model.checkpoint_meta["class_names"]), dataset_names=features.datasets,
                    attention=attention)


def trial_rows(features: FeatureSet, evaluation: Evaluation, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (subject, session, trial): window count, mean class probabilities, prediction, truth."""
    from gru_xnet.metrics import trial_probabilities
    from gru_xnet.results import trial_keys

    trials = trial_probabilities(trial_keys(features, evaluation.windows), evaluation.y_true,
                                 evaluation.probabilities)
    rows = []
    for (subject, session, trial), true, mean_prob, n in zip(*trials):
        predicted, true = int(mean_prob.argmax()), int(true)
        rows.append({"dataset": features.subjects[subject].dataset, "subject": features.subjects[subject].subject,
                     "session": int(session), "trial": int(trial), "n_windows": int(n),
                     "predicted": predicted, "predicted_name": class_names[predicted],
                     **{f"prob_{name}": float(p) for name, p in zip(class_names, mean_prob)},
                     "true_label": true, "true_name": features.class_names[true], "correct": predicted == true,
                     "synthetic": features.synthetic})
    return rows


def predict(checkpoint: str | Path, dataset: str, data_root: str | Path, subjects: Sequence[str] | None = None,
            *, device: str = "auto", batch_size: int = 256, attention: bool = False) -> Prediction:
    """Load a checkpoint, build the dataset's features as in training and predict every window and trial.

    With `attention=True` the result also holds every window's self-attention weights (averaged over
    heads, `(windows, S, S)`) with the window's subject, session and trial.
    """
    from gru_xnet.checkpoint import CheckpointError
    from gru_xnet.engine import resolve_device
    from gru_xnet.metrics import confusion_matrix, scores
    from gru_xnet.model import load_model
    from gru_xnet.results import trial_keys

    model = load_model(checkpoint)
    meta = model.checkpoint_meta
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"{checkpoint} lacks {missing}: it cannot be applied to new recordings")
    config = prediction_config(meta, dataset, str(data_root))
    representation = meta.get("model", {}).get("representation", "stft")
    features = match_checkpoint(build_feature_set(config, representation=representation), meta,
                                len(meta["class_names"]))
    windows = features.windows_of(features.subject_ids(subjects))
    log.info("predicting %d windows of %s%s with %s", len(windows), config.datasets[0],
             " (SYNTHETIC data)" if features.synthetic else "", checkpoint)
    if attention and getattr(model, "attention", None) is None:
        raise PredictionError(f"{checkpoint}: the model has no self-attention (a gru_xnet model trained with "
                              "model.use_attention=false, or another model): no attention weights to save")
    evaluation = predict_windows(model, features, windows, device=resolve_device(device), batch_size=batch_size,
                                 attention=attention)
    class_names = tuple(meta["class_names"])
    rows = trial_rows(features, evaluation, class_names)
    trial_cm = confusion_matrix([r["true_label"] for r in rows], [r["predicted"] for r in rows], len(class_names))
    weights = None
    if attention:
        keys = trial_keys(features, evaluation.windows)
        weights = {"attention": evaluation.attention.astype(np.float32), "window": evaluation.windows,
                   "subject": np.array([features.subjects[s].subject for s in keys[:, 0]]),
                   "session": keys[:, 1], "trial": keys[:, 2], "y_true": evaluation.y_true,
                   "y_pred": evaluation.y_pred}
    return Prediction(rows=rows, class_names=class_names, window_accuracy=evaluation.metrics["accuracy"],
                      trial_accuracy=scores(trial_cm)["accuracy"], n_windows=len(windows),
                      synthetic=features.synthetic, attention=weights)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write the per-trial rows as CSV with a header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gru_xnet.predict", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a gru_xnet checkpoint, e.g. best_model.pth")
    parser.add_argument("--dataset", required=True, help="a registered dataset name, e.g. DEAP, SEED, SEEDIV")
    add_dataset_module_argument(parser)
    parser.add_argument("--data-root", required=True, help="folder holding the dataset folder (or the folder itself)")
    parser.add_argument("--subjects", nargs="+", help="subject ids as the reader names them (default: all)")
    parser.add_argument("--output", help="CSV of per-trial predictions (default: predictions_<DATASET>.csv)")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--attention", metavar="FILE.npz",
                        help="also save every window's self-attention weights (windows x steps x steps, averaged "
                             "over heads) with its subject, session and trial; read with numpy.load")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def _print_table(result: Prediction) -> None:
    """The per-trial table and the accuracies, for a person reading the terminal."""
    print(f"{'dataset':8} {'subject':8} {'sess':>4} {'trial':>5} {'windows':>7}  {'predicted':20} "
          + " ".join(f"{'p(' + n + ')':>16}" for n in result.class_names) + f"  {'true':20}")
    for r in result.rows:
        print(f"{r['dataset']:8} {r['subject']:8} {r['session']:>4} {r['trial']:>5} {r['n_windows']:>7}  "
              f"{r['predicted_name']:20} " + " ".join(f"{r['prob_' + n]:>16.3f}" for n in result.class_names)
              + f"  {r['true_name']:20}{'' if r['correct'] else '  *'}")
    tag = " on SYNTHETIC data" if result.synthetic else ""
    print(f"\nWindow-level accuracy{tag}: {result.window_accuracy:.2f}% over {result.n_windows} windows")
    print(f"Trial-level accuracy{tag}: {result.trial_accuracy:.2f}% over {len(result.rows)} trials")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        register_dataset_modules(args.dataset_module)
        canonical_name(args.dataset)
        result = predict(args.checkpoint, args.dataset, args.data_root, args.subjects, device=args.device,
                         batch_size=args.batch_size, attention=bool(args.attention))
        output = Path(args.output or f"predictions_{canonical_name(args.dataset)}.csv")
        write_csv(result.rows, output)
        if args.attention:
            np.savez_compressed(args.attention, **result.attention)
    except (ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2
    _print_table(result)
    print(f"Per-trial predictions written to {output}")
    if args.attention:
        print(f"Attention weights {result.attention['attention'].shape} written to {args.attention}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
