"""One fold as a Ray Train job: a thin DDP shell around `gru_xnet.engine.fit`.

`train_fold` runs on every worker (DDP over gloo on CPU, NCCL on GPU); `fit_fold` launches it from a
driver (a LOSO task or a Tune trial) and returns the fold's results, one per label variant (the real
labels, or permutations of them for a null distribution), which rank 0 hands back as a checkpoint so
they reach the driver on any cluster without shared files.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import ray
import ray.train
import ray.train.torch
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from gru_xnet.config import ExperimentConfig
from gru_xnet.data_loader import Split, make_loaders
from gru_xnet.engine import (evaluate, fit, make_optimizer, make_scheduler, resolve_precision, seed_everything,
                             unwrap)
from gru_xnet.features import FeatureSet
from gru_xnet.model import build_model
from gru_xnet.provenance import provenance
from gru_xnet.results import evaluation_report

RESULT_FILE = "fold_result.json"
log = logging.getLogger(__name__)


OBSERVED = 0
"""Variant 0 of a fold trains on the real labels; variant k > 0 on the k-th permutation of them."""


def _seen_subjects(features: FeatureSet, loader) -> list[str]:
    """Subjects whose windows a loader can deliver (for leakage checks)."""
    if loader is None:
        return []
    return sorted({str(features.subjects[s]) for s in np.unique(features.subject_index[loader.dataset.indices])})


def fold_labels(features: FeatureSet, split: Split, seed: int, variant: int) -> FeatureSet:
    """The features with the fold's labels: as recorded, or permuted within the training and validation subjects."""
    if variant == OBSERVED:
        return features
    return features.with_permuted_labels(split.train + split.val, seed=[seed, variant, *split.test])


def train_variant(config: ExperimentConfig, features: FeatureSet, split: Split, seed: int, variant: int
                  ) -> dict[str, Any] | None:
    """Train one label variant of a fold with the shared engine and test it once; rank 0 returns the result."""
    started = time.time()
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    features = fold_labels(features, split, seed, variant)
    seed_everything(seed)
    device = ray.train.torch.get_device()
    loaders = make_loaders(features, split, config.data, batch_size=max(1, config.training.batch_size // world),
                           seed=seed, rank=rank, world_size=world, pin_memory=device.type == "cuda")
    model = ray.train.torch.prepare_model(build_model(config.model, loaders.input_shape, loaders.n_classes))
    optimizer = make_optimizer(model, config.training)
    precision = resolve_precision(device, config.training.use_amp, config.training.amp_dtype)

    def report_epoch(state, record: dict) -> None:
        ray.train.report({**record, "best_epoch": state.best_epoch, "variant": variant, "fold_done": False})

    state = fit(model, loaders, optimizer, make_scheduler(optimizer, config.training), config.training,
                device=device, precision=precision, dataset_names=features.datasets, on_epoch_end=report_epoch)
    if rank != 0:
        return None
    pool = np.concatenate([split.windows(features, "train"), split.windows(features, "val")])
    result = {"variant": variant, "label_hash": features.label_hash(pool), "history": state.history,
              "best_epoch": state.best_epoch, "epochs_run": state.epoch, "stopped_early": state.stopped_early,
              "world_size": world, "device": str(device), "autocast": str(precision.dtype), "seen_subjects": {
                  "train": _seen_subjects(features, loaders.train), "val": _seen_subjects(features, loaders.val),
                  "test": _seen_subjects(features, loaders.test)}}
    if loaders.test is not None:
        unwrap(model).load_state_dict(state.best_state)  # rank 0 alone: no DDP collective is involved
        evaluation = evaluate(model, loaders.test, device=device, precision=precision,
                              n_classes=loaders.n_classes, dataset_names=features.datasets)
        result["test"] = evaluation_report(evaluation, features, pool)
        result["predictions"] = {"window": evaluation.windows.tolist(),
                                 "trial": features.trials[evaluation.windows].tolist(),
                                 "session": features.sessions[evaluation.windows].tolist(),
                                 "y_true": evaluation.y_true.tolist(), "y_pred": evaluation.y_pred.tolist(),
                                 "probabilities": np.round(evaluation.probabilities, 5).tolist()}
    result["train_seconds"] = time.time() - started
    return result


def train_fold(loop_config: dict[str, Any]) -> None:
    """Ray Train worker loop for one fold: each requested label variant trained in turn, results from rank 0.

    The variants of a fold share this worker group, so a permutation null pays Ray Train's start-up
    once per fold, not once per permutation.
    """
    config = ExperimentConfig.from_dict(loop_config["config"])
    features: FeatureSet = ray.get(loop_config["features"])
    split = Split(*(tuple(loop_config["split"][k]) for k in ("train", "val", "test")),
                  sessions=loop_config["split"]["sessions"])
    results = [train_variant(config, features, split, loop_config["seed"], variant)
               for variant in loop_config["variants"]]
    summary = {"fold_done": True, "variants": len(results)}
    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report(summary)
        return
    environment = provenance()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, RESULT_FILE), "w") as fh:
            json.dump([{**result, "provenance": environment} for result in results], fh)
        ray.train.report(summary, checkpoint=Checkpoint.from_directory(tmp))


