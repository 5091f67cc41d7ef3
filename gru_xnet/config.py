"""Experiment configuration: dataclasses, presets, validation and a JSON round trip.

Every option is checked when a config is built or loaded (and again by `validate()` before a run,
because users assign fields after construction); a bad value raises one `ConfigError` that names
the key, the value and what is allowed. Checking needs no feature code beyond numpy: the STFT and the
representations' names are imported where they are checked, and neither loads scipy, so a command
line refuses a bad value before any heavy library loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import os
import re
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gru_xnet.datasets.base import OptionError
from gru_xnet.datasets.registry import DATASET_NAMES, READERS, canonical_name

if TYPE_CHECKING:
    from gru_xnet.preprocessing import STFTPreprocessor


class ConfigError(ValueError):
    """A configuration key holds a value that is not allowed."""


def _fail(key: str, value: Any, allowed: str) -> typing.NoReturn:
    raise ConfigError(f"config key '{key}' = {value!r} is invalid: expected {allowed}")


def _check_type(key: str, value: Any, hint: Any) -> Any:
    """Return `value` coerced to `hint` (int -> float only) or raise naming the key."""
    if hint is Any:  # model.params: the model's constructor checks its own arguments
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _check_type(key, value, next(a for a in args if a is not type(None)))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(key, value, "a number")
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range
            number = math.inf
        if not math.isfinite(number):
            _fail(key, value, "a finite number")
        return number
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            _fail(key, value, f"a value of type {hint.__name__}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            _fail(key, value, f"a list of {args[0].__name__}")
        return [_check_type(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(key, value, "a mapping")
        return {_check_type(f"{key} key", k, args[0]): _check_type(f"{key}[{k!r}]", v, args[1])
                for k, v in value.items()}
    raise TypeError(f"unsupported annotation {hint!r} for {key}")


def _one_of(key: str, value: Any, allowed: typing.Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        _fail(key, value, "one of " + ", ".join(repr(a) for a in allowed))


def _in_range(key: str, value: float, low: float, high: float, *, high_open: bool = False,
              low_open: bool = False) -> None:
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        _fail(key, value, f"a value in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


def _dataset_name(key: str, name: str) -> str:
    """Canonical dataset name (any case, 'SEED-IV' too) or a ConfigError naming the key."""
    try:
        return canonical_name(name)
    except ValueError:
        _fail(key, name, "one of " + ", ".join(DATASET_NAMES) + " (any case)")


MODEL_TYPES = ("standard", "dynamic")


def validate_model_args(n_channels: int, n_freq_bins: int, n_time_bins: int, n_classes: int,
                        model_type: str, gru_hidden_size: int, num_attention_heads: int,
                        dropout: float, cnn_channels: typing.Sequence[int], fusion_dim: int,
                        gru_layers: int, fc_dims: typing.Sequence[int], time_pool_blocks: int = 2,
                        use_attention: bool = True, order_blind: bool = False) -> None:
    """The model's argument rules: raise ValueError naming the argument, its value and what is allowed."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type={model_type!r} is not supported; allowed: {MODEL_TYPES}")
    sizes = {"n_channels": n_channels, "n_freq_bins": n_freq_bins, "n_time_bins": n_time_bins,
             "n_classes": n_classes, "gru_hidden_size": gru_hidden_size,
             "num_attention_heads": num_attention_heads, "fusion_dim": fusion_dim,
             "gru_layers": gru_layers}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid; allowed: an integer >= 1")
    for name, widths in (("cnn_channels", cnn_channels), ("fc_dims", fc_dims)):
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"{name}={widths!r} is invalid; allowed: a sequence of integers >= 1")
    if not cnn_channels:
        raise ValueError("cnn_channels=() is invalid; allowed: at least one CNN block width")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} is out of range; allowed: 0 <= dropout < 1")
    if (2 * gru_hidden_size) % num_attention_heads:
        raise ValueError(f"num_attention_heads={num_attention_heads} must divide the attention "
                         f"width 2 * gru_hidden_size = {2 * gru_hidden_size} "
                         f"(gru_hidden_size={gru_hidden_size})")
    if isinstance(time_pool_blocks, bool) or not isinstance(time_pool_blocks, int) \
            or not 0 <= time_pool_blocks <= len(cnn_channels):
        raise ValueError(f"time_pool_blocks={time_pool_blocks!r} is invalid; allowed: 0 .. the number of CNN "
                         f"blocks, len(cnn_channels) = {len(cnn_channels)}")
    if model_type == "standard" and order_blind:
        raise ValueError("order_blind=True is the control of the 'dynamic' model (it averages the time axis); "
                         "'standard' never sees time order")


