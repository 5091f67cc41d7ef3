"""The driver of a LOSO run (`loso.run`, `loso.benchmark`): features once -> object store -> fold jobs in flight ->
results, each written as it arrives (see `loso.run` for the files and `--resume`). A benchmark's runs ("parts")
share one queue, model-major; each part's tables are written as soon as its last job ends.

The commands check every option and the config before this module, torch and Ray load.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
import threading
import time
import traceback
from concurrent import futures
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import ray

from gru_xnet.config import ConfigError, ExperimentConfig, write_text_atomic
from gru_xnet.engine import resolve_device
from gru_xnet.estimators import decision_of, is_estimator
from gru_xnet.features import FeatureSet, build_feature_set
from gru_xnet.model import build_model, model_input
from gru_xnet.models import ModelSpec
from gru_xnet.provenance import provenance
from loso.aggregate import aggregate, print_tables
from loso.certificate import certify, failed, read_records, write_certificate
from loso.cli import init_ray, interrupts_as_keyboard_interrupt
from loso.fold_queue import FoldQueue
from loso.folds import Fold, FoldJob, plan_jobs
from loso.gpu_packing import gpus_per_worker
from loso.outputs import result_path
from loso.progress import Progress
from loso.protocol import protocol_lines
from loso.splits import plan_folds, split_record
from loso.training import PERMUTATION_SCHEME, Placement, train_variant
from loso.worker import FoldContext, FoldResources, node, run_runner, shared, start_train_coordinator

log = logging.getLogger("loso")


def user_datasets(features) -> dict:
    """`{"dataset_modules": {name: {path, source_sha256}}}` for datasets read by a user's module, else nothing."""
    modules = {name: info["module"] for name, info in features.protocol["datasets"].items() if "module" in info}
    return {"dataset_modules": modules} if modules else {}


def manifest_for(config: ExperimentConfig, args: argparse.Namespace, features, seeds: list[int],
                 folds: list[Fold], spec: ModelSpec) -> dict:
    """The protocol every artefact states: datasets, labels, sessions, seeds, the fold plan, filters, the model, its
    input and size, stimuli, config hash, synthetic, provenance."""
    shape = features.features.shape[1:]
    model = build_model(config.model, shape, features.n_classes, spec, **model_input(features))
    manifest = {"config_hash": config.fingerprint(), "data_fingerprint": features.protocol["data_fingerprint"],
                "config": config.to_dict(),
                **split_record(args.split, features, folds, sessions=args.sessions,
                               within_subject_validation=args.within_subject_validation), "protocol": args.protocol,
                "sessions": args.sessions,
                "seeds": seeds, "permutations": args.permutations, "tuned_on": list(config.tuned_on),
                "permutation_scheme": PERMUTATION_SCHEME, "permutation_salt": config.seed,
                "datasets": features.datasets,
                "labels": {k: v["labels"] for k, v in features.protocol["datasets"].items()},
                "n_classes": features.n_classes,
                "class_names": {k: v["class_names"] for k, v in features.protocol["datasets"].items()},
                "channels": list(features.channel_names), "synthetic": bool(features.synthetic),
                "model": spec.record(config.model, features.representation, **model_input(features),
                                     decision=decision_of(model)),
                "model_summary": spec.summary, "model_kind": "scikit-learn" if is_estimator(model) else "torch",
                "model_source_sha256": spec.origin.get("source_sha256"),
                "model_input": spec.input_statement(config.model, shape, features.representation),
                "input_shape": list(shape),
                "representation": features.protocol["representation"],
                "passband_notes": features.protocol["passband_notes"],
                "subjects": [str(s) for s in features.subjects], "workers_per_fold": args.workers_per_fold,
                "multi_session": {d: n for d, n in features.session_counts().items() if n > 1},
                "planned_folds": [result_id for fold in folds for result_id in fold.result_ids],
                "filters": {name: config.data.signal_filters(name) for name in features.datasets},
                "stimulus": {k: v["stimulus"] for k, v in features.protocol["datasets"].items()},
                **user_datasets(features),
                "model_parameters": (None if is_estimator(model) else
                                     sum(p.numel() for p in model.parameters() if p.requires_grad))}
    return {**manifest, "statement": protocol_lines(manifest), "provenance": provenance(),
            "command": list(getattr(args, "command", sys.argv))}


