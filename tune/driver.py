"""The driver of a hyper-parameter search (`python -m tune.search`): scopes' features once, Tune searches (a trial trains
its fold in its own process, or as a Ray Train job when DDP), the winners tested once, the reports written.

The command (`tune.search`) checks the options, config and search space before this module, torch, Ray and
Optuna load; see its docstring for the protocols and what each output may be used for.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import ray
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.optuna import OptunaSearch

from gru_xnet.config import ConfigError, ExperimentConfig, write_text_atomic
from gru_xnet.datasets import DatasetError
from gru_xnet.estimators import is_estimator
from gru_xnet.features import FeatureSet, build_feature_set
from gru_xnet.model import build_model
from gru_xnet.models import ModelSpec
from gru_xnet.provenance import provenance
from gru_xnet.split import Split, validation_subjects
from loso.aggregate import SCORES, datasets_display, subjects_display
from loso.cli import init_ray, storage_join
from loso.gpu_packing import gpus_per_worker
from loso.splits import plan_folds
from loso.tables import write_table
from loso.worker import FoldResources, fit_fold, shared, train_here
from tune.figures import finished_study, plot_parallel_coordinate, plot_param_importance, plot_scores
from tune.release_stopped_workers import ReleaseWorkersOnStop
from tune.report import (METRIC, NOT_FOR_PAPER, PAPER_FIT, json_records, print_report, subject_records,
                         subject_tables, test_header, trials_header, write_search_report)
from tune.space import SearchSpace

log = logging.getLogger("tune")

TRIAL_CPU = 0.01  # a DDP trial only drives its Train job; a 0-CPU trial is refused, a 1-CPU one starves workers


class SearchInterrupted(RuntimeError):
    """The search stopped before every trial finished; `--resume` continues it."""


@dataclass(frozen=True)
class SearchSettings:
    """How every search of one run is carried out."""

    space: SearchSpace
    base: ExperimentConfig
    num_samples: int
    max_concurrent: int
    scheduler: str
    grace_period: int
    seed: int
    pool: str
    split: str
    """The outer folds of a nested search (`loso.splits`, one holding out whole subjects)."""
    resources: FoldResources
    storage: str
    resume: bool
    verbose: int
    spec: ModelSpec

    @property
    def trains_in_trial(self) -> bool:
        """A one-worker trial trains in its Tune trial process; a DDP trial is a Ray Train job it drives."""
        return self.resources.workers == 1


@dataclass(frozen=True)
class Scope:
    """What one search covers: all datasets (joint pool, or one dataset), or one dataset of several (within)."""

    dataset: str | None
    """The dataset a per-dataset search is restricted to; None for the one search of the run."""
    config: ExperimentConfig
    features: FeatureSet
    test_names: tuple[str, ...] | None
    """The --test-subjects that denote subjects of this scope (None: not given)."""

    @property
    def tag(self) -> str:
        """Suffix of this scope's Ray experiments and cached evaluations."""
        return f"_{self.dataset}" if self.dataset else ""

    @property
    def columns(self) -> dict[str, str]:
        """Extra trials-table columns naming the scope, when the run has several."""
        return {"dataset": self.dataset} if self.dataset else {}

    @property
    def config_file(self) -> str:
        """best_config.json, or best_config_<DATASET>.json for one dataset of several."""
        return f"best_config{self.tag}.json"


def dataset_config(config: ExperimentConfig, dataset: str) -> ExperimentConfig:
    """`config` restricted to one dataset: what that dataset's search tunes and its best config holds."""
    own = ExperimentConfig.from_dict(config.to_dict())
    own.data.datasets = [dataset]
    own.experiment_name = f"{config.experiment_name}_{dataset}"
    own.validate()
    return own


def denotes(features: FeatureSet, name: str) -> bool:
    """Whether `name` ('s01' or 'DEAP/s01') names a subject of `features`."""
    try:
        features.subject_ids([name])
    except DatasetError:
        return False
    return True


