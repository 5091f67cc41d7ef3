"""A watchdog that stops a driver's local Ray instance when the driver dies without stopping it.

A `loso.run` or `tune.search` killed with SIGKILL (by a user, a scheduler or the OOM killer) runs no
handler: Ray's GCS and raylet die with it, but Ray's agents then wait 60 s on the dead GCS, and
workers may linger. `watch_local_instance` starts this module as a small process of its own that
follows the driver's process tree and, once the driver is gone, kills what remains of it. It reads
/proc, so it works on Linux and does nothing elsewhere.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

POLL_SECONDS = 0.5


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat): with the pid, it names one process, never a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (Linux; empty elsewhere)."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return children.union(*(descendants(c) for c in children)) if children else children


def watch(driver: int, driver_started: str) -> None:
    """Follow `driver`'s process tree until it is gone, then SIGKILL every process of the tree still alive.

    The driver holds the write end of this process's stdin: it reads end-of-file the moment the driver
    exits, however it exits.
    """
    seen: dict[int, str] = {}
    while _start_time(driver) == driver_started:
        for pid in descendants(driver) - {os.getpid()}:
            if pid not in seen and (started := _start_time(pid)) is not None:
                seen[pid] = started
        if select.select([sys.stdin], [], [], POLL_SECONDS)[0] and not os.read(sys.stdin.fileno(), 1):
            break
    for pid, started in seen.items():
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def watch_local_instance() -> None:
    """Start the watchdog for this process (call right after starting a local Ray instance).

    On a normal exit this process shuts Ray down and waits for the watchdog, so nothing outlives it.
    """
    started = _start_time(os.getpid())
    if started is None:  # no /proc: not Linux
        return
    watchdog = subprocess.Popen([sys.executable, "-m", "loso.reaper", str(os.getpid()), started],
                                start_new_session=True, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def stop() -> None:  # runs before Ray's own exit handler (atexit is last in, first out)
        import ray  # not at the top: the watchdog process itself never needs Ray

        ray.shutdown()
        watchdog.stdin.close()
        watchdog.wait(timeout=30)

    atexit.register(stop)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
