"""Differential entropy band features: analytic values for a sinusoid and white noise, shapes, bands, errors."""

from __future__ import annotations

import numpy as np
import pytest

from gru_xnet.preprocessing import DE_BANDS, differential_entropy

FS = 200.0


def _sine(amplitude: float, freq: float, seconds: float = 20.0, fs: float = FS) -> np.ndarray:
    """One channel `(1, T)` of a pure sinusoid."""
    t = np.arange(int(seconds * fs)) / fs
    return amplitude * np.sin(2 * np.pi * freq * t)[None]


def test_default_bands_are_the_seed_bands_in_order():
    assert list(DE_BANDS.items()) == [("delta", (1, 4)), ("theta", (4, 8)), ("alpha", (8, 14)),
                                      ("beta", (14, 31)), ("gamma", (31, 50))]


def test_sinusoid_in_alpha_gives_the_gaussian_entropy_of_its_variance_there_and_little_elsewhere():
    amplitude = 3.0
    de = differential_entropy(_sine(amplitude, 10.0), FS)[0]  # (B,)
    alpha = list(DE_BANDS).index("alpha")
    # variance of A sin is A^2 / 2, so 0.5 ln(2 pi e A^2 / 2)
    assert de[alpha] == pytest.approx(0.5 * np.log(np.pi * np.e * amplitude ** 2), abs=5e-3)
    assert np.all(np.delete(de, alpha) < de[alpha] - 3.0)


def test_variance_not_standard_deviation_inside_the_log():
    """Twice the amplitude is four times the variance: DE rises by ln 2, not by 0.5 ln 2 (torcheeg#71)."""
    low, high = (differential_entropy(_sine(a, 10.0), FS)[0, 2] for a in (1.0, 2.0))
    assert high - low == pytest.approx(np.log(2.0), abs=1e-9)


def test_white_noise_gives_the_entropy_of_its_in_band_variance():
    """Noise of variance s^2 keeps s^2 * bandwidth / (fs / 2) in each band.

    The forward-backward Butterworth's |H|^4 is ~10 % narrower than the ideal band, so the measured DE
    sits ~0.05 nats below the ideal value: 0.1 nats of tolerance.
    """
    sd = 2.0
    noise = np.random.default_rng(0).normal(0.0, sd, size=(8, int(60 * FS)))
    de = differential_entropy(noise, FS).mean(axis=0)  # (B,)
    expected = [0.5 * np.log(2 * np.pi * np.e * sd ** 2 * (high - low) / (FS / 2)) for low, high in DE_BANDS.values()]
    np.testing.assert_allclose(de, expected, atol=0.1)


def test_shapes_for_channels_and_for_trials_of_channels():
    x = np.random.default_rng(1).normal(size=(3, 4, 400))  # (N, C, T)
    batched = differential_entropy(x, FS)
    assert batched.shape == (3, 4, 5)
    assert differential_entropy(x[1], FS).shape == (4, 5)
    np.testing.assert_allclose(differential_entropy(x[1], FS), batched[1])


def test_custom_bands_in_the_order_given():
    bands = {"low_beta": (13.0, 20.0), "mu": (8.0, 12.0)}
    de = differential_entropy(np.vstack([_sine(1.0, 10.0), _sine(1.0, 16.0)]), FS, bands)  # (2, 2)
    assert de.shape == (2, 2)
    assert de[0, 1] > de[0, 0] + 3.0  # 10 Hz lives in "mu", the second band
    assert de[1, 0] > de[1, 1] + 3.0  # 16 Hz in "low_beta", the first


def test_band_at_or_above_nyquist_names_the_band_the_edge_and_the_rate():
    with pytest.raises(ValueError, match=r"band 'gamma': upper edge 50 Hz .*Nyquist \(50 Hz\).*sampling_rate=100"):
        differential_entropy(np.zeros((2, 1000)), 100.0)
    with pytest.raises(ValueError, match=r"band 'high': upper edge 70 Hz"):
        differential_entropy(np.zeros((2, 1000)), 128.0, {"high": (40.0, 70.0)})


@pytest.mark.parametrize("bands, message", [
    ({}, "non-empty mapping"),
    ([(1, 4)], "non-empty mapping"),
    ({"bad": (8.0, 4.0)}, r"band 'bad'=\(8.0, 4.0\): expected \(low_hz, high_hz\) with 0 < low_hz < high_hz"),
    ({"dc": (0.0, 4.0)}, "band 'dc'"),
    ({"one": (4.0,)}, "band 'one'"),
])
def test_malformed_bands_are_refused(bands, message):
    with pytest.raises(ValueError, match=message):
        differential_entropy(np.ones((2, 1000)), FS, bands)


@pytest.mark.parametrize("x, sampling_rate, message", [
    (np.ones(1000), FS, r"at least 2 dims, got shape \(1000,\)"),
    (np.ones((2, 27)), FS, r"more than 27 samples per channel .* got shape \(2, 27\)"),
    (np.array([[0.0] * 199 + [np.nan]]), FS, "expected finite EEG samples, got 1 NaN or Inf"),
    (np.array([["a"] * 100]), FS, "expected real EEG samples"),
    (np.ones((2, 1000)), 0.0, "sampling_rate=0.0: expected a positive finite number"),
    (np.ones((2, 1000)), float("nan"), "sampling_rate=nan"),
])
def test_bad_input_is_refused_with_what_was_expected(x, sampling_rate, message):
    with pytest.raises(ValueError, match=message):
        differential_entropy(x, sampling_rate)


def test_flat_channel_has_entropy_minus_infinity():
    """Variance 0 has no finite Gaussian entropy; the value says so rather than a floor that looks like data."""
    de = differential_entropy(np.vstack([np.zeros(400), _sine(1.0, 10.0, seconds=2.0)[0]]), FS)  # (2, B)
    assert np.all(de[0] == -np.inf) and np.all(np.isfinite(de[1]))