def search_scopes(config: ExperimentConfig, pool: str, names: Sequence[str] | None,
                  representation: str) -> list[Scope]:
    """One scope over every dataset (joint, or one dataset), else one per dataset, built on its own features.

    A per-dataset scope's features are that dataset's alone (all its channels), as its best config
    gives them when run; with names, every dataset must get test subjects and every name a dataset.
    """
    if pool == "joint" or len(config.data.datasets) == 1:
        return [Scope(None, config, build_feature_set(config.data, representation=representation),
                      tuple(names) if names else None)]
    scopes = []
    for dataset in config.data.datasets:
        own = dataset_config(config, dataset)
        features = build_feature_set(own.data, representation=representation)
        found = tuple(n for n in names if denotes(features, n)) if names else None
        if names and not found:
            raise ConfigError(f"--test-subjects names no subject of {dataset}: with --pool within each dataset is "
                              "searched and tested on its own; name test subjects of every dataset or leave "
                              f"{dataset} out of --datasets")
        scopes.append(Scope(dataset, own, features, found))
    unknown = sorted(set(names or ()) - {n for scope in scopes for n in scope.test_names or ()})
    if unknown:
        raise ConfigError(f"--test-subjects: no subject {', '.join(unknown)} in {', '.join(config.data.datasets)}")
    return scopes


def choose_test_subjects(features: FeatureSet, names: Sequence[str] | None, seed: int,
                         fraction: float = 0.2) -> list[int]:
    """The named subjects, or a seeded ~`fraction` of each dataset's subjects (at least one)."""
    if names:
        return sorted(features.subject_ids(names))
    rng = np.random.default_rng(seed)
    chosen = []
    for dataset in features.datasets:
        members = features.subjects_of(dataset)
        n_test = max(1, round(fraction * len(members)))
        if len(members) - n_test < 2:
            raise ValueError(f"{dataset}: {len(members)} subject(s) cannot give {n_test} test subject(s) "
                             "and still leave a training and a validation subject")
        chosen += [members[i] for i in rng.choice(len(members), n_test, replace=False)]
    return sorted(chosen)


def inner_split(features: FeatureSet, searched: Sequence[int], val_fraction: float, seed: int) -> Split:
    """Train/validation subjects of a search: the `searched` subjects, validation drawn per dataset."""
    train, val = validation_subjects(features, searched, val_fraction, seed=seed)
    if not val:
        raise ValueError("the search needs at least two subjects per dataset (one for validation)")
    return Split(train, val, ())


def refuse_held_out(rows: list[dict[str, Any]], held_out: Sequence[str]) -> list[dict[str, Any]]:
    """The trial rows, after checking that no trial's loaders delivered a held-out subject's window."""
    for row in rows:
        seen = {name for side in ("train", "val", "test") for name in str(row[f"seen_{side}"] or "").split()}
        if seen & set(held_out):
            raise RuntimeError(f"trial {row['trial']} loaded held-out subject(s) {' '.join(sorted(seen & set(held_out)))}: "
                               "the search is void")
    return rows


def concurrent_trials(resources: FoldResources, cluster: dict[str, float]) -> int:
    """Trials that fit at once: each needs its workers plus TRIAL_CPU for its driver."""
    share = resources.cpus_per_worker + TRIAL_CPU / resources.workers
    return dataclasses.replace(resources, cpus_per_worker=share).concurrent_folds(cluster)


class EpochReport(TuneReportCallback):
    """Forwards each epoch's record to Tune (for ASHA and Optuna), not the fold's closing summary.

    The worker ends with a `{"fold_done": True}` summary that lacks the validation score Tune
    requires in every result; the trial reports its own final result instead.
    """

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        if not metrics[0].get("fold_done"):
            super().after_report(run_context, metrics, None)


