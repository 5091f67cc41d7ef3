"""The contract of a model registry entry: its input, its constructor, its defaults and what may be searched.

An entry is import-light: reading it (name, input, defaults, search space) loads neither torch nor
scikit-learn, so every command checks a model's name and input before the heavy libraries load. A torch
model's entry names its constructor by place, `build="gru_xnet.models.eegnet:EEGNet"`, imported when the
first model is built; a builder function may instead import its library inside (`de_linear.py`).
A new model: its module (torch imported at its top as usual) and its entry in `gru_xnet/models/__init__.py`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from gru_xnet.config import ConfigError

INPUT_ARGUMENTS = ("sampling_rate", "channels")
"""What a builder is also told about its windows when its signature names these keywords: `sampling_rate`, samples
per second along the window's last (time) axis (raw: the signal's rate; stft: frames per second; de: segments per
second), and `channels`, the channel names in input order (a tuple of upper-case str)."""


def input_arguments(build: Callable[..., Any], sampling_rate: float | None,
                    channels: Sequence[str]) -> dict[str, Any]:
    """The INPUT_ARGUMENTS `build` names as parameters (a `**kwargs` catch-all does not count), those known."""
    named = {name for name, parameter in inspect.signature(build).parameters.items()
             if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)}
    known = {"sampling_rate": sampling_rate, "channels": tuple(channels) if channels else None}
    return {name: value for name, value in known.items() if name in named and value is not None}


@dataclass(frozen=True)
class Builder:
    """A constructor (or any function of a model's module) named by its place, 'package.module:attribute', imported
    when first called, e.g. when a model is first built.

    Its `__wrapped__` is the function itself, so `inspect.signature` reads the function's parameters.
    """

    reference: str

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        module, _, attribute = self.reference.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)


@dataclass(frozen=True)
class ModelSpec:
    """One model: `build(input_shape=..., n_classes=K, **params)` returns a `torch.nn.Module` or a scikit-learn
    classifier for windows of `representation` (None: `data.representation`, 'stft' when 'auto'); a builder whose
    signature names `sampling_rate` or `channels` also gets them (`INPUT_ARGUMENTS`).

    `build` is the constructor or its place, 'package.module:attribute' (a `Builder`, imported when first
    called); `defaults` are its parameters unless `model.params` overrides them; `space` is its Tune search space
    (name -> {"key": config key, plus "choices" or "low"/"high"/"log"}); `grid` (scikit-learn models) lists
    parameter values chosen inside every fold on the validation subjects; `summary` is its line in PROTOCOL.md.
    """

    name: str
    build: Callable[..., Any] | str
    representation: str | None
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    rate_defaults: Callable[[float], dict[str, Any]] | str | None = None
    """Defaults that follow from the sampling rate (EEGNet: kernels of half a second), over `defaults` when the rate
    is known; `model.params` still overrides them, and the record holds the values used. A function or its place
    (a `Builder`, as `build`)."""
    space: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    grid: Mapping[str, list] = field(default_factory=dict)
    params_from_config: Callable[[Any], dict] | None = None
    """Where the parameters come from instead of `model.params` (gru_xnet: its own `model.*` keys)."""
    describe: Callable[[Any, tuple[int, ...]], str] | None = None
    """The model's own statement of what it runs over (gru_xnet: its BiGRU's sequence), for logs and PROTOCOL.md."""
    origin: Mapping[str, str] = field(default_factory=dict)
    """A user model's file (`path`) and the SHA-256 of its source (`source_sha256`), recorded with every result."""

    def __post_init__(self) -> None:
        for name in ("build", "rate_defaults"):
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Builder(getattr(self, name)))

    def params(self, model_config, sampling_rate: float | None = None) -> dict[str, Any]:
        """The constructor's keyword arguments under a ModelConfig, for windows at `sampling_rate` when known."""
        if self.params_from_config is not None:
            if model_config.params:
                raise ConfigError(f"config key 'model.params' = {model_config.params!r} is invalid: {self.name} takes "
                                  "its parameters from its own model.* keys; expected {}")
            return self.params_from_config(model_config)
        scaled = self.rate_defaults(sampling_rate) if self.rate_defaults and sampling_rate else {}
        return {**self.defaults, **scaled, **model_config.params}

    def instantiate(self, model_config, input_shape: tuple[int, ...], n_classes: int, *,
                    sampling_rate: float | None = None, channels: Sequence[str] = ()) -> Any:
        """The model for windows of `input_shape`; a constructor's refusal becomes a ConfigError naming model.params."""
        params = self.params(model_config, sampling_rate)
        try:
            return self.construct(params, input_shape, n_classes, sampling_rate=sampling_rate, channels=channels)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model {self.name!r} cannot be built for windows of shape {tuple(input_shape)} with "
                              f"parameters {params} (config key model.params): {exc}") from exc

    def construct(self, params: Mapping[str, Any], input_shape: Sequence[int], n_classes: int, *,
                  sampling_rate: float | None = None, channels: Sequence[str] = ()) -> Any:
        """`build` called with resolved `params` (a record's, when a checkpoint is loaded) and the input it names."""
        return self.build(input_shape=tuple(input_shape), n_classes=n_classes,
                          **input_arguments(self.build, sampling_rate, channels), **params)

    def representation_of(self, data_config) -> str:
        """The representation this model trains on under `data_config`; an explicit one it cannot take is refused."""
        chosen = data_config.representation
        if chosen == "auto":
            return self.representation or "stft"
        if self.representation is not None and chosen != self.representation:
            raise ConfigError(f"config key 'data.representation' = {chosen!r} is invalid for model {self.name!r}: "
                              f"expected 'auto' or {self.representation!r}, the input it is built for")
        return chosen

    def input_statement(self, model_config, input_shape: tuple[int, ...], representation: str) -> str:
        """One line: the model and the windows it takes."""
        shape = ", ".join(map(str, input_shape))
        if self.describe is not None:
            return self.describe(model_config, tuple(input_shape))
        return f"{self.name} on {representation} windows of shape ({shape})"

    def record(self, model_config, representation: str, *, sampling_rate: float | None = None,
               channels: Sequence[str] = (), decision: str = "probability") -> dict[str, Any]:
        """What every fold file, checkpoint and run.json says about the model: the parameters used, the input it was
        built for, and how its class scores are read (`gru_xnet.estimators.decision_of`)."""
        grid = {"grid": dict(self.grid)} if self.grid else {}
        return {"name": self.name, "params": self.params(model_config, sampling_rate), "representation": representation,
                **grid, "sampling_rate": sampling_rate, "channels": list(channels), "decision": decision, **self.origin}
