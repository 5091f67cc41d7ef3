"""Batched STFT (one call for every window and channel) vs a per-channel loop, on one DEAP subject.

    python bench/bench_stft.py [--repeats 3]

The workload is one DEAP subject cut into the default 4 s windows: 40 trials x 15 windows x 32
channels x 512 samples at 128 Hz. Both paths give identical features (checked); target >= 10x.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import signal

from gru_xnet.preprocessing import STFTPreprocessor


def per_channel(stft: STFTPreprocessor, windows: np.ndarray) -> np.ndarray:
    """The naive reference: one scipy.signal.stft call per window and channel."""
    out = np.empty((*windows.shape[:2], stft.n_freq_bins, stft.n_time_bins(windows.shape[-1])), np.float32)
    keep = np.isin(np.fft.rfftfreq(stft.nperseg, 1 / stft.sampling_rate), stft.frequencies)
    for w in range(windows.shape[0]):
        for c in range(windows.shape[1]):
            _, _, z = signal.stft(windows[w, c], fs=stft.sampling_rate, window=stft.window,
                                  nperseg=stft.nperseg, noverlap=stft.noverlap,
                                  boundary="zeros" if stft.pad_edges else None, padded=stft.pad_edges)
            out[w, c] = np.log(np.abs(z[keep]) ** 2 + stft.eps)
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    windows = np.random.default_rng(0).standard_normal((40 * 15, 32, 512)).astype(np.float32)
    stft = STFTPreprocessor.for_sampling_rate(128, 0.5, 0.75, (0.5, 50.0))
    np.testing.assert_allclose(stft.transform(windows[:4]), per_channel(stft, windows[:4]), rtol=1e-4, atol=1e-4)
    batched = best_of(lambda: stft.transform(windows), args.repeats)
    loop = best_of(lambda: per_channel(stft, windows), max(1, args.repeats - 1))
    print(f"{windows.shape[0]} windows x {windows.shape[1]} channels x {windows.shape[2]} samples")
    print(f"batched STFT:      {batched * 1e3:8.1f} ms")
    print(f"per-channel loop:  {loop * 1e3:8.1f} ms")
    print(f"speed-up:          {loop / batched:8.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