def run_trial(params: dict[str, Any], *, features_box: list, split: Split, experiment: str,
              settings: SearchSettings) -> None:
    """One trial: its fold trained with the sampled values, each epoch's record reported to Tune (ASHA, Optuna); its
    final result = the kept epoch's score + subjects seen. A one-worker trial trains in this, the trial's own
    process, which reserves the worker's CPUs and GPU share; a DDP trial (`--workers-per-trial` > 1) is a Ray Train
    job whose workers the trial drives."""
    config = settings.space.apply(settings.base, params)
    if settings.trains_in_trial:
        result = train_here(config, ray.get(features_box[0]), split, settings.seed, settings.spec, tune.report)
    else:
        [result] = fit_fold(run_name=f"{experiment}-{tune.get_context().get_trial_id()}", config=config,
                            features_ref=features_box[0], split=split, seed=settings.seed,
                            resources=settings.resources, spec=settings.spec,
                            storage_path=storage_join(settings.storage, "train"),
                            callbacks=[EpochReport(), ReleaseWorkersOnStop()])
    tune.report({METRIC: result["history"][result["best_epoch"] - 1][METRIC], "epoch": result["epochs_run"],
                 "best_epoch": result["best_epoch"], "fold_complete": True,
                 **{f"seen_{side}": " ".join(names) for side, names in result["seen_subjects"].items()}})


def trial_resources(settings: SearchSettings) -> dict[str, float]:
    """What a trial reserves: a one-worker trial is its worker (its CPUs, its GPU share, and the small share a
    trial's driving takes); a DDP trial only drives its Train job, whose placement group holds the workers'."""
    resources = settings.resources
    if not settings.trains_in_trial:
        return {"cpu": TRIAL_CPU}
    return {"cpu": resources.cpus_per_worker + TRIAL_CPU, "gpu": resources.gpus_per_worker}


def trial_retries(settings: SearchSettings) -> int:
    """Tune's retries of a failed trial: a one-worker trial is retried as a Train job's worker group is (from its
    first epoch), a DDP trial's Train job retries its workers itself."""
    return settings.resources.max_failures if settings.trains_in_trial else 0


def make_trainable(features_ref: ray.ObjectRef, split: Split, experiment: str, settings: SearchSettings):
    """The Tune trainable (the same object for a new and a restored search)."""
    with_data = tune.with_parameters(run_trial, features_box=[features_ref], split=split,
                                     experiment=experiment, settings=settings)
    return tune.with_resources(with_data, trial_resources(settings))


def make_scheduler(settings: SearchSettings):
    """ASHA on the epoch count, or plain FIFO.

    Rungs end before the last epoch and `stop_last_trials=False`, so a trial that reaches its last
    epoch always finishes its fold and reports the subjects it saw (the command checked the grace period).
    """
    if settings.scheduler == "none":
        return FIFOScheduler()
    epochs = settings.base.training.num_epochs
    return ASHAScheduler(time_attr="epoch", max_t=epochs - 1, grace_period=settings.grace_period,
                         stop_last_trials=False)


def run_search(experiment: str, features_ref: ray.ObjectRef, split: Split, settings: SearchSettings) -> tune.ResultGrid:
    """One Tune search over the split's subjects of the shared features; restores an existing one on --resume."""
    trainable = make_trainable(features_ref, split, experiment, settings)
    path = storage_join(settings.storage, experiment)
    if tune.Tuner.can_restore(path):
        if not settings.resume:
            raise ConfigError(f"{path} holds a search already; pass --resume to continue it or use another --output")
        log.info("resuming the search in %s", path)
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable, param_space=settings.space.param_space(),
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", num_samples=settings.num_samples,
                                        max_concurrent_trials=settings.max_concurrent,
                                        search_alg=OptunaSearch(seed=settings.seed),
                                        scheduler=make_scheduler(settings)),
            run_config=tune.RunConfig(name=experiment, storage_path=settings.storage, verbose=settings.verbose,
                                      failure_config=tune.FailureConfig(max_failures=trial_retries(settings))))
    grid = tuner.fit()
    finished = [r for r in grid if r.error or (r.metrics or {}).get("fold_complete") or (r.metrics or {}).get("done")]
    if len(finished) < settings.num_samples:
        raise SearchInterrupted(f"search {experiment} stopped with {len(finished)} of "
                                f"{settings.num_samples} trial(s) finished")
    return grid


