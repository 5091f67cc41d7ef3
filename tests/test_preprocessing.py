"""STFT features: equal to scipy's reference, vectorised shapes, equal shapes across sampling rates."""

import numpy as np
import pytest
from scipy import signal

from gru_xnet.preprocessing import STFTPreprocessor


def test_seed_example_shape():
    stft = STFTPreprocessor(sampling_rate=128, nperseg=256, freq_range=(0.5, 50.0))
    feats = stft.transform(np.random.randn(32, 8064))
    assert feats.shape == (32, stft.n_freq_bins, stft.n_time_bins(8064)) and feats.dtype == np.float32
    assert stft.n_freq_bins == 100  # 0.5 Hz grid from 0.5 to 50 Hz


@pytest.mark.parametrize("pad_edges, scipy_framing", [(False, {"boundary": None, "padded": False}), (True, {})])
def test_equals_scipy_reference_per_channel(pad_edges, scipy_framing):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 700))
    stft = STFTPreprocessor(sampling_rate=200, nperseg=200, noverlap=100, freq_range=(1.0, 45.0), pad_edges=pad_edges)
    out = stft.transform(x)
    assert out.shape[-1] == (6 if not pad_edges else 8)  # 700 samples: 6 whole frames; scipy's padding adds 2
    for trial in range(3):
        for channel in range(5):
            freqs, _, z = signal.stft(x[trial, channel], fs=200, window="hann", nperseg=200, noverlap=100,
                                      **scipy_framing)
            keep = (freqs >= 1.0) & (freqs <= 45.0)
            reference = np.log(np.abs(z[keep]) ** 2 + 1e-10)
            np.testing.assert_allclose(out[trial, channel], reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stft.frequencies, np.arange(1, 46))


def test_same_shape_and_grid_at_128_and_200_hz():
    a = STFTPreprocessor.for_sampling_rate(128, 0.5, 0.75, (0.5, 50))
    b = STFTPreprocessor.for_sampling_rate(200, 0.5, 0.75, (0.5, 50))
    fa = a.transform(np.random.randn(2, 14, 4 * 128))
    fb = b.transform(np.random.randn(2, 62, 4 * 200))
    assert fa.shape[2:] == fb.shape[2:] == (25, 29)  # 2 Hz grid 2..50 Hz; 29 whole 0.5 s frames 0.125 s apart
    np.testing.assert_array_equal(a.frequencies, b.frequencies)


def test_planted_band_shows_up():
    t = np.arange(4 * 128) / 128
    x = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 20 * t)])
    stft = STFTPreprocessor.for_sampling_rate(128, 1.0, 0.5, (1, 40))
    peak = stft.frequencies[stft.transform(x).mean(axis=-1).argmax(axis=-1)]
    assert list(peak) == [10, 20]


def test_non_finite_names_channel():
    x = np.random.randn(2, 4, 256)
    x[1, 2, 17] = np.inf
    stft = STFTPreprocessor(sampling_rate=128, nperseg=64)
    with pytest.raises(ValueError, match=r"trial 1, channel 2 \(FZ\)"):
        stft.transform(x, channel_names=["A", "B", "FZ", "D"])


@pytest.mark.parametrize("kwargs, word", [({"sampling_rate": 0}, "sampling_rate"), ({"nperseg": 1}, "nperseg"),
                                          ({"noverlap": 256}, "noverlap"), ({"freq_range": (60, 40)}, "freq_range")])
def test_bad_parameters(kwargs, word):
    with pytest.raises(ValueError, match=word):
        STFTPreprocessor(**kwargs)


def test_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        STFTPreprocessor().transform(np.zeros(100))
