"""The driver of a LOSO run (`loso.run`, `loso.benchmark`): features once -> object store -> fold jobs in flight ->
results, each written as it arrives (see `loso.run` for the files and `--resume`).

The commands check every option and the config before this module, torch and Ray load.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
from loso.worker import FoldResources, node, run_runner, shared

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


def _stop(runners: list[ray.ObjectRef], grace_seconds: float = 30.0) -> None:
    """Stop runners: a cancel reaches Ray Train as a Ctrl-C, whose controller then releases its workers and
    placement group; a runner still there after `grace_seconds` is killed (its workers' reservation then
    lasts until this driver exits)."""
    for ref in runners:
        ray.cancel(ref)
    _, left = ray.wait(runners, num_returns=len(runners), timeout=grace_seconds)
    for ref in left:
        ray.cancel(ref, force=True)


def run_folds(jobs: list[FoldJob], config: ExperimentConfig, spec: ModelSpec, features_ref: ray.ObjectRef,
              writer: ResultWriter, resources: FoldResources, max_concurrent: int, storage_path: str,
              checkpoint_every: int = 1) -> Progress:
    """Serve the fold jobs to `max_concurrent` long-lived runners; write each result (or error) as it arrives."""
    by_id = {job.job_id: job for job in jobs}
    queue = FoldQueue.remote(list(by_id), resources.max_failures + 1)
    names = [f"{writer.out.name}-runner{i}" for i in range(min(max_concurrent, len(jobs)))]
    runners = {run_runner.remote(name, config, spec, [features_ref], queue, by_id, resources, storage_path,
                                 checkpoint_every): name for name in names}
    progress = Progress(len(jobs), len(runners))

    def handle(events) -> None:
        for event in events:
            if event.kind == "started":
                progress.start(event.job_id)
            elif event.kind == "done":
                writer.results(by_id[event.job_id], event.results)
                progress.finish(event.job_id)
            else:
                writer.error(by_id[event.job_id], event.error)
                progress.finish(event.job_id, ok=False)

    try:
        while runners:
            ready, _ = ray.wait(list(runners), num_returns=len(runners), timeout=1.0)
            handle(ray.get(queue.drain.remote()))
            for ref in ready:  # a runner that ended: the queue was empty, or its worker group gave up
                name = runners.pop(ref)
                try:
                    ray.get(ref)
                except Exception as exc:
                    ray.get(queue.abandon.remote(name, f"{type(exc).__name__}: {exc}"))
                    log.error("%s stopped: %s", name, _last_line(str(exc)))
            progress.show()
        handle(ray.get(queue.drain.remote()))
        for job_id in ray.get(queue.leftover.remote()):  # no runner was left to take them
            writer.error(by_id[job_id], "every runner stopped before this job was taken; run again with --resume")
            progress.finish(job_id, ok=False)
    except BaseException as exc:  # Ctrl-C, SIGTERM, or a result that cannot be written: stop every runner
        _stop(list(runners))
        if isinstance(exc, KeyboardInterrupt):
            _interrupted(progress, writer.out)
        raise
    finally:
        ray.kill(queue)
    progress.close()
    return progress


def _timed(job: FoldJob, config: ExperimentConfig, spec: ModelSpec, features, placement: Placement) -> list[dict]:
    """Every label variant of a fold job, each result with the job's start, end and wall time."""
    started = time.time()
    results = [train_variant(config, features, job.fold.split, job.fold.seed, variant, placement, spec=spec)
               for variant in job.variants]
    timing = {"started_at": started, "finished_at": time.time(), "wall_seconds": time.time() - started}
    return [{**result, **timing} for result in results]


@ray.remote(num_cpus=1)
def _estimator_task(job: FoldJob, config: ExperimentConfig, spec: ModelSpec, features_box: list) -> list[dict]:
    """One fold job of a scikit-learn model: a plain CPU task, no Ray Train and no GPU."""
    environment = {"provenance": provenance(), "node": node()}
    return [{**result, **environment} for result in _timed(job, config, spec, ray.get(features_box[0]), Placement())]


