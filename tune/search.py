"""`python -m tune.search`: Optuna (TPE) + ASHA hyper-parameter search, with no test subject in any trial.

Every trial trains one fold in its own Tune trial process (`loso.worker.train_here`; with
`--workers-per-trial` > 1, a DDP Ray Train job, `loso.worker.fit_fold`) on training subjects, and is
scored on validation subjects drawn from the training subjects by the mean over validation subjects
of each subject's *balanced accuracy*, the number the LOSO tables lead with: each epoch's reaches Tune
so ASHA can stop poor trials early, and a trial's final score (what Optuna optimises) is that of the
epoch the early-stopping rule keeps. A scope's features go into Ray's object store once (the driver
keeps only the store's zero-copy view), and every search and evaluation reads its subjects' rows of
that one array: a search's split names only its subjects, and every trial's record of the subjects its
loaders delivered is checked against the held-out ones (`refuse_held_out`).

Pools (`--pool`, as `loso.run --protocol`):
  within   a model only ever trains and is validated on subjects of one dataset: with several
           datasets, one search per dataset on that dataset's own features, each writing its own
           best config (default).
  joint    one search whose models train and validate on the subjects of every dataset together.

Protocols:
  holdout  a fixed, reported set of test subjects (`--test-subjects`, default a seeded ~20% of each
           dataset's subjects) is excluded; after the search the best config is trained once on
           the search subjects and tested once on them, scored per test subject.
  nested   for every LOSO test subject, a search on the other subjects of its pool and the
           winner of that inner search tested on that subject; the mean over subjects is the
           nested-CV estimate of "tune, then train" on unseen subjects.

Which numbers may go into a paper (summary.json, <protocol>_per_dataset.md):
  FIT      `holdout_test.per_dataset` (holdout) and `nested.per_dataset` (nested): per-subject
           scores of test subjects that never informed any choice, averaged over subjects per dataset.
  NOT FIT  `best_val_score`: the best of many trials scored on the same validation subjects is
           optimistically biased; it ranks configurations, it does not estimate performance.

Outputs under --output: best_config.json, or best_config_<DATASET>.json per dataset with `--pool within`
and several datasets (an ExperimentConfig: `python -m loso.run --config best_config.json`; its
`tuned_on` lists the subjects whose data informed it, and loso.run marks the folds that test one of
them), trials.csv/.md/.tex, <protocol>_per_subject.csv/.md/.tex and <protocol>_per_dataset.csv/.md/.tex
(the test scores), figures/score_vs_trial.png, figures/param_importance.png, summary.json; Tune's own
state under ray/ (what `--resume` continues).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from gru_xnet.config import ConfigError, ExperimentConfig
from gru_xnet.models import ModelSpec, model_spec
from loso.cli import add_common_arguments, configure
from loso.folds import PROTOCOLS
from loso.splits import SPLITS, split_spec, subject_level_splits
from tune.report import POOL_NOTES
from tune.space import SearchSpace, load_space

log = logging.getLogger("tune")


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python -m tune.search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    p.add_argument("--space", help="JSON/YAML file overriding entries of the default search space")
    p.add_argument("--protocol", choices=("holdout", "nested"), default="holdout")
    p.add_argument("--split", default="loso", metavar="loso|kfold:K",
                   help="nested: the outer folds, one per subject (loso) or K seeded groups of subjects per dataset "
                        "(kfold:K); a split whose folds hold out whole subjects")
    p.add_argument("--pool", choices=PROTOCOLS, default="within",
                   help=f"within (default): {POOL_NOTES['within']} (best_config_<DATASET>.json each); "
                        f"joint: {POOL_NOTES['joint']}; as loso.run --protocol")
    p.add_argument("--test-subjects", nargs="+",
                   help="holdout: the test subjects ('s01' or 'DEAP/s01'; default: a seeded ~20%% of each "
                        "dataset); nested: the LOSO subjects to evaluate (default: all)")
    p.add_argument("--num-samples", type=int, default=8, help="trials per search")
    p.add_argument("--max-concurrent-trials", type=int, default=0,
                   help="trials in flight (default: as many as the cluster's resources allow)")
    p.add_argument("--workers-per-trial", type=int, default=1, help="DDP workers per trial")
    p.add_argument("--cpus-per-worker", type=float, default=None,
                   help="CPUs each training worker reserves (default: 1 less the small share of the trial driving it)")
    p.add_argument("--scheduler", choices=("asha", "none"), default="asha")
    p.add_argument("--grace-period", type=int, default=2, help="ASHA: epochs every trial runs")
    p.add_argument("--seed", type=int, default=None, help="sampler, test-subject and split seed "
                                                          "(default: the config's)")
    p.add_argument("--output", default=None, help="output folder (default: <output_dir>/tune_<experiment>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search in --output")
    return p.parse_known_args(argv)


def outer_split(text: str) -> str:
    """The nested search's outer split as recorded ('kfold:5'); refused unless its folds hold out whole subjects."""
    spec = SPLITS.get(text.partition(":")[0])
    if spec is not None and spec.kind == "file":
        raise ConfigError(f"--split {text}: a nested search re-plans its outer folds from the recorded label, which "
                          "names a file by its SHA-256 only: use loso.run or loso.benchmark with it")
    spec, parameter = split_spec(text)
    if not spec.subject_level:
        raise ConfigError(f"--split {text}: a nested search tunes on other subjects than it tests, so its outer folds "
                          f"must hold out whole subjects: use one of {', '.join(subject_level_splits())}")
    return spec.label(parameter)


def check(args: argparse.Namespace, extra: list[str]) -> tuple[ExperimentConfig, ModelSpec, SearchSpace, str]:
    """The config, model entry, search space and outer split of a command line, every option checked: each refusal
    comes before torch, Ray and Optuna load (this module is the command; `tune.driver` runs the searches)."""
    config = configure(args, extra)
    spec = model_spec(config.model.name)
    if spec.grid:
        raise ConfigError(f"--model {spec.name}: it chooses {', '.join(spec.grid)} inside every fold on the validation "
                          "subjects and needs no search; run it with loso.run or loso.benchmark")
    space = load_space(args.space, config, spec.space)
    if args.num_samples < 1:
        raise ConfigError(f"--num-samples {args.num_samples}: expected an integer >= 1")
    spec.representation_of(config.data)
    epochs = config.training.num_epochs
    if args.scheduler == "asha" and not 0 < args.grace_period < epochs:
        raise ConfigError(f"--grace-period {args.grace_period}: expected 1 .. training.num_epochs - 1 "
                          f"(= {epochs - 1})")
    return config, spec, space, outer_split(args.split)


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        checked = check(args, extra)
        from tune.driver import execute, prepare  # torch, Ray and Optuna load here, after every check

        scopes, settings, out = prepare(args, *checked)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2
    return execute(args, scopes, settings, out)


if __name__ == "__main__":
    sys.exit(main())
