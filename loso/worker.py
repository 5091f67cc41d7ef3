"""One fold as a Ray Train job: a thin DDP shell around `loso.training.train_variant`.

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
from dataclasses import dataclass
from typing import Any, Sequence

import ray
import ray.train
import ray.train.torch
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from gru_xnet.config import ExperimentConfig
from gru_xnet.data_loader import Split
from gru_xnet.features import FeatureSet
from gru_xnet.provenance import provenance
from loso.training import OBSERVED, Placement, train_variant

RESULT_FILE = "fold_result.json"
log = logging.getLogger(__name__)


def train_fold(loop_config: dict[str, Any]) -> None:
    """Ray Train worker loop for one fold: each requested label variant trained in turn, results from rank 0.

    The variants of a fold share this worker group, so a permutation null pays Ray Train's start-up
    once per fold, not once per permutation.
    """
    config = ExperimentConfig.from_dict(loop_config["config"])
    features: FeatureSet = ray.get(loop_config["features"])
    split = Split(*(tuple(loop_config["split"][k]) for k in ("train", "val", "test")),
                  sessions=loop_config["split"]["sessions"])
    context = ray.train.get_context()
    placement = Placement(rank=context.get_world_rank(), world_size=context.get_world_size(),
                          device=ray.train.torch.get_device(), prepare_model=ray.train.torch.prepare_model,
                          report=ray.train.report)
    results = [train_variant(config, features, split, loop_config["seed"], variant, placement)
               for variant in loop_config["variants"]]
    summary = {"fold_done": True, "variants": len(results)}
    if placement.rank != 0:
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
