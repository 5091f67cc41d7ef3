"""The queue that hands fold jobs (`loso.folds.FoldJob`) one at a time to long-lived Ray Train worker groups.

A *runner* is one `TorchTrainer` whose workers stay alive from one fold job to the next, so Ray
Train's start-up (controller, worker processes, torch import, process group, CUDA context) is paid
once per runner instead of once per fold. The queue leases each job to the runner that took it: a
runner whose workers were restarted after a failure takes its leased job again, and a job that failed
`max_attempts` times is reported failed so the other folds go on. Everything the driver needs (starts,
results, failures, with times on this actor's clock) comes back as events.

The queue knows jobs by their ids only (the runners and the driver hold the jobs): its actor process
imports nothing of ours, so it stays as small as Ray's own actors. It also keeps each runner's Train
controller (`loso.controllers`), which the driver aborts to stop the runners.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray


@dataclass
class Event:
    """What happened to a job: 'started', 'done' (with its results) or 'failed' (with the error)."""

    kind: str
    job_id: str
    at: float
    runner: str
    results: list[dict] | None = None
    error: str | None = None


@ray.remote(num_cpus=0)
class FoldQueue:
    """Pending fold jobs, the job each runner holds, and the events the driver has not read yet."""

    def __init__(self, job_ids: list[str], max_attempts: int):
        self.pending = deque(job_ids)
        self.leases: dict[str, tuple[str, float]] = {}
        self.attempts: dict[str, int] = {}
        self.max_attempts = max_attempts
        self.events: list[Event] = []
        self.controllers: dict[str, ray.actor.ActorHandle] = {}
        self.stopped = False

    def take(self, runner: str) -> str | None:
        """The runner's next job id (its leased one again after a restart), or None when none is left."""
        if self.stopped:
            return None
        if runner in self.leases:
            job, _ = self.leases.pop(runner)
            if self.attempts[job] >= self.max_attempts:
                self.events.append(Event("failed", job, time.time(), runner, error=(
                    f"the worker group of {runner} failed {self.attempts[job]} time(s) while training it")))
            else:
                return self._lease(runner, job)
        return self._lease(runner, self.pending.popleft()) if self.pending else None

    def _lease(self, runner: str, job: str) -> str:
        self.attempts[job] = self.attempts.get(job, 0) + 1
        self.leases[runner] = (job, time.time())
        self.events.append(Event("started", job, time.time(), runner))
        return job

    def done(self, runner: str, results: list[dict[str, Any]]) -> None:
        job, started = self.leases.pop(runner)
        finished = time.time()
        timing = {"started_at": started, "finished_at": finished, "wall_seconds": finished - started,
                  "runner": runner, "attempt": self.attempts[job]}
        self.events.append(Event("done", job, finished, runner, results=[{**r, **timing} for r in results]))

    def abandon(self, runner: str, error: str) -> None:
        """A runner gave up for good: its leased job is failed."""
        if runner in self.leases:
            job, _ = self.leases.pop(runner)
            self.events.append(Event("failed", job, time.time(), runner, error=error))

    def controller_started(self, runner: str, controller: ray.actor.ActorHandle) -> None:
        self.controllers[runner] = controller

    def stop(self) -> list[ray.actor.ActorHandle]:
        """Hand out no job from now on; the runners' Train controllers, for the driver to abort."""
        self.stopped = True
        return list(self.controllers.values())

    def drain(self) -> list[Event]:
        """The events since the last call."""
        events, self.events = self.events, []
        return events

    def leftover(self) -> list[str]:
        """Jobs no runner took (every runner stopped first)."""
        return list(self.pending)
