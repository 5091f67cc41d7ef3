"""`python -m loso.benchmark --models gru_xnet eegnet de_svm ...`: every model's LOSO on the same folds, compared.

Takes every `loso.run` option. Every model's fold jobs go into one queue, model-major, served by the same
long-lived runners (which also fit scikit-learn models' folds, so no runner idles while one model's last fold
finishes); each model writes into `<output>/<model>/` exactly as `loso.run` writes it, its tables as soon as its
last fold ends (so an interrupted benchmark keeps its finished models whole, and `--resume` continues every
model where it stopped). Models reading the same representation share one copy of the features. The folds are
the same for every model because they depend only on the subjects, the seeds and the protocol. Then
`<output>/comparison/` holds `comparison.{csv,md,tex}` (models x datasets: mean [95% CI] balanced accuracy,
accuracy beside the majority baseline, window and trial level), `pairwise.{csv,md,tex}` (every pair: mean
difference with CI, paired Wilcoxon over subjects, Holm, wins/ties/losses), `per_subject.*` and
`figures/subject_lines.png`, as `loso.compare` writes them, and `report.html`: all of it on one page linking each
run's own (`loso.comparison_report`; `--no-report` skips it).

`--card NAME` runs a published protocol (`loso.cards`): its models (`--models` picks some) on each of its
datasets and tasks asked (`--datasets`, `--tasks`), each (dataset, task) into `<output>/<DATASET>-<task>/` as
above, every setting of the card applied (an option you also set wins, with a printed line; `--synthetic`
generates the dataset's full subject count; a card of fixed subject lists tests exactly its listed subjects), then
`<output>/comparison/published.{csv,md,tex}`: the card's table beside ours, cell by cell (`loso.published`; a card
that pools its test subjects' windows shows the pooled score beside the per-subject mean).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gru_xnet.config import ConfigError
from gru_xnet.datasets.registry import READERS
from gru_xnet.models import MODELS
from loso.cards import Card, card_names, load_card
from loso.cli import configure, start_ray
from loso.compare import load_runs, paired, write_paired
from loso.outputs import check_output, run_lock
from loso.run import build_parser, check
from loso.tables import write_table

if TYPE_CHECKING:
    import pandas as pd

    from loso.driver import Built, Part

log = logging.getLogger("loso")
METRIC = "balanced_accuracy"


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = build_parser("python -m loso.benchmark", __doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help=f"registered names ({' '.join(MODELS)}) or path/to/file.py:function / "
                        "package.module:function (with --card: some of the card's models; default all)")
    p.add_argument("--card", metavar="NAME", help=f"run a published protocol: {', '.join(card_names())} (python -m "
                                                  "loso.cards lists them) or a card's .yaml path")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="with --card: some of its tasks (e.g. valence arousal; "
                                                              "default all)")
    p.set_defaults(split=None)  # unset: loso, or the card's split
    args, extra = p.parse_known_args(argv)
    if args.split is None and not args.card:
        args.split = "loso"
    return args, extra


@dataclass
class ModelRun:
    """One model's LOSO of a benchmark: its command line, overrides, output folder and, under a card, the card's
    record for run.json."""

    model: str
    args: argparse.Namespace
    extra: list[str]
    key: tuple[str, ...] = ()
    """(dataset, task) under a card, else ()."""
    card: dict = field(default_factory=dict)


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
    if not args.models:
        raise ConfigError("loso.benchmark needs --models MODEL ... or --card NAME")
    if args.tasks:
        raise ConfigError("--tasks picks tasks of a card: give --card NAME")
    models = list(dict.fromkeys(args.models))
    folders = [folder_name(m) for m in models]
    if len(set(folders)) != len(folders):
        raise ConfigError(f"--models {' '.join(models)}: two models would share a run folder ({', '.join(folders)})")
    for model in models:
        check(with_model(args, model), extra)
    return models


def plan_card(card: Card, args: argparse.Namespace, extra: list[str]) -> list[ModelRun]:
    """Every (dataset, task, model) run the card holds and the command line asks for, each checked, with the card's
    settings before the user's overrides (theirs win, each said once)."""
    if args.model:
        raise ConfigError("loso.benchmark --card takes --models (some of the card's); --model belongs to loso.run")
    pairs = card.select(args.datasets, args.tasks, args.models)
    models = list(dict.fromkeys(args.models or card.models))
    user = {key[2:]: value for key, value in zip(extra[::2], extra[1::2])}
    said = set()

    def wins(setting: str, card_value: object, source: str, theirs: str) -> None:
        if setting not in said:
            said.add(setting)
            log.info("card %s sets %s = %s (%s); your %s wins", card.id, setting, card_value, source, theirs)

    if args.split not in (None, card.split):
        wins("the split", card.split, card.split_source, f"--split {args.split}")
    seed = next((s for s in card.settings if s.key == "seed"), None)
    if args.seeds and seed is not None:
        wins("seed", seed.value, seed.source, f"--seeds {' '.join(map(str, args.seeds))}")
    runs = []
    for dataset, task in pairs:
        for model in models:
            _refuse_shadowed_keys(card, dataset, card.options_for(dataset, task, model), user)
            settings = card.settings_for(dataset, task, model)
            for s in settings:
                if s.key in user:
                    wins(s.key, s.value, s.source, f"--{s.key} {user[s.key]}")
            run_args = copy.copy(args)
            run_args.datasets, run_args.model, run_args.output = [dataset], model, None
            run_args.split = args.split or card.split_for(dataset)
            if args.synthetic_subjects is None:
                run_args.synthetic_subjects = card.datasets[dataset].subjects
            elif args.synthetic:
                wins(f"the subjects of synthetic {dataset}", card.datasets[dataset].subjects,
                     card.datasets[dataset].subjects_source, f"--synthetic-subjects {args.synthetic_subjects}")
            run_extra = [arg for s in settings for arg in s.override()] + list(extra)
            overridden = {s.key: user[s.key] for s in settings if s.key in user}
            runs.append(ModelRun(model, run_args, run_extra, (dataset, task),
                                 card.record(dataset, task, model, overridden)))
    for run in runs:
        check(run.args, run.extra)
    return runs


