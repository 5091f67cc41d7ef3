"""One fold as a Ray Train job: a thin DDP shell around `loso.training.train_variant`.

Two worker loops over the same fold code (DDP over gloo on CPU, NCCL on GPU): `serve_folds`, the LOSO
runner, trains fold jobs taken from a `loso.fold_queue.FoldQueue` one after another in long-lived
workers (`run_runner` fits it in a thread of the driver); `train_fold` trains one fold for a DDP Tune trial or a search's winner
(`fit_fold` launches it and returns rank 0's results, handed back as a checkpoint so they reach the driver
on any cluster without shared files); a one-worker Tune trial trains in its own process (`train_here`).
A fold's results are one per label variant: the real labels, or permutations
of them for a null distribution.

A runner reports its fold job's training state as a Ray Train checkpoint every `checkpoint_every`
epochs (model, optimizer, scheduler, early stopping, every rank's random state, and the job's finished
variants); when Ray Train restarts a failed worker group, the job goes on from that epoch.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import socket
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import ray
import ray.train
import ray.train.torch
import torch
from ray.train import Checkpoint, CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from gru_xnet.config import ExperimentConfig
from gru_xnet.engine import rng_state
from gru_xnet.features import FeatureSet
from gru_xnet.models import ModelSpec
from gru_xnet.provenance import provenance
from gru_xnet.split import Split
from loso.controllers import AnnounceController
from loso.training import OBSERVED, Placement, train_variant

RESULT_FILE = "fold_result.json"
JOB_FILE, FIT_FILE, RNG_FILE = "job.json", "fit_state.pt", "rng_rank{rank}.pt"
log = logging.getLogger(__name__)


def _placement(after_epoch: Callable | None = None) -> Placement:
    """Where this Ray Train worker trains: its rank, the world size, its device and the DDP wrapper."""
    context = ray.train.get_context()
    return Placement(rank=context.get_world_rank(), world_size=context.get_world_size(),
                     device=ray.train.torch.get_device(), prepare_model=ray.train.torch.prepare_model,
                     after_epoch=after_epoch)


def node() -> dict[str, str]:
    """The Ray node this process runs on (its id, IP address and host name), recorded in every fold result."""
    return {"id": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname()}


def _from_rank0(value: Any, placement: Placement) -> Any:
    """Rank 0's `value` on every rank of the worker group."""
    if placement.world_size == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _epoch_report(report: Callable[[dict], None]) -> Callable:
    """A Placement's `after_epoch` that hands each epoch's record, with the epoch the early-stopping rule keeps so
    far, to `report` (Tune's ASHA and Optuna read them)."""
    def after_epoch(variant: int, state, record: dict, _snapshot) -> None:
        report({**record, "best_epoch": state.best_epoch, "variant": variant, "fold_done": False})
    return after_epoch


def train_here(config: ExperimentConfig, features: FeatureSet, split: Split, seed: int, spec: ModelSpec | None,
               report: Callable[[dict], None]) -> dict[str, Any]:
    """One fold's real labels trained in this Ray process (a one-worker Tune trial) on the GPU Ray assigned it, if
    any, else the CPU; each epoch's record goes to `report`."""
    device = torch.device("cuda") if ray.get_gpu_ids() else torch.device("cpu")
    return train_variant(config, features, split, seed, OBSERVED, Placement(device=device,
                                                                            after_epoch=_epoch_report(report)),
                         spec=spec)


def train_fold(loop_config: dict[str, Any]) -> None:
    """Ray Train worker loop for one fold (a DDP Tune trial): each label variant trained in turn, results from
    rank 0."""
    config = ExperimentConfig.from_dict(loop_config["config"])
    features: FeatureSet = ray.get(loop_config["features"])
    split: Split = loop_config["split"]
    placement = _placement(_epoch_report(ray.train.report))
    results = [train_variant(config, features, split, loop_config["seed"], variant, placement,
                             spec=loop_config["spec"]) for variant in loop_config["variants"]]
    summary = {"fold_done": True, "variants": len(results)}
    if placement.rank != 0:
        ray.train.report(summary)
        return
    environment = {"provenance": provenance(), "node": node()}
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, RESULT_FILE), "w") as fh:
            json.dump([{**result, **environment} for result in results], fh)
        ray.train.report(summary, checkpoint=Checkpoint.from_directory(tmp))


