"""Soak and clean exits: many tiny folds on the session's local instance, then nothing of the run is left."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gru_xnet.datasets import write_synthetic
from loso.run import main
from tests.conftest import tiny_config

pytestmark = [pytest.mark.ray, pytest.mark.heavy]
RAY_SINGLETONS = {"_AutoscalingCoordinatorActor"}
"""Ray's own detached, cluster-wide coordinator (one per cluster, not per run), created by Ray Train."""


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _leftovers(ray_module, before: set[str] = frozenset()) -> tuple[list, list]:
    """Placement groups not removed, and actors alive (bar Ray's own singletons), other than the ids in `before`."""
    from ray._private import state

    groups = [g for k, g in ray_module.util.placement_group_table().items() if g["state"] != "REMOVED" and k not in before]
    actors = [a["ActorClassName"] for k, a in state.actors().items()
              if a["State"] != "DEAD" and a["ActorClassName"] not in RAY_SINGLETONS and k not in before]
    return groups, actors


def _alive_ids(ray_module) -> set[str]:
    from ray._private import state

    return set(ray_module.util.placement_group_table()) | set(state.actors())


@pytest.mark.soak
def test_sixty_folds_four_in_flight_flat_driver_memory_and_nothing_left(ray_session, tmp_path):
    root = tmp_path / "data"
    write_synthetic(root, ["GAMEEMO"], 10, seconds=6.0)  # 60 folds: 10 subjects x 6 seeds, each a few batches
    config = tiny_config(root, tmp_path, datasets=("GAMEEMO",), num_epochs=1)
    config.data.augmentation_ratio = 0.0
    config.save(tmp_path / "tiny.json")
    out = tmp_path / "soak"
    before = _alive_ids(ray_session)  # other tests' leftovers are theirs
    samples: list[tuple[int, float]] = []  # (folds saved, driver RSS in MB), every 0.05 s while the folds run
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            samples.append((len(list((out / "folds").glob("*.json"))), _rss_mb()))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        code = main(["--config", str(tmp_path / "tiny.json"), "--data-root", str(root), "--output", str(out),
                     "--seeds", *map(str, range(1, 7)), "--cpus-per-worker", "0.5", "--max-concurrent-folds", "4"])
    finally:
        running.clear()
        sampler.join()
    assert code == 0 and len(list((out / "folds").glob("*.json"))) == 60
    # while folds run (the tables and report.html after the last fold are not the folds' memory). The driver takes
    # finished folds every loso.driver.POLL_SECONDS, so they land in bursts (a faster CPU saw 40-odd jump to 60):
    # each window is widened to the nearest count actually seen
    running = [(done, rss) for done, rss in samples if 5 <= done < 60]
    counts = sorted({done for done, _ in running})
    early_to, late_from = max(30, counts[0]), min(45, counts[-1])
    early = max(rss for done, rss in running if done <= early_to)
    late = max(rss for done, rss in running if done >= late_from)
    assert late <= 1.10 * early, (f"driver memory grew from {early:.0f} MB (5-{early_to} folds) to {late:.0f} MB "
                                  f"({late_from}-59)")
    deadline = time.time() + 30
    while time.time() < deadline and any(_leftovers(ray_session, before)):
        time.sleep(0.5)
    groups, actors = _leftovers(ray_session, before)
    assert not groups and not actors, f"left after the run: {len(groups)} placement group(s), actors {actors}"


def test_release_workers_on_stop_still_matches_rays_internals(ray_session):
    """tune.release_stopped_workers uses Ray internals: this fails loudly when a Ray upgrade changes them."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from tune.release_stopped_workers import ReleaseWorkersOnStop

    def wait_forever(_config) -> None:
        time.sleep(600)

    @ray.remote(num_cpus=0, max_calls=1)
    def trial(storage: str) -> None:  # what a Tune trial does, stopped by ASHA: killed mid-fit
        TorchTrainer(wait_forever, scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
                     run_config=RunConfig(name="janitor", storage_path=storage,
                                          callbacks=[ReleaseWorkersOnStop()])).fit()

    from ray._private import state

    before = set(ray.util.placement_group_table())
    task = trial.remote(str(Path(ray_session.get_runtime_context().get_temp_dir()) / "janitor_test"))
    deadline = time.time() + 90  # until the worker group is up and the callback has started its watcher
    while time.time() < deadline and not any(a["ActorClassName"] == "_PlacementGroupJanitor" and a["State"] == "ALIVE"
                                             for a in state.actors().values()):
        time.sleep(0.2)
    groups = [k for k, g in ray.util.placement_group_table().items() if k not in before and g["state"] == "CREATED"]
    assert len(groups) == 1, f"expected the Train run's placement group and its watcher, found {len(groups)} group(s)"
    group = groups[0]
    ray.cancel(task, force=True)  # the trial's process dies, and its controller with it, without a graceful stop
    deadline = time.time() + 30
    while time.time() < deadline and ray.util.placement_group_table()[group]["state"] != "REMOVED":
        time.sleep(0.5)
    assert ray.util.placement_group_table()[group]["state"] == "REMOVED", (
        "a killed Train controller's placement group was not released: ReleaseWorkersOnStop no longer works "
        "with this Ray (see tune/release_stopped_workers.py)")
    deadline = time.time() + 15  # Ray Train's own cleaner of the killed run stays: see the module's docstring
    while time.time() < deadline and "_PlacementGroupJanitor" in _leftovers(ray_session)[1]:
        time.sleep(0.5)
    assert "_PlacementGroupJanitor" not in _leftovers(ray_session)[1], "the watcher outlived its work"
