"""Command-line options and Ray start-up shared by `python -m loso.run` and `python -m tune.search`.

Both take the same data, config and cluster options, build their experiment config the same way, and
join a cluster or start the same small local embedded Ray instance.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from gru_xnet.config import ExperimentConfig, apply_overrides, resolve_config
from gru_xnet.datasets.registry import add_dataset_module_argument, register_dataset_modules
from gru_xnet.models import MODELS
from loso.reaper import watch_local_instance

# Ray Train's controller polls its workers every 2 s by default; most of a short fold's start-up. Its preemption
# watcher (one actor process per runner, about 0.11 GB) only logs node drains and marks the workers of a drained
# node; a fold here survives a lost node by its retries and checkpoints, so the watcher is left out.
RAY_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2", "RAY_DEDUP_LOGS": "1",
           "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}
LOCAL_STARTUP_CONCURRENCY = 8


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Data, config and cluster options shared by `loso.run` and `tune.search` (read by `configure`)."""
    p.add_argument("--datasets", nargs="+", help="registered dataset names, e.g. DEAP SEED SEEDIV (default: the config's)")
    add_dataset_module_argument(p)
    p.add_argument("--data-root", nargs="+", metavar="DIR",
                   help="one folder holding the dataset folders, or NAME=DIR per dataset")
    p.add_argument("--synthetic", action="store_true",
                   help="generate small synthetic datasets in the real formats and use them")
    p.add_argument("--synthetic-subjects", type=_positive, default=None, metavar="N",
                   help="subjects per dataset that --synthetic generates (default 5; under loso.benchmark --card, the "
                        "card's subject count of each dataset)")
    p.add_argument("--config", default="quick", help="'quick', 'full' or a JSON file (e.g. best_config.json)")
    p.add_argument("--model", default=None,
                   help=f"a registered model ({', '.join(MODELS)}), path/to/file.py:function or "
                        "package.module:function (default: the config's model.name); its parameters: "
                        "--model.params '{\"dropout\": 0.3}'")
    p.add_argument("--address", default=None, help="Ray address ('auto' for a running cluster; "
                                                   "default: a local embedded instance)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local embedded instance")
    p.add_argument("--storage-path", default=None,
                   help="where Ray Train / Tune keep their run state: a local or NFS folder, or a URI such as "
                        "s3://bucket/prefix or gs://bucket/prefix (default: <output>/ray); multi-node clusters need "
                        "storage every node reaches")
    p.add_argument("--gpus-per-worker", type=_gpu_share, default="auto",
                   help="GPU share each training worker reserves: 'auto' (default: GPUs when the cluster has them, "
                        "up to 4 folds per GPU as its free memory allows) or a number (0: train on CPU)")
    p.add_argument("-v", "--verbose", action="store_true", help="show Ray's own logs")
    p.epilog = "Any other '--section.key value' pair overrides that config key, e.g. --training.num_epochs 20."


def storage_join(base: str, *parts: str) -> str:
    """`base/part/...` for a folder or a URI (s3://, gs://): pathlib would fold the URI's '//', and a URI's
    query (`?endpoint_override=host:port&scheme=http`, read by pyarrow) must stay at the end."""
    base = str(base)
    path, mark, query = base.partition("?") if "://" in base else (base, "", "")
    return "/".join([path.rstrip("/"), *parts]) + mark + query


def _positive(text: str) -> int:
    """An integer >= 1 (argparse type of --synthetic-subjects)."""
    try:
        if int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")


def _gpu_share(text: str) -> str:
    """'auto' or a number >= 0 (argparse type of --gpus-per-worker)."""
    try:
        if text == "auto" or float(text) >= 0:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or a number >= 0")


def configure(args: argparse.Namespace, extra: list[str],
              synthetic_trials: Callable[[str], int | None] = lambda _name: None) -> ExperimentConfig:
    """The experiment config from --dataset-module, --config, --datasets, --data-root, --synthetic and key overrides
    (`synthetic_trials(name)`: the trials per session a `--synthetic` dataset must hold, None for the default)."""
    register_dataset_modules(args.dataset_module)  # before any config is read: validation must know its datasets
    config = resolve_config(args.config)
    if args.model:
        config.set_option("model.name", args.model)
    if args.datasets:
        config.set_option("data.datasets", json.dumps(args.datasets))
    for item in args.data_root or []:
        if "=" in item:
            name, root = item.split("=", 1)
            config.data.data_roots[name.upper()] = root
        else:
            config.data.data_root = item
    apply_overrides(config, extra)
    if args.synthetic:
        from gru_xnet.datasets.synthetic import DEMO_SUBJECTS, synthetic_data_for
        config.data.data_root = str(synthetic_data_for(config.data, Path(config.output_dir) / "synthetic_data",
                                                       args.synthetic_subjects or DEMO_SUBJECTS, synthetic_trials))
        config.data.data_roots = {}
    config.validate()
    return config


HEAVY_LIBRARIES = ("torch", "scipy.stats", "sklearn.base", "pandas")
"""What a driver loads besides Ray (about 2 s on 2 cores): none of them imports Ray."""


_unclaimed_start: list[float] = []  # the seconds of `start_ray`'s start, until a run records them


def start_ray(args: argparse.Namespace) -> None:
    """Start Ray for a command that runs on it (not `--local`), while a thread imports `HEAVY_LIBRARIES`: Ray's
    start mostly waits on the processes it launches."""
    if args.local:
        return
    loading = threading.Thread(target=lambda: [importlib.import_module(name) for name in HEAVY_LIBRARIES])
    loading.start()  # none imports Ray: the two threads never wait on each other's half-imported modules
    try:
        _unclaimed_start[:] = [init_ray(args.address, args.num_cpus, args.verbose)]
    finally:
        loading.join()


def init_ray(address: str | None, num_cpus: int | None, verbose: bool) -> float:
    """Join a cluster (`address`) or start a small local embedded instance. The seconds that took, for the run's
    timings.json: the first call after `start_ray` gets that start's, a call on a Ray already up before 0."""
    import ray

    if ray.is_initialized():
        return _unclaimed_start.pop() if _unclaimed_start else 0.0
    started = time.perf_counter()
    runtime_env = {"env_vars": RAY_ENV}
    if address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local instance needs no token
        # Each runner brings a Train controller and its workers, all starting at once: on
        # 2 cores Ray's default (start-up concurrency = CPUs) warns about "too many workers" for every run.
        os.environ.setdefault("RAY_worker_maximum_startup_concurrency", str(LOCAL_STARTUP_CONCURRENCY))
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=verbose,
                 runtime_env=runtime_env, logging_level=logging.INFO if verbose else logging.WARNING)
        watch_local_instance()  # stops the instance if this process is killed with SIGKILL
    else:
        ray.init(address=address, log_to_driver=verbose, runtime_env=runtime_env)
    return time.perf_counter() - started


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[dict]:
    """SIGTERM (what schedulers and Kubernetes send) handled like Ctrl-C: a KeyboardInterrupt in the main thread.

    The caller reports what is saved, shuts Ray down and exits 128 + the signal (`received["signal"]`).
    Enter it after `ray.init`: it then replaces the handler Ray installs, under which a SIGTERM ended in
    a C++ stack dump.
    """
    received: dict = {}

    def handler(signum, _frame) -> None:
        received["signal"] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)