def _refuse_shadowed_keys(card: Card, dataset: str, options: dict, user: dict[str, str]) -> None:
    """An older data.* key (data.deap_threshold) for an option the card sets through data.dataset_options (`options`)
    would lose to it unseen: refused, naming the key to use."""
    for key, option in READERS[dataset].config_keys.items():
        if f"data.{key}" in user and option in options:
            raise ConfigError(f"--data.{key}: card {card.id} sets {dataset}'s {option} through data.dataset_options, "
                              f"which the older key cannot override; give --data.dataset_options "
                              f"'{{\"{dataset}\": {{\"{option}\": ...}}}}' (with the card's other options: "
                              f"{json.dumps(options)})")


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


def prepare_part(run: ModelRun, folder: Path, label: str, built: Built) -> Part:
    """One model's LOSO into `folder`, as `loso.run` writes it (a card's record in its run.json), ready for the
    benchmark's queue; its features come from `built` when another model reads the same ones."""
    from loso.driver import Part, prepare
    from loso.protocol import protocol_lines

    run_args = with_model(run.args, run.model, str(folder))
    prepared = prepare(run_args, *check(run_args, run.extra), built)
    if run.card:
        prepared.manifest.update(card=run.card["id"], card_protocol=run.card,
                                 **({"pooled_over_subjects": True} if run.card["aggregation"]["pooled"] else {}))
        prepared.manifest["statement"] = protocol_lines(prepared.manifest)
    return Part(run_args, prepared, label)


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        card = load_card(args.card) if args.card else None
        runs = plan_card(card, args, extra) if card else [ModelRun(m, args, extra) for m in check_models(args, extra)]
        stem = card.name if card else "benchmark"
        out = Path(args.output or Path(configure(copy.copy(runs[0].args), runs[0].extra).output_dir) / stem).resolve()
        start_ray(args)  # pandas, torch and Ray load here, after every model's check
        import pandas as pd

        from loso.driver import execute_parts

        groups = {run.key: out / "-".join(run.key) if run.key else out for run in runs}
        folders = [groups[run.key] / folder_name(run.model) for run in runs]
        built: Built = {}
        parts = [prepare_part(run, folder, str(folder.relative_to(out)), built) for run, folder in zip(runs, folders)]
        del built  # each part holds its features; those it shares go to the object store once
        with contextlib.ExitStack() as held:
            for part in parts:
                held.enter_context(run_lock(part.run.out))
                check_output(part.run.out, part.run.manifest, part.args.resume)
            code = execute_parts(parts, out)
        if code >= 128:  # interrupted: what is saved stays, finished models whole; --resume continues
            return code
        results = [compare_models(folder, [r.model for r in runs if r.key == key])
                   for key, folder in groups.items() if sum(r.key == key for r in runs) > 1]
        if card:
            from loso.published import write_published

            asked = card.select(args.datasets, None, None)  # every task of the datasets asked: cells not run say so
            published = write_published(card, asked, {(*r.key, r.model): f for r, f in zip(runs, folders)},
                                        out / "comparison")
        if not args.no_report:  # comparison/report.html: the tables above and each run's page, linked
            from loso.comparison_report import write_comparison_report

            write_comparison_report(out, [(r.key, r.model, f) for r, f in zip(runs, folders)],
                                    published if card else None)
    except (ConfigError, ValueError, OSError) as exc:
        log.error("error: %s", exc)
        return 2
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        for result in results:
            print()
            for line in result["header"]:
                print(f"# {line}")
            print(comparison_display(result["rows"]).to_string(index=False))
            print(f"\nComparison tables in {result['out']} (comparison, pairwise, per_subject; "
                  "figures/subject_lines.png)")
        if card:
            print()
            for line in published["header"]:
                print(f"# {line}")
            print(published["display"].to_string(index=False))
            print(f"\nPublished vs ours in {published['out']}/published.{{csv,md,tex}}")
    return code


if __name__ == "__main__":
    sys.exit(main())
