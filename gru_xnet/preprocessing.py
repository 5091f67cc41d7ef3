"""Log-power STFT features, computed for every channel (and trial) in one vectorised call.

Datasets recorded at different rates get the same feature shape by fixing the STFT window and hop
in *seconds*: `nperseg = rate * stft_window_seconds`, so the frequency grid (1 / stft_window_seconds
Hz apart) and the number of frames of a window of fixed duration are identical at 128 Hz and 200 Hz.

Frames lie wholly inside the signal by default: scipy's zero-padded edge frames (half of their
samples are padding) would make the first and last steps of the model's sequence look like a sudden
loss of power, which the temporal model would learn as structure. `pad_edges=True` restores them.

scipy is imported where a transform or filter runs, not with the module: a config's STFT settings are
checked (frame, hop, frequency bins) with numpy alone, so a command line refuses a bad value at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property, lru_cache
from typing import Sequence

import numpy as np


class STFTPreprocessor:
    """Transforms EEG `(C, T)` or `(N, C, T)` into log-power spectrograms `(..., C, F, T')`.

    Equal to `scipy.signal.stft` (same scaling; framing of `boundary=None, padded=False`, or scipy's
    default with `pad_edges=True`) but computed as one batched rfft over every frame of every channel
    and trial, about 4x faster than scipy's general routine. Rows (channel signals) go through in
    blocks small enough to stay in cache: 2.5x faster again.
    """

    ROWS_PER_BLOCK = 64

    def __init__(self, sampling_rate: float = 128, nperseg: int = 256, noverlap: int | None = None,
                 freq_range: Sequence[float] = (0.5, 50.0), window: str = "hann", eps: float = 1e-10,
                 pad_edges: bool = False):
        if not (_is_number(sampling_rate) and 0 < sampling_rate < np.inf):
            raise ValueError(f"sampling_rate={sampling_rate!r}: expected a positive finite number of Hz")
        if not (isinstance(nperseg, (int, np.integer)) and nperseg >= 2):
            raise ValueError(f"nperseg={nperseg!r}: expected an integer >= 2 samples")
        noverlap = nperseg // 2 if noverlap is None else noverlap
        if not (isinstance(noverlap, (int, np.integer)) and 0 <= noverlap < nperseg):
            raise ValueError(f"noverlap={noverlap!r}: expected an integer with 0 <= noverlap < nperseg={nperseg}")
        bounds = tuple(freq_range)
        if not (len(bounds) == 2 and all(map(_is_number, bounds)) and 0 <= bounds[0] < bounds[1]):
            raise ValueError(f"freq_range={bounds!r}: expected (low, high) with 0 <= low < high")
        low, high = bounds
        if not (_is_number(eps) and 0 < eps < np.inf):
            raise ValueError(f"eps={eps!r}: expected a positive finite number (added to the power before the log)")
        self.sampling_rate = float(sampling_rate)
        self.nperseg = int(nperseg)
        self.noverlap = int(noverlap)
        self.freq_range = (float(low), float(high))
        self.window = window
        self.eps = eps
        self.pad_edges = bool(pad_edges)
        all_freqs = np.fft.rfftfreq(self.nperseg, 1.0 / self.sampling_rate)
        self._freq_mask = (all_freqs >= low) & (all_freqs <= high)
        if not self._freq_mask.any():
            raise ValueError(f"freq_range={bounds!r}: expected at least one STFT bin (0 to "
                             f"{self.sampling_rate / 2:g} Hz every {self.sampling_rate / self.nperseg:g} Hz at "
                             f"{self.sampling_rate:g} Hz with nperseg={self.nperseg}) inside it")
        self.frequencies = all_freqs[self._freq_mask]

    @classmethod
    def for_sampling_rate(cls, sampling_rate: float, stft_window_seconds: float = 0.5,
                          stft_overlap: float = 0.75, freq_range: Sequence[float] = (0.5, 50.0),
                          pad_edges: bool = False) -> "STFTPreprocessor":
        """Parameters in seconds, so every sampling rate yields the same frequency grid and frame count."""
        nperseg = int(round(sampling_rate * stft_window_seconds))
        return cls(sampling_rate=sampling_rate, nperseg=nperseg, noverlap=int(round(nperseg * stft_overlap)),
                   freq_range=freq_range, pad_edges=pad_edges)

    @cached_property
    def _scaled_window(self) -> np.ndarray:
        """The window with scipy.signal.stft's scaling ('spectrum': divide by the window's sum) folded in."""
        from scipy import signal

        window_values = signal.get_window(self.window, self.nperseg)
        return (window_values / window_values.sum()).astype(np.float32)

    @property
    def n_freq_bins(self) -> int:
        return int(self._freq_mask.sum())

    def n_time_bins(self, n_samples: int) -> int:
        """Frames produced for a signal of `n_samples` samples (0 when it is shorter than one frame)."""
        step = self.nperseg - self.noverlap
        if not self.pad_edges:
            return max(0, (n_samples - self.nperseg) // step + 1)
        padded = n_samples + 2 * (self.nperseg // 2)
        padded += (-(padded - self.nperseg) % step) % self.nperseg
        return (padded - self.nperseg) // step + 1

    def params(self) -> dict:
        """The parameters that determine the output (for cache keys and reports)."""
        return {"sampling_rate": self.sampling_rate, "nperseg": self.nperseg, "noverlap": self.noverlap,
                "freq_range": list(self.freq_range), "window": self.window, "eps": self.eps,
                "pad_edges": self.pad_edges}

    def transform(self, x: np.ndarray, channel_names: Sequence[str] | None = None) -> np.ndarray:
        """Log power `ln(|STFT|^2 + eps)` of `(C, T)` or `(N, C, T)`, as float32 `(..., C, F, T')`."""
        x = np.asarray(x)
        if x.ndim not in (2, 3):
            raise ValueError(f"expected EEG of shape (channels, samples) or (trials, channels, samples), "
                             f"got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"expected real EEG samples (an integer or float array), got dtype {x.dtype}")
        if x.shape[-1] == 0 or self.n_time_bins(x.shape[-1]) < 1:
            raise ValueError(f"expected at least one STFT frame ({self.nperseg} samples) per channel, "
                             f"got shape {x.shape}")
        if channel_names is not None and len(channel_names) != x.shape[-2]:
            raise ValueError(f"channel_names: expected {x.shape[-2]} names (one per channel), got {len(channel_names)}")
        with np.errstate(over="ignore"):  # float64 beyond float32 turns into Inf here and is refused just below
            rows = x.reshape(-1, x.shape[-1]).astype(np.float32, copy=False)
        _check_samples(rows, x.shape[:-1], channel_names)
        out = np.empty((rows.shape[0], self.n_freq_bins, self.n_time_bins(x.shape[-1])), dtype=np.float32)
        for start in range(0, len(rows), self.ROWS_PER_BLOCK):
            block = slice(start, start + self.ROWS_PER_BLOCK)
            out[block] = self._log_power(rows[block]).swapaxes(-1, -2)
        return out.reshape(*x.shape[:-1], *out.shape[1:])

    def _log_power(self, x: np.ndarray) -> np.ndarray:
        """`(..., frames, F)` in scipy.signal.stft's framing, one rfft call."""
        from scipy import fft

        step = self.nperseg - self.noverlap
        if self.pad_edges:  # zero boundaries and a zero-padded end, as scipy's defaults
            edges = [(0, 0)] * (x.ndim - 1)
            x = np.pad(x, edges + [(self.nperseg // 2, self.nperseg // 2)])
            tail = (-(x.shape[-1] - self.nperseg) % step) % self.nperseg
            if tail:
                x = np.pad(x, edges + [(0, tail)])
        frames = np.lib.stride_tricks.sliding_window_view(x, self.nperseg, axis=-1)[..., ::step, :]
        spec = fft.rfft(frames * self._scaled_window, axis=-1)[..., self._freq_mask]
        return np.log(spec.real ** 2 + spec.imag ** 2 + self.eps)


FILTER_TOLERANCE = 1e-3
"""Largest |difference| of `zero_phase_filter`'s output from scipy's `sosfiltfilt` in float64 with the same edge padding,
as a fraction of the output's standard deviation (tests/test_features.py measures it on a drifting, offset 4-minute
trial)."""
FEATURE_TOLERANCE = 0.05
"""Largest |difference| that the filter's float32 arithmetic makes in a log-power STFT feature (natural log: 5 % in
power)."""
EDGE_TIME_CONSTANTS = 4.0
"""Odd-reflected padding at each end of a filtered trial, in units of 1 / (the narrowest filter width in Hz: the
band-pass's low edge, the notch's f0 / Q): the squared response's tail beyond it is below 1e-5 of its peak."""


def zero_phase_filter(x: np.ndarray, sampling_rate: float, bandpass_hz: Sequence[float] | None = None,
                      notch_hz: float | None = None, notch_q: float = 30.0) -> np.ndarray:
    """Band-pass (4th-order Butterworth) and notch filter `(..., T)` with no phase shift, as float32.

    Forwards-and-backwards filtering multiplies the spectrum by the filters' squared gain |H(f)|^2; this does that
    multiplication directly, one rfft and one irfft per trial in float32 (about 4x faster than ten recursive passes
    of `sosfiltfilt`, within FILTER_TOLERANCE of it in float64). Each end is padded with its odd reflection
    (`sosfiltfilt`'s padding, but EDGE_TIME_CONSTANTS long, so the filters' responses die out before they wrap round);
    a trial shorter than that is reflected whole, and a ramp joins the two ends. Each row's mean is taken out first
    (a band-pass removes it, a notch passes it and gets it back at the end), so a large DC offset costs no precision.
    """
    x = np.asarray(x)
    if not (bandpass_hz or notch_hz):
        return x.astype(np.float32, copy=False)
    n = x.shape[-1]
    if n < 2:
        raise ValueError(f"expected at least 2 samples per channel to filter, got shape {x.shape}")
    from scipy import fft

    widths = ([float(bandpass_hz[0])] if bandpass_hz else []) + ([float(notch_hz) / notch_q] if notch_hz else [])
    pad = int(np.ceil(EDGE_TIME_CONSTANTS / min(widths) * sampling_rate))
    edge = min(pad, n - 1)
    length = fft.next_fast_len(n + 2 * pad, real=True)
    padded = np.empty((*x.shape[:-1], length), dtype=np.float32)
    middle = padded[..., edge:edge + n]
    mean = x.mean(axis=-1, dtype=np.float64, keepdims=True)
    np.subtract(x, mean, out=middle, casting="unsafe")
    padded[..., :edge] = 2 * middle[..., :1] - middle[..., edge:0:-1]
    padded[..., edge + n:edge + n + edge] = 2 * middle[..., -1:] - middle[..., -2:-edge - 2:-1]
    gap = padded[..., edge + n + edge:]  # joins the right end to the left one (the FFT is circular) without a step
    ramp = np.linspace(0, 1, gap.shape[-1] + 2, dtype=np.float32)[1:-1]
    gap[...] = padded[..., edge + n + edge - 1:edge + n + edge] * (1 - ramp) + padded[..., :1] * ramp
    spectrum = fft.rfft(padded, axis=-1)
    spectrum *= _squared_gain(length, float(sampling_rate), tuple(bandpass_hz or ()), float(notch_hz or 0), notch_q)
    filtered = np.ascontiguousarray(fft.irfft(spectrum, n=length, axis=-1)[..., edge:edge + n])
    return filtered if bandpass_hz else filtered + mean.astype(np.float32)  # a notch passes the mean


@lru_cache(maxsize=32)
def _squared_gain(length: int, sampling_rate: float, bandpass_hz: tuple[float, ...], notch_hz: float,
                  notch_q: float) -> np.ndarray:
    """|H(f)|^2 of the band-pass and notch at the rfft frequencies of `length` samples, float32."""
    from scipy import signal

    freqs = np.fft.rfftfreq(length, 1.0 / sampling_rate)
    gain = np.ones(len(freqs))
    if bandpass_hz:
        sos = signal.butter(4, list(bandpass_hz), btype="bandpass", fs=sampling_rate, output="sos")
        gain *= np.abs(signal.sosfreqz(sos, worN=freqs, fs=sampling_rate)[1]) ** 2
    if notch_hz:
        gain *= np.abs(signal.freqz(*signal.iirnotch(notch_hz, notch_q, fs=sampling_rate), worN=freqs,
                                    fs=sampling_rate)[1]) ** 2
    return gain.astype(np.float32)


MAX_ABS_SAMPLE = 1e18
"""Largest |sample| accepted: its power (<= 1e36) stays inside float32, so the log power stays finite."""


def _is_number(value: object) -> bool:
    """A real number (not a bool or a string)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_samples(rows: np.ndarray, shape: tuple[int, ...], channel_names: Sequence[str] | None) -> None:
    """Raise naming the first channel (and trial) holding NaN, Inf or samples beyond MAX_ABS_SAMPLE.

    `rows` is the input as float32 `(rows, T)`, `shape` the input's shape without its last axis.
    """
    if not rows.size:
        return
    peak = np.maximum(rows.max(axis=-1), -rows.min(axis=-1))
    bad = ~(peak <= MAX_ABS_SAMPLE)  # NaN compares False
    if not bad.any():
        return
    row = int(np.argmax(bad))
    index = tuple(int(i) for i in np.unravel_index(row, shape))
    channel = index[-1]
    name = f" ({channel_names[channel]})" if channel_names is not None else ""
    trial = f"trial {index[0]}, " if len(index) == 2 else ""
    count = int((~(np.abs(rows[row]) <= MAX_ABS_SAMPLE)).sum())
    raise ValueError(f"bad EEG samples in {trial}channel {channel}{name}: {count} NaN, Inf or beyond "
                     f"±{MAX_ABS_SAMPLE:g}; expected finite values within ±{MAX_ABS_SAMPLE:g}")


# Differential entropy (DE) band features, as Duan et al. 2013 and Zheng & Lu 2015 define them per band and segment.

DE_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1, 4), "theta": (4, 8), "alpha": (8, 14), "beta": (14, 31), "gamma": (31, 50),
}
"""The five EEG bands of the SEED DE features, in output order (Hz)."""

DE_FILTER_ORDER = 4
"""Butterworth order per band edge; run forwards and backwards, each edge falls off at 2 x 4 x 20 dB/decade."""


def differential_entropy(x: np.ndarray, sampling_rate: float,
                         bands: Mapping[str, tuple[float, float]] | None = None) -> np.ndarray:
    """Differential entropy `0.5 ln(2 pi e var)` of each channel in each band: `(..., C, T)` -> `(..., C, B)`.

    The Gaussian entropy of a zero-phase band-passed signal (SEED's DE features); bands must lie
    wholly below Nyquist, as a band-pass, with no silent fall-back to a high-pass. float64 output.
    """
    return entropy_of_variance(np.moveaxis(band_filter(x, sampling_rate, bands).var(axis=-1), 0, -1))


def entropy_of_variance(variance: np.ndarray) -> np.ndarray:
    """`0.5 ln(2 pi e variance)`: the entropy of a Gaussian of that variance (the variance, not the SD, inside)."""
    with np.errstate(divide="ignore"):  # a flat channel has variance 0: DE -inf, as the Gaussian entropy says
        return 0.5 * np.log(2 * np.pi * np.e * variance)


def band_filter(x: np.ndarray, sampling_rate: float,
                bands: Mapping[str, tuple[float, float]] | None = None) -> np.ndarray:
    """`(..., T)` band-passed (zero-phase Butterworth) into each band: `(B, ..., T)`, float64, DE_BANDS by default."""
    if not (_is_number(sampling_rate) and 0 < sampling_rate < np.inf):
        raise ValueError(f"sampling_rate={sampling_rate!r}: expected a positive finite number of Hz")
    sos_per_band = [_band_sos(name, edges, float(sampling_rate)) for name, edges in _de_bands(bands).items()]
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"expected EEG of shape (..., channels, samples) with at least 2 dims, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"expected real EEG samples (an integer or float array), got dtype {x.dtype}")
    padlen = max(map(_padlen, sos_per_band))
    if x.shape[-1] <= padlen:
        raise ValueError(f"expected more than {padlen} samples per channel (the zero-phase filter's edge padding), "
                         f"got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"expected finite EEG samples, got {int((~np.isfinite(x)).sum())} NaN or Inf "
                         f"in an array of shape {x.shape}")
    from scipy import signal

    return np.stack([signal.sosfiltfilt(sos, x, axis=-1, padlen=_padlen(sos)) for sos in sos_per_band])


def _de_bands(bands: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    """The bands to use (DE_BANDS by default), checked to be a non-empty name -> (low, high) mapping."""
    bands = DE_BANDS if bands is None else bands
    if not isinstance(bands, Mapping) or not bands:
        raise ValueError(f"bands={bands!r}: expected a non-empty mapping of band name -> (low_hz, high_hz)")
    return dict(bands)


def _band_sos(name: str, edges: tuple[float, float], sampling_rate: float) -> np.ndarray:
    """Second-order sections of the band-pass for one band, refusing edges at or beyond Nyquist."""
    edges = tuple(edges) if isinstance(edges, (tuple, list)) else (edges,)
    if not (len(edges) == 2 and all(map(_is_number, edges)) and 0 < edges[0] < edges[1] < np.inf):
        raise ValueError(f"band {name!r}={edges!r}: expected (low_hz, high_hz) with 0 < low_hz < high_hz")
    nyquist = sampling_rate / 2
    if edges[1] >= nyquist:
        raise ValueError(f"band {name!r}: upper edge {edges[1]:g} Hz is at or above Nyquist ({nyquist:g} Hz) "
                         f"at sampling_rate={sampling_rate:g} Hz; expected every band edge below it")
    from scipy import signal

    return signal.butter(DE_FILTER_ORDER, [float(edges[0]), float(edges[1])], btype="bandpass",
                         fs=sampling_rate, output="sos")


def _padlen(sos: np.ndarray) -> int:
    """Samples of odd-extension padding at each end for sosfiltfilt (scipy's bound for `sos`)."""
    return 3 * (2 * len(sos) + 1)
