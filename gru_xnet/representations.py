"""What a model sees of one window: log-power STFT images, the raw signal, or differential-entropy bands.

A representation turns one filtered trial `(C, T)` into its windows `(n, *shape)`; `params` (plain
JSON) is everything that decides the output, so it is the representation's part of the cache key.
Every representation is normalised per row of its last axis (z-score over training windows and that
axis): per (channel, frequency) for `stft`, per channel for `raw`, per (channel, band) for `de`.
Feature-domain augmentation is defined for `stft` only; the others are trained without it.
scipy is imported by the transforms that need it, so `REPRESENTATIONS` names them without it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from gru_xnet.preprocessing import DE_BANDS, STFTPreprocessor, band_filter, entropy_of_variance


def window_trial(trial: np.ndarray, window: int, step: int) -> np.ndarray:
    """Cut `(..., C, T)` into `(n, ..., C, window)` windows `step` samples apart (the tail is dropped)."""
    if trial.shape[-1] < window:
        return np.empty((0, *trial.shape[:-1], window), dtype=trial.dtype)
    views = np.lib.stride_tricks.sliding_window_view(trial, window, axis=-1)[..., ::step, :]
    return np.ascontiguousarray(np.moveaxis(views, -2, 0))


def window_samples(window_seconds: float, overlap: float, rate: float) -> tuple[int, int]:
    """(window length, step) in samples at `rate`."""
    window = int(round(window_seconds * rate))
    return window, max(1, int(round(window * (1.0 - overlap))))


class Representation:
    """The contract: `windows` of a trial, the `grid` datasets must share, and one line for PROTOCOL.md."""

    name: ClassVar[str]
    layout: ClassVar[str]
    normalised: ClassVar[str]
    augment: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any]):
        self.params = dict(params)

    @classmethod
    def configured(cls, data, rates: Sequence[float]) -> "Representation":
        """This representation with the parameters a DataConfig gives it, for datasets recorded at `rates` Hz."""
        raise NotImplementedError

    def cache_fields(self) -> dict[str, Any]:
        """This representation's part of a cache key."""
        return {"representation": {"name": self.name, **self.params}}

    def describe(self) -> dict[str, Any]:
        """What outputs state about the input: name, layout, normalisation, augmentation, parameters."""
        return {"name": self.name, "layout": self.layout, "normalised": self.normalised, "augment": self.augment,
                "params": self.params, "statement": self.statement()}

    def windows(self, trial: np.ndarray, rate: float, window_seconds: float, overlap: float) -> np.ndarray:
        """`(n, *shape)` float32 windows of one filtered trial `(C, T)` recorded at `rate` Hz."""
        raise NotImplementedError

    def grid(self, rate: float) -> np.ndarray:
        """Values along the feature axis (frequencies, band edges) that every dataset must share."""
        return np.zeros(0)

    def time_rate(self, rate: float) -> float:
        """Samples per second along a window's last (time) axis, for signals recorded at `rate` Hz."""
        raise NotImplementedError

    def baseline_reference(self, baseline: np.ndarray, rate: float) -> np.ndarray:
        """The mean feature of a filtered pre-stimulus `baseline` (C, T), to subtract from each window."""
        raise ValueError(f"baseline subtraction is defined for stft and de features, not {self.name}")

    def statement(self) -> str:
        raise NotImplementedError


class STFT(Representation):
    """Log-power STFT images `(C, F, T)`: window and hop in seconds, so every rate gives one grid."""

    name, layout, normalised, augment = "stft", "(C, F, T)", "per (channel, frequency)", True

    @classmethod
    def configured(cls, data, rates):
        return cls({"stft_window_seconds": data.stft_window_seconds, "stft_overlap": data.stft_overlap,
                    "freq_range": list(data.freq_range)})

    def cache_fields(self):
        return {"stft": self.params}  # the key entries had before other representations: they stay valid

    def _stft(self, rate: float) -> STFTPreprocessor:
        return STFTPreprocessor.for_sampling_rate(rate, **self.params)

    def windows(self, trial, rate, window_seconds, overlap):
        window, step = window_samples(window_seconds, overlap, rate)
        cut = window_trial(trial, window, step)
        return self._stft(rate).transform(cut) if len(cut) else np.empty((0,), np.float32)

    def grid(self, rate):
        return self._stft(rate).frequencies

    def time_rate(self, rate):
        stft = self._stft(rate)
        return rate / (stft.nperseg - stft.noverlap)  # frames per second

    def baseline_reference(self, baseline, rate):
        return self._stft(rate).transform(baseline).mean(axis=-1, keepdims=True)  # (C, F, 1): mean log power

    def statement(self):
        low, high = self.params["freq_range"]
        frame = self.params["stft_window_seconds"]
        return (f"log-power STFT images (C, F, T): {frame:g} s frames every {frame * (1 - self.params['stft_overlap']):g} "
                f"s (Hann; only frames wholly inside the window), {low:g}-{high:g} Hz")


