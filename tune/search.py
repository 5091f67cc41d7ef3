"""`python -m tune.search`: Optuna (TPE) + ASHA hyper-parameter search, with no test subject in any trial.

Every trial is one Ray Train job (`loso.worker.fit_fold`) that trains on training subjects and is
scored on validation subjects drawn from the training subjects by validation *balanced accuracy*, the
metric the LOSO tables lead with: each epoch's reaches Tune so ASHA can stop poor trials early, and a
trial's final score (what Optuna optimises) is that of the epoch the early-stopping rule keeps. The searched feature
set is built with the test subjects removed (`FeatureSet.without`), so their windows are not even
in Ray's object store while a search runs.

Protocols:
  holdout  a fixed, reported set of test subjects (`--test-subjects`, default a seeded ~20% of each
           dataset's subjects) is excluded; after the search the best config is trained once on
           all search subjects and tested once on them.
  nested   for every LOSO test subject, a search on the other subjects of its dataset and the
           winner of that inner search tested on that subject; the mean over subjects is the
           nested-CV estimate of "tune, then train" on unseen subjects.

Which numbers may go into a paper (summary.json, trials.md):
  FIT      `holdout_test` (holdout) and `nested.estimate` (nested): test subjects never informed
           any choice.
  NOT FIT  `best_val_score`: the best of many trials scored on the same validation subjects is
           optimistically biased; it ranks configurations, it does not estimate performance.

Outputs under --output: best_config.json (an ExperimentConfig: `python -m loso.run --config
best_config.json`; its `tuned_on` lists the subjects whose data informed it, and loso.run marks the folds
that test one of them), trials.csv/.md/.tex, figures/score_vs_trial.png, figures/param_importance.png,
summary.json; Tune's own state under ray/ (what `--resume` continues).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
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
from gru_xnet.data_loader import Split, validation_subjects
from gru_xnet.features import FeatureSet, build_feature_set
from gru_xnet.provenance import provenance
from loso.aggregate import SCORES
from loso.cli import add_common_arguments, configure, init_ray, storage_join
from loso.folds import plan_folds
from loso.gpu_packing import gpus_per_worker
from loso.stats import bootstrap_ci
from loso.tables import write_table
from loso.worker import FoldResources, fit_fold
from tune.figures import plot_param_importance, plot_scores
from tune.release_stopped_workers import ReleaseWorkersOnStop
from tune.space import SearchSpace, load_space

log = logging.getLogger("tune")

METRIC = "val_balanced_accuracy"
"""What ASHA compares every epoch and Optuna maximises: the LOSO tables' lead metric, on validation subjects."""
TRIAL_CPU = 0.01  # a trial only drives its Train job; a 0-CPU trial is refused, a 1-CPU one starves workers
NOT_FOR_PAPER = ("best_val_score is the best of many trials on the same validation subjects: "
                 "optimistically biased, not an estimate of performance")


class SearchInterrupted(RuntimeError):
    """The search stopped before every trial finished; `--resume` continues it."""


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python -m tune.search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    p.add_argument("--space", help="JSON/YAML file overriding entries of the default search space")
    p.add_argument("--protocol", choices=("holdout", "nested"), default="holdout")
    p.add_argument("--test-subjects", nargs="+",
                   help="holdout: the test subjects ('s01' or 'DEAP/s01'; default: a seeded ~20%% of each "
                        "dataset); nested: the LOSO subjects to evaluate (default: all)")
    p.add_argument("--num-samples", type=int, default=8, help="trials per search")
    p.add_argument("--max-concurrent-trials", type=int, default=0,
                   help="trials in flight (default: as many as the cluster's resources allow)")
    p.add_argument("--workers-per-trial", type=int, default=1, help="DDP workers per trial")
    p.add_argument("--cpus-per-worker", type=float, default=1.0 - TRIAL_CPU)
    p.add_argument("--scheduler", choices=("asha", "none"), default="asha")
    p.add_argument("--grace-period", type=int, default=2, help="ASHA: epochs every trial runs")
    p.add_argument("--seed", type=int, default=None, help="sampler, test-subject and split seed "
                                                          "(default: the config's)")
    p.add_argument("--output", default=None, help="output folder (default: <output_dir>/tune_<experiment>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search in --output")
    return p.parse_known_args(argv)


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
    resources: FoldResources
    storage: str
    resume: bool
    verbose: int


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