def sequence_length(model_type: str, n_channels: int, n_time_bins: int, time_pool_blocks: int) -> int:
    """Steps the BiGRU runs over: pooled STFT frames ('dynamic') or EEG channels ('standard')."""
    if model_type == "standard":
        return n_channels
    steps = n_time_bins
    for _ in range(time_pool_blocks):
        steps = -(-steps // 2)  # ceil-mode 2x pooling
    return steps


def check_sequence(model_type: str, n_channels: int, n_time_bins: int, time_pool_blocks: int) -> int:
    """The sequence length, or ValueError when it is below 2 (no order left for the BiGRU to see)."""
    steps = sequence_length(model_type, n_channels, n_time_bins, time_pool_blocks)
    if steps < 2:
        raise ValueError(f"the BiGRU would run over {steps} step(s) (model_type={model_type!r}, "
                         f"n_time_bins={n_time_bins}, time_pool_blocks={time_pool_blocks}); allowed: at least 2")
    return steps


class _Section:
    """Shared behaviour of the config sections: type coercion, strict dict loading."""

    _prefix = ""

    def __post_init__(self) -> None:
        self._check_types()
        self.validate()

    def _check_types(self) -> None:
        """Coerce every plain (non-section) field to its annotation; raise ConfigError naming the key."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            if not dataclasses.is_dataclass(hints[f.name]):
                object.__setattr__(self, f.name,
                                   _check_type(self._key(f.name), getattr(self, f.name), hints[f.name]))

    def _key(self, name: str) -> str:
        return f"{self._prefix}.{name}" if self._prefix else name

    def validate(self) -> None:
        """Check value ranges and cross-field rules; raise ConfigError on the first bad key."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Build from a plain dict, refusing keys this section does not know."""
        if not isinstance(data, dict):
            _fail(cls._prefix or "config", data, "a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            where = repr(f"{cls._prefix}.{unknown[0]}" if cls._prefix else unknown[0])  # repr: odd characters shown
            raise ConfigError(f"unknown config key {where}; known keys: {', '.join(known)}")
        hints = typing.get_type_hints(cls)
        kwargs = {name: hints[name].from_dict(value) if dataclasses.is_dataclass(hints[name]) else value
                  for name, value in data.items()}
        return cls(**kwargs)


MODEL_REFERENCE = re.compile(r"[A-Za-z_][\w]*|.+\.py:[A-Za-z_]\w*|[A-Za-z_][\w.]*:[A-Za-z_]\w*")
"""A registered model's name, `path/to/file.py:function` or `package.module:function` (see gru_xnet.models)."""


@dataclass
class ModelConfig(_Section):
    """Which model (`name`, `params`; see gru_xnet.models) and the gru_xnet model's own architecture keys."""

    _prefix = "model"
    name: str = "gru_xnet"
    params: dict[str, Any] = field(default_factory=dict)
    model_type: str = "dynamic"
    gru_hidden_size: int = 128
    num_attention_heads: int = 4
    dropout: float = 0.5
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    fusion_dim: int = 256
    gru_layers: int = 2
    fc_dims: list[int] = field(default_factory=lambda: [256, 128])
    time_pool_blocks: int = 2
    use_attention: bool = True
    order_blind: bool = False

    def describe_sequence(self, input_shape: typing.Sequence[int]) -> str:
        """What the BiGRU runs over for features of shape (C, F, T): logged by every run."""
        n_channels, n_freq, n_time = input_shape
        steps = sequence_length(self.model_type, n_channels, n_time, self.time_pool_blocks)
        what = "time steps" if self.model_type == "dynamic" else "channels"
        return (f"input (C, F, T) = ({n_channels}, {n_freq}, {n_time}): the '{self.model_type}' BiGRU runs over "
                f"{steps} {what}" + (" (order-blind control: every frame is the mean frame)" if self.order_blind else ""))

    def gru_xnet_args(self) -> dict[str, Any]:
        """The gru_xnet architecture keys (every key but `name` and `params`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("name", "params")}

    def validate(self) -> None:
        if not MODEL_REFERENCE.fullmatch(self.name):
            _fail("model.name", self.name, "a registered model name, 'path/to/file.py:function' or "
                                           "'package.module:function'")
        try:
            validate_model_args(n_channels=1, n_freq_bins=1, n_time_bins=1, n_classes=2, **self.gru_xnet_args())
        except ValueError as exc:
            raise ConfigError(f"config key model.{exc}") from exc


OPTIMIZERS = ("adam", "adamw")
"""`training.optimizer`: Adam (weight decay added to the gradient) or AdamW (decoupled weight decay)."""


@dataclass
class TrainingConfig(_Section):
    """Optimisation: Adam(W), cosine annealing, the loss, early stopping, AMP, checkpoints, reproducibility knobs.

    `num_threads` (torch intra-op threads per training process) and `deterministic` are settings, not
    inherited from the machine: a fold's CPU result depends on them, so they are part of the config hash.
    The best validation epoch (by `monitor`, the first on ties) is tested, with or without `early_stopping`.
    """

    _prefix = "training"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    num_epochs: int = 30
    use_scheduler: bool = True
    early_stopping: bool = True
    patience: int = 10
    monitor: str = "loss"
    use_amp: bool = True
    amp_dtype: str = "auto"
    device: str = "auto"
    keep_last_checkpoints: int = 3
    num_threads: int = 1
    deterministic: bool = True
    optimizer: str = "adam"
    adam_eps: float = 1e-8
    """The optimiser's epsilon (added to the root of the second-moment estimate)."""
    cosine_period: int = 0
    """Epochs from the full learning rate to zero, PyTorch's `T_max` (0: the planned epochs, `num_epochs`); past it
    the rate rises again, as `CosineAnnealingLR` is periodic."""
    label_smoothing: float = 0.0
    """Label smoothing of the training cross-entropy (0: none); validation and test losses are never smoothed."""

    def validate(self) -> None:
        _in_range("training.learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        _in_range("training.weight_decay", self.weight_decay, 0.0, 1.0)
        _one_of("training.optimizer", self.optimizer, OPTIMIZERS)
        _in_range("training.adam_eps", self.adam_eps, 0.0, 1.0, low_open=True)
        if self.cosine_period < 0:
            _fail("training.cosine_period", self.cosine_period, "0 (the planned epochs) or a positive integer")
        _in_range("training.label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        for name in ("batch_size", "num_epochs", "patience", "num_threads"):
            if getattr(self, name) < 1:
                _fail(f"training.{name}", getattr(self, name), "a positive integer")
        if self.keep_last_checkpoints < 0:
            _fail("training.keep_last_checkpoints", self.keep_last_checkpoints, "an integer >= 0")
        _one_of("training.monitor", self.monitor, ("accuracy", "balanced_accuracy", "subject_balanced_accuracy",
                                                   "macro_f1", "loss"))
        _one_of("training.amp_dtype", self.amp_dtype, ("auto", "bf16", "fp16"))
        if not (self.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", self.device)):
            _fail("training.device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclass
class RawConfig(_Section):
    """The `raw` representation's own keys (`data.raw.*`): the rate every dataset's signal is resampled to."""

    _prefix = "data.raw"
    sampling_rate: float = 0.0
    """Hz (0: the lowest rate of the selected datasets); resampled after filtering, with scipy's resample_poly."""

    def validate(self) -> None:
        _in_range("data.raw.sampling_rate", self.sampling_rate, 0.0, 100000.0)


@dataclass
class DataConfig(_Section):
    """Which datasets, how they are labelled, windowed, transformed, augmented and split."""

    _prefix = "data"
    datasets: list[str] = field(default_factory=lambda: ["DEAP", "GAMEEMO", "SEEDIV"])
    representation: str = "auto"
    de_bands: dict[str, list[float]] = field(default_factory=dict)
    de_segment_seconds: float = 1.0
    de_smoothing: str = "none"
    """DE series smoothed over a trial's segments: 'none', 'lds' (Shi & Lu's linear dynamical system, LibEER's
    parameters) or 'moving_average' over `de_smoothing_frames` segments; never across trials."""
    de_smoothing_frames: int = 5
    de_log_base: str = "e"
    data_root: str = "data"
    data_roots: dict[str, str] = field(default_factory=dict)
    max_subjects: int = 0
    window_seconds: float = 4.0
    window_overlap: float = 0.0
    stft_window_seconds: float = 0.5
    stft_overlap: float = 0.75
    freq_range: list[float] = field(default_factory=lambda: [0.5, 50.0])
    channels: str = "auto"
    normalization: str = "train"
    use_augmented: bool = True
    augmentation_ratio: float = 2.0
    balance_classes: bool = True
    cache_stft: bool = True
    cache_dir: str = "~/.cache/gru_xnet"
    num_workers: int = 0
    train_ratio: float = 0.7
    val_ratio: float = 0.15
    test_ratio: float = 0.15
    skip_bad_trials: bool = False
    bandpass_hz: dict[str, list[float]] = field(default_factory=dict)
    notch_hz: dict[str, float] = field(default_factory=dict)
    deap_label: str = "valence"
    deap_threshold: float = 5.0
    deap_comparison: str = ">="
    seediv_classes: int = 2
    seediv_negative_classes: list[int] = field(default_factory=lambda: [1, 2])
    seediv_sampling_rate: float = 200.0
    gameemo_label: str = "valence"
    gameemo_positive_games: typing.Optional[list[int]] = None
    gameemo_source: str = "preprocessed"
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Reader options per dataset, e.g. {"DREAMER": {"label_dimension": "arousal"}}; see each reader's
    check_options. The older data.deap_* / seediv_* / gameemo_* keys set the same options of their datasets."""
    raw: RawConfig = field(default_factory=RawConfig)

    def validate(self) -> None:
        if not isinstance(self.raw, RawConfig):
            _fail("data.raw", self.raw, "a config section ({\"sampling_rate\": ...})")
        RawConfig.__post_init__(self.raw)
        if not self.datasets:
            _fail("data.datasets", self.datasets, "a non-empty list of " + ", ".join(DATASET_NAMES))
        self.datasets = [_dataset_name(f"data.datasets[{i}]", n) for i, n in enumerate(self.datasets)]
        if len(set(self.datasets)) != len(self.datasets):
            _fail("data.datasets", self.datasets, "each dataset at most once")
        self.data_roots = {_dataset_name("data.data_roots key", k): v for k, v in self.data_roots.items()}
        if self.max_subjects < 0:
            _fail("data.max_subjects", self.max_subjects, "0 (all subjects) or a positive integer")
        _in_range("data.window_seconds", self.window_seconds, 0.0, 600.0, low_open=True)
        _in_range("data.window_overlap", self.window_overlap, 0.0, 1.0, high_open=True)
        _in_range("data.stft_window_seconds", self.stft_window_seconds, 0.0, self.window_seconds,
                  low_open=True)
        _in_range("data.stft_overlap", self.stft_overlap, 0.0, 1.0, high_open=True)
        low, high = (self.freq_range + [None, None])[:2]
        if len(self.freq_range) != 2 or not 0 <= low < high:
            _fail("data.freq_range", self.freq_range, "[low, high] in Hz with 0 <= low < high")
        from gru_xnet.representations import REPRESENTATIONS

        _one_of("data.representation", self.representation, ("auto", *REPRESENTATIONS))
        for name, band in self.de_bands.items():
            if len(band) != 2 or not 0 < band[0] < band[1]:
                _fail(f"data.de_bands[{name!r}]", band, "[low, high] in Hz with 0 < low < high")
        _in_range("data.de_segment_seconds", self.de_segment_seconds, 0.0, self.window_seconds, low_open=True)
        from gru_xnet.de_smoothing import SMOOTHINGS

        _one_of("data.de_smoothing", self.de_smoothing, SMOOTHINGS)
        if self.de_smoothing_frames < 1 or self.de_smoothing_frames % 2 == 0:
            _fail("data.de_smoothing_frames", self.de_smoothing_frames, "an odd number of segments >= 1")
        _one_of("data.de_log_base", self.de_log_base, ("e", "2"))
        if self.de_smoothing != "none":
            segments = self.window_seconds * (1 - self.window_overlap) / self.de_segment_seconds
            if abs(segments - round(segments)) > 1e-9 or round(segments) < 1:
                _fail("data.window_seconds/window_overlap", [self.window_seconds, self.window_overlap],
                      f"a window step that is a whole number of data.de_segment_seconds ({self.de_segment_seconds:g} s)"
                      f" when data.de_smoothing is {self.de_smoothing!r} (windows are cut from the smoothed series)")
        _one_of("data.channels", self.channels, ("auto", "all", "common"))
        _one_of("data.normalization", self.normalization, ("train", "none"))
        _in_range("data.augmentation_ratio", self.augmentation_ratio, 0.0, 20.0)
        if self.num_workers < 0:
            _fail("data.num_workers", self.num_workers, "an integer >= 0")
        for name in ("train_ratio", "val_ratio", "test_ratio"):
            _in_range(f"data.{name}", getattr(self, name), 0.0, 1.0)
        total = self.train_ratio + self.val_ratio + self.test_ratio
        if abs(total - 1.0) > 1e-6:
            _fail("data.train_ratio/val_ratio/test_ratio",
                  [self.train_ratio, self.val_ratio, self.test_ratio], f"ratios summing to 1 (sum is {total:g})")
        if self.train_ratio == 0:
            _fail("data.train_ratio", self.train_ratio, "a value > 0")
        self.dataset_options = {_dataset_name("data.dataset_options key", k): v for k, v in self.dataset_options.items()}
        for name in DATASET_NAMES:
            self.checked_options(name)
        self.bandpass_hz = {_dataset_name("data.bandpass_hz key", k): v for k, v in self.bandpass_hz.items()}
        self.notch_hz = {_dataset_name("data.notch_hz key", k): v for k, v in self.notch_hz.items()}
        for name in DATASET_NAMES:
            if self.delivers_de(name):
                self._check_released(name)
                continue
            nyquist = self.sampling_rate(name) / 2
            band = self.bandpass_hz.get(name)
            if band is not None and band and not (len(band) == 2 and 0 < band[0] < band[1] < nyquist):
                _fail(f"data.bandpass_hz[{name!r}]", band,
                      f"[] (off) or [low, high] Hz with 0 < low < high < {nyquist:g} (half the sampling rate)")
            notch = self.notch_hz.get(name)
            if notch is not None and notch and not 0 < notch < nyquist:
                _fail(f"data.notch_hz[{name!r}]", notch, f"0 (off) or a frequency in (0, {nyquist:g}) Hz")
        released = [name for name in self.datasets if self.delivers_de(name)]
        if released and (len(released) < len(self.datasets) or len({self.sampling_rate(d) for d in released}) > 1):
            _fail("data.datasets", self.datasets, f"datasets read from one kind of input: {', '.join(released)} from "
                  "their released DE frames (dataset_options source 'released'), whose bands and frame lengths the "
                  "others do not share; run them apart")
        for name in self.datasets:
            if self.delivers_de(name):
                continue
            try:
                self.stft(name)
            except ValueError as exc:
                takes_rate = "sampling_rate" in inspect.signature(READERS[name].check_options).parameters
                rate_key = f", {self.option_key(name, 'sampling_rate')}" if takes_rate else ""
                raise ConfigError(f"config keys data.stft_window_seconds, data.stft_overlap, data.freq_range{rate_key} "
                                  f"give no usable STFT for {name} at {self.sampling_rate(name):g} Hz: {exc}") from None

    def delivers_de(self, dataset: str) -> bool:
        """Whether `dataset`'s reader delivers the differential-entropy frames its authors released (not a signal)."""
        return READERS[dataset].delivers(self._options(dataset)) == "de"

    def _check_released(self, dataset: str) -> None:
        """Released DE frames are neither filtered nor smoothed again, and windows hold whole frames."""
        source = self.option_key(dataset, "source")
        for key, value in ((f"data.bandpass_hz[{dataset!r}]", self.bandpass_hz.get(dataset)),
                           (f"data.notch_hz[{dataset!r}]", self.notch_hz.get(dataset))):
            if value:
                _fail(key, value, f"nothing ({source} is 'released': DE frames, no signal to filter)")
        if dataset in self.datasets and self.de_smoothing != "none":
            _fail("data.de_smoothing", self.de_smoothing, f"'none' with {source} 'released' (the released frames "
                  "are already smoothed as data.dataset_options' released_feature says)")
        frame = 1.0 / self.sampling_rate(dataset)
        for key, seconds in (("data.window_seconds", self.window_seconds),
                             ("data.window_seconds x (1 - data.window_overlap)",
                              self.window_seconds * (1 - self.window_overlap))):
            frames = seconds / frame
            if dataset in self.datasets and (abs(frames - round(frames)) > 1e-9 or round(frames) < 1):
                _fail(key, seconds, f"a whole number of {dataset}'s released {frame:g} s DE frames ({source} is "
                      "'released')")

    def option_key(self, dataset: str, option: str) -> str:
        """The config key that sets a reader option: its older data.* key, else data.dataset_options[...]."""
        legacy = {opt: key for key, opt in READERS[dataset].config_keys.items()}
        return f"data.{legacy[option]}" if option in legacy else f"data.dataset_options[{dataset!r}].{option}"

    def _options(self, dataset: str) -> dict[str, Any]:
        """A dataset's options as set: its older data.* keys, then data.dataset_options."""
        reader = READERS[dataset]
        legacy = {option: getattr(self, key) for key, option in reader.config_keys.items()}
        listed = {k: tuple(v) if isinstance(v, list) else v for k, v in legacy.items()}
        return {**listed, **self.dataset_options.get(dataset, {})}

    def checked_options(self, dataset: str) -> dict[str, Any]:
        """A dataset's options checked by its reader (ConfigError naming the key), as the reader will use them."""
        reader = READERS[dataset]
        options = self._options(dataset)
        known = [p for p in inspect.signature(reader.check_options).parameters if p != "joint"]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"unknown config key 'data.dataset_options[{dataset!r}].{unknown[0]}'; {dataset} takes "
                              f"{', '.join(known) or 'no options'}")
        try:
            return reader.check_options(joint=len(self.datasets) > 1 and dataset in self.datasets, **options)
        except OptionError as exc:
            raise ConfigError(f"config key '{self.option_key(dataset, exc.option)}' = {exc.value!r} is invalid: "
                              f"expected {exc.allowed}") from None

    def sampling_rate(self, dataset: str) -> float:
        """The rate `dataset`'s reader delivers under this config's options."""
        return READERS[dataset].rate(self._options(dataset))

    def signal_filters(self, dataset: str) -> dict[str, Any]:
        """Zero-phase filters for each trial of `dataset` before windowing: this config's or the dataset's default.

        The dataset says what its files need (e.g. SEED-IV's unfiltered eeg_raw_data: band-pass and a 50 Hz
        notch; DEAP's files, already band-passed: none). An empty band or a 0 Hz notch turns a filter off.
        """
        default = READERS[dataset].default_filters(self._options(dataset))
        band = self.bandpass_hz.get(dataset, default["bandpass_hz"] or [])
        notch = self.notch_hz.get(dataset, default["notch_hz"] or 0.0)
        return {"bandpass_hz": list(band) or None, "notch_hz": float(notch) or None}

    def stft(self, dataset: str) -> STFTPreprocessor:
        """The STFT these settings give at `dataset`'s sampling rate."""
        from gru_xnet.preprocessing import STFTPreprocessor

        return STFTPreprocessor.for_sampling_rate(self.sampling_rate(dataset), self.stft_window_seconds,
                                                  self.stft_overlap, self.freq_range)

    def n_frames(self, dataset: str) -> int:
        """STFT frames of one window of `dataset` (the same at every rate when the settings allow)."""
        return self.stft(dataset).n_time_bins(int(round(self.window_seconds * self.sampling_rate(dataset))))

    @property
    def n_classes(self) -> int:
        """Number of classes: a single dataset's own; datasets trained together share the binary mapping."""
        if len(self.datasets) > 1:
            return 2
        return READERS[self.datasets[0]].classes(self.checked_options(self.datasets[0]))

    def root_for(self, dataset: str) -> str:
        """The folder given for `dataset`: its own entry in data_roots, else the shared data_root."""
        return os.path.expanduser(self.data_roots.get(dataset, self.data_root))

    def reader_options(self, dataset: str) -> dict[str, Any]:
        """Keyword options for the dataset's reader: the checked options, bad-trial policy and joint training."""
        return {"skip_bad_trials": self.skip_bad_trials, "joint": len(self.datasets) > 1,
                **self.checked_options(dataset)}


@dataclass
class ExperimentConfig(_Section):
    """One experiment: model, training and data sections plus naming, seed and output folder."""

    experiment_name: str = "gru_xnet"
    seed: int = 42
    output_dir: str = "outputs"
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tuned_on: list[str] = field(default_factory=list)
    """Subjects ('DATASET/subject') whose data informed these hyper-parameters (written by tune.search).
    Provenance, not a setting: kept out of `fingerprint()`; loso.run flags folds that test one of them."""

    def validate(self) -> None:
        self._check_types()  # set_option and users assign fields after construction
        if not self.experiment_name or any(c in self.experiment_name for c in "/\\\0"):
            _fail("experiment_name", self.experiment_name, "a non-empty name without path separators")
        if not 0 <= self.seed < 2 ** 32:
            _fail("seed", self.seed, "an integer in [0, 2**32 - 1] (numpy's seed range)")
        bad = [s for s in self.tuned_on if s.count("/") != 1 or not all(s.split("/"))]
        if bad:
            _fail("tuned_on", bad[0], "subject names as 'DATASET/subject'")
        for section in (self.model, self.training, self.data):
            if not isinstance(section, _Section):
                _fail("config section", section, "a config dataclass")
            type(section).__post_init__(section)
        if self.model.model_type == "dynamic":
            for dataset in (d for d in self.data.datasets if not self.data.delivers_de(d)):  # DE frames: no STFT
                frames = self.data.n_frames(dataset)
                steps = sequence_length("dynamic", 1, frames, self.model.time_pool_blocks)
                if steps < 2:
                    d = self.data
                    raise ConfigError(
                        f"config keys data.window_seconds={d.window_seconds:g}, data.stft_window_seconds="
                        f"{d.stft_window_seconds:g}, data.stft_overlap={d.stft_overlap:g} give {frames} STFT frame(s) "
                        f"per window at {d.sampling_rate(dataset):g} Hz ({dataset}), and model.time_pool_blocks="
                        f"{self.model.time_pool_blocks} leaves the 'dynamic' BiGRU {steps} step(s); expected at "
                        "least 2: use longer windows, a finer STFT hop or fewer time-pooling blocks")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every option."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically."""
        write_text_atomic(Path(path), self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        """Read and validate a JSON config; errors name the file and the bad key."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, UTF-8 or a too long integer
            raise ConfigError(f"cannot read config file {path}: expected UTF-8 JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def fingerprint(self) -> str:
        """Short hash of everything that changes results (not the name, output folder or tuning provenance)."""
        data = self.to_dict()
        data.pop("experiment_name"), data.pop("output_dir"), data.pop("tuned_on")
        data["data"].pop("num_workers"), data["data"].pop("cache_dir")
        for (section, key), default in ADDED_DEFAULTS.items():  # configs from before these keys keep their hash
            if data[section][key] == default:
                data[section].pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    def set_option(self, dotted_key: str, raw: str, *, validate: bool = True) -> None:
        """Set e.g. 'training.batch_size' from command-line text (JSON literal or bare string); validated at once
        (the old value restored on refusal) unless `validate` is False."""
        *sections, name = dotted_key.split(".")
        target: Any = self
        for section in sections:
            if not isinstance(getattr(target, section, None), _Section):
                raise ConfigError(f"unknown config key {dotted_key!r}")
            target = getattr(target, section)
        if name not in {f.name for f in dataclasses.fields(target)} or isinstance(getattr(target, name), _Section):
            raise ConfigError(f"unknown config key {dotted_key!r}; known keys: "
                              + ", ".join(f.name for f in dataclasses.fields(target)))
        old = getattr(target, name)
        value = _literal(raw)
        if isinstance(old, list) and isinstance(value, (str, int, float)):
            value = [_literal(part) for part in str(raw).split(",")]
        setattr(target, name, value)
        if not validate:
            return
        try:
            self.validate()
        except ConfigError:
            setattr(target, name, old)
            raise


def apply_overrides(config: ExperimentConfig, extra: list[str]) -> None:
    """Apply the `--section.key value` pairs a command line left over after its own options, then validate once:
    keys that must agree (data.train_ratio, val_ratio and test_ratio) can be set together."""
    if len(extra) % 2 or any(not a.startswith("--") for a in extra[::2]):
        raise ConfigError(f"expected overrides as '--section.key value' pairs, got {extra}")
    for key, value in zip(extra[::2], extra[1::2]):
        config.set_option(key[2:], value, validate=False)
    config.validate()


ADDED_DEFAULTS = {("model", "name"): "gru_xnet", ("model", "params"): {}, ("data", "representation"): "auto",
                  ("data", "de_bands"): {}, ("data", "de_segment_seconds"): 1.0, ("data", "dataset_options"): {},
                  ("data", "de_smoothing"): "none", ("data", "de_smoothing_frames"): 5, ("data", "de_log_base"): "e",
                  ("data", "raw"): {"sampling_rate": 0.0}, ("training", "optimizer"): "adam",
                  ("training", "adam_eps"): 1e-8, ("training", "cosine_period"): 0,
                  ("training", "label_smoothing"): 0.0}
"""Keys added after configs were first hashed: left out of `fingerprint()` while at these defaults."""


def _literal(text: str) -> Any:
    """A JSON literal ('64', '0.5', 'true', '[1, 2]') or, failing that, the text itself."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an integer too long to convert, or nested too deep
        return text


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def get_full_training_config() -> ExperimentConfig:
    """The seed's full configuration: all three datasets, the documented architecture, 30 epochs."""
    return ExperimentConfig(experiment_name="gru_xnet")


def get_quick_test_config() -> ExperimentConfig:
    """A small, fast configuration for checking a set-up end to end (minutes on 2 CPU cores)."""
    return ExperimentConfig(
        experiment_name="gru_xnet_quick",
        model=ModelConfig(gru_hidden_size=32, cnn_channels=[8, 16, 32], fusion_dim=64,
                          fc_dims=[64, 32], dropout=0.3),
        training=TrainingConfig(batch_size=16, num_epochs=12, patience=5, learning_rate=2e-3),
        data=DataConfig(freq_range=[2.0, 45.0]),
    )


PRESETS = {"quick": get_quick_test_config, "full": get_full_training_config}


def resolve_config(name_or_path: str) -> ExperimentConfig:
    """A preset name ('quick', 'full') or the path of a JSON config file."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]()
    if not Path(name_or_path).is_file():
        raise ConfigError(f"--config {name_or_path!r}: expected 'quick', 'full' or an existing JSON file")
    return ExperimentConfig.load(name_or_path)