class JobProgress:
    """A fold job's progress kept as Ray Train checkpoints, so a restarted worker group resumes it mid-training.

    Every `every` epochs, every rank reports a checkpoint: rank 0 adds the training snapshot and the
    job's finished variants, each rank its own random state (one folder; Ray Train merges the ranks'
    files). After a restart `saved` finds the job in the run's latest checkpoint.
    """

    def __init__(self, key: str, placement: Placement, every: int):
        self.key, self.placement, self.every = key, placement, every
        self.results: list[dict] = []

    def saved(self) -> tuple[list[dict], dict | None]:
        """(finished variants' results, the interrupted variant's saved state) of this job in the latest checkpoint."""
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return [], None
        try:
            with checkpoint.as_directory() as folder:
                record = json.loads(Path(folder, JOB_FILE).read_text())
                if record["job_id"] != self.key:
                    return [], None
                state = torch.load(Path(folder, FIT_FILE), map_location="cpu", weights_only=True)
                rng = torch.load(Path(folder, RNG_FILE.format(rank=self.placement.rank)), weights_only=True)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # e.g. node-local storage read from another node
            log.warning("fold job %s: its checkpoint %s cannot be read (%s); training it from its first epoch",
                        self.key, checkpoint.path, exc)
            return [], None
        log.info("fold job %s: resuming variant %d after epoch %d", self.key, record["variant"], state["epoch"])
        return record["results"], {**state, **rng}

    def after_epoch(self, variant: int, state, _record: dict, snapshot: Callable[[], dict]) -> None:
        if not self.every or state.epoch % self.every:
            return
        rank, device = self.placement.rank, self.placement.device
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:
                Path(tmp, JOB_FILE).write_text(json.dumps(
                    {"job_id": self.key, "variant": variant, "epoch": state.epoch, "results": self.results}))
                torch.save(snapshot(), Path(tmp, FIT_FILE))
            torch.save(rng_state(device), Path(tmp, RNG_FILE.format(rank=rank)))
            ray.train.report({"job": self.key, "variant": variant, "epoch": state.epoch},
                             checkpoint=Checkpoint.from_directory(tmp))


@dataclass(frozen=True)
class FoldContext:
    """What a fold job of one run needs besides its fold: the run's config (as a dict), model entry and features
    (the ObjectRef inside a list, so Ray passes the reference), and whether the model is a scikit-learn estimator.
    A runner serves the jobs of several runs (a whole `loso.benchmark`), each job naming its run's context."""

    config: dict[str, Any]
    spec: ModelSpec | None
    features_box: list
    estimator: bool = False


def serve_folds(loop_config: dict[str, Any]) -> None:
    """Ray Train worker loop of a runner: fold jobs from the queue, one after another, until none is left.

    Rank 0 takes each job and hands it to the other ranks; all ranks train it (DDP); rank 0 returns
    the results to the queue. The processes, the torch import, the process group and the CUDA context
    stay from one fold to the next, and from one run's jobs to the next's (`run_runner`'s `work`: the runs'
    `FoldContext`s, and each job's key mapped to its run's index and the job). A scikit-learn job is fitted
    by rank 0 alone on the CPU while the other ranks wait for the next job. After a worker failure Ray Train restarts
    this loop, and the queue hands the runner the job it held again, which goes on from its last epoch
    checkpoint.
    """
    contexts, jobs = ray.get(loop_config["work"][0])
    configs = [ExperimentConfig.from_dict(context.config) for context in contexts]
    features: dict[int, FeatureSet] = {}  # zero-copy views of the object store, fetched when first needed
    queue, runner = loop_config["queue"], loop_config["runner"]
    where = _placement()
    environment = {"provenance": provenance(), "node": node()}
    frozen = False
    while (key := _from_rank0(ray.get(queue.take.remote(runner)) if where.rank == 0 else None, where)):
        index, job = jobs[key]
        context, config = contexts[index], configs[index]
        if index not in features:
            features[index] = ray.get(context.features_box[0])
        if context.estimator:
            if where.rank == 0:
                results = [train_variant(config, features[index], job.fold.split, job.fold.seed, variant,
                                         spec=context.spec) for variant in job.variants]
                ray.get(queue.done.remote(runner, [{**result, **environment} for result in results]))
            continue
        progress = JobProgress(key, where, loop_config["checkpoint_every"])
        progress.results, saved = progress.saved()
        placement = replace(where, after_epoch=progress.after_epoch)
        for variant in job.variants[len(progress.results):]:
            result = train_variant(config, features[index], job.fold.split, job.fold.seed, variant, placement, saved,
                                   spec=context.spec)
            progress.results.append(result)
            saved = None
        if where.rank == 0:
            ray.get(queue.done.remote(runner, [{**result, **environment} for result in progress.results]))
        _give_back_memory()
        if not frozen:  # what is alive now (imports, also the first job's lazy ones) lives as long as the runner:
            gc.freeze()  # later collections need not walk it
            frozen = True
    ray.train.report({"runner_done": True})


