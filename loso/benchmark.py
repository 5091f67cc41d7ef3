"""`python -m loso.benchmark --models gru_xnet eegnet de_svm ...`: every model's LOSO on the same folds, compared.

Takes every `loso.run` option. Each model runs in turn in one Ray session, into `<output>/<model>/` exactly
as `loso.run` writes it (so `--resume` continues every model where it stopped); the folds are the same for
every model because they depend only on the subjects, the seeds and the protocol. Then
`<output>/comparison/` holds `comparison.{csv,md,tex}` (models x datasets: mean [95% CI] balanced accuracy,
accuracy beside the majority baseline, window and trial level), `pairwise.{csv,md,tex}` (every pair: mean
difference with CI, paired Wilcoxon over subjects, Holm, wins/ties/losses), `per_subject.*` and
`figures/subject_lines.png`, as `loso.compare` writes them.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gru_xnet.config import ConfigError
from gru_xnet.models import MODELS
from loso.cli import configure
from loso.compare import load_runs, paired, write_paired
from loso.outputs import check_output, run_lock
from loso.run import build_parser, check
from loso.tables import write_table

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("loso")
METRIC = "balanced_accuracy"


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = build_parser("python -m loso.benchmark", __doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True, metavar="MODEL",
                   help=f"registered names ({' '.join(MODELS)}) or path/to/file.py:function / "
                        "package.module:function")
    return p.parse_known_args(argv)


def folder_name(model: str) -> str:
    """A model's run folder: its registered name, or `<file stem>.<function>` for a user model."""
    if ":" not in model:
        return model
    target, function = model.rsplit(":", 1)
    return f"{Path(target).stem if target.endswith('.py') else target}.{function}"


def check_models(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The models, each checked to load and to take the configured input, before any of them runs."""
    if args.model:
        raise ConfigError("loso.benchmark takes --models (several); --model belongs to loso.run")
    models = list(dict.fromkeys(args.models))
    folders = [folder_name(m) for m in models]
    if len(set(folders)) != len(folders):
        raise ConfigError(f"--models {' '.join(models)}: two models would share a run folder ({', '.join(folders)})")
    for model in models:
        check(with_model(args, model), extra)
    return models


def with_model(args: argparse.Namespace, model: str, output: str | None = None) -> argparse.Namespace:
    """The command line of one model's `loso.run`."""
    run_args = copy.copy(args)
    run_args.model, run_args.output = model, output
    return run_args


def comparison_rows(out: Path, models: Sequence[str]) -> pd.DataFrame:
    """Per model, dataset and level: the run's own per-dataset statistics over all its subjects."""
    import pandas as pd

    rows = []
    for model in models:
        table = pd.read_csv(out / folder_name(model) / "tables" / "per_dataset.csv")
        for row in table[table["subjects"] == "all"].to_dict("records"):
            rows.append({"model": model, "dataset": row["dataset"], "level": row["level"],
                         "n_subjects": row["n_subjects"], **{key: row[key] for key in (
                             "balanced_accuracy_mean", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high",
                             "balanced_accuracy_ci_method", "chance_balanced_accuracy", "accuracy_mean",
                             "majority_accuracy_mean", "p_vs_chance_holm", "p_vs_majority_holm", "synthetic")}})
    return pd.DataFrame(rows)


def comparison_display(rows: pd.DataFrame) -> pd.DataFrame:
    """Models as rows, one column per dataset and level: 'mean [low, high]' balanced accuracy, accuracy / majority."""
    cells = rows.assign(
        cell=[f"{r.balanced_accuracy_mean:.1f} [{r.balanced_accuracy_ci_low:.1f}, {r.balanced_accuracy_ci_high:.1f}]; "
              f"acc. {r.accuracy_mean:.1f} / maj. {r.majority_accuracy_mean:.1f}" for r in rows.itertuples()],
        column=[f"{r.dataset} {r.level}" for r in rows.itertuples()])
    table = cells.pivot(index="model", columns="column", values="cell")
    return table.reindex(index=cells["model"].unique(), columns=cells["column"].unique()).reset_index()


def compare_models(out: Path, models: Sequence[str]) -> dict:
    """Write `<out>/comparison/`: the models x datasets table and the paired tests of every pair."""
    runs = load_runs([out / folder_name(m) for m in models], METRIC)
    for run, model in zip(runs, models):
        run.name = model
    result = paired(runs, METRIC)
    target = out / "comparison"
    write_paired(result, runs, METRIC, target, "pairwise")
    rows = comparison_rows(out, models)
    caption = [*result["header"][:-1],
               "per model: mean over subjects of balanced accuracy (%) [95% CI of the mean]; acc.: mean accuracy; "
               "maj.: mean majority-class baseline (the training pool's majority class predicted for every item); "
               "window and trial level (a trial's window probabilities averaged); every model on the same folds"]
    write_table(rows, target / "comparison", caption, comparison_display(rows))
    return {**result, "rows": rows, "out": target}


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        models = check_models(args, extra)
        out = Path(args.output or Path(configure(copy.copy(args), extra).output_dir) / "benchmark").resolve()
        import pandas as pd  # pandas, torch and Ray load here, after every model's check

        from loso.driver import execute, prepare

        codes = []
        for model in models:
            log.info("=== %s: its LOSO into %s", model, out / folder_name(model))
            run_args = with_model(args, model, str(out / folder_name(model)))
            run = prepare(run_args, *check(run_args, extra))
            with run_lock(run.out):
                check_output(run.out, run.manifest, args.resume)
                codes.append(execute(run_args, run))
            del run  # this model's features leave memory before the next model's are built
            if codes[-1] >= 128:  # interrupted: what is saved stays; --resume continues
                return codes[-1]
        result = compare_models(out, models)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2
    print()
    for line in result["header"]:
        print(f"# {line}")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(comparison_display(result["rows"]).to_string(index=False))
    print(f"\nComparison tables in {result['out']} (comparison, pairwise, per_subject; figures/subject_lines.png)")
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
