"""The differential-entropy features SEED and SEED-IV ship beside their EEG (`ExtractedFeatures/`,
`eeg_feature_smooth/`): one MAT file per subject and session holding `<feature><k>` = (62, frames, 5) per trial k.

Keys are read by name (`de_LDS1`, `de_LDS2`, ...), never by position, so a re-saved file with its variables in
another order reads the same. The synthetic generator writes these files from its own raw signal with this
package's DE and smoothing (`write_released`): a test that the released source equals `de` + `lds` on synthetic
data is circular by construction, which is why the reader is also tested on a hand-built file of known values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetError

RELEASED_FEATURES = ("de_LDS", "de_movingAve")
"""The released DE variants: smoothed by a linear dynamical system, or by a moving average (the authors')."""
SOURCES = ("raw", "released")
RELEASED_BANDS = {"delta": (1.0, 3.0), "theta": (4.0, 7.0), "alpha": (8.0, 13.0), "beta": (14.0, 30.0),
                  "gamma": (31.0, 50.0)}
"""The bands of the released features (Zheng & Lu 2015; Zheng et al. 2019)."""


def read_released(path: Path, feature: str, channels: int, most: int) -> list[tuple[int, str, np.ndarray]]:
    """(trial number, key, frames) of `<feature>1` ... `<feature>N` in a MAT file (N <= `most`, no gaps), each frames
    array (channels, bands, frames) float32 from the file's (channels, frames, bands)."""
    import scipy.io

    if not path.is_file():
        raise DatasetError(f"{path}: expected the released feature file, found no such file")
    try:
        content = scipy.io.loadmat(path, verify_compressed_data_integrity=False)
    except Exception as exc:  # scipy raises many types for bad files
        raise DatasetError(f"{path}: expected a readable MAT v5 file, found an unreadable or truncated file ({exc})") from exc
    numbers = sorted(int(name[len(feature):]) for name in content
                     if name.startswith(feature) and name[len(feature):].isdigit())
    found = sorted(name for name in content if not name.startswith("__"))
    if not numbers or numbers != list(range(1, len(numbers) + 1)) or len(numbers) > most:
        raise DatasetError(f"{path}: expected variables {feature}1..{feature}N (N <= {most}) without gaps, found "
                           f"{found}")
    trials = []
    for number in numbers:
        key = f"{feature}{number}"
        data = content[key]
        if not (isinstance(data, np.ndarray) and data.dtype.kind in "iuf" and data.ndim == 3
                and data.shape[0] == channels and data.shape[1] >= 1 and data.shape[2] == len(RELEASED_BANDS)):
            raise DatasetError(f"{path} variable {key!r}: expected ({channels}, frames, {len(RELEASED_BANDS)}) "
                               f"numbers, found {getattr(data, 'dtype', type(data).__name__)} "
                               f"{getattr(data, 'shape', '')}")
        if not np.isfinite(data).all():
            raise DatasetError(f"{path} variable {key!r}: expected finite values, found "
                               f"{int((~np.isfinite(data)).sum())} NaN/Inf")
        trials.append((number, key, np.ascontiguousarray(np.transpose(data, (0, 2, 1)), dtype=np.float32)))
    return trials


def released_frames(signal: np.ndarray, rate: float, frame_seconds: float) -> dict[str, np.ndarray]:
    """What the generator writes for one synthetic trial (C, T): DE over consecutive frames in RELEASED_BANDS,
    (C, frames, 5), LDS-smoothed and moving-averaged over the trial, under the released keys' names."""
    from gru_xnet.de_smoothing import lds, moving_average
    from gru_xnet.preprocessing import band_filter, entropy_of_variance

    samples = int(round(frame_seconds * rate))
    filtered = band_filter(signal, rate, RELEASED_BANDS)  # (B, C, T)
    n = filtered.shape[-1] // samples
    parts = filtered[..., :n * samples].reshape(*filtered.shape[:-1], n, samples)
    de = np.moveaxis(entropy_of_variance(parts.var(axis=-1)), 0, -1)  # (C, frames, B)
    over_time = np.moveaxis(de, 1, 0)  # (frames, C, B): smoothed along time
    return {"de_LDS": np.moveaxis(lds(over_time), 0, 1), "de_movingAve": np.moveaxis(moving_average(over_time, 5), 0, 1)}


def write_released(path: Path, trials: list[np.ndarray], rate: float, frame_seconds: float) -> None:
    """One released-feature MAT file for a session's synthetic trials (C, T), keys `de_LDS<k>`, `de_movingAve<k>`."""
    import scipy.io

    variables = {}
    for number, signal in enumerate(trials, start=1):
        for feature, values in released_frames(signal, rate, frame_seconds).items():
            variables[f"{feature}{number}"] = values.astype(np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables, do_compression=True)
