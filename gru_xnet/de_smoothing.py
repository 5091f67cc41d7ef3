"""Smoothing of differential-entropy series over time within one trial: the LDS of Shi & Lu (2010), as the SEED
papers and LibEER apply it, and a moving average. Each channel x band series is smoothed on its own and only within
its trial, so no value ever mixes two trials (and so never crosses a train/test boundary)."""

from __future__ import annotations

import numpy as np

SMOOTHINGS = ("none", "lds", "moving_average")

PRIOR_VARIANCE = 0.01
TRANSITION = 1.0
PROCESS_NOISE = 1e-4
OBSERVATION = 1.0
OBSERVATION_NOISE = 1.0
"""LibEER's LDS parameters (XJTU-EEG/LibEER commit dddff97, `LibEER/data_utils/preprocess.py` lines 275-279)."""


def lds(series: np.ndarray) -> np.ndarray:
    """The forward Kalman filter of a random walk observed in noise, along axis 0 of `(T, ...)`, in float64.

    The state starts at the series' mean over its trial with variance PRIOR_VARIANCE; each step predicts the
    previous state (TRANSITION 1, PROCESS_NOISE) and corrects it by the gain times the innovation. LibEER's line 295
    corrects the first step by `x0 - C * prior_variance` where the Kalman update (and Shi & Lu) has `x0 - C * mean`:
    we use the latter, so a constant series stays constant; LibEER's first value then differs from ours by the first
    gain (0.0099) times (mean - 0.01), a difference that shrinks by the later gains.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"expected a series (T, ...) with T >= 1, got shape {x.shape}")
    mean = x.mean(axis=0)
    smoothed = np.empty_like(x)
    gain = PRIOR_VARIANCE * OBSERVATION / (OBSERVATION * PRIOR_VARIANCE * OBSERVATION + OBSERVATION_NOISE)
    state = mean + gain * (x[0] - OBSERVATION * mean)
    variance = (1 - gain * OBSERVATION) * PRIOR_VARIANCE
    smoothed[0] = state
    for t in range(1, len(x)):
        predicted = TRANSITION * variance * TRANSITION + PROCESS_NOISE
        gain = predicted * OBSERVATION / (OBSERVATION * predicted * OBSERVATION + OBSERVATION_NOISE)
        state = TRANSITION * state + gain * (x[t] - OBSERVATION * TRANSITION * state)
        variance = (1 - gain * OBSERVATION) * predicted
        smoothed[t] = state
    return smoothed


def moving_average(series: np.ndarray, frames: int) -> np.ndarray:
    """The mean of each value and its (frames - 1) / 2 neighbours on each side along axis 0 (fewer at the trial's
    ends, where the window is cut), in float64; `frames` is odd."""
    x = np.asarray(series, dtype=np.float64)
    if not (isinstance(frames, int) and frames >= 1 and frames % 2):
        raise ValueError(f"frames={frames!r}: expected an odd number of frames >= 1")
    half = frames // 2
    totals = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    ends = np.minimum(np.arange(len(x)) + half + 1, len(x))
    starts = np.maximum(np.arange(len(x)) - half, 0)
    counts = (ends - starts).reshape(-1, *([1] * (x.ndim - 1)))
    return (totals[ends] - totals[starts]) / counts


def smooth(series: np.ndarray, method: str, frames: int = 5) -> np.ndarray:
    """`series` (T, ...) smoothed along time by `method` (one of SMOOTHINGS; `frames` for the moving average)."""
    if method == "none":
        return np.asarray(series)
    if method == "lds":
        return lds(series)
    if method == "moving_average":
        return moving_average(series, frames)
    raise ValueError(f"method={method!r}: expected one of {SMOOTHINGS}")
