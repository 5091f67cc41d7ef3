"""The synthetic generator's signal model, shared by every dataset's writer: subjects, planted classes, bursts.

Every trial is 1/f-like background noise whose band amplitudes are shaped by (a) subject-specific gains and
band offsets, so cross-subject transfer is realistic, and (b) two binary emotion factors, valence and arousal,
each raising or lowering some bands on a fixed set of channels (named, so every dataset shares the pattern).
A dataset's writer maps its classes onto the factors. `--signal temporal` plants the valence factor in *time
order* instead of band power (see `bursts`). `--signal stimulus` plants no emotion at all: each stimulus (clip,
video, game) gets a band pattern shared by every subject who saw it, and self-rated datasets rate each stimulus
the same for everyone, so a model can score only by recognising stimuli (what leave-stimulus-out removes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BANDS = {"delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}
VALENCE_CHANNELS = ("AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6", "T7", "T8")
AROUSAL_CHANNELS = ("O1", "O2", "P7", "P8", "T7", "T8", "FC5", "FC6")
VALENCE_EFFECT = {"alpha": 0.30, "beta": 0.20, "theta": -0.10}
AROUSAL_EFFECT = {"theta": -0.20, "beta": 0.15, "gamma": 0.30}
"""Log-amplitude change per band for level 1 (level 0 gets the opposite sign), times the signal strength."""

SUBJECT_GAIN_SD = 0.10
SUBJECT_BAND_SD = 0.05
CHANNEL_BAND_SD = 0.05
TRIAL_BAND_SD = 0.10
BACKGROUND_UV = 15.0
"""Per-subject channel gain, per-subject band offset (all channels), per-channel band offset, per-trial jitter
(all log-amplitude SDs) and the background's time-domain SD in µV."""

STIMULUS_SD = 0.35
"""Stimulus signal: SD of each stimulus's log-amplitude pattern per (channel, band), times the signal strength."""

SIGNALS = ("band", "temporal", "stimulus")


@dataclass(frozen=True)
class Planting:
    """What the generator plants: `band` power or `temporal` order, how strongly, and whether it follows the labels;
    `released`: also the DE features a dataset's authors release beside the signal (SEED, SEED-IV), from it."""

    strength: float = 1.0
    shuffle: bool = False
    signal: str = "band"
    released: bool = False


@dataclass
class SubjectModel:
    """One synthetic subject: channel gains and band offsets that every trial of that subject shares."""

    gain: np.ndarray
    band_offset: np.ndarray
    exponent: float
    strength: float
    signal: str = "band"

    @classmethod
    def draw(cls, rng: np.random.Generator, n_channels: int, planting: Planting) -> "SubjectModel":
        """Random subject-specific gains, band offsets and 1/f exponent."""
        shared = rng.normal(0.0, SUBJECT_BAND_SD, size=(1, len(BANDS)))
        return cls(
            gain=np.exp(rng.normal(0.0, SUBJECT_GAIN_SD, size=(n_channels, 1))),
            band_offset=shared + rng.normal(0.0, CHANNEL_BAND_SD, size=(n_channels, len(BANDS))),
            exponent=float(rng.uniform(1.3, 1.7)),
            strength=planting.strength,
            signal=planting.signal,
        )

    def trial(self, rng: np.random.Generator, channels: Sequence[str], n_samples: int, rate: float,
              factors: tuple[int, int] | None, stimulus: str | None = None) -> np.ndarray:
        """(C, T) float64 µV: background with this subject's band shape plus the planted effect: of the (valence,
        arousal) levels (`band`, `temporal`), or of the `stimulus` shown (`stimulus`); None: a baseline period."""
        log_amp = self.band_offset + rng.normal(0.0, TRIAL_BAND_SD, size=self.band_offset.shape)
        if factors is not None and self.signal == "band":
            log_amp = log_amp + self.strength * effect(channels, factors)
        if factors is not None and self.signal == "stimulus":
            if stimulus is None:
                raise ValueError("the stimulus signal needs the id of the stimulus each trial shows")
            log_amp = log_amp + self.strength * stimulus_effect(len(channels), stimulus)
        freqs = np.fft.rfftfreq(n_samples, 1.0 / rate)
        shape = np.maximum(freqs, 1.0) ** (-self.exponent / 2.0)
        masks = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in BANDS.values()])  # (bands, F)
        spectrum = np.fft.rfft(rng.standard_normal((len(channels), n_samples)), axis=1)
        spectrum *= shape * np.exp(log_amp @ masks)
        signal = np.fft.irfft(spectrum, n=n_samples, axis=1)
        if factors is not None and self.signal == "temporal":
            signal = signal + self.strength * bursts(rng, signal.std(), n_samples, rate, rising=bool(factors[0]))
        return BACKGROUND_UV * self.gain * signal / signal.std()


