"""Fold jobs, and the queue that hands them one at a time to long-lived Ray Train worker groups.

A *runner* is one `TorchTrainer` whose workers stay alive from one fold job to the next, so Ray
Train's start-up (controller, worker processes, torch import, process group, CUDA context) is paid
once per runner instead of once per fold. The queue leases each job to the runner that took it: a
runner whose workers were restarted after a failure takes its leased job again, and a job that failed
`max_attempts` times is reported failed so the other folds go on. Everything the driver needs (starts,
results, failures, with times on this actor's clock) comes back as events.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import ray

from loso.folds import Fold
from loso.training import OBSERVED

VARIANTS_PER_JOB = 20
"""Label variants (the real labels and permutations) one fold job trains in turn."""


@dataclass(frozen=True)
class FoldJob:
    """One fold's label variants that one worker group trains in turn (0 = the real labels)."""

    fold: Fold
    variants: tuple[int, ...]

    @property
    def job_id(self) -> str:
        if self.variants == (OBSERVED,):
            return self.fold.fold_id
        return f"{self.fold.fold_id}-variants{self.variants[0]:03d}-{self.variants[-1]:03d}"


def plan_jobs(folds: list[Fold], permutations: int, done: Callable[[Fold, int], bool]) -> list[FoldJob]:
    """The variants not `done` yet, in jobs of at most VARIANTS_PER_JOB; every fold's first job first."""
    chunks = []
    for fold in folds:
        missing = [v for v in range(permutations + 1) if not done(fold, v)]
        chunks += [(i, FoldJob(fold, tuple(missing[i:i + VARIANTS_PER_JOB])))
                   for i in range(0, len(missing), VARIANTS_PER_JOB)]
    return [job for _, job in sorted(chunks, key=lambda chunk: chunk[0])]


@dataclass
class Event:
    """What happened to a job: 'started', 'done' (with its results) or 'failed' (with the error)."""

    kind: str
    job: FoldJob
    at: float
    runner: str
    results: list[dict] | None = None
    error: str | None = None


@ray.remote(num_cpus=0)
class FoldQueue:
    """Pending fold jobs, the job each runner holds, and the events the driver has not read yet."""

    def __init__(self, jobs: list[FoldJob], max_attempts: int):
        self.pending = deque(jobs)
        self.leases: dict[str, tuple[FoldJob, float]] = {}
        self.attempts: dict[str, int] = {}
        self.max_attempts = max_attempts
        self.events: list[Event] = []

    def take(self, runner: str) -> FoldJob | None:
        """The runner's next job (its leased one again after a restart), or None when none is left."""
        if runner in self.leases:
            job, _ = self.leases.pop(runner)
            if self.attempts[job.job_id] >= self.max_attempts:
                self.events.append(Event("failed", job, time.time(), runner, error=(
                    f"the worker group of {runner} failed {self.attempts[job.job_id]} time(s) while training it")))
            else:
                return self._lease(runner, job)
        return self._lease(runner, self.pending.popleft()) if self.pending else None

    def _lease(self, runner: str, job: FoldJob) -> FoldJob:
        self.attempts[job.job_id] = self.attempts.get(job.job_id, 0) + 1
        self.leases[runner] = (job, time.time())
        self.events.append(Event("started", job, time.time(), runner))
        return job

    def done(self, runner: str, results: list[dict[str, Any]]) -> None:
        job, started = self.leases.pop(runner)
        finished = time.time()
        timing = {"started_at": started, "finished_at": finished, "wall_seconds": finished - started,
                  "runner": runner, "attempt": self.attempts[job.job_id]}
        self.events.append(Event("done", job, finished, runner, results=[{**r, **timing} for r in results]))

    def abandon(self, runner: str, error: str) -> None:
        """A runner gave up for good: its leased job is failed."""
        if runner in self.leases:
            job, _ = self.leases.pop(runner)
            self.events.append(Event("failed", job, time.time(), runner, error=error))

    def drain(self) -> list[Event]:
        """The events since the last call."""
        events, self.events = self.events, []
        return events

    def leftover(self) -> list[FoldJob]:
        """Jobs no runner took (every runner stopped first)."""
        return list(self.pending)
