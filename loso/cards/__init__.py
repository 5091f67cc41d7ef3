"""Protocol cards: a published protocol as data, one YAML file per card in this folder (`eegain-loso.yaml`).

A card holds its citation, source repository and commit; the config settings it makes, each with the file and line
of the source that states it; its split, datasets (each with its subject count) and tasks (a task is a label
setting: DEAP valence, SEED categorical); the models it runs with their parameters; its metrics and how they are
aggregated over subjects; the published table, every cell with its +- where given; its trivial row; and its
deviations, one sentence each. Every setting is checked as a `--section.key value` override (`apply_overrides`) for
every dataset, task and model when the card is read, so a card that names a key or value the config refuses fails
at once, naming the card file. `python -m loso.cards` lists the cards; `loso.benchmark --card NAME` runs one.
Reading a card needs PyYAML and the config, nothing heavier.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gru_xnet.config import ConfigError, ExperimentConfig, apply_overrides
from gru_xnet.datasets.registry import READERS, canonical_name
from gru_xnet.models import MODELS

CARDS_DIR = Path(__file__).parent
TRIVIAL = "trivial"
"""The model name of a card's trivial row: computed from the folds of the models run, never trained."""
TRIVIAL_RULES = {"majority": "the training side's majority class predicted for every test window",
                 "prior": "a class drawn for every test window with the training side's class frequencies"}
"""How a trivial row's metric is computed (the card's `trivial.rules`: metric -> rule)."""


class CardError(ConfigError):
    """A card file that cannot be read, or a request (dataset, task, model) the card does not hold."""


@dataclass(frozen=True)
class Setting:
    """One config key the card sets, the value, and where the source states it."""

    key: str
    value: Any
    source: str

    def override(self) -> list[str]:
        """The `--key value` pair `apply_overrides` takes."""
        return [f"--{self.key}", json.dumps(self.value)]


@dataclass(frozen=True)
class Task:
    """A label setting of one dataset: its reader options and their source."""

    name: str
    options: dict[str, Any]
    source: str


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset of the card: its subject count, settings, reader options shared by its tasks, and tasks."""

    name: str
    subjects: int
    subjects_source: str
    settings: tuple[Setting, ...]
    options: dict[str, Any]
    options_source: str
    tasks: dict[str, Task]


@dataclass(frozen=True)
class ModelEntry:
    """A model the card runs: the registered name, the name its table uses, its parameters and their source."""

    name: str
    published_as: str
    params: dict[str, Any]
    source: str


@dataclass(frozen=True)
class Metric:
    """A column of the published table: the `gru_xnet.metrics.scores` key it is (another for more than 2 classes)."""

    name: str
    score: str
    multiclass_score: str
    definition: str
    source: str

    def score_for(self, n_classes: int) -> str:
        return self.score if n_classes == 2 else self.multiclass_score


@dataclass(frozen=True)
class Cell:
    """One published row: (dataset, task, model) and each metric's (value, SD or None)."""

    dataset: str
    task: str
    model: str
    values: dict[str, tuple[float, float | None]]
    source: str


