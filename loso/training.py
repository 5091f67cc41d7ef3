"""One fold's label variant trained and tested: what a Ray Train worker, a Ray task and `loso.run --local` run.

Nothing here imports Ray. Where the fold runs (rank and world size, device, how the model is wrapped
for DDP, where each epoch's record goes) arrives as a `Placement`, so the in-process debugging path
and the cluster path execute the same lines and give the same fold result on CPU. A torch model goes
through the shared epoch loop; a scikit-learn model is fitted once per grid point (`gru_xnet.estimators`),
and both are tested by the same evaluator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from gru_xnet.config import ExperimentConfig
from gru_xnet.data_loader import Loaders, make_loaders
from gru_xnet.engine import (Evaluation, FitState, evaluate, fit, make_optimizer, make_reproducible, make_scheduler,
                             resolve_precision, resume, set_rng_state, snapshot, unwrap)
from gru_xnet.estimators import fit_on_loaders, is_estimator
from gru_xnet.features import FeatureSet
from gru_xnet.model import build_model, model_input
from gru_xnet.models import ModelSpec, model_spec
from gru_xnet.results import dataset_windows, evaluation_report, subject_reports, trial_keys
from gru_xnet.split import Split
from loso.certificate import LAST_EPOCH
from loso.folds import OBSERVED

PERMUTATION_SCHEME = 2
"""How permutation replicates are drawn (recorded in run.json): 2 = replicate k is one relabelled dataset,
seeded by (the config's seed, k), shared by every fold and seed; 1 (before) seeded each fold and seed apart."""


@dataclass(frozen=True)
class Placement:
    """Where one fold's training runs: this process's rank among `world_size`, its device, the DDP wrapper."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    prepare_model: Callable[[nn.Module], nn.Module] = lambda model: model
    after_epoch: Callable[[int, FitState, dict, Callable[[], dict]], None] | None = None
    """Called on every rank after each epoch with (variant, state, epoch record, a function returning the
    training `snapshot`): Ray reports and epoch checkpoints go here."""


def _seen_subjects(features: FeatureSet, loader) -> list[str]:
    """Subjects whose windows a loader can deliver (for leakage checks)."""
    if loader is None:
        return []
    return sorted({str(features.subjects[s]) for s in np.unique(features.subject_index[loader.windows.indices])})


def fold_labels(config: ExperimentConfig, features: FeatureSet, split: Split, variant: int) -> FeatureSet:
    """The features with the fold's labels: as recorded, or replicate `variant` of the permutation null.

    A replicate relabels the training and validation subjects as one whole-dataset permutation salted by
    the config's seed, never by the fold's seed or test subject: every fold and seed of replicate k trains
    on one labelling, as every fold of the observed run trains on the real one. Only the trials on the
    training and validation sides are permuted: under a trial-level split the test side's trials of the
    same subject keep their real labels.
    """
    if variant == OBSERVED:
        return features
    pool = np.concatenate([split.windows(features, "train"), split.windows(features, "val")])
    return features.with_permuted_labels(split.train + split.val, salt=config.seed, replicate=variant, windows=pool)


def train_variant(config: ExperimentConfig, features: FeatureSet, split: Split, seed: int, variant: int,
                  placement: Placement = Placement(), saved: dict | None = None,
                  spec: ModelSpec | None = None) -> dict[str, Any] | None:
    """Train one label variant of a fold and test it once; rank 0 returns the result.

    `spec` is the model's registry entry (a user model's travels with its source; default: `model.name`'s).
    `saved` (an engine `snapshot` plus this rank's random state) continues an interrupted training at
    the epoch after the snapshot's, with the result an uninterrupted training gives on CPU.
    """
    started = time.time()
    spec = spec or model_spec(config.model.name)
    rank, world, device = placement.rank, placement.world_size, placement.device
    features = fold_labels(config, features, split, variant)
    make_reproducible(seed, config.training)
    loaders = make_loaders(features, split, config.data, batch_size=max(1, config.training.batch_size // world),
                           seed=seed, rank=rank, world_size=world, device=device)
    model = build_model(config.model, loaders.input_shape, loaders.n_classes, spec, **model_input(features))
    data_seconds = time.time() - started
    if is_estimator(model):
        model, result = _fit_estimator(model, spec, features, loaders, seed)
        precision = resolve_precision(torch.device("cpu"), use_amp=False)
    else:
        model, precision, result = _fit_torch(config, features, loaders, model, variant, placement, saved)
    if rank != 0:
        return None
    tested = time.time()
    pool = np.concatenate([split.windows(features, "train"), split.windows(features, "val")])
    result.update({"variant": variant, "label_hash": features.label_hash(pool), "world_size": world,
                   "normalizer_sha256": loaders.normalizer.sha256(),
                   "torch_threads": torch.get_num_threads(),
                   "seen_subjects": {"train": _seen_subjects(features, loaders.train),
                                     "val": _seen_subjects(features, loaders.val),
                                     "test": _seen_subjects(features, loaders.test)}})
    if variant != OBSERVED:
        result["permutation"] = {"replicate": variant,
                                 "subject_label_hashes": features.subject_label_hashes(split.train + split.val)}
    if loaders.test is not None:
        evaluation = evaluate(model, loaders.test, device=device, precision=precision,
                              n_classes=loaders.n_classes, dataset_names=features.datasets)
        result["test"] = evaluation_report(evaluation, features, dataset_windows(features, pool, split.test))
        result["predictions"] = _predictions(features, evaluation)
        if len(split.test) > 1:  # each test subject scored on its own windows (pooled windows would reward each
            result["per_test_subject"] = {  # one's class balance): loso.run saves one result per subject
                str(features.subjects[subject]): {"test": report, "predictions": _predictions(features, part)}
                for subject, (report, part) in subject_reports(evaluation, features, pool).items()}
    result["train_seconds"] = time.time() - started
    result["phase_seconds"] = {"data": data_seconds, "loop": result["loop_seconds"],
                               "epoch_end": result.pop("epoch_end_seconds", 0.0),
                               "evaluation": time.time() - tested}
    return result


def _predictions(features: FeatureSet, evaluation: Evaluation) -> dict[str, list]:
    """What a result file keeps of a test evaluation: every window's trial, session, label, prediction, probabilities
    (and margins, for a model deciding by them)."""
    margins = {} if evaluation.margins is None else {"margins": np.round(evaluation.margins, 5).tolist()}
    return {"window": evaluation.windows.tolist(), "trial": features.trials[evaluation.windows].tolist(),
            "session": features.sessions[evaluation.windows].tolist(),
            "y_true": evaluation.y_true.tolist(), "y_pred": evaluation.y_pred.tolist(),
            "probabilities": np.round(evaluation.probabilities, 5).tolist(), **margins}


def _fit_torch(config: ExperimentConfig, features: FeatureSet, loaders: Loaders, model: nn.Module, variant: int,
               placement: Placement, saved: dict | None):
    """The shared epoch loop (DDP, AMP, early stopping, epoch checkpoints); (model with the best weights, precision,
    result fields)."""
    device = placement.device
    model = placement.prepare_model(model.to(device))
    optimizer = make_optimizer(model, config.training)
    scheduler = make_scheduler(optimizer, config.training)
    precision = resolve_precision(device, config.training.use_amp, config.training.amp_dtype)
    state = None
    if saved is not None:
        state = resume(saved, model, optimizer, scheduler, config.training)
        set_rng_state(saved, device)
    first_epoch = (state.epoch if state else 0) + 1

    def after_epoch(state: FitState, record: dict) -> None:
        if placement.after_epoch is not None:
            placement.after_epoch(variant, state, record, lambda: snapshot(model, optimizer, scheduler, state))

    state = fit(model, loaders, optimizer, scheduler, config.training, device=device, precision=precision,
                dataset_names=features.datasets, subject_index=features.subject_index, state=state,
                on_epoch_end=after_epoch)
    if placement.rank == 0:
        unwrap(model).load_state_dict(state.best_state)  # rank 0 alone tests: no DDP collective is involved
    rule = ({"rule": "best validation epoch", "monitor": f"val_{config.training.monitor}",
             "mode": "min" if config.training.monitor == "loss" else "max"} if loaders.val is not None
            else {"rule": LAST_EPOCH})
    return model, precision, {
        "selection": rule, "history": state.history, "best_epoch": state.best_epoch, "epochs_run": state.epoch,
        "first_epoch": first_epoch, "stopped_early": state.stopped_early, "loop_seconds": state.loop_seconds,
        "epoch_end_seconds": state.epoch_end_seconds,
        "device": str(device), "autocast": str(precision.dtype),
        "sequence_length": getattr(unwrap(model), "sequence_length", None)}


def _fit_estimator(estimator, spec: ModelSpec, features: FeatureSet, loaders: Loaders, seed: int):
    """Grid values chosen on the validation subjects, refitted on training + validation (without validation
    windows: chosen over the training trials, seeded); (module, result fields)."""
    started = time.perf_counter()
    keys = trial_keys(features, np.arange(len(features.labels)))
    fit = fit_on_loaders(estimator, spec.grid, loaders, features.subject_index, keys, seed)
    return fit.estimator, {
        "selection": {"rule": "grid", "scored_on": fit.selection},
        "history": fit.history, "chosen_params": fit.chosen, "grid_tied": fit.tied, "best_epoch": None,
        "epochs_run": 0, "first_epoch": 1, "stopped_early": False, "loop_seconds": time.perf_counter() - started,
        "device": "cpu", "autocast": "none (scikit-learn)", "sequence_length": None}