BURST_BANDS = ("theta", "alpha", "beta")
BURST_CYCLE_SECONDS = 1.0
BURST_GAIN = 2.0
BURST_RAMP_SECONDS = 0.04
"""Temporal signal: the bands that take turns, the cycle they share, burst amplitude relative to the
background's overall SD (times the signal strength), and the cosine ramp at each burst's edges."""


def bursts(rng: np.random.Generator, scale: float, n_samples: int, rate: float, rising: bool) -> np.ndarray:
    """(1, T) theta/alpha/beta bursts taking turns within each cycle: rising in frequency, or falling.

    Each band is on for a third of every cycle in both orders, so time-averaged band power carries no class.
    """
    t = np.arange(n_samples) / rate
    phase = (t / BURST_CYCLE_SECONDS + rng.uniform()) % 1.0  # random start within the cycle
    freqs = np.fft.rfftfreq(n_samples, 1.0 / rate)
    order = BURST_BANDS if rising else BURST_BANDS[::-1]
    out = np.zeros(n_samples)
    ramp = BURST_RAMP_SECONDS / BURST_CYCLE_SECONDS
    for slot, band in enumerate(order):
        low, high = BANDS[band]
        spectrum = np.fft.rfft(rng.standard_normal(n_samples)) * ((freqs >= low) & (freqs < high))
        carrier = np.fft.irfft(spectrum, n=n_samples)
        carrier /= carrier.std()
        start = slot / len(order)
        inside = (phase - start) % 1.0  # time since this band's slot began, in cycles
        width = 1.0 / len(order)
        edge = np.clip(np.minimum(inside, width - inside) / ramp, 0.0, 1.0)
        envelope = np.where(inside < width, 0.5 - 0.5 * np.cos(np.pi * edge), 0.0)
        out += BURST_GAIN * scale * envelope * carrier
    return out[None, :]


def effect(channels: Sequence[str], factors: tuple[int, int]) -> np.ndarray:
    """(C, bands) log-amplitude effect of the (valence, arousal) levels on the named channels."""
    effect = np.zeros((len(channels), len(BANDS)))
    for level, effect_channels, band_effect in (
        (factors[0], VALENCE_CHANNELS, VALENCE_EFFECT), (factors[1], AROUSAL_CHANNELS, AROUSAL_EFFECT)
    ):
        rows = [i for i, name in enumerate(channels) if name in effect_channels]
        for band, change in band_effect.items():
            effect[rows, list(BANDS).index(band)] += change if level else -change
    return effect


def stimulus_effect(n_channels: int, stimulus: str) -> np.ndarray:
    """(C, bands) log-amplitude pattern of one stimulus: the same for every subject (seeded by its id alone)."""
    return np.random.default_rng([7, *stimulus.encode()]).normal(0.0, STIMULUS_SD, size=(n_channels, len(BANDS)))


def rated_levels(rng: np.random.Generator, trials: int, planting: Planting, dimensions: int = 1) -> np.ndarray:
    """(trials, dimensions) 0/1 levels a self-rating subject gives its trials: balanced and in a per-subject order,
    or, with the stimulus signal, fixed by the stimulus (the same for every subject)."""
    if planting.signal == "stimulus":
        return np.stack([(np.arange(trials) >> d) % 2 for d in range(dimensions)], axis=1)
    return np.stack([rng.permutation(np.arange(trials) % 2) for _ in range(dimensions)], axis=1)


def rating(rng: np.random.Generator, level: int) -> float:
    """A 1-9 rating on the side of 5 given by the level (never exactly 5, so '>=' and '>' agree)."""
    return round(float(rng.uniform(5.2, 9.0) if level else rng.uniform(1.0, 4.8)), 2)
