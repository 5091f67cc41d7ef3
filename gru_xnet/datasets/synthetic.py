"""Synthetic DEAP / SEED-IV / GAMEEMO copies in the exact on-disk formats, with a planted, controllable class signal.

Every trial is 1/f-like background noise whose band amplitudes are shaped by (a) subject-specific gains and
band offsets, so cross-subject transfer is realistic, and (b) two binary emotion factors, valence and arousal,
each raising or lowering some bands on a fixed set of channels (named, so every dataset shares the pattern).
Classes map onto the factors: DEAP ratings and GAMEEMO games directly, SEED-IV's four emotions as the 2x2
(neutral: non-negative/low, sad: negative/low, fear: negative/high, happy: non-negative/high).
`--signal-strength 0` removes the effect; `--shuffle-labels` draws the planted factors independently of the
written labels. Each dataset folder gets a SYNTHETIC.json marker with the generator parameters.

`--signal temporal` plants the valence factor in *time order* instead of band power: bursts of theta,
alpha and beta activity take turns, one third of a 1 s cycle each, rising in frequency for positive
valence and falling for negative, at a random phase per trial. Both classes have the same time-averaged
band power, so a model that averages over time cannot tell them apart, while any window of 2 s or more
shows the order. Subjects keep their own gains and band offsets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.io

from .base import MARKER_NAME, DatasetError
from .deap import BASELINE_SAMPLES, DEAP_CHANNELS, LABEL_DIMENSIONS, N_RECORDED_CHANNELS
from .deap import SAMPLING_RATE as DEAP_RATE
from .gameemo import GAMEEMO_CHANNELS, GAMES
from .gameemo import SAMPLING_RATE as GAMEEMO_RATE
from .registry import DATASET_NAMES, canonical_name
from .seediv import SAMPLING_RATE as SEEDIV_RATE
from .seediv import SEEDIV_CHANNELS, SESSION_LABELS, SUBJECT_PREFIXES

DEFAULT_TRIALS = {"DEAP": 8, "SEEDIV": 4, "GAMEEMO": len(GAMES)}
MAX_TRIALS = {"DEAP": 40, "SEEDIV": len(SESSION_LABELS["1"]), "GAMEEMO": len(GAMES)}
"""Trials per subject (DEAP), per session (SEED-IV); GAMEEMO always has its four games."""
DEFAULT_SECONDS = 20.0

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

SEEDIV_FACTORS = {0: (1, 0), 1: (0, 0), 2: (0, 1), 3: (1, 1)}
GAME_FACTORS = {1: (0, 0), 2: (1, 0), 3: (0, 1), 4: (1, 1)}
"""Class -> (valence level, arousal level): SEED-IV emotions and GAMEEMO games."""

GAMEEMO_HEADER = ",".join(GAMEEMO_CHANNELS)
SIGNALS = ("band", "temporal")


@dataclass(frozen=True)
class Planting:
    """What the generator plants: `band` power or `temporal` order, how strongly, and whether it follows the labels."""

    strength: float = 1.0
    shuffle: bool = False
    signal: str = "band"


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
              factors: tuple[int, int] | None) -> np.ndarray:
        """(C, T) float64 µV: background with this subject's band shape plus the (valence, arousal) effect."""
        log_amp = self.band_offset + rng.normal(0.0, TRIAL_BAND_SD, size=self.band_offset.shape)
        if factors is not None and self.signal == "band":
            log_amp = log_amp + self.strength * _effect(channels, factors)
        freqs = np.fft.rfftfreq(n_samples, 1.0 / rate)
        shape = np.maximum(freqs, 1.0) ** (-self.exponent / 2.0)
        masks = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in BANDS.values()])  # (bands, F)
        spectrum = np.fft.rfft(rng.standard_normal((len(channels), n_samples)), axis=1)
        spectrum *= shape * np.exp(log_amp @ masks)
        signal = np.fft.irfft(spectrum, n=n_samples, axis=1)
        if factors is not None and self.signal == "temporal":
            signal = signal + self.strength * _bursts(rng, signal.std(), n_samples, rate, rising=bool(factors[0]))
        return BACKGROUND_UV * self.gain * signal / signal.std()


BURST_BANDS = ("theta", "alpha", "beta")
BURST_CYCLE_SECONDS = 1.0
BURST_GAIN = 2.0
BURST_RAMP_SECONDS = 0.04
"""Temporal signal: the bands that take turns, the cycle they share, burst amplitude relative to the
background's overall SD (times the signal strength), and the cosine ramp at each burst's edges."""