def trial_rows(grid: tune.ResultGrid, names: Sequence[str], **extra: Any) -> list[dict[str, Any]]:
    """One row per trial, in creation order: parameters, validation score of the kept epoch, epochs run, status, subjects seen."""
    rows = []
    for result in grid:
        history = result.metrics_dataframe if result.metrics_dataframe is not None else pd.DataFrame()
        epochs = history[history["fold_done"] == False] if "fold_done" in history else history  # noqa: E712
        kept = int(epochs["best_epoch"].iloc[-1]) if "best_epoch" in epochs and len(epochs) else 0
        score = epochs.loc[epochs["epoch"] == kept, METRIC] if kept else pd.Series(dtype=float)
        metrics = result.metrics or {}
        status = ("error" if result.error else "complete" if metrics.get("fold_complete")
                  else "stopped early (ASHA)")
        rows.append({**extra, "trial": metrics.get("trial_id", Path(result.path).name),
                     **{name: result.config.get(name) for name in names},
                     "val_score": float(score.iloc[0]) if len(score) else float("nan"), "kept_epoch": kept,
                     "epochs": int(history["epoch"].max()) if "epoch" in history else 0, "status": status,
                     **{f"seen_{side}": metrics.get(f"seen_{side}", "") for side in ("train", "val", "test")}})
    return rows


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest-scoring trial that ran its fold to the end (any scored trial if none did)."""
    complete = [r for r in rows if r["status"] == "complete"] or [r for r in rows if np.isfinite(r["val_score"])]
    if not complete:
        raise RuntimeError("no trial produced a validation score; see the trial errors in the Tune logs")
    return max(complete, key=lambda r: r["val_score"])


def evaluate_once(run_name: str, config: ExperimentConfig, features_ref: ray.ObjectRef, split: Split,
                  settings: SearchSettings, out: Path) -> dict[str, Any]:
    """Train the chosen config on the split's train/val subjects and test once; cached (with its predictions) in `out`."""
    if out.exists():
        return json.loads(out.read_text())
    [result] = fit_fold(run_name=run_name, config=config, features_ref=features_ref, split=split,
                        seed=settings.seed, resources=settings.resources, spec=settings.spec,
                        storage_path=storage_join(settings.storage, "evaluation"))
    record = {"test": {k: result["test"][k] for k in (*SCORES, "n", "class_counts", "baseline", "trial", "per_subject")},
              "predictions": result["predictions"], "seen_subjects": result["seen_subjects"],
              "epochs_run": result["epochs_run"], "best_epoch": result["best_epoch"]}
    write_text_atomic(out, json.dumps(record, indent=2))
    return record


@dataclass(frozen=True)
class Outcome:
    """What the search(es) of one scope produced."""

    rows: list[dict[str, Any]]
    best: dict[str, Any]
    config: ExperimentConfig
    """The winner's config, `tuned_on` set: what best_config*.json holds."""
    records: list[dict[str, Any]]
    """One fold-like test record per test subject."""
    summary: dict[str, Any]
    """This scope's entry of summary.json's `searches`."""
    folds: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """nested: per outer subject, its search's winner and test."""


def run_holdout(scope: Scope, features_ref: ray.ObjectRef, settings: SearchSettings, out: Path) -> Outcome:
    """Search without the test subjects, then test the winner once on them."""
    features = scope.features
    test = choose_test_subjects(features, scope.test_names, settings.seed)
    names = [str(features.subjects[i]) for i in test]
    log.info("holdout test subjects (never loaded by a trial): %s", " ".join(names))
    pool = [i for i in range(len(features.subjects)) if i not in test]
    split = inner_split(features, pool, val_fraction(settings.base), settings.seed)
    rows = refuse_held_out(trial_rows(run_search(f"search{scope.tag}", features_ref, split, settings),
                                      list(settings.space.parameters), **scope.columns), names)
    best = best_row(rows)
    config = best_config(settings, best, tuned_on=[str(features.subjects[i]) for i in pool])
    train, val = validation_subjects(features, pool, val_fraction(settings.base), seed=settings.seed)
    final = Split(train, val, tuple(test))
    record = evaluate_once(f"holdout-test{scope.tag}", config, features_ref, final, settings,
                           out / f"holdout_test{scope.tag}.json")
    summary = {"test_subjects": names, "search_subjects": config.tuned_on,
               "validation_subjects": [str(features.subjects[i]) for i in split.val],
               "seen_subjects": record["seen_subjects"], "tuned_on": config.tuned_on}
    return Outcome(rows, best, config, subject_records(record, features, final, settings.seed), summary)