def keep_only(features: FeatureSet, subjects: Sequence[int]) -> FeatureSet:
    """The feature set reduced to `subjects` (indices renumbered in their original order)."""
    return features.without([i for i in range(len(features.subjects)) if i not in set(subjects)])


def inner_split(features: FeatureSet, val_fraction: float, seed: int) -> Split:
    """Train/validation subjects of a search: every subject of `features`, validation per dataset."""
    train, val = validation_subjects(features, range(len(features.subjects)), val_fraction, seed=seed)
    if not val:
        raise ValueError("the search needs at least two subjects per dataset (one for validation)")
    return Split(train, val, ())


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
    """One trial: one Ray Train fold with the sampled values; its final result = the kept epoch's score + subjects seen."""
    config = settings.space.apply(settings.base, params)
    trial_id = tune.get_context().get_trial_id()
    [result] = fit_fold(run_name=f"{experiment}-{trial_id}", config=config, features_ref=features_box[0],
                        split=split, seed=settings.seed, resources=settings.resources,
                        storage_path=storage_join(settings.storage, "train"),
                        callbacks=[EpochReport(), ReleaseWorkersOnStop()])
    tune.report({METRIC: result["history"][result["best_epoch"] - 1][METRIC], "epoch": result["epochs_run"],
                 "best_epoch": result["best_epoch"], "fold_complete": True,
                 **{f"seen_{side}": " ".join(names) for side, names in result["seen_subjects"].items()}})


def make_trainable(features_ref: ray.ObjectRef, split: Split, experiment: str, settings: SearchSettings):
    """The Tune trainable (the same object for a new and a restored search)."""
    with_data = tune.with_parameters(run_trial, features_box=[features_ref], split=split,
                                     experiment=experiment, settings=settings)
    return tune.with_resources(with_data, {"cpu": TRIAL_CPU})


def make_scheduler(settings: SearchSettings):
    """ASHA on the epoch count, or plain FIFO.

    Rungs end before the last epoch and `stop_last_trials=False`, so a trial that reaches its last
    epoch always finishes its fold and reports the subjects it saw.
    """
    if settings.scheduler == "none":
        return FIFOScheduler()
    epochs = settings.base.training.num_epochs
    if not 0 < settings.grace_period < epochs:
        raise ConfigError(f"--grace-period {settings.grace_period}: expected 1 .. training.num_epochs - 1 "
                          f"(= {epochs - 1})")
    return ASHAScheduler(time_attr="epoch", max_t=epochs - 1, grace_period=settings.grace_period,
                         stop_last_trials=False)


def run_search(experiment: str, features: FeatureSet, split: Split, settings: SearchSettings) -> tune.ResultGrid:
    """One Tune search over `features` (test subjects already removed); restores an existing one on --resume."""
    features_ref = ray.put(features)
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
            run_config=tune.RunConfig(name=experiment, storage_path=settings.storage, verbose=settings.verbose))
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


def evaluate_once(run_name: str, config: ExperimentConfig, features: FeatureSet, split: Split,
                  settings: SearchSettings, out: Path) -> dict[str, Any]:
    """Train the chosen config on the split's train/val subjects and test once; cached in `out`."""
    if out.exists():
        return json.loads(out.read_text())
    features_ref = ray.put(features)
    [result] = fit_fold(run_name=run_name, config=config, features_ref=features_ref, split=split,
                        seed=settings.seed, resources=settings.resources,
                        storage_path=storage_join(settings.storage, "evaluation"))
    record = {"test": {k: result["test"][k] for k in (*SCORES, "n", "class_counts", "baseline", "trial", "per_subject")},
              "seen_subjects": result["seen_subjects"], "epochs_run": result["epochs_run"],
              "best_epoch": result["best_epoch"]}
    write_text_atomic(out, json.dumps(record, indent=2))
    return record


