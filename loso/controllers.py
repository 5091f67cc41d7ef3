"""A runner's Ray Train controller, announced to the fold queue so that the driver can stop the runner.

The runners' `fit()` calls run in threads of the driver, where Ray Train installs no Ctrl-C handler. The driver
stops a runner the way that handler does: it asks the runner's controller to `abort`, which releases the
runner's workers and placement group. This callback, run by the controller as it starts, gives the queue the
controller's handle. It relies on Ray Train internals of Ray 2.60 (`ControllerCallback`, the controller's
`abort`; tests/test_loso.py's unwritable-output test fails when they change). Light on purpose: the
controller's process imports this module, not the fold code.
"""

from __future__ import annotations

import ray
from ray.train.v2._internal.execution.callback import ControllerCallback


class AnnounceController(ControllerCallback):
    """Hands this runner's Train controller to the queue (`FoldQueue.controller_started`) once it runs."""

    def __init__(self, queue: ray.actor.ActorHandle, runner: str):
        self.queue, self.runner = queue, runner

    def after_controller_start(self, train_run_context) -> None:
        self.queue.controller_started.remote(self.runner, ray.get_runtime_context().current_actor)