def run_nested(scope: Scope, features_ref: ray.ObjectRef, settings: SearchSettings, out: Path) -> Outcome:
    """For every outer fold (a LOSO subject, or a k-fold group with `--split kfold:K`): a search on the other subjects
    of its pool, its winner tested on the fold's subjects."""
    features = scope.features
    folds = plan_folds(features, settings.split, protocol=settings.pool, subjects=scope.test_names,
                       seeds=[settings.seed], val_fraction=val_fraction(settings.base))
    rows, outer, winners, records, tuned_on = [], [], [], [], set()
    for fold in folds:
        subject = " ".join(fold.tests)
        searched = fold.split.train + fold.split.val
        log.info("nested: searching for %s on %d other subject(s)", subject, len(searched))
        grid = run_search(f"search-{fold.fold_id}", features_ref,
                          inner_split(features, searched, val_fraction(settings.base), settings.seed), settings)
        fold_rows = refuse_held_out(trial_rows(grid, list(settings.space.parameters), **scope.columns,
                                               outer_subject=subject), fold.tests)
        best = best_row(fold_rows)
        record = evaluate_once(f"test-{fold.fold_id}", best_config(settings, best), features_ref, fold.split,
                               settings, out / "nested" / f"{fold.fold_id}.json")
        rows += fold_rows
        winners.append(best)
        tuned_on |= {str(features.subjects[i]) for i in searched}
        records += subject_records(record, features, fold.split, settings.seed)
        outer.append({"subject": subject, "best_params": params_of(best, settings), "val_score": best["val_score"],
                      "test": record["test"], "seen_subjects": record["seen_subjects"]})
    best = max(winners, key=lambda r: r["val_score"])
    config = best_config(settings, best, tuned_on=sorted(tuned_on))
    return Outcome(rows, best, config, records, {"tuned_on": config.tuned_on}, outer)


def val_fraction(config: ExperimentConfig) -> float:
    """Share of the training subjects held out for validation (as loso.run uses)."""
    return config.data.val_ratio / (config.data.train_ratio + config.data.val_ratio)


def params_of(row: dict[str, Any], settings: SearchSettings) -> dict[str, Any]:
    return {name: row[name] for name in settings.space.parameters}


def best_config(settings: SearchSettings, row: dict[str, Any], tuned_on: Sequence[str] = ()) -> ExperimentConfig:
    """The base config with the trial's values and the subjects that informed them: what best_config*.json holds."""
    config = settings.space.apply(settings.base, params_of(row, settings))
    config.experiment_name = f"{settings.base.experiment_name}_tuned"
    config.tuned_on = list(tuned_on)
    return config