def run_holdout(args: argparse.Namespace, features: FeatureSet, settings: SearchSettings,
                out: Path) -> tuple[list[dict], dict, dict]:
    """Search without the test subjects, then test the winner once on them."""
    test = choose_test_subjects(features, args.test_subjects, settings.seed)
    names = [str(features.subjects[i]) for i in test]
    log.info("holdout test subjects (never loaded by a trial): %s", " ".join(names))
    pool = [i for i in range(len(features.subjects)) if i not in test]
    searched = keep_only(features, pool)
    split = inner_split(searched, val_fraction(settings.base), settings.seed)
    grid = run_search("search", searched, split, settings)
    rows = trial_rows(grid, list(settings.space.parameters))
    best = best_row(rows)
    train, val = validation_subjects(features, pool, val_fraction(settings.base), seed=settings.seed)
    record = evaluate_once("holdout-test", best_config(settings, best), features, Split(train, val, tuple(test)),
                           settings, out / "holdout_test.json")
    summary = {"test_subjects": names, "search_subjects": [str(s) for s in searched.subjects],
               "validation_subjects": [str(searched.subjects[i]) for i in split.val],
               "holdout_test": record["test"], "holdout_seen_subjects": record["seen_subjects"],
               "paper_fit": "holdout_test", "tuned_on": [str(s) for s in searched.subjects]}
    return rows, best, summary


def run_nested(args: argparse.Namespace, features: FeatureSet, settings: SearchSettings,
               out: Path) -> tuple[list[dict], dict, dict]:
    """For every LOSO subject: a search on the other subjects of its dataset, its winner tested on it."""
    folds = plan_folds(features, subjects=args.test_subjects, seeds=[settings.seed],
                       val_fraction=val_fraction(settings.base))
    rows, outer, winners = [], [], []
    for fold in folds:
        subject = str(features.subjects[fold.split.test[0]])
        searched = keep_only(features, fold.split.train + fold.split.val)
        log.info("nested: searching for %s on %d other subject(s)", subject, len(searched.subjects))
        grid = run_search(f"search-{fold.fold_id}", searched,
                          inner_split(searched, val_fraction(settings.base), settings.seed), settings)
        fold_rows = trial_rows(grid, list(settings.space.parameters), outer_subject=subject)
        best = best_row(fold_rows)
        record = evaluate_once(f"test-{fold.fold_id}", best_config(settings, best), features, fold.split,
                               settings, out / "nested" / f"{fold.fold_id}.json")
        rows += fold_rows
        winners.append(best)
        outer.append({"subject": subject, "best_params": params_of(best, settings), "val_score": best["val_score"],
                      "test": record["test"], "seen_subjects": record["seen_subjects"]})
    scores = pd.DataFrame([headline_scores(o["test"]) for o in outer])
    estimate = {m: {"mean": float(scores[m].mean()), "std": float(scores[m].std(ddof=1)) if len(outer) > 1 else 0.0,
                    **dict(zip(("ci_low", "ci_high"), bootstrap_ci(scores[m])))} for m in scores}
    best = max(winners, key=lambda r: r["val_score"])
    summary = {"nested": {"per_subject": outer, "estimate": estimate}, "paper_fit": "nested.estimate",
               "tuned_on": sorted({s for fold in folds for s in map(str, keep_only(
                   features, fold.split.train + fold.split.val).subjects)}),
               "best_config_note": "best_config.json is the inner-search winner with the highest validation "
                                   "score; the nested estimate measures the tuning procedure, not this one config"}
    return rows, best, summary


def val_fraction(config: ExperimentConfig) -> float:
    """Share of the training subjects held out for validation (as loso.run uses)."""
    return config.data.val_ratio / (config.data.train_ratio + config.data.val_ratio)