def _last_line(message: str) -> str:
    """The innermost line of a (Ray-wrapped) error message."""
    lines = [line for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else message


class ResultWriter:
    """Writes a fold job's results (one file per label variant) or its error; both paths of a run use it."""

    def __init__(self, out: Path, config: ExperimentConfig, common: dict):
        self.out, self.tuned_on, self.common = out, set(config.tuned_on), common
        self.seconds = 0.0  # spent writing results and errors (the run's timings.json)

    def results(self, job: FoldJob, results: list[dict]) -> None:
        """One file per label variant and test subject (a fold testing several subjects scores each on its own)."""
        for result in results:
            per_test = result.pop("per_test_subject", None) or {job.fold.tests[0]: {}}
            for test, own in per_test.items():
                record = {"fold": job.fold.record(test), **self.common, "tuned_on_test_subject": test in self.tuned_on,
                          **result, **own}
                self._write(result_path(self.out, job.fold.result_id(test), result["variant"]),
                            json.dumps(record, default=str))
                if result["variant"] == 0 and (record.get("test") or {}).get("collapse"):
                    log.warning("WARNING: %s: %s", job.fold.result_id(test), record["test"]["collapse"])
        (self.out / "failed" / f"{job.job_id}.json").unlink(missing_ok=True)

    def error(self, job: FoldJob, error: str, trace: str = "") -> None:
        self._write(self.out / "failed" / f"{job.job_id}.json", json.dumps(
            {"fold": asdict(job.fold), "variants": list(job.variants), "error": error, "traceback": trace},
            indent=2, default=str))
        log.error("fold job %s failed: %s", job.job_id, _last_line(error))

    def _write(self, path: Path, text: str) -> None:
        """Write one file atomically; a failure (disk full, folder gone read-only) names it and what is safe."""
        started = time.perf_counter()
        try:
            write_text_atomic(path, text)
            self.seconds += time.perf_counter() - started
        except OSError as exc:
            saved = len(list(self.out.glob("folds/*.json"))) + len(list(self.out.glob("permutations/*.json")))
            raise OSError(f"cannot write {path}: {exc.strerror or exc}. The {saved} result file(s) saved before are "
                          f"intact in {self.out}; once it is writable, run again with --resume") from exc


def _interrupted(progress: Progress, out: Path) -> None:
    progress.close()
    print(f"\n[loso] interrupted: {progress.done} fold job(s) are saved in {out}; "
          "run again with --resume to finish the rest", file=sys.stderr)


def _in_thread(call: Callable[[], None]) -> futures.Future:
    """`call()` in a daemon thread (it never holds the process open at its exit); its outcome as a Future."""
    future: futures.Future = futures.Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:  # the thread's outcome, read by the driver's loop
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def _stop(runners: list[futures.Future], queue: ray.actor.ActorHandle, grace_seconds: float = 30.0) -> None:
    """Stop runners as Ray Train's own Ctrl-C handler does: the queue hands out no more jobs and each runner's
    Train controller is asked to abort, which releases its workers and placement group; a controller still
    there after `grace_seconds` is killed (its workers' reservation then lasts until this driver exits)."""
    controllers = ray.get(queue.stop.remote())
    ray.wait([controller.abort.remote() for controller in controllers], num_returns=len(controllers),
             timeout=grace_seconds)
    futures.wait(runners, timeout=grace_seconds)
    for controller in controllers:
        ray.kill(controller)


class Ledger:
    """Every part's fold jobs in flight, by key (model-major: the parts in turn): writes each result or error into
    its part's folder as it arrives and, once a part's last job has ended, `finish`es it (certificate, tables), so
    the parts finish one after another and an interrupted queue keeps every finished part whole."""

    def __init__(self, parts: list[Part], concurrency: int, finish: Callable[[Part], None]):
        self.parts, self.finish = parts, finish
        self.jobs = {part.key(job): (part, job) for part in parts for job in part.jobs}
        self.left = {part.label: len(part.jobs) for part in parts}
        self.progress = Progress(len(self.jobs), concurrency)

    def indexed(self) -> dict[str, tuple[int, FoldJob]]:
        """Each job's key -> (its part's index, the job): what a runner needs to find a job's context."""
        index = {id(part): i for i, part in enumerate(self.parts)}
        return {key: (index[id(part)], job) for key, (part, job) in self.jobs.items()}

    def started(self, key: str) -> None:
        self.progress.start(key)

    def done(self, key: str, results: list[dict]) -> None:
        part, job = self.jobs[key]
        part.writer.results(job, results)
        self.progress.finish(key)
        self._ended(part)

    def failed(self, key: str, error: str, trace: str = "") -> None:
        part, job = self.jobs[key]
        part.writer.error(job, error, trace)
        part.failed += 1
        self.progress.finish(key, ok=False)
        self._ended(part)

    def _ended(self, part: Part) -> None:
        self.left[part.label] -= 1
        if not self.left[part.label]:
            if not any(self.left.values()):
                self.progress.close()  # the last part's tables print below the finished bar
            self.finish(part)


POLL_SECONDS = 0.25
"""How often the driver takes the runners' finished folds from the queue: the last fold's tables start at most this
long after it ends (a second cost each run about 0.5 s of both runners' time)."""


def run_folds(ledger: Ledger, contexts: list[FoldContext], resources: FoldResources, max_concurrent: int,
              storage_path: str, name: str, checkpoint_every: int = 1) -> None:
    """Serve every part's fold jobs to `max_concurrent` long-lived runners; write each result (or error) as it
    arrives."""
    jobs = ledger.indexed()
    queue = FoldQueue.remote(list(jobs), resources.max_failures + 1)
    work = [ray.put((contexts, jobs))]  # once for every runner, boxed so that Ray passes the reference
    names = [f"{name}-runner{i}" for i in range(min(max_concurrent, len(jobs)))]
    runners = {_in_thread(functools.partial(run_runner, runner, work, queue, len(jobs), resources, storage_path,
                                            checkpoint_every)): runner for runner in names}

    def handle(events) -> None:
        for event in events:
            if event.kind == "started":
                ledger.started(event.job_id)
            elif event.kind == "done":
                ledger.done(event.job_id, event.results)
            else:
                ledger.failed(event.job_id, event.error)

    try:
        while runners:
            ready, _ = futures.wait(runners, timeout=POLL_SECONDS)
            handle(ray.get(queue.drain.remote()))
            for future in ready:  # a runner that ended: the queue was empty, or its worker group gave up
                runner, exc = runners.pop(future), future.exception()
                if exc is not None:
                    ray.get(queue.abandon.remote(runner, f"{type(exc).__name__}: {exc}"))
                    log.error("%s stopped: %s", runner, _last_line(str(exc)))
            ledger.progress.show()
        handle(ray.get(queue.drain.remote()))
        for key in ray.get(queue.leftover.remote()):  # no runner was left to take them
            ledger.failed(key, "every runner stopped before this job was taken; run again with --resume")
    except BaseException:  # Ctrl-C, SIGTERM, or a result that cannot be written: stop every runner
        _stop(list(runners), queue)
        raise
    finally:
        ray.kill(queue)


def _timed(job: FoldJob, config: ExperimentConfig, spec: ModelSpec, features, placement: Placement) -> list[dict]:
    """Every label variant of a fold job, each result with the job's start, end and wall time."""
    started = time.time()
    results = [train_variant(config, features, job.fold.split, job.fold.seed, variant, placement, spec=spec)
               for variant in job.variants]
    timing = {"started_at": started, "finished_at": time.time(), "wall_seconds": time.time() - started}
    return [{**result, **timing} for result in results]


@ray.remote(num_cpus=1)
def _estimator_task(job: FoldJob, context: FoldContext) -> list[dict]:
    """One fold job of a scikit-learn model: a plain CPU task, no Ray Train and no GPU."""
    environment = {"provenance": provenance(), "node": node()}
    config = ExperimentConfig.from_dict(context.config)
    return [{**result, **environment}
            for result in _timed(job, config, context.spec, ray.get(context.features_box[0]), Placement())]


def run_tasks(ledger: Ledger, contexts: list[FoldContext], max_concurrent: int, max_failures: int) -> None:
    """Fold jobs of scikit-learn models as CPU tasks, `max_concurrent` at a time; each result written on arrival."""
    waiting, running = list(ledger.indexed().items()), {}
    try:
        while waiting or running:
            while waiting and len(running) < max_concurrent:
                key, (index, job) = waiting.pop(0)
                running[_estimator_task.options(max_retries=max_failures).remote(job, contexts[index])] = key
                ledger.started(key)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                key = running.pop(ref)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    ledger.failed(key, f"{type(exc).__name__}: {exc}")
                else:
                    ledger.done(key, results)
            ledger.progress.show()
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)
        raise


