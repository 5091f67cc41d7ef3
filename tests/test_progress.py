"""The LOSO progress view: an ETA from the given concurrency and the mean job time that falls steadily."""

from __future__ import annotations

import io

from loso.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_eta_falls_steadily_while_jobs_start_and_finish():
    # 7 jobs of 10 s, 2 at a time, the second starting 3 s late and every slot refilled one tick after it
    # frees: the number running at an instant keeps changing (2, 1, 2, ...). The old ETA divided by that
    # number and jumped (5m41s -> 2m41s -> 4m32s); this one must never go up.
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(7, concurrency=2, clock=clock, stream=stream, bar=False)
    pending = [f"job{i}" for i in range(7)]
    ends: dict[str, float] = {}
    etas = []
    while pending or ends:
        if pending and len(ends) < 2 and (clock.now >= 3.0 or not ends):
            job = pending.pop(0)
            progress.start(job)
            ends[job] = clock.now + 10.0
        clock.now += 0.5
        for job in [j for j, end in ends.items() if end <= clock.now]:
            del ends[job]
            progress.finish(job)
        if progress.eta() is not None:
            etas.append(progress.eta())
    assert progress.done == 7 and progress.queued == 0 and etas[-1] == 0.0
    assert all(later <= earlier for earlier, later in zip(etas, etas[1:])), etas
    assert etas[0] == 30.0  # at t = 10: 5 queued jobs on 2 slots (one free, one in 3 s) end at t = 40, as they do
    assert "ETA" in stream.getvalue() and "7 done" in stream.getvalue()


def test_eta_is_unknown_until_a_job_finishes_and_failures_count():
    clock = FakeClock()
    progress = Progress(3, concurrency=3, clock=clock, stream=io.StringIO(), bar=False)
    for job in ("a", "b", "c"):
        progress.start(job)
    assert progress.eta() is None and "ETA after the first fold job" in progress.line()
    clock.now = 4.0
    progress.finish("a", ok=False)
    assert progress.eta() is None and progress.failed == 1
    progress.finish("b")
    assert progress.eta() == 0.0 and progress.queued == 0 and "1 failed" in progress.line()


def test_lines_come_when_a_job_starts_or_ends_plus_a_heartbeat_after_a_quiet_minute():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(2, concurrency=1, clock=clock, stream=stream, bar=False)
    progress.start("a")
    for second in range(1, 150):  # the runner loops poll show() every second
        clock.now = float(second)
        progress.show()
    progress.finish("a")
    progress.show()
    lines = stream.getvalue().splitlines()
    assert [line.split("elapsed ")[1].split(" |")[0] for line in lines] == ["0m00s", "1m00s", "2m00s", "2m29s"]
    assert all("ETA after the first fold job" in line for line in lines[:3]) and lines[3].endswith("ETA 2m29s")


def test_a_terminal_gets_a_progress_bar():
    stream = io.StringIO()
    progress = Progress(2, concurrency=1, clock=FakeClock(), stream=stream, bar=True)
    progress.start("a")
    progress.finish("a")
    progress.close()
    assert "1/2" in stream.getvalue() and "fold job" in stream.getvalue()


def test_a_job_no_runner_took_counts_as_failed():
    progress = Progress(2, concurrency=1, clock=FakeClock(), stream=io.StringIO(), bar=False)
    progress.start("job0")
    progress.finish("job0")
    progress.finish("job1", ok=False)  # every runner stopped before it was taken
    assert (progress.done, progress.failed, progress.queued) == (1, 1, 0)