@dataclass(frozen=True)
class Card:
    """A published protocol: what it sets (with sources), what it runs, how it scores, what it published, and where
    a run here differs from it."""

    name: str
    version: int
    title: str
    citation: str
    repository: str
    commit: str
    table: str
    split: str
    split_source: str
    settings: tuple[Setting, ...]
    datasets: dict[str, DatasetEntry]
    models: dict[str, ModelEntry]
    trivial: dict[str, Any]
    level: str
    metrics: tuple[Metric, ...]
    aggregation: dict[str, Any]
    published: tuple[Cell, ...]
    deviations: tuple[str, ...]
    notes: tuple[str, ...] = ()
    path: Path = field(default=CARDS_DIR)

    @property
    def id(self) -> str:
        """`name@version`, what run.json records."""
        return f"{self.name}@{self.version}"

    def settings_for(self, dataset: str, task: str, model: str) -> list[Setting]:
        """Every setting of one run, in the order applied: the card's, the dataset's, its reader options with the
        task's, the model and its parameters (a later setting of the same key wins)."""
        entry, chosen = self.datasets[dataset], self.datasets[dataset].tasks[task]
        options = Setting("data.dataset_options", {dataset: {**entry.options, **chosen.options}},
                          "; ".join(s for s in (entry.options_source, chosen.source) if s))
        spec = self.models[model]
        return [*self.settings, *entry.settings, options, Setting("model.name", model, spec.source),
                Setting("model.params", spec.params, spec.source)]

    def select(self, datasets: Sequence[str] | None, tasks: Sequence[str] | None,
               models: Sequence[str] | None) -> list[tuple[str, str]]:
        """The (dataset, task) pairs asked for (default: every one); anything the card lacks is refused, naming what
        it has."""
        names = [self._dataset(name) for name in datasets] if datasets else list(self.datasets)
        for model in models or ():
            if model not in self.models:
                also = f"; '{TRIVIAL}' is computed from the folds of the models run" if model == TRIVIAL else ""
                raise CardError(f"card {self.id} runs no model {model!r}; it has {', '.join(self.models)}{also}")
        had = sorted({t for name in names for t in self.datasets[name].tasks})
        for task in tasks or ():
            if task not in had:
                raise CardError(f"card {self.id} has no task {task!r} for {', '.join(names)}; it has "
                                f"{self._tasks_of(names)}")
        pairs = [(name, task) for name in names for task in self.datasets[name].tasks if not tasks or task in tasks]
        left = [name for name in names if not any(d == name for d, _ in pairs)]
        if left:
            raise CardError(f"card {self.id}: --tasks {' '.join(tasks)} leaves {', '.join(left)} with nothing to run; "
                            f"its tasks: {self._tasks_of(left)}")
        return pairs

    def _tasks_of(self, datasets: Sequence[str]) -> str:
        return "; ".join(f"{name}: {' '.join(self.datasets[name].tasks)}" for name in datasets)

    def _dataset(self, name: str) -> str:
        try:
            canonical = canonical_name(name)
        except ValueError:
            canonical = name
        if canonical not in self.datasets:
            raise CardError(f"card {self.id} has no dataset {name!r}; it has {', '.join(self.datasets)}")
        return canonical

    def cells(self, dataset: str, task: str) -> list[Cell]:
        return [c for c in self.published if (c.dataset, c.task) == (dataset, task)]

    def record(self, dataset: str, task: str, model: str, overridden: dict[str, str]) -> dict[str, Any]:
        """What run.json keeps of the card for one run (`card_protocol`): every setting with its source, the user's
        overrides that won, the metrics, the published cell, the deviations and notes."""
        cell = next((c for c in self.cells(dataset, task) if c.model == model), None)
        return {"id": self.id, "title": self.title, "citation": self.citation, "repository": self.repository,
                "commit": self.commit, "table": self.table, "split": self.split, "split_source": self.split_source,
                "dataset": dataset, "task": task, "model": model,
                "published_as": self.models[model].published_as,
                "settings": [{"key": s.key, "value": s.value, "source": s.source,
                              **({"overridden_by": overridden[s.key]} if s.key in overridden else {})}
                             for s in self.settings_for(dataset, task, model)],
                "overridden": overridden, "level": self.level,
                "metrics": [{"name": m.name, "score": m.score, "multiclass_score": m.multiclass_score,
                             "definition": m.definition, "source": m.source} for m in self.metrics],
                "aggregation": self.aggregation,
                "published": None if cell is None else {"values": {k: list(v) for k, v in cell.values.items()},
                                                        "source": cell.source},
                "deviations": list(self.deviations), "notes": list(self.notes)}

    def describe(self) -> list[str]:
        """The lines `python -m loso.cards` prints for this card."""
        lines = [f"{self.id}: {self.title}", f"  source: {self.repository} at {self.commit[:7]}, {self.table}",
                 f"  split: {self.split}; {self.level} level; " + "; ".join(
                     f"{m.name} = {m.definition}" for m in self.metrics),
                 f"  aggregation: {self.aggregation['statement']}",
                 "  datasets (subjects: tasks): " + "; ".join(f"{d.name} ({d.subjects}: {', '.join(d.tasks)})"
                                                             for d in self.datasets.values()),
                 "  models: " + ", ".join(f"{m.name} ({m.published_as})" for m in self.models.values())
                 + f", and the {self.trivial['published_as']} ({TRIVIAL}: {self.trivial['statement']})",
                 f"  published cells: {len(self.published)}", f"  deviations ({len(self.deviations)}):"]
        return lines + [f"  - {d}" for d in self.deviations] + [f"  note: {n}" for n in self.notes]

    def markdown(self) -> str:
        """The card as docs/reproduce.md shows it: settings with sources, tasks, models, metrics, the published table,
        deviations and notes."""
        def row(*cells: Any) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        def shown(value: tuple[float, float | None]) -> str:
            return f"{value[0]:.2f}" + ("" if value[1] is None else f" ± {value[1]:.2f}")

        lines = [f"### `{self.id}`: {self.title}", "", f"{self.citation}. Source: {self.repository} at commit "
                 f"`{self.commit}`, table {self.table}. Split: `{self.split}` ({self.split_source}).", "",
                 row("setting", "value", "source"), row("---", "---", "---")]
        lines += [row(f"`{s.key}`", f"`{json.dumps(s.value)}`", s.source) for s in self.settings]
        lines += ["", row("dataset", "subjects", "task", "settings and reader options", "source"),
                  row("---", "---", "---", "---", "---")]
        for d in self.datasets.values():
            for t in d.tasks.values():
                own = [f"`{s.key}` `{json.dumps(s.value)}` ({s.source})" for s in d.settings]
                options = json.dumps({**d.options, **t.options})
                lines.append(row(d.name, d.subjects, t.name, "; ".join([*own, f"options `{options}`"]),
                                 "; ".join(s for s in (d.subjects_source, d.options_source, t.source) if s)))
        lines += ["", row("model", "published as", "parameters", "source"), row("---", "---", "---", "---")]
        lines += [row(m.name, m.published_as, f"`{json.dumps(m.params)}`", m.source) for m in self.models.values()]
        lines.append(row(TRIVIAL, self.trivial["published_as"], self.trivial["statement"], self.trivial["source"]))
        lines += ["", f"Metrics ({self.level} level): " + "; ".join(
            f"**{m.name}**: {m.definition} (`{m.score}`" + (f", `{m.multiclass_score}` for more than two classes"
                                                            if m.multiclass_score != m.score else "")
            + f"; {m.source})" for m in self.metrics) + f". Aggregation: {self.aggregation['statement']} "
                  f"({self.aggregation['source']}).", "",
                  row("dataset", "task", "model", *(m.name for m in self.metrics), "source"),
                  row(*["---"] * (4 + len(self.metrics)))]
        lines += [row(c.dataset, c.task, c.model, *(shown(c.values[m.name]) for m in self.metrics), c.source)
                  for c in self.published]
        lines += ["", "Deviations:", "", *[f"- {d}" for d in self.deviations]]
        if self.notes:
            lines += ["", "Notes:", "", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"


def card_names() -> list[str]:
    """The cards shipped with the package, by name."""
    return sorted(path.stem for path in CARDS_DIR.glob("*.yaml"))


def load_card(name: str) -> Card:
    """The card called `name` (or the YAML file at that path), read and checked."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else CARDS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise CardError(f"--card {name!r}: no such card; the cards are {', '.join(card_names())} (or a path to a "
                        ".yaml card)")
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CardError(f"{path}: cannot read the card: expected UTF-8 YAML: {exc}") from exc
    try:
        card = _parse(data, path)
        _check(card)
    except CardError as exc:
        raise CardError(f"{path}: {exc}") from None
    except ConfigError as exc:
        raise CardError(f"{path}: a setting is refused by the config: {exc}") from None
    return card


def _fields(data: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    """`data` as a mapping holding every `required` key and no key beyond `optional`, or a CardError naming them."""
    if not isinstance(data, dict):
        raise CardError(f"{where}: expected a mapping, found {type(data).__name__}")
    missing = [k for k in required if k not in data]
    unknown = sorted(set(data) - set(required) - set(optional), key=str)
    if missing or unknown:
        raise CardError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(map(str, unknown))}"]
                                                                      if unknown else [])
            + [f"expected keys {', '.join(required)}" + (f" (optional: {', '.join(optional)})" if optional else "")]))
    return data


def _mapping(data: Any, where: str) -> dict:
    """`data` as a mapping of any keys (datasets, tasks, models, options), or a CardError naming `where`."""
    if not isinstance(data, dict):
        raise CardError(f"{where}: expected a mapping, found {type(data).__name__}")
    return data


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CardError(f"{where}: expected a non-empty text, found {value!r}")
    return " ".join(value.split())


def _settings(items: Any, where: str) -> tuple[Setting, ...]:
    if not isinstance(items, list):
        raise CardError(f"{where}: expected a list of {{key, value, source}}, found {type(items).__name__}")
    settings = []
    for i, item in enumerate(items):
        item = _fields(item, f"{where}[{i}]", ("key", "value", "source"))
        settings.append(Setting(_text(item["key"], f"{where}[{i}].key"), item["value"],
                                _text(item["source"], f"{where}[{i}].source")))
    return tuple(settings)


def _value(value: Any, where: str) -> tuple[float, float | None]:
    """A published cell: a number, or [value, SD]."""
    pair = value if isinstance(value, list) else [value, None]
    if len(pair) != 2 or not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and math.isfinite(v)) for v in pair) or pair[0] is None:
        raise CardError(f"{where}: expected a number or [value, SD], found {value!r}")
    return float(pair[0]), None if pair[1] is None else float(pair[1])


def _parse(data: Any, path: Path) -> Card:
    top = _fields(data, "card", ("name", "version", "title", "citation", "repository", "commit", "table", "split",
                                 "split_source", "settings", "datasets", "models", "trivial", "level", "metrics",
                                 "aggregation", "published", "deviations"), ("notes",))
    if top["name"] != path.stem:
        raise CardError(f"name: expected the file's name {path.stem!r}, found {top['name']!r}")
    if isinstance(top["version"], bool) or not isinstance(top["version"], int) or top["version"] < 1:
        raise CardError(f"version: expected an integer >= 1, found {top['version']!r}")
    datasets = {}
    for name, entry in _mapping(top["datasets"], "datasets").items():
        where = f"datasets.{name}"
        entry = _fields(entry, where, ("subjects", "subjects_source", "settings", "tasks"),
                        ("options", "options_source"))
        if isinstance(entry["subjects"], bool) or not isinstance(entry["subjects"], int) or entry["subjects"] < 2:
            raise CardError(f"{where}.subjects: expected an integer >= 2, found {entry['subjects']!r}")
        tasks = {}
        for task, spec in _mapping(entry["tasks"], f"{where}.tasks").items():
            spec = _fields(spec, f"{where}.tasks.{task}", ("options", "source"))
            tasks[str(task)] = Task(str(task), dict(_mapping(spec["options"], f"{where}.tasks.{task}.options")),
                                    _text(spec["source"], f"{where}.tasks.{task}.source"))
        if not tasks:
            raise CardError(f"{where}.tasks: expected at least one task")
        options = entry.get("options") or {}
        datasets[str(name)] = DatasetEntry(
            str(name), entry["subjects"], _text(entry["subjects_source"], f"{where}.subjects_source"),
            _settings(entry["settings"], f"{where}.settings"), dict(_mapping(options, f"{where}.options")),
            _text(entry["options_source"], f"{where}.options_source") if options else "", tasks)
    models = {}
    for name, spec in _mapping(top["models"], "models").items():
        spec = _fields(spec, f"models.{name}", ("published_as", "params", "source"))
        models[str(name)] = ModelEntry(str(name), _text(spec["published_as"], f"models.{name}.published_as"),
                                       dict(_mapping(spec["params"], f"models.{name}.params")),
                                       _text(spec["source"], f"models.{name}.source"))
    metrics = []
    if not isinstance(top["metrics"], list) or not top["metrics"]:
        raise CardError("metrics: expected a non-empty list of {name, score, definition, source}")
    for i, spec in enumerate(top["metrics"]):
        spec = _fields(spec, f"metrics[{i}]", ("name", "score", "definition", "source"), ("multiclass_score",))
        metrics.append(Metric(_text(spec["name"], f"metrics[{i}].name"), _text(spec["score"], f"metrics[{i}].score"),
                              _text(spec.get("multiclass_score", spec["score"]), f"metrics[{i}].multiclass_score"),
                              _text(spec["definition"], f"metrics[{i}].definition"),
                              _text(spec["source"], f"metrics[{i}].source")))
    aggregation = _fields(top["aggregation"], "aggregation", ("statement", "ddof", "scale", "source"))
    names = [m.name for m in metrics]
    cells = []
    if not isinstance(top["published"], list):
        raise CardError("published: expected a list of {dataset, task, model, <metric>..., source}")
    for i, row in enumerate(top["published"]):
        row = _fields(row, f"published[{i}]", ("dataset", "task", "model", "source"), names)
        values = {m: _value(row[m], f"published[{i}].{m}") for m in names if m in row}
        if not values:
            raise CardError(f"published[{i}]: expected at least one of {', '.join(names)}")
        cells.append(Cell(str(row["dataset"]), str(row["task"]), str(row["model"]), values,
                          _text(row["source"], f"published[{i}].source")))
    trivial = _fields(top["trivial"], "trivial", ("published_as", "seed", "rules", "statement", "source"))
    rules = _mapping(trivial["rules"], "trivial.rules")
    if sorted(rules) != sorted(names) or not set(rules.values()) <= set(TRIVIAL_RULES):
        raise CardError(f"trivial.rules: expected each of {', '.join(names)} mapped to one of "
                        f"{', '.join(TRIVIAL_RULES)}, found {rules!r}")
    if isinstance(trivial["seed"], bool) or not isinstance(trivial["seed"], int) or trivial["seed"] < 0:
        raise CardError(f"trivial.seed: expected an integer >= 0, found {trivial['seed']!r}")
    return Card(name=top["name"], version=top["version"], title=_text(top["title"], "title"),
                citation=_text(top["citation"], "citation"), repository=_text(top["repository"], "repository"),
                commit=_text(top["commit"], "commit"), table=_text(top["table"], "table"),
                split=_text(top["split"], "split"), split_source=_text(top["split_source"], "split_source"),
                settings=_settings(top["settings"], "settings"), datasets=datasets, models=models,
                trivial={k: trivial[k] if k in ("seed", "rules") else _text(trivial[k], f"trivial.{k}")
                         for k in trivial},
                level=_text(top["level"], "level"), metrics=tuple(metrics),
                aggregation={k: aggregation[k] if k in ("ddof", "scale") else _text(aggregation[k], f"aggregation.{k}")
                             for k in aggregation},
                published=tuple(cells),
                deviations=tuple(_text(d, f"deviations[{i}]") for i, d in enumerate(top["deviations"] or ())),
                notes=tuple(_text(n, f"notes[{i}]") for i, n in enumerate(top.get("notes") or ())), path=path)


SCORES = ("accuracy", "balanced_accuracy", "macro_f1", "binary_f1", "weighted_f1", "kappa")
"""The `gru_xnet.metrics.scores` keys a card's metric may name."""


def _check(card: Card) -> None:
    """What the parser cannot see: names the registries know, scores that exist, published cells the card runs, and
    every setting accepted by the config for every dataset, task and model."""
    from loso.splits import split_spec

    split_spec(card.split)
    if card.level not in ("window", "trial"):
        raise CardError(f"level: expected 'window' or 'trial', found {card.level!r}")
    if not (isinstance(card.aggregation["ddof"], int) and card.aggregation["ddof"] in (0, 1)):
        raise CardError(f"aggregation.ddof: expected 0 (population SD) or 1, found {card.aggregation['ddof']!r}")
    if not isinstance(card.aggregation["scale"], (int, float)) or not card.aggregation["scale"] > 0:
        raise CardError(f"aggregation.scale: expected a number > 0 (published units per percent), found "
                        f"{card.aggregation['scale']!r}")
    if not card.deviations:
        raise CardError("deviations: expected at least one sentence (where a run here differs from the source)")
    for metric in card.metrics:
        for score in (metric.score, metric.multiclass_score):
            if score not in SCORES:
                raise CardError(f"metrics.{metric.name}: score {score!r} is not one of {', '.join(SCORES)}")
    for name in card.datasets:
        if name not in READERS or canonical_name(name) != name:
            raise CardError(f"datasets.{name}: expected a registered dataset name ({', '.join(READERS)})")
    for name in card.models:
        if name not in MODELS:
            raise CardError(f"models.{name}: expected a registered model ({', '.join(MODELS)})")
    for i, cell in enumerate(card.published):
        if cell.dataset not in card.datasets or cell.task not in card.datasets[cell.dataset].tasks:
            raise CardError(f"published[{i}] ({cell.source}): {cell.dataset} {cell.task} is not a dataset and task of "
                            "this card")
        if cell.model not in card.models and cell.model != TRIVIAL:
            raise CardError(f"published[{i}] ({cell.source}): model {cell.model!r} is not one of "
                            f"{', '.join(card.models)} or {TRIVIAL}")
    for dataset, entry in card.datasets.items():
        for task in entry.tasks:
            for model in card.models:
                config = ExperimentConfig()
                config.data.datasets = [dataset]
                apply_overrides(config, [arg for s in card.settings_for(dataset, task, model) for arg in s.override()])
                MODELS[model].representation_of(config.data)