def run_local(ledger: Ledger) -> None:
    """The same fold jobs one after another in this process, without Ray: the debugging path."""
    environment = provenance()
    for key, (part, job) in ledger.jobs.items():
        config = part.run.config
        ledger.started(key)
        try:
            results = _timed(job, config, part.run.spec, part.run.features,
                             Placement(device=resolve_device(config.training.device)))
        except Exception as exc:  # a failing fold is recorded, as on Ray; the others still run
            ledger.failed(key, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            continue
        ledger.done(key, [{**r, "provenance": environment} for r in results])


@dataclass
class Prepared:
    """A run ready to start: config, model entry, features (the only reference the driver keeps), fold plan,
    seeds, output folder and manifest."""

    config: ExperimentConfig
    spec: ModelSpec
    features: FeatureSet
    folds: list[Fold]
    seeds: list[int]
    out: Path
    manifest: dict
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage of the driver (written to `<out>/timings.json`, read by bench/bench_loso.py)."""


Built = dict[tuple[str, str], FeatureSet]
"""Features already built in this process, by (data config, representation): the models of a benchmark that read
the same representation of the same data share one copy."""


def prepare(args: argparse.Namespace, config: ExperimentConfig, spec: ModelSpec, built: Built | None = None
            ) -> Prepared:
    """Features (from `built` when another run of this process has them), the fold plan, output folder and manifest
    of a checked command line (`loso.run.check`); writes nothing."""
    seeds = list(args.seeds) if args.seeds else [config.seed]
    representation = spec.representation_of(config.data)
    key = (json.dumps(config.to_dict()["data"], sort_keys=True, default=str), representation)
    built = {} if built is None else built
    started = time.perf_counter()
    if key not in built:
        built[key] = build_feature_set(config.data, representation=representation)
    features, seconds = built[key], time.perf_counter() - started
    folds = plan_folds(features, args.split, protocol=args.protocol, sessions=args.sessions,
                       seeds=seeds, subjects=args.subjects, within_subject_validation=args.within_subject_validation,
                       val_fraction=config.data.val_ratio / (config.data.train_ratio + config.data.val_ratio))
    out = Path(args.output or Path(config.output_dir) / f"loso_{config.experiment_name}").resolve()
    return Prepared(config, spec, features, folds, seeds, out, manifest_for(config, args, features, seeds, folds, spec),
                    {"features": seconds})


@dataclass(eq=False)
class Part:
    """One run of a driver's queue (a `loso.run`, or one model of a `loso.benchmark` on one dataset and task): its
    command line and prepared state, its label in job keys and logs ('' alone), and, once planned, the fold jobs
    it still needs, its writer, its failures and exit code."""

    args: argparse.Namespace
    run: Prepared
    label: str = ""
    jobs: list[FoldJob] = field(default_factory=list)
    writer: ResultWriter | None = None
    failed: int = 0
    code: int | None = None

    def key(self, job: FoldJob) -> str:
        """A job's name in the queue: its id, after the part's label when several parts share the queue."""
        return f"{self.label}/{job.job_id}" if self.label else job.job_id

    def plan(self) -> None:
        """The jobs without results in the output folder, and what the run states before they start."""
        args, run = self.args, self.run
        config, out, manifest = run.config, run.out, run.manifest
        self.jobs = plan_jobs(run.folds, args.permutations,
                              lambda fold, variant: all(result_path(out, r, variant).exists() for r in fold.result_ids))
        self.writer = ResultWriter(out, config, {"config_hash": manifest["config_hash"],
                                                 "synthetic": manifest["synthetic"], "model": manifest["model"]})
        if self.label:
            log.info("=== %s: its LOSO into %s", self.label, out)
        if run.features.synthetic:
            log.info("NOTE: running on SYNTHETIC data (generated in the real file formats)")
        log.info("model %s: %s", manifest["model"]["name"], manifest["model_input"])
        log.info("%d fold(s) planned x %d label variant(s) (real labels + %d permutations), %d fold job(s) to run "
                 "(split %s, %s protocol, sessions %s, seeds %s)", len(run.folds), args.permutations + 1,
                 args.permutations, len(self.jobs), manifest["split"], args.protocol, args.sessions,
                 " ".join(map(str, run.seeds)))
        tuned = sorted({test for f in run.folds for test in f.tests} & set(config.tuned_on))
        if tuned:
            log.warning("WARNING: the config's hyper-parameters were tuned on %d of these test subjects (%s): their "
                        "folds are marked and are not unbiased estimates (see docs/paper.md)",
                        len(tuned), " ".join(tuned))

    def context(self, features_box: list) -> FoldContext:
        return FoldContext(self.run.config.to_dict(), self.run.spec, features_box,
                           estimator=self.run.manifest["model_kind"] == "scikit-learn")

    def finish(self) -> None:
        """Once its jobs have ended: the leakage certificate, tables, report and figures, printed; its exit code."""
        run, out, timings = self.run, self.run.out, self.run.timings
        if self.jobs:
            timings["folds_finished_at"], timings["writing"] = time.time(), self.writer.seconds
        if self.failed:
            log.error("%d fold job(s) failed; their errors are in %s. Run again with --resume to retry them.",
                      self.failed, out / "failed")
        started = time.perf_counter()
        certificate = certify(run.features, run.folds, read_records(out), run.manifest, run.config)
        write_certificate(out, certificate)
        timings["certificate"] = time.perf_counter() - started
        tables = aggregate(out, report=not self.args.no_report)
        timings["tables_figures_report"] = time.perf_counter() - started - timings["certificate"]
        write_text_atomic(out / "timings.json", json.dumps(timings, indent=2))
        print_tables(tables)
        self.code = 1 if list((out / "failed").glob("*.json")) or failed(certificate) else 0


def share(parts: list[Part]) -> list[list]:
    """Put each distinct features once into the object store; every part keeps the store's zero-copy view instead
    of its own arrays (one copy on this node). Each part's ObjectRef, inside a list so Ray passes the reference."""
    owners = [id(part.run.features) for part in parts]  # all alive at once: distinct ids are distinct features
    stored: dict[int, tuple[ray.ObjectRef, FeatureSet]] = {}
    boxes = []
    for part, owner in zip(parts, owners):
        if owner not in stored:
            stored[owner] = shared(part.run.features)
        ref, part.run.features = stored[owner]
        boxes.append([ref])
    return boxes


def execute(args: argparse.Namespace, run: Prepared) -> int:
    """Run the missing fold jobs (locally or on Ray), then build and print the tables; the exit code."""
    return execute_parts([Part(args, run)], run.out)


def execute_parts(parts: list[Part], root: Path) -> int:
    """Every part's missing fold jobs through one queue, model-major (locally, as Ray tasks when every part is a
    scikit-learn model, else on long-lived runners that also fit the scikit-learn jobs); each part's tables as
    soon as its last job ends. How and where folds run is the first part's command line (a benchmark's parts
    share it). The largest exit code."""
    args = parts[0].args
    for part in parts:
        part.plan()
    pending = [part for part in parts if part.jobs]
    for part in parts:
        if not part.jobs:  # resumed with nothing left to run
            part.finish()
    if not pending:
        return max(part.code for part in parts)
    if not args.local:
        seconds = init_ray(args.address, args.num_cpus, args.verbose)  # the command started it (`start_ray`)
        for part in pending:
            part.run.timings["ray_start"] = seconds
    for part in pending:
        part.run.timings["folds_started_at"] = time.time()
    with interrupts_as_keyboard_interrupt() as received:  # after ray.init, which installs its own handler
        try:
            _dispatch(args, pending, root)
        except KeyboardInterrupt:
            return 128 + received.get("signal", signal.SIGINT)
    return max(part.code for part in parts)


def _dispatch(args: argparse.Namespace, parts: list[Part], root: Path) -> None:
    """Serve every part's jobs where the command line says, to the end of the queue."""
    torch_parts = [p for p in parts if p.run.manifest["model_kind"] != "scikit-learn"]
    if args.local:
        both = 0 < len(torch_parts) < len(parts)  # a benchmark of both kinds names the kind in each line
        if len(torch_parts) < len(parts):
            log.info("each %sfold fits in this process on the CPU (scikit-learn: no torch threads)",
                     "scikit-learn " if both else "")
        if torch_parts:
            log.info("each %sfold trains in this process with %d torch thread(s) (training.num_threads)",
                     "torch " if both else "", parts[0].run.config.training.num_threads)
        _serve(Ledger(parts, 1, Part.finish), root, run_local)
        return
    if torch_parts:
        start_train_coordinator()  # its process starts beside the controllers', not after them
    contexts = [part.context(box) for part, box in zip(parts, share(parts))]
    if not torch_parts:
        concurrent = args.max_concurrent_folds or int(ray.cluster_resources().get("CPU", 1))
        log.info("running up to %d fold job(s) at once, each a 1-CPU Ray task (scikit-learn: no torch threads)",
                 concurrent)
        _serve(Ledger(parts, concurrent, Part.finish), root,
               lambda ledger: run_tasks(ledger, contexts, concurrent, args.max_failures))
    else:
        cluster = ray.cluster_resources()
        distinct = {id(part.run.features): part.run.features.features.nbytes for part in parts}
        resources = FoldResources(
            workers=args.workers_per_fold, cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=gpus_per_worker(args.gpus_per_worker, cluster, args.workers_per_fold,
                                            max(p.run.features.features.nbytes for p in torch_parts)),
            max_failures=args.max_failures)
        concurrent = args.max_concurrent_folds or resources.concurrent_folds(cluster)
        if concurrent > resources.memory_limit(cluster):
            raise ConfigError(
                f"--max-concurrent-folds {concurrent}: {concurrent} runners need about "
                f"{concurrent * resources.runner_bytes() / 2 ** 30:.1f} GB of host memory beyond the "
                f"shared features ({sum(distinct.values()) / 2 ** 30:.2f} GB), the cluster schedules "
                f"{cluster.get('memory', 0) / 2 ** 30:.1f} GB: use at most "
                f"{resources.memory_limit(cluster)} or a larger node")
        log.info("running up to %d fold job(s) at once, %d worker(s) each reserving %g CPU(s) and %g GPU(s), %d "
                 "torch thread(s) per worker (training.num_threads)%s", concurrent, resources.workers,
                 resources.cpus_per_worker, resources.gpus_per_worker, parts[0].run.config.training.num_threads,
                 f"; one queue for {len(parts)} runs, model-major" if len(parts) > 1 else "")
        _serve(Ledger(parts, concurrent, Part.finish), root,
               lambda ledger: run_folds(ledger, contexts, resources, concurrent, args.storage_path or
                                        str(root / "ray"), root.name, args.checkpoint_every))


def _serve(ledger: Ledger, root: Path, serve: Callable[[Ledger], None]) -> None:
    """Serve the ledger's jobs; on Ctrl-C or SIGTERM say what is saved before the caller exits."""
    try:
        serve(ledger)
    except KeyboardInterrupt:
        _interrupted(ledger.progress, root)
        raise
