"""`python -m loso.run`: every subject held out once, each fold a Ray Train job, many folds at once.

Features are built once on the driver and shared with every fold through Ray's object store. Each
finished fold's result is written atomically to `<output>/folds/<fold_id>.json` (and, with
`--permutations N`, each permutation-null retraining to `<output>/permutations/`); `--resume` runs
only the results that are missing, so nothing already computed is lost and nothing is counted twice.
Then the run checks itself for leakage on its fold plan and results (`<output>/certificate.json`,
`loso.certificate`) and builds its tables.
This module is the command: every option and the config are checked before torch and Ray load
(`loso.driver` runs the folds).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from gru_xnet.config import ConfigError, ExperimentConfig
from gru_xnet.models import ModelSpec, model_spec
from loso.cli import add_common_arguments, configure, start_ray
from loso.folds import PROTOCOLS, SESSIONS, WITHIN_SUBJECT_VALIDATION
from loso.outputs import check_output, run_lock
from loso.splits import SPLITS, check_validation_choice, split_spec

log = logging.getLogger("loso")


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    return build_parser("python -m loso.run", __doc__.splitlines()[0]).parse_known_args(argv)


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Every `loso.run` option (`loso.benchmark` adds its own to the same parser)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    add_common_arguments(p)
    p.add_argument("--protocol", choices=PROTOCOLS, default="within",
                   help="train on the other subjects of the same dataset, or of all selected datasets")
    p.add_argument("--split", default="loso", metavar="NAME[:N|:FILE]",
                   help=f"how folds hold data out: {', '.join(SPLITS)} (e.g. kfold:5, holdout:lists.yaml); see "
                        "PROTOCOL.md")
    p.add_argument("--subjects", nargs="+", help="test only these subjects ('s01' or 'DEAP/s01')")
    p.add_argument("--sessions", "--seediv-sessions", dest="sessions", choices=SESSIONS, default="pooled",
                   help="multi-session datasets (SEED, SEED-IV): test a subject's sessions together, or one at a "
                        "time, training on that session of the other subjects (--seediv-sessions: the old name)")
    p.add_argument("--within-subject-validation", choices=WITHIN_SUBJECT_VALIDATION, default=None,
                   help="--split within-subject: 'none' (default, the papers' rule: every training trial trains, torch "
                        "models test their last epoch, scikit-learn models choose their grid over the training "
                        "trials) or 'trials' (a seeded ~20%% of the training trials validates)")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="repeat every fold per seed (default: the config's seed)")
    p.add_argument("--permutations", type=int, default=0, metavar="N",
                   help="also retrain every fold N times with its training and validation labels permuted "
                        "(a permutation null: per-subject and dataset-level p-values; e.g. 19 or 99)")
    p.add_argument("--workers-per-fold", type=int, default=1, help="DDP workers per fold")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--max-concurrent-folds", type=int, default=0,
                   help="folds in flight (default: as many as the cluster's resources allow)")
    p.add_argument("--max-failures", type=int, default=2, help="worker-group restarts per fold")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS",
                   help="save a fold's training state to the storage path every EPOCHS epochs, so a fold whose "
                        "worker fails resumes there (0: never; it restarts from its first epoch)")
    p.add_argument("--output", default=None, help="output folder (default: <output_dir>/loso_<experiment>)")
    p.add_argument("--resume", action="store_true", help="run only the folds without a result")
    p.add_argument("--local", action="store_true",
                   help="run the folds one after another in this process, without Ray (debugging; gives the "
                        "same fold results as the Ray path with --workers-per-fold 1)")
    p.add_argument("--no-report", action="store_true",
                   help="skip report.html at the end (the tables, PROTOCOL.md and figures are written as always)")
    return p


def check(args: argparse.Namespace, extra: list[str]) -> tuple[ExperimentConfig, ModelSpec]:
    """The config and model entry of a command line, every option checked: each refusal comes before torch and
    Ray load."""
    split, _ = split_spec(args.split)
    check_validation_choice(args.split, args.within_subject_validation)
    config = configure(args, extra, synthetic_trials=split.synthetic_trials)
    if args.permutations < 0:
        raise ConfigError(f"--permutations {args.permutations}: expected an integer >= 0")
    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every {args.checkpoint_every}: expected an integer >= 0")
    if args.local and args.workers_per_fold != 1:
        raise ConfigError(f"--local trains each fold in this one process: --workers-per-fold must be 1, "
                          f"not {args.workers_per_fold}")
    spec = model_spec(config.model.name)
    spec.representation_of(config.data)
    return config, spec


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    args.command = ["python", "-m", "loso.run", *(sys.argv[1:] if argv is None else argv)]  # recorded in run.json
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config, spec = check(args, extra)
        start_ray(args)  # torch and Ray load here, after every check
        from loso.driver import execute, prepare

        run = prepare(args, config, spec)
        with run_lock(run.out):
            check_output(run.out, run.manifest, args.resume)
            return execute(args, run)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