class Raw(Representation):
    """The filtered signal `(C, T)`, resampled (scipy.signal.resample_poly) to one common rate: `data.raw.sampling_rate`
    or the lowest of the datasets'."""

    name, layout, normalised = "raw", "(C, T)", "per channel"

    @classmethod
    def configured(cls, data, rates):
        return cls({"sampling_rate": float(data.raw.sampling_rate or min(rates))})

    def windows(self, trial, rate, window_seconds, overlap):
        target = self.params["sampling_rate"]
        if rate != target:
            from scipy import signal

            ratio = Fraction(target / rate).limit_denominator(1000)
            trial = signal.resample_poly(trial, ratio.numerator, ratio.denominator, axis=-1)
        return window_trial(trial, *window_samples(window_seconds, overlap, target)).astype(np.float32)

    def time_rate(self, rate):
        return self.params["sampling_rate"]

    def statement(self):
        return (f"the filtered signal (C, T) at {self.params['sampling_rate']:g} Hz (data.raw.sampling_rate; 0: the "
                "lowest rate of the datasets); a dataset at another rate resampled after filtering with "
                "scipy.signal.resample_poly")


class DifferentialEntropy(Representation):
    """DE `(C, B, S)`: each trial band-passed whole, then `0.5 log(2 pi e var)` over each segment of a window; or, for
    a dataset whose reader delivers the authors' released DE frames `(C, B, F)`, those frames windowed as they are."""

    name, layout, normalised = "de", "(C, B, S)", "per (channel, band)"

    @classmethod
    def configured(cls, data, rates):
        params = {"bands": {k: list(v) for k, v in (data.de_bands or DE_BANDS).items()},
                  "segment_seconds": data.de_segment_seconds}
        if data.de_smoothing != "none":  # only set keys enter the cache key: older entries keep theirs
            params["smoothing"] = data.de_smoothing
            if data.de_smoothing == "moving_average":
                params["smoothing_frames"] = data.de_smoothing_frames
        if data.de_log_base != "e":
            params["log_base"] = data.de_log_base
        released = [name for name in data.datasets if data.delivers_de(name)]
        if released:  # the config has checked they share one frame length
            params["released_frame_seconds"] = 1.0 / data.sampling_rate(released[0])
        return cls(params)

    def windows(self, trial, rate, window_seconds, overlap):
        if trial.ndim == 3:  # released DE frames (C, B, F), `rate` frames per second
            return window_trial(trial, *window_samples(window_seconds, overlap, rate)).astype(np.float32)
        bands = {name: tuple(edges) for name, edges in self.params["bands"].items()}
        filtered = band_filter(trial, rate, bands)  # (B, C, T)
        segment = int(round(self.params["segment_seconds"] * rate))
        if "smoothing" in self.params:
            return self._smoothed_windows(filtered, segment, window_seconds, overlap)
        cut = window_trial(filtered, *window_samples(window_seconds, overlap, rate))  # (n, B, C, W)
        n_segments = cut.shape[-1] // segment
        if n_segments < 1:
            raise ValueError(f"a {window_seconds:g} s window holds no {self.params['segment_seconds']:g} s DE segment")
        parts = cut[..., :n_segments * segment].reshape(*cut.shape[:-1], n_segments, segment)
        return self._checked(self._entropy(parts.var(axis=-1)).transpose(0, 2, 1, 3))  # (n, C, B, S)

    def _smoothed_windows(self, filtered: np.ndarray, segment: int, window_seconds: float, overlap: float) -> np.ndarray:
        """DE over the trial's consecutive segments, smoothed along them within this trial, then cut into windows
        of whole segments (the config ensures the window step is whole segments)."""
        from gru_xnet.de_smoothing import smooth

        n = filtered.shape[-1] // segment
        parts = filtered[..., :n * segment].reshape(*filtered.shape[:-1], n, segment)  # (B, C, n, segment)
        series = np.moveaxis(self._entropy(parts.var(axis=-1)), -1, 0)  # (n, B, C): one value per segment
        smoothed = smooth(series, self.params["smoothing"], self.params.get("smoothing_frames", 5))
        per_window = window_samples(window_seconds, overlap, 1.0 / self.params["segment_seconds"])
        frames = np.moveaxis(smoothed, 0, -1).transpose(1, 0, 2)  # (C, B, n)
        return self._checked(window_trial(frames, *per_window))  # (windows, C, B, S)

    def _entropy(self, variance: np.ndarray) -> np.ndarray:
        """`0.5 log(2 pi e variance)` in the configured base (e, or 2 as LibEER)."""
        entropy = entropy_of_variance(variance)
        return entropy / np.log(2.0) if self.params.get("log_base") == "2" else entropy

    @staticmethod
    def _checked(de: np.ndarray) -> np.ndarray:
        if not np.isfinite(de).all():
            channel = int(np.argwhere(~np.isfinite(de))[0][1])
            raise ValueError(f"channel {channel} is flat (zero variance) in a band of a window: its differential "
                             "entropy is -inf; expected a varying signal in every band")
        return de.astype(np.float32)

    def grid(self, rate):
        return np.asarray(list(self.params["bands"].values()), dtype=np.float64)

    def time_rate(self, rate):
        """DE segments (or released frames) per second."""
        return 1.0 / self.params.get("released_frame_seconds", self.params["segment_seconds"])

    def baseline_reference(self, baseline, rate):
        seconds = baseline.shape[-1] / rate
        return self.windows(baseline, rate, seconds, 0.0)[0].mean(axis=-1, keepdims=True)  # (C, B, 1)

    def statement(self):
        if "released_frame_seconds" in self.params:
            frame = self.params["released_frame_seconds"]
            return (f"differential entropy (C, B, S): the dataset authors' released DE frames, one per {frame:g} s (their "
                    "bands and smoothing, as each dataset's label line says), windowed as they are: a sample is one "
                    f"window of S = window length / {frame:g} s frames")
        bands = ", ".join(f"{name} {low:g}-{high:g}" for name, (low, high) in self.params["bands"].items())
        segment, n_bands = self.params["segment_seconds"], len(self.params["bands"])
        smoothing = {"lds": "smoothed over each trial's segments by a linear dynamical system (Shi & Lu 2010; "
                            "LibEER's parameters, forward Kalman filter)",
                     "moving_average": f"smoothed over each trial's segments by a centred moving average of "
                                       f"{self.params.get('smoothing_frames')} segments"}.get(self.params.get("smoothing"))
        log = "log2" if self.params.get("log_base") == "2" else "ln"
        return (f"differential entropy (C, B, S): each trial band-passed whole (zero-phase Butterworth, order 4 per "
                f"edge) in {bands} Hz, then 0.5 {log}(2 pi e variance) over each {segment:g} s segment"
                + (f", {smoothing} (within the trial only, never across trials)" if smoothing else " of a window")
                + f"; a sample is one window of S = window length / {segment:g} s segments, C x {n_bands} x S features "
                f"(SEED at 4 s: 62 x {n_bands} x {round(4 / segment)} = {62 * n_bands * round(4 / segment):,}), not Zheng "
                f"& Lu's {segment:g} s sample of C x {n_bands} ({62 * n_bands} for SEED): for theirs, "
                f"data.window_seconds {segment:g}. A dataset read from its released DE features (dataset_options "
                "source 'released') is windowed from the authors' frames instead, as its label line says")


REPRESENTATIONS: dict[str, type[Representation]] = {r.name: r for r in (STFT, Raw, DifferentialEntropy)}


def passband_notes(representation: Representation, passbands: Mapping[str, Sequence[float] | str]) -> list[str]:
    """What DE bands mean on data its authors already band-passed: the parts of a band outside the passband are empty
    (a passband 'unknown' is said to be unknown)."""
    if not isinstance(representation, DifferentialEntropy):
        return []
    notes = []
    for dataset, passband in passbands.items():
        if passband == "unknown":
            notes.append(f"{dataset} is distributed preprocessed by its authors with a passband not established here "
                         "(unknown): a DE band reaching outside it would hold only the filter's residue")
            continue
        low, high = passband
        for name, (band_low, band_high) in representation.params["bands"].items():
            if band_high <= low or band_low >= high:
                notes.append(f"{dataset} is distributed band-passed {low:g}-{high:g} Hz: its {name} band "
                             f"({band_low:g}-{band_high:g} Hz) holds only the filter's residue")
            elif band_low < low or band_high > high:
                notes.append(f"{dataset} is distributed band-passed {low:g}-{high:g} Hz: its {name} band covers "
                             f"{max(low, band_low):g}-{min(high, band_high):g} Hz only")
    return notes
