"""Ray 2.60 workaround: give back the worker resources of a Tune trial that ASHA stopped.

When ASHA stops a DDP trial, the trial's process is killed, and its Ray Train controller with it, without
the graceful shutdown that removes the workers' placement group. Ray's own cleaner asks the
dashboard's state API whether the controller lives; without a dashboard (as `loso.cli.init_ray` starts
Ray) it never learns that it died, the group keeps its CPUs and later trials wait forever. This module
asks the GCS directly. (Ray's cleaner, a detached actor, itself stays idle until Ray stops: it can only
be reached through a handle this module does not get.) It uses Ray internals (`ray.train.v2._internal...WorkerGroupCallback`,
`ray._private.state`; tests/test_soak.py fails when they change): re-check it on every Ray upgrade, and delete it once a stopped trial's placement
group is released without the dashboard (the Tune tests' ASHA search then finishes without it).
"""

from __future__ import annotations

import time

import ray
from ray._private import state as ray_state
from ray.train.v2._internal.execution.callback import WorkerGroupCallback
from ray.util import placement_group_table, remove_placement_group


@ray.remote(num_cpus=0)
class _PlacementGroupJanitor:
    """Detached watcher: removes a Train run's placement group once its controller actor is dead."""

    def watch(self, controller_id: str, group) -> None:
        while ray_state.actors(controller_id)["State"] != "DEAD":
            time.sleep(1.0)
        if placement_group_table(group)["state"] != "REMOVED":
            remove_placement_group(group)
        ray.actor.exit_actor()


class ReleaseWorkersOnStop(WorkerGroupCallback):
    """Starts a detached watcher that removes the trial's worker placement group once its controller is dead."""

    def after_worker_group_start(self, worker_group) -> None:
        group = worker_group.get_worker_group_state().placement_group_handle.placement_group
        janitor = _PlacementGroupJanitor.options(lifetime="detached", scheduling_strategy="DEFAULT").remote()
        janitor.watch.remote(ray.get_runtime_context().get_actor_id(), group)