def build_summary(args: argparse.Namespace, scopes: list[Scope], outcomes: list[Outcome], settings: SearchSettings,
                  subjects: pd.DataFrame, datasets: pd.DataFrame) -> dict[str, Any]:
    """summary.json: settings, every search's winner, the test tables, provenance."""
    rows = [r for o in outcomes for r in o.rows]
    searches = [{"dataset": scope.dataset, "best_config": scope.config_file, "best_params": params_of(o.best, settings),
                 "best_val_score": o.best["val_score"], **o.summary} for scope, o in zip(scopes, outcomes)]
    summary = {"protocol": args.protocol, "pool": args.pool, "outer_split": settings.split, "synthetic": any(s.features.synthetic for s in scopes),
               "datasets": [d for s in scopes for d in s.features.datasets],
               "labels": {k: v["labels"] for s in scopes for k, v in s.features.protocol["datasets"].items()},
               "seed": settings.seed, "scheduler": args.scheduler, "space": settings.space.to_dict(),
               "metric": METRIC, "monitor": settings.base.training.monitor, "num_trials": len(rows),
               "trials_by_status": pd.Series([r["status"] for r in rows]).value_counts().to_dict(),
               "searches": searches, **{key: [name for search in searches for name in search[key]]
                                        for key in ("test_subjects", "search_subjects", "validation_subjects",
                                                    "tuned_on") if key in searches[0]},
               "best_val_score_note": NOT_FOR_PAPER, "paper_fit": PAPER_FIT[args.protocol]}
    if len(searches) == 1:
        summary.update(best_params=searches[0]["best_params"], best_val_score=searches[0]["best_val_score"])
    tests = {"per_subject": json_records(subjects), "per_dataset": json_records(datasets)}
    if args.protocol == "holdout":
        summary["holdout_test"] = tests
    else:
        summary["nested"] = {**tests, "folds": [f for o in outcomes for f in o.folds],
                             "best_config_note": "a best config is the inner-search winner with the highest "
                                                 "validation score; the nested scores measure the tuning "
                                                 "procedure, not this one config"}
    return {**summary, "provenance": provenance()}


