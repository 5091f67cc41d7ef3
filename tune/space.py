"""The hyper-parameter search space: what a search may vary, in one place, overridable from a file.

A space file (JSON or YAML) maps parameter names to `{"choices": [...]}` or, for the float
parameters, `{"low": a, "high": b, "log": true|false}`; parameters it leaves out keep the default
below. Every value is checked against the experiment config's own rules when the space is built,
so a bad bound fails at once with the space key, not in the middle of a trial.

The space is a product: every `num_attention_heads` choice must divide `2 * gru_hidden_size` for
every `gru_hidden_size` choice. Each parameter then has one fixed distribution, which Optuna's TPE
sampler and its parameter-importance evaluator both need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import optuna
import yaml
from ray import tune

from gru_xnet.config import ConfigError, ExperimentConfig

# Search-space name -> the config key it sets.
PARAMETERS = {"gru_hidden_size": "model.gru_hidden_size", "num_attention_heads": "model.num_attention_heads",
              "dropout": "model.dropout", "learning_rate": "training.learning_rate"}
FLOAT_PARAMETERS = ("dropout", "learning_rate")

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "gru_hidden_size": {"choices": [16, 32, 64]},
    "num_attention_heads": {"choices": [1, 2, 4]},
    "dropout": {"low": 0.1, "high": 0.5},
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
}


def _fail(name: str, problem: str) -> ConfigError:
    return ConfigError(f"search space key '{name}': {problem}")


def _plain(value: Any) -> Any:
    """A numpy scalar (as samplers may return) as the Python number the config expects."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Parameter:
    """One searched parameter: a list of choices, or a (log-)uniform float range."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    @classmethod
    def parse(cls, name: str, spec: Any) -> "Parameter":
        """Build from a space-file entry; errors name the key and what is allowed."""
        if name not in PARAMETERS:
            raise ConfigError(f"unknown search space key '{name}'; known keys: {', '.join(PARAMETERS)}")
        if not isinstance(spec, Mapping) or set(spec) - {"choices", "low", "high", "log"}:
            raise _fail(name, f"{spec!r} is invalid: expected {{'choices': [...]}} or "
                              "{'low': a, 'high': b, 'log': bool}")
        if "choices" in spec:
            return cls._parse_choices(name, spec)
        return cls._parse_range(name, spec)

    @classmethod
    def _parse_choices(cls, name: str, spec: Mapping) -> "Parameter":
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise _fail(name, f"{spec!r} is invalid: 'choices' must be a non-empty list and stand alone")
        if not all(isinstance(c, (int, float, str)) for c in choices):
            raise _fail(name, f"choices {choices} are invalid: expected numbers or strings")
        if len(set(choices)) != len(choices):
            raise _fail(name, f"choices {choices} repeat a value")
        return cls(name, choices=tuple(choices))

    @classmethod
    def _parse_range(cls, name: str, spec: Mapping) -> "Parameter":
        if name not in FLOAT_PARAMETERS:
            raise _fail(name, f"{spec!r} is invalid: an integer parameter takes 'choices' only")
        low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numbers or not low < high:
            raise _fail(name, f"bounds low={low!r}, high={high!r} are invalid: expected numbers with low < high")
        if not isinstance(log, bool) or (log and low <= 0):
            raise _fail(name, f"log={log!r} with low={low!r} is invalid: log must be a bool, and low > 0 with log")
        return cls(name, low=float(low), high=float(high), log=log)

    def domain(self) -> Any:
        """The Ray Tune domain (converted to an Optuna distribution by OptunaSearch)."""
        if self.choices is not None:
            return tune.choice(list(self.choices))
        return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The same domain as an Optuna distribution (to rebuild a study from finished trials)."""
        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def values(self) -> tuple:
        """The values a trial may receive at the extremes (every choice, or both bounds)."""
        return self.choices if self.choices is not None else (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class SearchSpace:
    """The searched parameters, each with its domain; `apply` turns a trial's values into a config."""

    parameters: dict[str, Parameter]

    @classmethod
    def from_dict(cls, overrides: Mapping[str, Any], base: ExperimentConfig) -> "SearchSpace":
        """The default space with `overrides` replacing whole entries, checked against `base`."""
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"search space: expected a mapping of parameter -> spec, got {overrides!r}")
        specs = {**DEFAULT_SPACE, **overrides}
        space = cls({name: Parameter.parse(name, spec) for name, spec in specs.items()})
        space.check(base)
        return space

    def check(self, base: ExperimentConfig) -> None:
        """Apply every choice or bound, and every hidden x heads pair, to `base`; raise naming the key."""
        hidden = self.parameters["gru_hidden_size"].values()
        heads = self.parameters["num_attention_heads"].values()
        checks = [(name, {name: value}) for name, param in self.parameters.items()
                  if name not in ("gru_hidden_size", "num_attention_heads") for value in param.values()]
        checks += [("gru_hidden_size", {"gru_hidden_size": h, "num_attention_heads": 1}) for h in hidden]
        checks += [("num_attention_heads", {"gru_hidden_size": h, "num_attention_heads": k})
                   for h in hidden for k in heads]
        for name, params in checks:
            self._try(base, name, params)

    def _try(self, base: ExperimentConfig, name: str, params: dict[str, Any]) -> None:
        try:
            self.apply(base, params)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            raise _fail(name, f"{shown} is not allowed: {exc}") from None

    def apply(self, base: ExperimentConfig, params: Mapping[str, Any]) -> ExperimentConfig:
        """A validated copy of `base` with the trial's values set (keys not in the space are ignored)."""
        config = ExperimentConfig.from_dict(base.to_dict())
        for name, value in params.items():
            if name in PARAMETERS:
                section, field = PARAMETERS[name].split(".")
                setattr(getattr(config, section), field, _plain(value))
        config.validate()
        return config

    def param_space(self) -> dict[str, Any]:
        """The Tuner's `param_space`."""
        return {name: param.domain() for name, param in self.parameters.items()}

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {name: param.distribution() for name, param in self.parameters.items()}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: param.to_dict() for name, param in self.parameters.items()}


def read_space_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a .json, .yaml or .yml space file; errors name the file."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"--space {path}: expected a .json, .yaml or .yml file")
    try:
        text = path.read_text()
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read search space file {path}: {exc}") from exc


def load_space(path: str | Path | None, base: ExperimentConfig) -> SearchSpace:
    """The default space, overridden by the file at `path` when given."""
    overrides = read_space_file(path) if path else {}
    try:
        return SearchSpace.from_dict(overrides or {}, base)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None
