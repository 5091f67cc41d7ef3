"""One fold as a Ray Train job: a thin DDP shell around `loso.training.train_variant`.

Two worker loops over the same fold code (DDP over gloo on CPU, NCCL on GPU): `serve_folds`, the LOSO
runner, trains fold jobs taken from a `loso.fold_queue.FoldQueue` one after another in long-lived
workers (`run_runner` launches it); `train_fold` trains one fold for a Tune trial (`fit_fold` launches
it and returns rank 0's results, handed back as a checkpoint so they reach the driver on any cluster
without shared files). A fold's results are one per label variant: the real labels, or permutations
of them for a null distribution.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import ray
import ray.train
import ray.train.torch
import torch
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from gru_xnet.config import ExperimentConfig
from gru_xnet.data_loader import Split
from gru_xnet.features import FeatureSet
from gru_xnet.provenance import provenance
from loso.training import OBSERVED, Placement, train_variant

RESULT_FILE = "fold_result.json"
log = logging.getLogger(__name__)


def _placement(report: Callable[[dict], None] | None) -> Placement:
    """Where this Ray Train worker trains: its rank, the world size, its device and the DDP wrapper."""
    context = ray.train.get_context()
    return Placement(rank=context.get_world_rank(), world_size=context.get_world_size(),
                     device=ray.train.torch.get_device(), prepare_model=ray.train.torch.prepare_model,
                     report=report)


def _from_rank0(value: Any, placement: Placement) -> Any:
    """Rank 0's `value` on every rank of the worker group."""
    if placement.world_size == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def train_fold(loop_config: dict[str, Any]) -> None:
    """Ray Train worker loop for one fold (a Tune trial): each label variant trained in turn, results from rank 0."""
    config = ExperimentConfig.from_dict(loop_config["config"])
    features: FeatureSet = ray.get(loop_config["features"])
    split = Split(*(tuple(loop_config["split"][k]) for k in ("train", "val", "test")),
                  sessions=loop_config["split"]["sessions"])
    placement = _placement(report=ray.train.report)
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


def serve_folds(loop_config: dict[str, Any]) -> None:
    """Ray Train worker loop of a runner: fold jobs from the queue, one after another, until none is left.

    Rank 0 takes each job and hands it to the other ranks; all ranks train it (DDP); rank 0 returns
    the results to the queue. The processes, the torch import, the process group and the CUDA context
    stay from one fold to the next. After a worker failure Ray Train restarts this loop, and the queue
    hands the runner the job it held again.
    """
    config = ExperimentConfig.from_dict(loop_config["config"])
    features: FeatureSet = ray.get(loop_config["features"])
    queue, runner = loop_config["queue"], loop_config["runner"]
    placement = _placement(report=None)
    environment = provenance()
    while (job := _from_rank0(ray.get(queue.take.remote(runner)) if placement.rank == 0 else None, placement)):
        results = [train_variant(config, features, job.fold.split, job.fold.seed, variant, placement)
                   for variant in job.variants]
        if placement.rank == 0:
            ray.get(queue.done.remote(runner, [{**result, "provenance": environment} for result in results]))
    ray.train.report({"runner_done": True})


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
    """Run one fold's label variants as one TorchTrainer (a Tune trial); rank 0's result per variant, in order.

    Raises TrainingFailedError when the fold fails past its retries.
    """
    loop_config = {"config": config.to_dict(), "features": features_ref, "seed": seed, "variants": list(variants),
                   "split": {"train": list(split.train), "val": list(split.val), "test": list(split.test),
                             "sessions": None if split.sessions is None else list(split.sessions)}}
    result = _fit(train_fold, loop_config, run_name=run_name, resources=resources, storage_path=storage_path,
                  callbacks=callbacks, max_failures=resources.max_failures, keep_checkpoint=True)
    if result.checkpoint is None:
        raise RuntimeError(f"fold {run_name} finished without reporting its result")
    with result.checkpoint.as_directory() as folder:
        with open(os.path.join(folder, RESULT_FILE)) as fh:
            return json.load(fh)


def run_runner(*, name: str, config: ExperimentConfig, features_ref: ray.ObjectRef, queue: ray.actor.ActorHandle,
               resources: FoldResources, storage_path: str, n_jobs: int) -> None:
    """One runner: a TorchTrainer serving fold jobs from `queue` until it is empty.

    Ray Train restarts the worker group after a failure as long as some job may still need it (the
    queue stops re-leasing a job after `resources.max_failures + 1` attempts).
    """
    _fit(serve_folds, {"config": config.to_dict(), "features": features_ref, "queue": queue, "runner": name},
         run_name=name, resources=resources, storage_path=storage_path, callbacks=(),
         max_failures=(resources.max_failures + 1) * n_jobs, keep_checkpoint=False)


def _fit(loop: Callable[[dict], None], loop_config: dict[str, Any], *, run_name: str, resources: FoldResources,
         storage_path: str, callbacks: Sequence[Any], max_failures: int, keep_checkpoint: bool):
    """Run `loop` on a TorchTrainer and return its Result.

    Worker failures during training are retried by Ray Train (`max_failures`); a worker lost while
    the controller sets the group up surfaces as a ControllerError, which is retried here as often as
    a fold's failures are.
    """
    for attempt in range(resources.max_failures + 1):
        trainer = TorchTrainer(
            loop, train_loop_config=loop_config, scaling_config=resources.scaling(),
            run_config=RunConfig(name=f"{run_name}-retry{attempt}" if attempt else run_name, storage_path=storage_path,
                                 callbacks=list(callbacks), failure_config=FailureConfig(max_failures=max_failures),
                                 checkpoint_config=CheckpointConfig(num_to_keep=1 if keep_checkpoint else None)))
        try:
            return trainer.fit()
        except ray.train.ControllerError as exc:
            if attempt == resources.max_failures:
                raise
            log.warning("%s: Ray Train controller failed (%s); retrying", run_name, exc)
    raise AssertionError("unreachable")