def params_of(row: dict[str, Any], settings: SearchSettings) -> dict[str, Any]:
    return {name: row[name] for name in settings.space.parameters}


def headline_scores(test: dict[str, Any]) -> dict[str, float]:
    """The test scores a summary reports, each level beside its majority-class baseline."""
    return {"balanced_accuracy": test["balanced_accuracy"], "accuracy": test["accuracy"],
            "majority_accuracy": test["baseline"]["majority_accuracy"], "macro_f1": test["macro_f1"],
            "trial_balanced_accuracy": test["trial"]["balanced_accuracy"], "trial_accuracy": test["trial"]["accuracy"],
            "trial_majority_accuracy": test["trial"]["baseline"]["majority_accuracy"]}


def best_config(settings: SearchSettings, row: dict[str, Any]) -> ExperimentConfig:
    """The base config with the trial's values: what best_config.json holds."""
    config = settings.space.apply(settings.base, params_of(row, settings))
    config.experiment_name = f"{settings.base.experiment_name}_tuned"
    return config


def table_header(protocol: str, synthetic: bool, monitor: str) -> list[str]:
    """The caption of trials.md/.tex and the head of the printout: data kind, protocol, what the scores may be used for."""
    lines = ["SYNTHETIC DATA (generated in the real file formats) - not a result on real EEG"] if synthetic else []
    return lines + [f"Hyper-parameter search, protocol '{protocol}': val_score = validation balanced accuracy (%) "
                    f"of the epoch the early-stopping rule keeps (best validation {monitor}; kept_epoch), on "
                    "validation subjects drawn from the training subjects; no trial loaded a test subject",
                    f"NOT FOR A PAPER: {NOT_FOR_PAPER}; report summary.json's "
                    f"{'holdout_test' if protocol == 'holdout' else 'nested.estimate'} instead"]


def write_outputs(out: Path, rows: list[dict], best: dict, summary: dict, settings: SearchSettings) -> pd.DataFrame:
    """best_config.json, trials tables, both figures and summary.json."""
    config = best_config(settings, best)
    config.tuned_on = summary["tuned_on"]
    config.save(out / "best_config.json")
    table = pd.DataFrame(rows)
    header = table_header(summary["protocol"], summary["synthetic"], settings.base.training.monitor)
    write_table(table, out / "trials", header)
    title = ("SYNTHETIC DATA - " if summary["synthetic"] else "") + f"search ({summary['protocol']})"
    plot_scores(table, out / "figures" / "score_vs_trial.png", title)
    complete = table[table["status"] == "complete"]
    plot_param_importance(complete[list(settings.space.parameters)].to_dict("records"), list(complete["val_score"]),
                          settings.space.distributions(), out / "figures" / "param_importance.png", title)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
    return table


def check_manifest(out: Path, manifest: dict, resume: bool) -> None:
    """Refuse to continue a search in `out` that was started with other settings."""
    path = out / "search.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = [k for k in manifest if old.get(k) != manifest[k]]
        if changed:
            raise ConfigError(f"{out} holds a search with a different {', '.join(changed)}; use another --output")
        if not resume:
            raise ConfigError(f"{out} holds a search already; pass --resume to continue it or use another --output")
    write_text_atomic(path, json.dumps(manifest, indent=2))


