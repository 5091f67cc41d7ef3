"""MAHNOB-HCI reader: `Sessions/<n>/` folders, one recording each (one trial): a BioSemi `.bdf` and `session.xml`.

An emotion-elicitation session is one film clip: its BDF's first 32 channels are the EEG, at the rate in the BDF header
(256 Hz in the released files), with 30 s recorded before and 30 s after the clip, both cropped (EEGain's
`Crop(t_min=30, t_max=-30)`). The label is the participant's own `feltVlnc` or `feltArsl` rating (1-9) against a
threshold, the stimulus `mediaFile`, the subject `<subject id>`. Implicit-tagging sessions (no `feltVlnc`) and folders
without a BDF or session.xml are skipped and counted (logged, and said in the label description).
session.xml is read with the standard library's ElementTree: it never fetches a DTD or external entity, and the expat
it runs on (>= 2.4.1) refuses entity-expansion bombs, so the user's own copy needs no defusedxml; nothing in a data
file is executed. The BDF is read (and the synthetic one written) with pyEDFlib, imported where it is used.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import (MAINS_HZ, DatasetError, Reader, Trial, check_number, check_option, inner_folder, natural_key,
                   signal_problem, stimulus_confound)
from .deap import COMPARISONS, DEAP_CHANNELS
from .synthetic_signal import SubjectModel, rated_levels

MAHNOB_CHANNELS = DEAP_CHANNELS
"""The BioSemi 32-channel order of the first 32 BDF signals (TorchEEG's MAHNOB_CHANNEL_LIST; DEAP's too)."""
OTHER_SIGNALS = (*(f"EXG{k}" for k in range(1, 9)), "GSR1", "GSR2", "Erg1", "Erg2", "Resp", "Temp", "Status")
"""The 15 signals after the EEG (EEGain's MAHNOB DropChannels list), `Status` last: the stimulus triggers."""
SAMPLING_RATE = 256.0
"""The released files' rate, for planning (STFT grids, model inputs); each trial carries its own header's rate."""
CROP_SECONDS = 30.0
"""Recorded before and after every clip; cropped from both ends."""
RATINGS = {"valence": "feltVlnc", "arousal": "feltArsl"}
"""Label dimension -> the session.xml attribute holding the participant's 1-9 rating."""
UNITS = {"uV": 1.0, "µV": 1.0, "mV": 1e3, "V": 1e6}
"""BDF physical dimensions of the EEG signals and their factor to µV."""
SKIPPED = ("implicit-tagging session(s) (no feltVlnc)", "folder(s) without a BDF", "folder(s) without session.xml")
N_CLIPS = 20
SESSION_BLOCK = 2 * N_CLIPS + 4
"""Synthetic session numbers: a block per subject (emotion sessions even, the implicit-tagging one odd)."""
log = logging.getLogger(__name__)
_REPORTED: set[tuple] = set()
"""(folder, counts) already logged in this process: every subject job opens a reader; one warning per copy."""


@dataclass(frozen=True)
class Session:
    """One emotion-elicitation session of a subject: its number (the folder's), files and session.xml attributes."""

    number: int
    bdf: Path
    xml: Path
    attributes: dict[str, str]


class MAHNOBReader(Reader):
    """MAHNOB-HCI `Sessions/`; each emotion session one trial, labelled by the participant's own rating."""

    name = "MAHNOB"
    aliases = ("MAHNOB-HCI", "HCI")
    n_classes = 2
    sampling_rate = SAMPLING_RATE
    channel_names = MAHNOB_CHANNELS
    synthetic_trials = (6, N_CLIPS)

    def __init__(self, root: str | Path, *, skip_bad_trials: bool = False, joint: bool = False,
                 label_dimension: str = "valence", threshold: float = 5.0, comparison: str = ">=",
                 baseline: str = "ignore") -> None:
        super().__init__(root, skip_bad_trials=skip_bad_trials)
        options = self.check_options(label_dimension=label_dimension, threshold=threshold, comparison=comparison,
                                     baseline=baseline)
        self.label_dimension, self.threshold, self.comparison, self.baseline = (
            options[k] for k in ("label_dimension", "threshold", "comparison", "baseline"))
        self.class_names = (f"low {label_dimension}", f"high {label_dimension}")
        self.data_dir = inner_folder(self.root, "Sessions")
        self._index: tuple[dict[str, list[Session]], Counter] | None = None

    @classmethod
    def check_options(cls, joint: bool = False, label_dimension: str = "valence", threshold: float = 5.0,
                      comparison: str = ">=", baseline: str = "ignore") -> dict[str, Any]:
        """Valence or arousal, a threshold on the 1-9 scale with '>=' (TorchEEG's Binary(5.0), EEGain's '> 4.5' on
        whole ratings: the default) or '>' (LibEER's bounds 5 5), and `baseline`: 'ignore' the 30 s before the clip,
        or 'subtract' its mean feature from every window of the clip."""
        check_option("label_dimension", label_dimension, tuple(RATINGS))
        check_option("comparison", comparison, tuple(COMPARISONS))
        check_option("baseline", baseline, ("ignore", "subtract"))
        return {"label_dimension": label_dimension, "threshold": check_number("threshold", threshold, 1.0, 9.0),
                "comparison": comparison, "baseline": baseline}

    @classmethod
    def looks_like(cls, folder: Path) -> bool:
        return (folder / "Sessions").is_dir() or any((p / "session.xml").is_file() for p in folder.iterdir()
                                                     if p.name.isdigit())

    @classmethod
    def default_filters(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The BDFs are unfiltered BioSemi recordings: EEGain's band-pass 0.3-45 Hz and 50 Hz notch (UK mains)."""
        return {"bandpass_hz": [0.3, 45.0], "notch_hz": MAINS_HZ}

    def _sessions(self) -> tuple[dict[str, list[Session]], Counter]:
        """Subject id -> its emotion sessions in folder order, and the skipped folders counted by `SKIPPED` reason;
        a malformed session.xml is one error naming it."""
        if self._index is not None:
            return self._index
        if not self.data_dir.is_dir():
            raise DatasetError(f"MAHNOB: expected the Sessions folder {self.data_dir}, found none")
        by_subject: dict[str, list[Session]] = {}
        skipped: Counter = Counter()
        for folder in sorted((p for p in self.data_dir.iterdir() if p.is_dir() and p.name.isdigit()),
                             key=lambda p: int(p.name)):
            xml = folder / "session.xml"
            bdfs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".bdf")
            if not xml.is_file():
                skipped[SKIPPED[2]] += 1
                continue
            attributes, subject = read_session_xml(xml)
            if "feltVlnc" not in attributes:
                skipped[SKIPPED[0]] += 1
            elif not bdfs:
                skipped[SKIPPED[1]] += 1
            elif len(bdfs) > 1:
                raise DatasetError(f"{folder}: expected one .bdf file per session, found {[p.name for p in bdfs]}")
            else:
                by_subject.setdefault(subject, []).append(Session(int(folder.name), bdfs[0], xml, attributes))
        if not by_subject:
            raise DatasetError(f"MAHNOB: expected Sessions/<n>/ folders with a .bdf and a session.xml holding feltVlnc "
                               f"in {self.data_dir}, found none ({self._skipped_text(skipped) or 'no session folder'})")
        report = (str(self.data_dir), tuple(sorted(skipped.items())))
        if skipped and report not in _REPORTED:
            _REPORTED.add(report)
            log.warning("MAHNOB %s: skipped %s", self.data_dir, self._skipped_text(skipped))
        self._index = by_subject, skipped
        return self._index

    @staticmethod
    def _skipped_text(skipped: Counter) -> str:
        return ", ".join(f"{skipped[reason]} {reason}" for reason in SKIPPED if skipped[reason])

    def subjects(self) -> list[str]:
        """Subject ids as session.xml's `<subject id>` gives them ('1', ..., '30'), with an emotion session."""
        return sorted(self._sessions()[0], key=natural_key)

    def source_files(self, subject: str) -> list[Path]:
        """Every emotion session's BDF and session.xml of that subject."""
        self._check_subject(subject, self.subjects())
        return [path for session in self._sessions()[0][subject] for path in (session.bdf, session.xml)]

    def read_subject(self, subject: str) -> list[Trial]:
        """One trial per emotion session: the first 32 BDF signals with the 30 s before and after the clip cropped."""
        self._check_subject(subject, self.subjects())
        above = COMPARISONS[self.comparison]
        trials: list[Trial] = []
        skipped: list[str] = []
        attribute = RATINGS[self.label_dimension]
        for session in self._sessions()[0][subject]:
            rating = _number(session.attributes.get(attribute))
            media = session.attributes.get("mediaFile", "").strip()
            if rating is None or not 1.0 <= rating <= 9.0 or not media:
                self._bad_trial(skipped, f"{session.xml}: expected attribute {attribute} a rating in 1-9 and "
                                         f"mediaFile a name, found {session.attributes.get(attribute)!r} and "
                                         f"{session.attributes.get('mediaFile')!r}")
                continue
            signal, rate = read_eeg(session.bdf)
            crop = int(round(CROP_SECONDS * rate))
            problem = (f"{session.bdf}: expected more than {2 * CROP_SECONDS:g} s ({CROP_SECONDS:g} s before and after "
                       f"the clip), found {signal.shape[1] / rate:g} s" if signal.shape[1] <= 2 * crop
                       else signal_problem(signal, str(session.bdf), len(MAHNOB_CHANNELS)))
            if problem is not None:
                self._bad_trial(skipped, problem)
                continue
            before = signal[:, :crop] if self.baseline == "subtract" else None
            trials.append(Trial(signal=np.ascontiguousarray(signal[:, crop:-crop], dtype=np.float32),
                                label=int(above(rating, self.threshold)), subject=subject, session="1",
                                trial=session.number, channel_names=MAHNOB_CHANNELS, sampling_rate=rate,
                                dataset=self.name, stimulus=media,
                                baseline=None if before is None else np.ascontiguousarray(before, dtype=np.float32)))
        return self._finish(subject, trials, skipped)

    def options(self) -> dict:
        return {"label_dimension": self.label_dimension, "threshold": self.threshold, "comparison": self.comparison,
                "baseline": self.baseline}

    def label_description(self) -> str:
        """E.g. 'MAHNOB valence (session.xml feltVlnc) >= 5 (1-9) -> high (1), else low (0); ...'."""
        sessions, skipped = self._sessions()
        kept = sum(len(s) for s in sessions.values())
        return (f"MAHNOB {self.label_dimension} (session.xml {RATINGS[self.label_dimension]}) {self.comparison} "
                f"{self.threshold:g} (1-9) -> high (1), else low (0); one trial per emotion session, the "
                f"{CROP_SECONDS:g} s before and after the clip cropped (baseline {self.baseline}); stimulus ids from "
                f"mediaFile; {kept} emotion session(s) of {len(sessions)} subject(s) read"
                + (f"; skipped: {self._skipped_text(skipped)}" if skipped else ""))

    def stimulus_statement(self) -> str:
        return stimulus_confound("every MAHNOB-HCI participant watched the same 20 film clips (one session each)",
                                 "clips", "clip", rated=True)

    @classmethod
    def write_subject(cls, root: Path, subject: int, trials: int, seconds: float, planting: Any, seed: int) -> None:
        """Sessions/<n>/ as released: per emotion session `Part_<s>_S_Trial<t>_emotion.bdf` (32 EEG, 14 other signals
        and Status with the clip's onset and offset triggers, 30 s before and after a clip of whole seconds) and
        session.xml; then one implicit-tagging session and one emotion session whose BDF is missing (both skipped)."""
        rng = np.random.default_rng([seed, 8, subject])
        model = SubjectModel.draw(rng, len(MAHNOB_CHANNELS), planting)
        clips = np.roll([f"{k}.avi" for k in range(1, N_CLIPS + 1)], -(subject - 1))[:trials]  # its own order
        written = rated_levels(rng, trials, planting, dimensions=2)
        planted = rng.integers(0, 2, size=written.shape) if planting.shuffle else written
        clip_seconds = max(1, int(round(seconds)))
        first = (subject - 1) * SESSION_BLOCK
        for t in range(trials):
            folder = root / "Sessions" / str(first + 2 * (t + 1))
            parts = [model.trial(rng, MAHNOB_CHANNELS, int(CROP_SECONDS * SAMPLING_RATE), SAMPLING_RATE, None),
                     model.trial(rng, MAHNOB_CHANNELS, int(clip_seconds * SAMPLING_RATE), SAMPLING_RATE,
                                 (int(planted[t, 0]), int(planted[t, 1])), str(clips[t])),
                     model.trial(rng, MAHNOB_CHANNELS, int(CROP_SECONDS * SAMPLING_RATE), SAMPLING_RATE, None)]
            write_bdf(folder / f"Part_{subject}_S_Trial{t + 1}_emotion.bdf", np.concatenate(parts, axis=1), rng,
                      clip=(parts[0].shape[1], parts[1].shape[1]))
            felt = {"feltVlnc": _felt(rng, written[t, 0]), "feltArsl": _felt(rng, written[t, 1]),
                    **{k: str(rng.integers(1, 10)) for k in ("feltCtrl", "feltPred", "feltEmo")}}
            write_session_xml(folder / "session.xml", subject, folder.name, str(clips[t]), clip_seconds, felt)
        tagging = root / "Sessions" / str(first + 1)
        write_bdf(tagging / f"Part_{subject}_S_Trial1_tagging.bdf",
                  model.trial(rng, MAHNOB_CHANNELS, int(SAMPLING_RATE), SAMPLING_RATE, None), rng, clip=None)
        write_session_xml(tagging / "session.xml", subject, tagging.name, "1.jpg", 1, {})
        missing = root / "Sessions" / str(first + SESSION_BLOCK - 2)
        missing.mkdir(parents=True)
        write_session_xml(missing / "session.xml", subject, missing.name, str(clips[0]), clip_seconds,
                          {"feltVlnc": "5", "feltArsl": "5"})


def read_session_xml(path: Path) -> tuple[dict[str, str], str]:
    """The `<session>` attributes of a session.xml and its `<subject id>`; one error naming the file when it is not
    one well-formed `<session>` with a subject id."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"{path}: expected a well-formed session.xml, found unreadable XML ({exc})") from None
    if root.tag != "session":
        raise DatasetError(f"{path}: expected a <session> root element, found <{root.tag}>")
    subject = root.find("subject")
    ids = "" if subject is None else subject.get("id", "").strip()
    if not ids:
        raise DatasetError(f"{path}: expected a <subject id=...> element inside <session>, found none")
    return dict(root.attrib), ids


def read_eeg(path: Path) -> tuple[np.ndarray, float]:
    """The first 32 signals of a BDF in µV as (32, T) float64 and their rate from the header; one error naming the
    file when it is unreadable or its first 32 signals are not the BioSemi EEG channels at one rate."""
    import pyedflib

    try:
        with pyedflib.EdfReader(str(path)) as bdf:
            labels = [label.strip().upper() for label in bdf.getSignalLabels()[:len(MAHNOB_CHANNELS)]]
            if labels != list(MAHNOB_CHANNELS):
                raise DatasetError(f"{path}: expected the first {len(MAHNOB_CHANNELS)} signals "
                                   f"{' '.join(MAHNOB_CHANNELS)} (any case), found {' '.join(labels)}")
            rates = {bdf.getSampleFrequency(i) for i in range(len(MAHNOB_CHANNELS))}
            units = {bdf.getPhysicalDimension(i).strip() for i in range(len(MAHNOB_CHANNELS))}
            if len(rates) != 1 or len(units) != 1 or next(iter(units)) not in UNITS:
                raise DatasetError(f"{path}: expected the EEG signals at one rate in one of {', '.join(UNITS)}, found "
                                   f"rates {sorted(rates)} Hz and units {sorted(units)}")
            signal = np.stack([bdf.readSignal(i) for i in range(len(MAHNOB_CHANNELS))])
    except OSError as exc:
        raise DatasetError(f"{path}: expected a readable BDF file, found an unreadable or truncated one ({exc})"
                           ) from None
    return signal * UNITS[next(iter(units))], float(next(iter(rates)))


def write_bdf(path: Path, eeg: np.ndarray, rng: np.random.Generator, clip: tuple[int, int] | None,
              rate: float = SAMPLING_RATE) -> None:
    """A BioSemi-like BDF at `rate`: the (32, T) µV EEG (BioSemi labels, a DC offset and 50 Hz mains added), the other
    signals as noise, and Status pulses whose onsets fall just before the clip's first sample and just after its last
    (where TorchEEG and LibEER find the clip: `events[0] + 1` to `events[1] - 1`)."""
    import pyedflib

    n = eeg.shape[1]
    mains = 5.0 * np.sin(2 * np.pi * MAINS_HZ * np.arange(n) / rate)
    signals = [*(eeg + rng.normal(0.0, 2000.0, size=(len(eeg), 1)) + mains),
               *rng.normal(0.0, 50.0, size=(len(OTHER_SIGNALS) - 1, n))]
    status = np.zeros(n)
    if clip is not None:
        start, length = clip
        status[start - 1:start + 9], status[start + length:start + length + 10] = 1, 2
    eeg_header = {"dimension": "uV", "sample_frequency": rate, "physical_min": -262144,
                  "physical_max": 262143, "digital_min": -8388608, "digital_max": 8388607, "transducer": "",
                  "prefilter": ""}
    headers = [{**eeg_header, "label": name.replace("FP", "Fp").replace("Z", "z")} for name in MAHNOB_CHANNELS]
    headers += [{**eeg_header, "label": name} for name in OTHER_SIGNALS[:-1]]
    headers.append({**eeg_header, "label": "Status", "dimension": "Boolean", "physical_min": -8388608,
                    "physical_max": 8388607})
    path.parent.mkdir(parents=True, exist_ok=True)
    with pyedflib.EdfWriter(str(path), len(headers), file_type=pyedflib.FILETYPE_BDF) as bdf:
        bdf.setSignalHeaders(headers)
        bdf.writeSamples([*signals, status])


def write_session_xml(path: Path, subject: int, number: str, media: str, seconds: float, felt: dict[str, str]) -> None:
    """session.xml as released: `<session>` attributes (the felt* ratings only for emotion sessions) and
    `<subject id>`."""
    session = ET.Element("session", {"sessionId": number, "mediaFile": media, "cutLenSec": f"{seconds:g}",
                                     "isStim": "1", **felt})
    ET.SubElement(session, "subject", {"id": str(subject)})
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(session).write(path, encoding="utf-8", xml_declaration=True)


def _felt(rng: np.random.Generator, level: int) -> str:
    """A whole 1-9 rating on the side of 5 given by the level (never 5, so '>=' and '>' agree)."""
    return str(int(rng.integers(6, 10) if level else rng.integers(1, 5)))


def _number(text: str | None) -> float | None:
    """An attribute's value as a finite number, or None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None