@dataclass(frozen=True)
class FoldResources:
    """Per-fold Ray Train resources: DDP workers and what each one reserves."""

    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_failures: int = 2

    def scaling(self) -> ScalingConfig:
        resources = {"CPU": self.cpus_per_worker}
        if self.gpus_per_worker:
            resources["GPU"] = self.gpus_per_worker
        return ScalingConfig(num_workers=self.workers, use_gpu=self.gpus_per_worker > 0,
                             resources_per_worker=resources)

    def concurrent_folds(self, cluster: dict[str, float]) -> int:
        """How many folds fit on the cluster at once (GPUs are the limit when folds use them)."""
        limits = [cluster.get("CPU", 0.0) // (self.workers * self.cpus_per_worker)]
        if self.gpus_per_worker:
            limits.append(cluster.get("GPU", 0.0) // (self.workers * self.gpus_per_worker))
        return max(1, int(min(limits)))


def fit_fold(*, run_name: str, config: ExperimentConfig, features_ref: ray.ObjectRef, split: Split, seed: int,
             resources: FoldResources, storage_path: str, callbacks: Sequence[Any] = (),
             variants: Sequence[int] = (OBSERVED,)) -> list[dict[str, Any]]:
    """Run one fold's label variants as one TorchTrainer; rank 0's result per variant, in order.

    Raises TrainingFailedError when the fold fails past its retries.

    Worker failures during training are retried by Ray Train (`max_failures`); a worker lost while
    the controller sets the group up surfaces as a ControllerError, which is retried here as often.
    """
    for attempt in range(resources.max_failures + 1):
        try:
            return _fit_once(run_name=f"{run_name}-retry{attempt}" if attempt else run_name, config=config,
                             features_ref=features_ref, split=split, seed=seed, resources=resources,
                             storage_path=storage_path, callbacks=callbacks, variants=variants)
        except ray.train.ControllerError as exc:
            if attempt == resources.max_failures:
                raise
            log.warning("fold %s: Ray Train controller failed (%s); retrying", run_name, exc)
    raise AssertionError("unreachable")


def _fit_once(*, run_name: str, config: ExperimentConfig, features_ref: ray.ObjectRef, split: Split, seed: int,
              resources: FoldResources, storage_path: str, callbacks: Sequence[Any],
              variants: Sequence[int]) -> list[dict[str, Any]]:
    trainer = TorchTrainer(
        train_fold,
        train_loop_config={"config": config.to_dict(), "features": features_ref, "seed": seed,
                           "variants": list(variants),
                           "split": {"train": list(split.train), "val": list(split.val), "test": list(split.test),
                                     "sessions": None if split.sessions is None else list(split.sessions)}},
        scaling_config=resources.scaling(),
        run_config=RunConfig(name=run_name, storage_path=storage_path, callbacks=list(callbacks),
                             failure_config=FailureConfig(max_failures=resources.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"fold {run_name} finished without reporting its result")
    with result.checkpoint.as_directory() as folder:
        with open(os.path.join(folder, RESULT_FILE)) as fh:
            return json.load(fh)
