"""Progress of a LOSO run: fold jobs queued / running / done / failed, elapsed time and an ETA.

The ETA lays the queued jobs (each taking the mean job time so far) onto the `concurrency` slots the
run was given, after what the running jobs still need of that mean, and reports when the last slot
frees. It depends on the concurrency given, never on how many jobs happen to be running at that
instant, so it falls steadily instead of jumping as jobs start and end. On a terminal it is a tqdm bar
over fold jobs; otherwise (logs, CI) a line when a job starts or ends, and a heartbeat line after a minute
without one. The ETA needs one finished job's time: until then the line says so.
"""

from __future__ import annotations

import heapq
import sys
import time
from typing import Callable, TextIO

from tqdm.auto import tqdm


def _fmt(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class Progress:
    """Counts and ETA of `total` fold jobs run `concurrency` at a time; `clock` is injectable for tests."""

    def __init__(self, total: int, concurrency: int, *, clock: Callable[[], float] = time.monotonic,
                 stream: TextIO | None = None, bar: bool | None = None, every: float = 60.0):
        self.total, self.concurrency, self.clock = total, max(1, concurrency), clock
        self.stream = stream or sys.stderr
        self.started = clock()
        self.running: dict[str, float] = {}
        self.durations: list[float] = []
        self.failed = 0
        self.every, self.last_line = every, float("-inf")
        use_bar = self.stream.isatty() if bar is None else bar
        self.bar = tqdm(total=total, unit="fold job", file=self.stream, dynamic_ncols=True) if use_bar else None

    @property
    def done(self) -> int:
        return len(self.durations)

    @property
    def queued(self) -> int:
        return self.total - self.done - self.failed - len(self.running)

    def eta(self) -> float | None:
        """Seconds left, or None before the first job has finished."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        now = self.clock()
        slots = [max(mean - (now - start), 0.0) for start in self.running.values()]
        slots += [0.0] * max(0, self.concurrency - len(slots))
        heapq.heapify(slots)
        for _ in range(self.queued):
            heapq.heappush(slots, heapq.heappop(slots) + mean)
        return max(slots)

    def start(self, job_id: str) -> None:
        self.running[job_id] = self.clock()
        self.show(force=True)

    def finish(self, job_id: str, ok: bool = True) -> None:
        """A job ended (`ok`) or failed, also one that never started (no runner was left to take it)."""
        started = self.running.pop(job_id, self.clock())
        if ok:
            self.durations.append(self.clock() - started)
        else:
            self.failed += 1
        if self.bar is not None:
            self.bar.update(1)
        self.show(force=True)

    def eta_text(self) -> str:
        eta = self.eta()
        return "ETA after the first fold job" if eta is None else f"ETA {_fmt(eta)}"

    def line(self) -> str:
        return (f"[loso] {self.queued} queued | {len(self.running)} running | {self.done} done | {self.failed} failed"
                f" | elapsed {_fmt(self.clock() - self.started)} | {self.eta_text()}")

    def show(self, force: bool = False) -> None:
        """Refresh the bar, or print a line when something changed (`force`) or `every` seconds passed without one."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{len(self.running)} running, {self.failed} failed, {self.eta_text()}")
            return
        if force or self.clock() - self.last_line >= self.every:
            print(self.line(), file=self.stream, flush=True)
            self.last_line = self.clock()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