def _bursts(rng: np.random.Generator, scale: float, n_samples: int, rate: float, rising: bool) -> np.ndarray:
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


def _effect(channels: Sequence[str], factors: tuple[int, int]) -> np.ndarray:
    """(C, bands) log-amplitude effect of the (valence, arousal) levels on the named channels."""
    effect = np.zeros((len(channels), len(BANDS)))
    for level, effect_channels, band_effect in (
        (factors[0], VALENCE_CHANNELS, VALENCE_EFFECT), (factors[1], AROUSAL_CHANNELS, AROUSAL_EFFECT)
    ):
        rows = [i for i, name in enumerate(channels) if name in effect_channels]
        for band, change in band_effect.items():
            effect[rows, list(BANDS).index(band)] += change if level else -change
    return effect


def _rating(rng: np.random.Generator, level: int) -> float:
    """A 1-9 rating on the side of 5 given by the level (never exactly 5, so '>=' and '>' agree)."""
    return round(float(rng.uniform(5.2, 9.0) if level else rng.uniform(1.0, 4.8)), 2)


def _py2_pickle(content: dict[str, np.ndarray]) -> bytes:
    """Protocol-2 pickle of a dict of arrays as Python 2 wrote DEAP's files (str keys and data, numpy.core names)."""
    # Opcodes: \x80\x02 PROTO 2, } EMPTY_DICT, ( MARK, u SETITEMS, . STOP, U/T SHORT_BINSTRING/BINSTRING,
    # c GLOBAL, K/J BININT1/BININT, t TUPLE, \x85/\x87 TUPLE1/TUPLE3, R REDUCE, b BUILD, N None, \x89 False.

    def string(data: bytes) -> bytes:
        return (b"U" + struct.pack("<B", len(data)) if len(data) < 256 else b"T" + struct.pack("<I", len(data))) + data

    def array(value: np.ndarray) -> bytes:
        value = np.ascontiguousarray(value)
        shape = b"(" + b"".join(b"J" + struct.pack("<i", n) for n in value.shape) + b"t"
        dtype = (b"cnumpy\ndtype\n" + string(value.dtype.str[1:].encode()) + b"K\x00K\x01\x87R"
                 + b"(K\x03" + string(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + string(b"b") + b"\x87R"
                + b"(K\x01" + shape + dtype + b"\x89" + string(value.tobytes()) + b"tb")

    body = b"".join(string(key.encode("ascii")) + array(value) for key, value in content.items())
    return b"\x80\x02}(" + body + b"u."


def _write_deap(root: Path, subject: int, trials: int, seconds: float, planting: Planting, seed: int) -> None:
    """DEAP/data_preprocessed_python/sXX.dat: 'labels' (trials, 4) and 'data' (trials, 40, 384 + stimulus)."""
    folder = root / "data_preprocessed_python"
    folder.mkdir(parents=True, exist_ok=True)
    n_stimulus = int(round(seconds * DEAP_RATE))
    rng = np.random.default_rng([seed, 0, subject])
    model = SubjectModel.draw(rng, len(DEAP_CHANNELS), planting)
    written = np.stack([rng.permutation(np.arange(trials) % 2) for _ in range(2)], axis=1)  # (trials, 2)
    planted = rng.integers(0, 2, size=written.shape) if planting.shuffle else written
    data = np.empty((trials, N_RECORDED_CHANNELS, BASELINE_SAMPLES + n_stimulus))
    labels = np.empty((trials, len(LABEL_DIMENSIONS)))
    n_other = N_RECORDED_CHANNELS - len(DEAP_CHANNELS)
    for t in range(trials):
        data[t, : len(DEAP_CHANNELS), :BASELINE_SAMPLES] = model.trial(rng, DEAP_CHANNELS, BASELINE_SAMPLES, DEAP_RATE, None)
        data[t, : len(DEAP_CHANNELS), BASELINE_SAMPLES:] = model.trial(
            rng, DEAP_CHANNELS, n_stimulus, DEAP_RATE, (int(planted[t, 0]), int(planted[t, 1]))
        )
        data[t, len(DEAP_CHANNELS):] = rng.normal(0.0, 50.0, size=(n_other, 1)) + rng.normal(0.0, 5.0, size=(n_other, data.shape[2]))
        labels[t] = [_rating(rng, written[t, 0]), _rating(rng, written[t, 1]),
                     round(float(rng.uniform(1, 9)), 2), round(float(rng.uniform(1, 9)), 2)]
    (folder / f"s{subject:02d}.dat").write_bytes(_py2_pickle({"labels": labels, "data": data}))


def _seediv_file_name(subject: int, session: int) -> str:
    """`<subject>_<YYYYMMDD>.mat` with a made-up recording date, later for later sessions."""
    day = datetime.date(2015, 3, 2) + datetime.timedelta(days=13 * subject + 9 * session)
    return f"{subject}_{day:%Y%m%d}.mat"


def _write_seediv(root: Path, subject: int, trials: int, seconds: float, planting: Planting, seed: int) -> None:
    """SEEDIV/eeg_raw_data/{1,2,3}/<subject>_<date>.mat with variables <prefix>_eeg1..N of shape (62, T)."""
    n_samples = int(round(seconds * SEEDIV_RATE))
    rng = np.random.default_rng([seed, 1, subject])
    model = SubjectModel.draw(rng, len(SEEDIV_CHANNELS), planting)
    prefix = SUBJECT_PREFIXES[subject - 1] if subject <= len(SUBJECT_PREFIXES) else f"sub{subject}"
    for session, labels in SESSION_LABELS.items():
        variables = {}
        for number, label in enumerate(labels[:trials], start=1):
            emotion = int(rng.integers(0, 4)) if planting.shuffle else label
            length = n_samples + int(rng.integers(0, int(SEEDIV_RATE)))  # trial lengths differ, as in the real files
            variables[f"{prefix}_eeg{number}"] = model.trial(rng, SEEDIV_CHANNELS, length, SEEDIV_RATE,
                                                             SEEDIV_FACTORS[emotion])
        folder = root / "eeg_raw_data" / session
        folder.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(folder / _seediv_file_name(subject, int(session)), variables, do_compression=True)


def _write_csv(path: Path, signal: np.ndarray) -> None:
    """GAMEEMO CSV: alphabetical header, one row per sample, a trailing comma on every line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, signal.T, fmt="%.4f", delimiter=",", newline=",\n", header=GAMEEMO_HEADER, comments="")


def _write_gameemo(root: Path, subject: int, _trials: int, seconds: float, planting: Planting, seed: int) -> None:
    """GAMEEMO/(Sxx)/{Preprocessed,Raw} EEG Data/.csv format/SxxGy{AllChannels,AllRawChannels}.csv."""
    n_samples = int(round(seconds * GAMEEMO_RATE))
    rng = np.random.default_rng([seed, 2, subject])
    model = SubjectModel.draw(rng, len(GAMEEMO_CHANNELS), planting)
    dc_offset = 4200.0 + rng.normal(0.0, 50.0, size=(len(GAMEEMO_CHANNELS), 1))
    line_noise = 5.0 * np.sin(2 * np.pi * 50.0 * np.arange(n_samples) / GAMEEMO_RATE)
    folder = root / f"(S{subject:02d})"
    for game in GAMES:
        planted = int(rng.choice(GAMES)) if planting.shuffle else game
        signal = model.trial(rng, GAMEEMO_CHANNELS, n_samples, GAMEEMO_RATE, GAME_FACTORS[planted])
        name = f"S{subject:02d}G{game}"
        _write_csv(folder / "Preprocessed EEG Data" / ".csv format" / f"{name}AllChannels.csv", signal)
        _write_csv(folder / "Raw EEG Data" / ".csv format" / f"{name}AllRawChannels.csv", signal + dc_offset + line_noise)


WRITERS = {"DEAP": _write_deap, "SEEDIV": _write_seediv, "GAMEEMO": _write_gameemo}
"""name -> function writing one subject (subjects run in threads: FFT and zlib release the GIL)."""


def _prepare(root: Path) -> None:
    """Empty a previous synthetic copy; refuse to touch a non-empty folder without the marker (real data?)."""
    if root.exists():
        if not (root / MARKER_NAME).is_file() and any(root.iterdir()):
            raise DatasetError(f"{root}: expected an empty folder or an earlier synthetic copy ({MARKER_NAME}), "
                               f"found other files; refusing to overwrite")
        shutil.rmtree(root)
    root.mkdir(parents=True)


def write_synthetic(out_dir: str | Path, datasets: Iterable[str], n_subjects: int, *, trials: int | None = None,
                    seconds: float | None = None, signal_strength: float = 1.0, shuffle_labels: bool = False,
                    seed: int = 0, signal: str = "band") -> dict[str, Path]:
    """Write synthetic copies of the datasets under out_dir/<NAME>; returns the root per canonical name."""
    names = [canonical_name(name) for name in datasets]
    if not names:
        raise DatasetError(f"datasets: expected at least one of {DATASET_NAMES}, found none")
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, int) or n_subjects < 1:
        raise DatasetError(f"n_subjects={n_subjects!r} is not allowed; allowed values: an integer >= 1")
    if seconds is not None and not seconds > 0:
        raise DatasetError(f"seconds={seconds!r} is not allowed; allowed values: a number > 0")
    if not signal_strength >= 0:
        raise DatasetError(f"signal_strength={signal_strength!r} is not allowed; allowed values: a number >= 0")
    if signal not in SIGNALS:
        raise DatasetError(f"signal={signal!r} is not allowed; allowed values: {', '.join(SIGNALS)}")
    planting = Planting(float(signal_strength), bool(shuffle_labels), signal)
    roots = {}
    for name in dict.fromkeys(names):
        n_trials = DEFAULT_TRIALS[name] if trials is None or name == "GAMEEMO" else trials
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or not 1 <= n_trials <= MAX_TRIALS[name]:
            raise DatasetError(f"trials={trials!r} is not allowed for {name}; allowed values: 1..{MAX_TRIALS[name]}")
        root = Path(out_dir) / name
        _prepare(root)
        length = DEFAULT_SECONDS if seconds is None else float(seconds)
        with ThreadPoolExecutor(max_workers=min(n_subjects, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda subject: WRITERS[name](root, subject, n_trials, length, planting, seed),
                          range(1, n_subjects + 1)))
        marker = {
            "synthetic": True, "generator": "gru_xnet.datasets.synthetic", "dataset": name,
            "subjects": n_subjects, "trials": n_trials, "seconds": length,
            "signal": signal, "signal_strength": float(signal_strength), "shuffle_labels": bool(shuffle_labels),
            "seed": seed,
        }
        (root / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
        roots[name] = root
    return roots


DEMO_SUBJECTS = 5
"""Subjects per dataset that `--synthetic` runs generate: enough for LOSO folds with a validation subject."""


def ensure_synthetic_data(out_dir: str | Path, datasets: Iterable[str], n_subjects: int = DEMO_SUBJECTS,
                          **options: Any) -> Path:
    """Synthetic datasets under out_dir, written only where missing or made with other parameters.

    Returns out_dir, ready to be used as a data root; repeated demo runs reuse the same files (and so
    the same feature cache).
    """
    out_dir = Path(out_dir)
    for name in dict.fromkeys(canonical_name(n) for n in datasets):
        marker = out_dir / name / MARKER_NAME
        trials = options.get("trials")
        wanted = {"subjects": n_subjects, "signal": options.get("signal", "band"),
                  "signal_strength": float(options.get("signal_strength", 1.0)),
                  "shuffle_labels": bool(options.get("shuffle_labels", False)), "seed": options.get("seed", 0),
                  "trials": DEFAULT_TRIALS[name] if trials is None or name == "GAMEEMO" else trials,
                  "seconds": float(options.get("seconds") or DEFAULT_SECONDS)}
        try:
            found = json.loads(marker.read_text())
        except (OSError, ValueError):
            found = {}
        if any(found.get(k) != v for k, v in wanted.items()):
            write_synthetic(out_dir, [name], n_subjects, **options)
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write the synthetic datasets and print where they went; a bad option is one line and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m gru_xnet.datasets.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write DEAP/, SEEDIV/, GAMEEMO/ into")
    parser.add_argument("--datasets", nargs="+", default=list(DATASET_NAMES), help="dataset names (any case)")
    parser.add_argument("--subjects", type=int, default=4, help="subjects per dataset")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per subject (DEAP, max 40) or per session (SEED-IV, max 24); GAMEEMO always 4 games")
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"seconds per trial (DEAP: stimulus part, after 3 s baseline); default {DEFAULT_SECONDS}")
    parser.add_argument("--signal-strength", type=float, default=1.0, help="planted effect scale; 0 = no signal")
    parser.add_argument("--shuffle-labels", action="store_true", help="labels independent of the planted signal")
    parser.add_argument("--signal", choices=SIGNALS, default="band",
                        help="band: class in band power; temporal: class only in the order of band bursts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        roots = write_synthetic(args.out, args.datasets, args.subjects, trials=args.trials, seconds=args.seconds,
                                signal_strength=args.signal_strength, shuffle_labels=args.shuffle_labels,
                                seed=args.seed, signal=args.signal)
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, root in roots.items():
        print(f"{name}: {args.subjects} synthetic subjects in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