def _give_back_memory() -> None:
    """Return to the system the heap a finished job freed, which glibc would keep: a runner that goes on to another
    model's jobs then holds its next job's memory, not the largest job's so far. After the first job the collection
    walks only what was made since `serve_folds` froze the runner's long-lived objects (0.2 ms, not 0.25 s)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def shared(features: FeatureSet) -> tuple[ray.ObjectRef, FeatureSet]:
    """Put the features into Ray's object store: its reference and the store's zero-copy view, which the caller
    keeps instead of its own arrays, so a node holds one copy however many folds read it."""
    ref = ray.put(features)
    return ref, ray.get(ref)


RUNNER_BASE_BYTES = 1.1 * 2 ** 30
WORKER_BYTES = 0.5 * 2 ** 30
"""Host memory of one runner's Ray processes (task, Train controller, actors) and of one training worker
(torch, its fold's batches), the features being shared: bench/bench_memory.py measured 1.5-1.7 GB per
runner of one worker on full-size DEAP."""


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
        """How many folds fit on the cluster at once: its CPUs, its GPUs when folds use them, and its memory."""
        limits = [cluster.get("CPU", 0.0) // (self.workers * self.cpus_per_worker), self.memory_limit(cluster)]
        if self.gpus_per_worker:
            limits.append(cluster.get("GPU", 0.0) // (self.workers * self.gpus_per_worker))
        return max(1, int(min(limits)))

    def runner_bytes(self) -> float:
        """Host memory one runner takes beyond the shared features: its Ray processes and its DDP workers."""
        return RUNNER_BASE_BYTES + self.workers * WORKER_BYTES

    def memory_limit(self, cluster: dict[str, float]) -> int:
        """Runners the cluster's schedulable memory (Ray's `memory` resource) holds; no limit when unknown."""
        memory = cluster.get("memory")
        return int(memory // self.runner_bytes()) if memory else 10 ** 6


def fit_fold(*, run_name: str, config: ExperimentConfig, features_ref: ray.ObjectRef, split: Split, seed: int,
             resources: FoldResources, storage_path: str, callbacks: Sequence[Any] = (),
             variants: Sequence[int] = (OBSERVED,), spec: ModelSpec | None = None) -> list[dict[str, Any]]:
    """Run one fold's label variants as one TorchTrainer (a Tune trial); rank 0's result per variant, in order.

    `spec`: the model's registry entry (default: the config's `model.name`; a user model's carries its source).

    Raises TrainingFailedError when the fold fails past its retries.
    """
    loop_config = {"config": config.to_dict(), "spec": spec, "features": features_ref, "seed": seed,
                   "variants": list(variants), "split": split}
    result = _fit(train_fold, loop_config, run_name=run_name, resources=resources, storage_path=storage_path,
                  callbacks=callbacks, max_failures=resources.max_failures)
    if result.checkpoint is None:
        raise RuntimeError(f"fold {run_name} finished without reporting its result")
    with result.checkpoint.as_directory() as folder:
        with open(os.path.join(folder, RESULT_FILE)) as fh:
            return json.load(fh)


def start_train_coordinator() -> None:
    """Create Ray Train's autoscaling coordinator now, while the runners' controllers start: one detached actor per
    cluster, which each Train run's controller asks for its workers' resources and otherwise creates on first use,
    so that the first runners waited about 0.9 s for its process after their own had started. Ray 2.60 internals
    (`get_or_create_autoscaling_coordinator` returns at once, and a later call finds the same actor); a Ray without
    it starts runners as before."""
    try:
        from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
            get_or_create_autoscaling_coordinator,
        )
    except ImportError:
        return
    get_or_create_autoscaling_coordinator()


def run_runner(name: str, work: list, queue: ray.actor.ActorHandle, jobs: int, resources: FoldResources,
               storage_path: str, checkpoint_every: int = 1) -> None:
    """One runner: a TorchTrainer, fitted in a thread of the driver, that serves the jobs the queue hands out until
    none is left.

    `work` boxes the reference to (the runs' `FoldContext`s, each job's key -> its run's index and the job), put
    once for every runner: the Train controller passes it on without unpickling the fold code. The controller
    announces itself to the queue (`loso.controllers`), through which the driver stops the runner. Ray Train
    restarts the worker group after a failure as long as some of the `jobs` jobs may still need it (the queue
    stops re-leasing a job after `resources.max_failures + 1` attempts); the job resumes from its checkpoint of
    the last multiple of `checkpoint_every` epochs (0: no checkpoints, it starts over).
    """
    drop_half_written_state(storage_path, name)
    _fit(serve_folds, {"work": work, "queue": queue, "runner": name, "checkpoint_every": checkpoint_every},
         run_name=name, resources=resources, storage_path=storage_path, callbacks=(AnnounceController(queue, name),),
         max_failures=(resources.max_failures + 1) * jobs, left_out=RUNNER_LEFT_OUT)


SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"


def drop_half_written_state(storage_path: str, run_name: str) -> None:
    """Remove a run's Ray Train checkpoint-manager snapshot that a killed driver left half-written (Ray writes it in
    place): Ray Train would refuse to start the runner on it. Its fold job then restarts from its first epoch.
    Local and NFS storage only (a bucket's objects are written whole)."""
    if "://" in storage_path:
        return
    snapshot = Path(storage_path) / run_name / SNAPSHOT_FILE
    try:
        json.loads(snapshot.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        log.warning("%s: Ray Train's %s was left half-written by a killed run; removed, the runner starts afresh",
                    run_name, snapshot)
        snapshot.unlink(missing_ok=True)


@contextlib.contextmanager
def _sigint_handler_restored() -> Iterator[None]:
    """Put back the SIGINT handler that `TorchTrainer.fit` replaces in a main thread: Ray Train's handler holds the
    Train controller's handle, which would keep the controller actor (hundreds of MB) alive after the fit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


LEFT_OUT = ("DatasetsCallback",)
"""Ray Train's default callbacks that every fold's Train run goes without (`FoldTrainer`)."""


class FoldTrainer(TorchTrainer):
    """A TorchTrainer without the Ray Train default callbacks named in `left_out` (a Ray without this hook keeps
    them; nothing else changes). Always left out: Ray Data's `DatasetManager` actor, which Ray Train (2.5x)
    starts for every run whether or not it is given Ray Datasets (folds read their features from the object
    store; one more Python process per run, 1.2 CPU-seconds on 2 cores). A runner also leaves out the detached
    placement-group cleaner (`RUNNER_LEFT_OUT`)."""

    def __init__(self, *args, left_out: Sequence[str] = LEFT_OUT, **kwargs):
        super().__init__(*args, **kwargs)
        self.left_out = tuple(left_out)

    def _create_default_callbacks(self) -> list:
        return [c for c in super()._create_default_callbacks() if type(c).__name__ not in self.left_out]


RUNNER_LEFT_OUT = (*LEFT_OUT, "PlacementGroupCleanerCallback")
"""A runner's Train run goes without Ray Train's placement-group cleaner, a detached actor that removes the
workers' reservation if the controller dies without shutting down: launching it took about 1 s of each
runner's start on 2 cores, and its process 1.5 CPU-seconds. A runner's controller is stopped by the driver
(`loso.controllers`), and if it died unannounced no later runner of the run would wait for its reservation,
which Ray releases when the driver exits. A Tune trial or a winner's test (`fit_fold`) keeps the cleaner: a
later trial would wait for the CPUs."""


def _fit(loop: Callable[[dict], None], loop_config: dict[str, Any], *, run_name: str, resources: FoldResources,
         storage_path: str, callbacks: Sequence[Any], max_failures: int,
         left_out: Sequence[str] = LEFT_OUT):
    """Run `loop` on a TorchTrainer and return its Result.

    Worker failures during training are retried by Ray Train (`max_failures`); a worker lost while
    the controller sets the group up surfaces as a ControllerError, which is retried here as often as
    a fold's failures are.
    """
    for attempt in range(resources.max_failures + 1):
        trainer = FoldTrainer(
            loop, train_loop_config=loop_config, scaling_config=resources.scaling(), left_out=left_out,
            run_config=RunConfig(name=f"{run_name}-retry{attempt}" if attempt else run_name, storage_path=storage_path,
                                 callbacks=list(callbacks), failure_config=FailureConfig(max_failures=max_failures),
                                 checkpoint_config=CheckpointConfig(num_to_keep=1)))
        try:
            with _sigint_handler_restored():
                return trainer.fit()
        except ray.train.ControllerError as exc:
            if attempt == resources.max_failures:
                raise
            log.warning("%s: Ray Train controller failed (%s); retrying", run_name, exc)
    raise AssertionError("unreachable")