def prepare(args: argparse.Namespace, extra: list[str]) -> tuple[ExperimentConfig, FeatureSet, SearchSettings, Path]:
    """Config, features, settings and output folder from the command line (no Ray needed yet)."""
    config = configure(args, extra)
    space = load_space(args.space, config)
    if args.num_samples < 1:
        raise ConfigError(f"--num-samples {args.num_samples}: expected an integer >= 1")
    features = build_feature_set(config.data)
    out = Path(args.output or Path(config.output_dir) / f"tune_{config.experiment_name}").resolve()
    seed = config.seed if args.seed is None else args.seed
    settings = SearchSettings(
        space=space, base=config, num_samples=args.num_samples, max_concurrent=args.max_concurrent_trials,
        scheduler=args.scheduler, grace_period=args.grace_period, seed=seed,
        resources=FoldResources(workers=args.workers_per_trial, cpus_per_worker=args.cpus_per_worker, max_failures=1),
        storage=args.storage_path or str(out / "ray"), resume=args.resume, verbose=1 if args.verbose else 0)
    make_scheduler(settings)
    manifest = {"config_hash": config.fingerprint(), "protocol": args.protocol, "space": space.to_dict(),
                "num_samples": args.num_samples, "scheduler": args.scheduler, "seed": seed,
                "test_subjects": args.test_subjects, "synthetic": bool(features.synthetic)}
    check_manifest(out, manifest, args.resume)
    return config, features, settings, out


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config, features, settings, out = prepare(args, extra)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2
    if features.synthetic:
        log.info("NOTE: searching on SYNTHETIC data (generated in the real file formats)")
    log.info("base model %s", config.model.describe_sequence(features.features.shape[1:]))
    init_ray(args.address, args.num_cpus, args.verbose)
    cluster = ray.cluster_resources()
    resources = dataclasses.replace(settings.resources, gpus_per_worker=gpus_per_worker(
        args.gpus_per_worker, cluster, settings.resources.workers, features.features.nbytes))
    settings = dataclasses.replace(settings, resources=resources,
                                   max_concurrent=settings.max_concurrent or concurrent_trials(resources, cluster))
    log.info("%s protocol, %d trial(s) per search, up to %d at once, %d worker(s) each", args.protocol,
             settings.num_samples, settings.max_concurrent, settings.resources.workers)
    runner = run_holdout if args.protocol == "holdout" else run_nested
    try:
        rows, best, summary = runner(args, features, settings, out)
    except SearchInterrupted as exc:
        log.error("%s; run again with --resume (same arguments) to finish it without repeating finished trials", exc)
        return 130
    except (ConfigError, ValueError) as exc:
        log.error("error: %s", exc)
        return 2
    summary = {"protocol": args.protocol, "synthetic": bool(features.synthetic), "datasets": features.datasets,
               "labels": {k: v["labels"] for k, v in features.protocol["datasets"].items()},
               "seed": settings.seed, "scheduler": args.scheduler, "space": settings.space.to_dict(),
               "num_trials": len(rows), "trials_by_status": pd.Series([r["status"] for r in rows]).value_counts().to_dict(),
               "best_params": params_of(best, settings), "best_val_score": best["val_score"],
               "best_val_score_note": NOT_FOR_PAPER, "monitor": settings.base.training.monitor,
               "provenance": provenance(), **summary}
    table = write_outputs(out, rows, best, summary, settings)
    print_report(table, summary, out)
    return 0


def print_report(table: pd.DataFrame, summary: dict, out: Path) -> None:
    """The trials table and the headline numbers, for the person at the terminal."""
    shown = table.drop(columns=["seen_train", "seen_val", "seen_test"])
    print("\n".join(table_header(summary["protocol"], summary["synthetic"], summary["monitor"])))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nbest params: {summary['best_params']}  (val {summary['best_val_score']:.1f}%, not for a paper)")
    if "holdout_test" in summary:
        test = headline_scores(summary["holdout_test"])
        print(f"holdout test on {' '.join(summary['test_subjects'])}: "
              + ", ".join(f"{m} {v:.1f}%" for m, v in test.items()) + "  <- fit for a paper")
    else:
        print("nested estimate over " f"{len(summary['nested']['per_subject'])} subject(s): "
              + ", ".join(f"{m} {v['mean']:.1f}% [95% CI {v['ci_low']:.1f}, {v['ci_high']:.1f}]"
                          for m, v in summary["nested"]["estimate"].items())
              + "  <- fit for a paper")
    print(f"outputs in {out}")


if __name__ == "__main__":
    sys.exit(main())