def run_tasks(jobs: list[FoldJob], config: ExperimentConfig, spec: ModelSpec, features_ref: ray.ObjectRef,
              writer: ResultWriter, max_concurrent: int, max_failures: int) -> Progress:
    """The fold jobs of a scikit-learn model as CPU tasks, `max_concurrent` at a time; each result written on arrival."""
    waiting, running = list(jobs), {}
    progress = Progress(len(jobs), min(max_concurrent, len(jobs)))
    try:
        while waiting or running:
            while waiting and len(running) < max_concurrent:
                job = waiting.pop(0)
                running[_estimator_task.options(max_retries=max_failures).remote(
                    job, config, spec, [features_ref])] = job
                progress.start(job.job_id)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                job = running.pop(ref)
                try:
                    writer.results(job, ray.get(ref))
                    progress.finish(job.job_id)
                except ray.exceptions.RayError as exc:
                    writer.error(job, f"{type(exc).__name__}: {exc}")
                    progress.finish(job.job_id, ok=False)
            progress.show()
    except BaseException as exc:
        for ref in running:
            ray.cancel(ref, force=True)
        if isinstance(exc, KeyboardInterrupt):
            _interrupted(progress, writer.out)
        raise
    progress.close()
    return progress


def run_local(jobs: list[FoldJob], config: ExperimentConfig, spec: ModelSpec, features,
              writer: ResultWriter) -> Progress:
    """The same fold jobs one after another in this process, without Ray: the debugging path."""
    device = resolve_device(config.training.device)
    progress = Progress(len(jobs), 1)
    environment = provenance()
    try:
        for job in jobs:
            progress.start(job.job_id)
            try:
                results = _timed(job, config, spec, features, Placement(device=device))
            except Exception as exc:  # a failing fold is recorded, as on Ray; the others still run
                writer.error(job, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                progress.finish(job.job_id, ok=False)
                continue
            writer.results(job, [{**r, "provenance": environment} for r in results])
            progress.finish(job.job_id)
    except KeyboardInterrupt:
        _interrupted(progress, writer.out)
        raise
    progress.close()
    return progress


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

    def share(self) -> ray.ObjectRef:
        """Put the features into the object store and keep only its zero-copy view: one copy on this node."""
        ref, self.features = shared(self.features)  # the driver's own arrays lose their last reference here
        return ref


def prepare(args: argparse.Namespace, config: ExperimentConfig, spec: ModelSpec) -> Prepared:
    """Features, the fold plan, output folder and manifest of a checked command line (`loso.run.check`); writes
    nothing."""
    seeds = list(args.seeds) if args.seeds else [config.seed]
    started = time.perf_counter()
    features = build_feature_set(config.data, representation=spec.representation_of(config.data))
    built = time.perf_counter() - started
    folds = plan_folds(features, args.split, protocol=args.protocol, sessions=args.sessions,
                       seeds=seeds, subjects=args.subjects, within_subject_validation=args.within_subject_validation,
                       val_fraction=config.data.val_ratio / (config.data.train_ratio + config.data.val_ratio))
    out = Path(args.output or Path(config.output_dir) / f"loso_{config.experiment_name}").resolve()
    return Prepared(config, spec, features, folds, seeds, out, manifest_for(config, args, features, seeds, folds, spec),
                    {"features": built})


def execute(args: argparse.Namespace, run: Prepared) -> int:
    """Run the missing fold jobs (locally or on Ray), then build and print the tables; the exit code."""
    config, spec, out, manifest = run.config, run.spec, run.out, run.manifest
    jobs = plan_jobs(run.folds, args.permutations,
                     lambda fold, variant: all(result_path(out, r, variant).exists() for r in fold.result_ids))
    if run.features.synthetic:
        log.info("NOTE: running on SYNTHETIC data (generated in the real file formats)")
    log.info("model %s: %s", manifest["model"]["name"], manifest["model_input"])
    log.info("%d fold(s) planned x %d label variant(s) (real labels + %d permutations), %d fold job(s) to run "
             "(split %s, %s protocol, sessions %s, seeds %s)", len(run.folds), args.permutations + 1,
             args.permutations, len(jobs), manifest["split"], args.protocol, args.sessions,
             " ".join(map(str, run.seeds)))
    tuned = sorted({test for f in run.folds for test in f.tests} & set(config.tuned_on))
    if tuned:
        log.warning("WARNING: the config's hyper-parameters were tuned on %d of these test subjects (%s): their "
                    "folds are marked and are not unbiased estimates (see docs/paper.md)",
                    len(tuned), " ".join(tuned))
    writer = ResultWriter(out, config, {"config_hash": manifest["config_hash"], "synthetic": manifest["synthetic"],
                                        "model": manifest["model"]})
    timings = run.timings
    if jobs:
        if not args.local:
            started = time.perf_counter()
            init_ray(args.address, args.num_cpus, args.verbose)
            timings["ray_start"] = time.perf_counter() - started
        timings["folds_started_at"] = time.time()
        with interrupts_as_keyboard_interrupt() as received:  # after ray.init, which installs its own handler
            try:
                if args.local:
                    if manifest["model_kind"] == "scikit-learn":
                        log.info("each fold fits in this process on the CPU (scikit-learn: no torch threads)")
                    else:
                        log.info("each fold trains in this process with %d torch thread(s) (training.num_threads)",
                                 config.training.num_threads)
                    progress = run_local(jobs, config, spec, run.features, writer)
                elif manifest["model_kind"] == "scikit-learn":
                    concurrent = args.max_concurrent_folds or int(ray.cluster_resources().get("CPU", 1))
                    log.info("running up to %d fold job(s) at once, each a 1-CPU Ray task (scikit-learn: no torch "
                             "threads)", concurrent)
                    progress = run_tasks(jobs, config, spec, run.share(), writer, concurrent, args.max_failures)
                else:
                    cluster = ray.cluster_resources()
                    features_ref = run.share()
                    resources = FoldResources(
                        workers=args.workers_per_fold, cpus_per_worker=args.cpus_per_worker,
                        gpus_per_worker=gpus_per_worker(args.gpus_per_worker, cluster, args.workers_per_fold,
                                                        run.features.features.nbytes),
                        max_failures=args.max_failures)
                    concurrent = args.max_concurrent_folds or resources.concurrent_folds(cluster)
                    if concurrent > resources.memory_limit(cluster):
                        raise ConfigError(
                            f"--max-concurrent-folds {concurrent}: {concurrent} runners need about "
                            f"{concurrent * resources.runner_bytes() / 2 ** 30:.1f} GB of host memory beyond the "
                            f"shared features ({run.features.features.nbytes / 2 ** 30:.2f} GB), the cluster schedules "
                            f"{cluster.get('memory', 0) / 2 ** 30:.1f} GB: use at most "
                            f"{resources.memory_limit(cluster)} or a larger node")
                    log.info("running up to %d fold job(s) at once, %d worker(s) each reserving %g CPU(s) and %g "
                             "GPU(s), %d torch thread(s) per worker (training.num_threads)", concurrent,
                             resources.workers, resources.cpus_per_worker, resources.gpus_per_worker,
                             config.training.num_threads)
                    progress = run_folds(jobs, config, spec, features_ref, writer, resources, concurrent,
                                         args.storage_path or str(out / "ray"), args.checkpoint_every)
            except KeyboardInterrupt:
                return 128 + received.get("signal", signal.SIGINT)
        timings["folds_finished_at"], timings["writing"] = time.time(), writer.seconds
        if progress.failed:
            log.error("%d fold job(s) failed; their errors are in %s. Run again with --resume to retry them.",
                      progress.failed, out / "failed")
    started = time.perf_counter()
    certificate = certify(run.features, run.folds, read_records(out), manifest, config)
    write_certificate(out, certificate)
    timings["certificate"] = time.perf_counter() - started
    tables = aggregate(out, report=not args.no_report)
    timings["tables_figures_report"] = time.perf_counter() - started - timings["certificate"]
    write_text_atomic(out / "timings.json", json.dumps(timings, indent=2))
    print_tables(tables)
    return 1 if list((out / "failed").glob("*.json")) or failed(certificate) else 0
