"""The hyper-parameter search space: the model's declared space (its registry entry), overridable from a file.

A space file (JSON or YAML) maps parameter names to `{"choices": [...]}` or `{"low": a, "high": b,
"log": true|false}`; a name the model does not declare also gives the config key it sets (`"key":
"model.params.width"` or e.g. `"training.weight_decay"`). Parameters the file leaves out keep the
model's default. Every combination of every parameter's extreme values is checked against the
experiment config's own rules when the space is built, so a bad bound fails at once with the space
key, not in the middle of a trial: the space is a product (every `num_attention_heads` choice must
divide `2 * gru_hidden_size` for every `gru_hidden_size` choice). Each parameter then has one fixed
distribution, which Optuna's TPE sampler and its parameter-importance evaluator both need. Ray Tune and
Optuna are imported when a search asks for the domains, so the command checks a space file before they load.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import yaml

from gru_xnet.config import ConfigError, ExperimentConfig

if TYPE_CHECKING:
    import optuna

def _fail(name: str, problem: str) -> ConfigError:
    return ConfigError(f"search space key '{name}': {problem}")


def _plain(value: Any) -> Any:
    """A numpy scalar (as samplers may return) as the Python number the config expects."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Parameter:
    """One searched parameter: a list of choices, or a (log-)uniform float range."""

    name: str
    key: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    custom_key: bool = False  # the key came from a space file, not the model's declaration

    @classmethod
    def parse(cls, name: str, spec: Any, default_key: str | None) -> "Parameter":
        """Build from a space entry (`default_key`: the config key the model declares for it); errors name the key."""
        if not isinstance(spec, Mapping) or set(spec) - {"choices", "low", "high", "log", "key"}:
            raise _fail(name, f"{spec!r} is invalid: expected {{'choices': [...]}} or "
                              "{'low': a, 'high': b, 'log': bool}, optionally with 'key': the config key it sets")
        key = spec.get("key", default_key)
        if not isinstance(key, str) or key.count(".") < 1:
            raise ConfigError(f"unknown search space key '{name}': the model declares no such parameter; give the "
                              "config key it sets, e.g. {'key': 'model.params." + name + "', ...}")
        domain = {k: v for k, v in spec.items() if k != "key"}
        parsed = cls._parse_choices(name, key, domain) if "choices" in domain else cls._parse_range(name, key, domain)
        return dataclasses.replace(parsed, custom_key=key != default_key)

    @classmethod
    def _parse_choices(cls, name: str, key: str, spec: Mapping) -> "Parameter":
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise _fail(name, f"{spec!r} is invalid: 'choices' must be a non-empty list and stand alone")
        if not all(isinstance(c, (int, float, str)) for c in choices):
            raise _fail(name, f"choices {choices} are invalid: expected numbers or strings")
        if len(set(choices)) != len(choices):
            raise _fail(name, f"choices {choices} repeat a value")
        return cls(name, key, choices=tuple(choices))

    @classmethod
    def _parse_range(cls, name: str, key: str, spec: Mapping) -> "Parameter":
        low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numbers or not low < high:
            raise _fail(name, f"bounds low={low!r}, high={high!r} are invalid: expected numbers with low < high")
        if not isinstance(log, bool) or (log and low <= 0):
            raise _fail(name, f"log={log!r} with low={low!r} is invalid: log must be a bool, and low > 0 with log")
        return cls(name, key, low=float(low), high=float(high), log=log)

    def domain(self) -> Any:
        """The Ray Tune domain (converted to an Optuna distribution by OptunaSearch)."""
        from ray import tune

        if self.choices is not None:
            return tune.choice(list(self.choices))
        return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The same domain as an Optuna distribution (to rebuild a study from finished trials)."""
        import optuna

        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(list(self.choices))
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def values(self) -> tuple:
        """The values a trial may receive at the extremes (every choice, or both bounds)."""
        return self.choices if self.choices is not None else (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        key = {"key": self.key} if self.custom_key else {}
        if self.choices is not None:
            return {**key, "choices": list(self.choices)}
        return {**key, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class SearchSpace:
    """The searched parameters, each with its domain; `apply` turns a trial's values into a config."""

    parameters: dict[str, Parameter]

    @classmethod
    def from_dict(cls, overrides: Mapping[str, Any], base: ExperimentConfig,
                  declared: Mapping[str, Mapping[str, Any]]) -> "SearchSpace":
        """The model's `declared` space with `overrides` replacing whole entries, checked against `base`."""
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"search space: expected a mapping of parameter -> spec, got {overrides!r}")
        specs = {**declared, **overrides}
        if not specs:
            raise ConfigError(f"model {base.model.name!r} declares no search space: give one with --space (a file "
                              "mapping each parameter to its domain and config key)")
        space = cls({name: Parameter.parse(name, spec, declared.get(name, {}).get("key"))
                     for name, spec in specs.items()})
        space.check(base)
        return space

    def check(self, base: ExperimentConfig) -> None:
        """Apply every combination of every parameter's extreme values to `base`; raise naming the last key."""
        names = list(self.parameters)
        for values in itertools.product(*(self.parameters[name].values() for name in names)):
            params = dict(zip(names, values))
            try:
                self.apply(base, params)
            except ConfigError as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
                raise _fail(self._culprit(base, params), f"{shown} is not allowed: {exc}") from None

    def _culprit(self, base: ExperimentConfig, params: dict[str, Any]) -> str:
        """The first parameter whose value, added to the others in order, makes the config invalid."""
        names = list(params)
        for end in range(1, len(names) + 1):
            try:
                self.apply(base, {name: params[name] for name in names[:end]})
            except ConfigError:
                return names[end - 1]
        return names[-1]

    def apply(self, base: ExperimentConfig, params: Mapping[str, Any]) -> ExperimentConfig:
        """A validated copy of `base` with the trial's values set at their config keys (other names are ignored)."""
        config = ExperimentConfig.from_dict(base.to_dict())
        for name, value in params.items():
            if name not in self.parameters:
                continue
            section, field, *rest = self.parameters[name].key.split(".")
            if not hasattr(config, section) or not hasattr(getattr(config, section), field):
                raise ConfigError(f"search space key '{name}': config key {self.parameters[name].key!r} does not exist")
            if rest:  # model.params.<name>
                getattr(getattr(config, section), field)[".".join(rest)] = _plain(value)
            else:
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


def load_space(path: str | Path | None, base: ExperimentConfig,
               declared: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
    """The model's `declared` space (its registry entry's), overridden by the file at `path` when given."""
    overrides = read_space_file(path) if path else {}
    try:
        return SearchSpace.from_dict(overrides or {}, base, declared)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None