def write_outputs(out: Path, scopes: list[Scope], outcomes: list[Outcome], summary: dict[str, Any],
                  subjects: pd.DataFrame, datasets: pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """Best configs, trials and test tables, both figures and summary.json; returns the trials table."""
    for scope, outcome in zip(scopes, outcomes):
        outcome.config.save(out / scope.config_file)
    table = pd.DataFrame([r for o in outcomes for r in o.rows])
    synthetic = bool(summary["synthetic"])
    write_table(table.assign(synthetic=synthetic), out / "trials", trials_header(summary), table)
    title = (("SYNTHETIC DATA - " if summary["synthetic"] else "")
             + f"search ({summary['protocol']}, pool {summary['pool']})")
    plot_scores(table, out / "figures" / "score_vs_trial.png", title)
    complete = table[table["status"] == "complete"]
    params, scores = complete[list(space.parameters)].to_dict("records"), list(complete["val_score"])
    plot_param_importance(params, scores, space.distributions(), out / "figures" / "param_importance.png", title)
    if scores:
        plot_parallel_coordinate(finished_study(params, scores, space.distributions()),
                                 out / "figures" / "parallel_coordinate.png", title)
    header = test_header(summary, subjects)
    write_table(subjects.assign(synthetic=synthetic), out / f"{summary['protocol']}_per_subject", header,
                subjects_display(subjects, {}))
    write_table(datasets.assign(synthetic=synthetic), out / f"{summary['protocol']}_per_dataset", header,
                datasets_display(datasets))
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
    write_search_report(out, table, subjects, datasets, summary)
    return table


def check_manifest(out: Path, manifest: dict, resume: bool) -> None:
    """Refuse to continue a search in `out` that was started with other settings."""
    path = out / "search.json"
    if path.exists():
        old = {"outer_split": "loso", **json.loads(path.read_text())}  # searches from before --split: LOSO outer folds
        changed = [k for k in manifest if old.get(k) != manifest[k]]
        if changed:
            raise ConfigError(f"{out} holds a search with a different {', '.join(changed)}; use another --output")
        if not resume:
            raise ConfigError(f"{out} holds a search already; pass --resume to continue it or use another --output")
    write_text_atomic(path, json.dumps(manifest, indent=2))


def prepare(args: argparse.Namespace, config: ExperimentConfig, spec: ModelSpec, space: SearchSpace,
            split: str) -> tuple[list[Scope], SearchSettings, Path]:
    """Search scopes (configs and features), settings and output folder of a checked command line
    (`tune.search.check`; no Ray needed yet)."""
    scopes = search_scopes(config, args.pool, args.test_subjects, spec.representation_of(config.data))
    shape, n_classes = scopes[0].features.features.shape[1:], scopes[0].features.n_classes
    if is_estimator(build_model(config.model, shape, n_classes, spec)):
        raise ConfigError(f"--model {spec.name} is a scikit-learn model: tune.search trains torch models; choose its "
                          "parameters inside the model (e.g. a GridSearchCV) and run it with loso.run")
    out = Path(args.output or Path(config.output_dir) / f"tune_{config.experiment_name}").resolve()
    seed = config.seed if args.seed is None else args.seed
    cpus_per_worker = 1.0 - TRIAL_CPU if args.cpus_per_worker is None else args.cpus_per_worker
    settings = SearchSettings(
        space=space, base=config, num_samples=args.num_samples, max_concurrent=args.max_concurrent_trials,
        scheduler=args.scheduler, grace_period=args.grace_period, seed=seed, pool=args.pool, split=split,
        resources=FoldResources(workers=args.workers_per_trial, cpus_per_worker=cpus_per_worker, max_failures=1),
        storage=args.storage_path or str(out / "ray"), resume=args.resume, verbose=1 if args.verbose else 0, spec=spec)
    manifest = {"config_hash": config.fingerprint(), "protocol": args.protocol, "pool": args.pool,
                "outer_split": settings.split,
                "space": space.to_dict(), "num_samples": args.num_samples, "scheduler": args.scheduler, "seed": seed,
                "test_subjects": args.test_subjects, "synthetic": any(s.features.synthetic for s in scopes),
                **({"model_source_sha256": spec.origin["source_sha256"]} if spec.origin else {})}
    check_manifest(out, manifest, args.resume)
    return scopes, settings, out


def execute(args: argparse.Namespace, scopes: list[Scope], settings: SearchSettings, out: Path) -> int:
    """Every scope's searches and tests on Ray, then the outputs and the printout; the exit code."""
    if any(scope.features.synthetic for scope in scopes):
        log.info("NOTE: searching on SYNTHETIC data (generated in the real file formats)")
    for scope in scopes:
        log.info("%s model %s: %s", scope.dataset or "base", settings.spec.name, settings.spec.input_statement(
            scope.config.model, scope.features.features.shape[1:], scope.features.representation))
    init_ray(args.address, args.num_cpus, args.verbose)
    cluster = ray.cluster_resources()
    resources = dataclasses.replace(settings.resources, gpus_per_worker=gpus_per_worker(
        args.gpus_per_worker, cluster, settings.resources.workers,
        max(scope.features.features.nbytes for scope in scopes)))
    settings = dataclasses.replace(settings, resources=resources,
                                   max_concurrent=settings.max_concurrent or concurrent_trials(resources, cluster))
    log.info("%s protocol, pool %s: %d search scope(s), %d trial(s) per search, up to %d at once, %d worker(s) each",
             args.protocol, args.pool, len(scopes), settings.num_samples, settings.max_concurrent,
             settings.resources.workers)
    runner = run_holdout if args.protocol == "holdout" else run_nested
    try:
        outcomes = []
        for i in range(len(scopes)):  # the driver keeps the store's view of a scope's features, not its own copy
            features_ref, view = shared(scopes[i].features)
            scopes[i] = dataclasses.replace(scopes[i], features=view)
            outcomes.append(runner(scopes[i], features_ref, dataclasses.replace(settings, base=scopes[i].config), out))
    except SearchInterrupted as exc:
        log.error("%s; run again with --resume (same arguments) to finish it without repeating finished trials", exc)
        return 130
    except (ConfigError, ValueError) as exc:
        log.error("error: %s", exc)
        return 2
    subjects, datasets = subject_tables([r for o in outcomes for r in o.records])
    summary = build_summary(args, scopes, outcomes, settings, subjects, datasets)
    table = write_outputs(out, scopes, outcomes, summary, subjects, datasets, settings.space)
    print_report(table, subjects, datasets, summary, out)
    return 0
