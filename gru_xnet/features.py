"""Files in, features out: read each subject, window its trials, turn them into a representation, cache the result.

The feature set of an experiment is built once (one thread per core, a subject each) and then
shared by every split and fold. Each subject's features are cached on disk under a key made of the
source files' identity (path, size, mtime), the reader's label options and every preprocessing
parameter, so a changed file or parameter never reads a stale entry. Entries are plain `.npy` files
checked through a memory map (`allow_pickle=False`) and read straight into the feature set; a corrupt entry is
rebuilt, never trusted. A subject is built one trial at a time and its entry written as the trials come, so a
build holds one session file's recording per subject, not the subject's features twice over.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from gru_xnet.config import ConfigError, DataConfig
from gru_xnet.datasets import Reader, find_dataset_root, get_reader
from gru_xnet.datasets.base import DatasetError
from gru_xnet.datasets.registry import USER_DATASETS
from gru_xnet.preprocessing import zero_phase_filter
from gru_xnet.representations import REPRESENTATIONS, Representation, passband_notes

log = logging.getLogger(__name__)

CACHE_FORMAT = 4
"""Part of every cache key: 4 since recordings are filtered through the FFT with long edge padding (within
preprocessing.FILTER_TOLERANCE of sosfiltfilt with that padding; 3's short padding differs in the first seconds)."""
_ARRAYS = ("features", "labels", "trials", "sessions", "stimulus")


@dataclass(frozen=True)
class SubjectKey:
    """A subject is only unique together with its dataset."""

    dataset: str
    subject: str

    def __str__(self) -> str:
        return f"{self.dataset}/{self.subject}"

    @property
    def stable_id(self) -> int:
        """An integer naming this subject in every run, whatever else is loaded (seeds its label permutations)."""
        return int.from_bytes(hashlib.sha256(str(self).encode()).digest()[:8], "big")


@dataclass
class SubjectFeatures:
    """All windows of one subject: features `(n, *window_shape)` and per-window labels, trials, sessions and the
    reader's stimulus ids."""

    features: np.ndarray
    labels: np.ndarray
    trials: np.ndarray
    sessions: np.ndarray
    stimulus: np.ndarray


def _short_hash(values: np.ndarray) -> str:
    """16 hex digits of sha256 over integer values: names a set of labels in result files."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.int64).tobytes()).hexdigest()[:16]


@dataclass
class FeatureSet:
    """Every window of an experiment with the subject, dataset, trial and session it came from."""

    features: np.ndarray                 # (N, *window_shape) float32: (C, F, T) stft, (C, T) raw, (C, B, S) de
    labels: np.ndarray                   # (N,) int64
    subject_index: np.ndarray            # (N,) int32, index into `subjects`
    trials: np.ndarray                   # (N,) int32, 1-based trial number within the session
    sessions: np.ndarray                 # (N,) int16
    subjects: list[SubjectKey]
    datasets: list[str]
    channel_names: tuple[str, ...]
    frequencies: np.ndarray              # the representation's grid: STFT frequencies, DE band edges (raw: empty)
    n_classes: int
    class_names: tuple[str, ...]
    synthetic: bool
    protocol: dict[str, Any] = field(default_factory=dict)
    representation: str = "stft"
    stimulus: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    """(N,) what each window's trial showed, ids equal across subjects ('DEAP/v07', 'SEEDIV/s2-c05', 'GAMEEMO/G3')."""
    sampling_rate: float | None = None
    """Samples per second along a window's time axis (the representation's `time_rate`; None: not known)."""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def dataset_index(self) -> np.ndarray:
        """(N,) index into `datasets` of each window."""
        per_subject = np.array([self.datasets.index(s.dataset) for s in self.subjects], dtype=np.int64)
        return per_subject[self.subject_index]

    def windows_of(self, subject_ids: Sequence[int], sessions: Sequence[int] | None = None) -> np.ndarray:
        """Window indices belonging to the given subjects (optionally only some sessions)."""
        mask = np.isin(self.subject_index, np.asarray(subject_ids, dtype=np.int32))
        if sessions is not None:
            mask &= np.isin(self.sessions, np.asarray(sessions))
        return np.flatnonzero(mask)

    def session_counts(self) -> dict[str, int]:
        """Each dataset's number of distinct sessions."""
        return {d: int(len(np.unique(self.sessions[self.dataset_index == i]))) for i, d in enumerate(self.datasets)}

    def subjects_of(self, dataset: str) -> list[int]:
        return [i for i, s in enumerate(self.subjects) if s.dataset == dataset]

    def subject_ids(self, names: Sequence[str] | None) -> list[int]:
        """Indices of the named subjects ('s01' or 'DEAP/s01'; all when None); unknown names list the known."""
        if not names:
            return list(range(len(self.subjects)))
        chosen: list[int] = []
        for name in names:
            matches = [i for i, key in enumerate(self.subjects) if name in (key.subject, str(key))]
            if not matches:
                known = [key.subject if len(self.datasets) == 1 else str(key) for key in self.subjects]
                raise DatasetError(f"no subject {name} among the loaded subjects: {', '.join(known)}")
            chosen += [m for m in matches if m not in chosen]
        return chosen

    def with_permuted_labels(self, subject_ids: Sequence[int], salt: int, replicate: int,
                             windows: np.ndarray | None = None) -> "FeatureSet":
        """A copy whose labels are shuffled across whole trials within each session of each of `subject_ids`
        (only among the trials with a window in `windows` when given: a fold's training side, when the test
        side holds other trials of the same subject).

        Replicate `replicate` of a permutation null: each (subject, session) is shuffled by its own generator,
        seeded by (salt, replicate, the subject's `stable_id`, session), so a subject's permuted labels are
        the same in every fold and seed, whichever other subjects are loaded. Each session keeps its class
        counts and every window its trial's (new) label; other subjects' labels, the test subject's
        included, are untouched; the feature array is shared, not copied.
        """
        labels = self.labels.copy()
        for subject in sorted(set(subject_ids)):
            rows, keys, per_trial, inverse = self._trials_of(subject)
            eligible = np.ones(len(keys), dtype=bool)
            if windows is not None:
                eligible[:] = False
                eligible[inverse[np.isin(rows, windows)]] = True
            for session in np.unique(keys[:, 0]):
                in_session = np.flatnonzero((keys[:, 0] == session) & eligible)
                rng = np.random.default_rng([salt, replicate, self.subjects[subject].stable_id, int(session)])
                per_trial[in_session] = rng.permutation(per_trial[in_session])
            labels[rows] = per_trial[inverse]
        return dataclasses.replace(self, labels=labels)

    def _trials_of(self, subject: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One subject's window rows, its (session, trial) keys in order, each trial's label, each row's trial."""
        rows = np.flatnonzero(self.subject_index == subject)
        keys, inverse = np.unique(np.stack([self.sessions[rows], self.trials[rows]], axis=1), axis=0,
                                  return_inverse=True)
        inverse = inverse.ravel()
        per_trial = np.zeros(len(keys), dtype=self.labels.dtype)
        per_trial[inverse] = self.labels[rows]
        if (per_trial[inverse] != self.labels[rows]).any():
            raise ValueError(f"{self.subjects[subject]}: windows of one trial carry different labels; "
                             "a permutation of whole trials needs labels per trial")
        return rows, keys, per_trial, inverse

    def label_hash(self, windows: np.ndarray) -> str:
        """Short hash of the labels of `windows`: tells apart the label sets that models were trained on."""
        return _short_hash(self.labels[np.sort(windows)])

    def subject_label_hashes(self, subject_ids: Sequence[int]) -> dict[str, str]:
        """Per subject ('DEAP/s01'), a short hash of its per-trial labels in (session, trial) order."""
        return {str(self.subjects[s]): _short_hash(self._trials_of(s)[2]) for s in sorted(set(subject_ids))}

    def without(self, excluded: Sequence[int]) -> "FeatureSet":
        """A copy holding no window of the excluded subjects (e.g. test subjects kept out of a search)."""
        keep = [i for i in range(len(self.subjects)) if i not in set(excluded)]
        remap = np.full(len(self.subjects), -1, dtype=np.int32)
        remap[keep] = np.arange(len(keep), dtype=np.int32)
        rows = self.windows_of(keep)
        return dataclasses.replace(
            self, features=np.ascontiguousarray(self.features[rows]), labels=self.labels[rows],
            subject_index=remap[self.subject_index[rows]], trials=self.trials[rows], sessions=self.sessions[rows],
            stimulus=self.stimulus[rows] if len(self.stimulus) else self.stimulus,
            subjects=[self.subjects[i] for i in keep],
            datasets=[d for d in self.datasets if any(self.subjects[i].dataset == d for i in keep)])


def select_channels(config: DataConfig, readers: Sequence[Reader]) -> tuple[str, ...]:
    """The channels fed to the model: all of one dataset's, or the 10-20 names common to all.

    'auto' keeps every channel of a single dataset and uses the common set (matched by upper-case
    name, sorted alphabetically) when several datasets are trained on together.
    """
    if config.channels == "all" and len(readers) > 1:
        raise DatasetError("data.channels='all' needs a single dataset: "
                           f"{[r.name for r in readers]} have different channel sets; use 'common'")
    if len(readers) == 1 and config.channels != "common":
        return tuple(c.upper() for c in readers[0].channel_names)
    common = set.intersection(*(set(c.upper() for c in r.channel_names) for r in readers))
    if not common:
        raise DatasetError(f"datasets {[r.name for r in readers]} share no channel name")
    return tuple(sorted(common))


def open_readers(config: DataConfig) -> list[Reader]:
    """One reader per selected dataset, at the root the config names for it."""
    return [get_reader(name, find_dataset_root(name, config.root_for(name)), **config.reader_options(name))
            for name in config.datasets]


@dataclass(frozen=True)
class SubjectJob:
    """Everything one process needs to build (or load) one subject's features."""

    dataset: str
    root: str
    reader_options: dict[str, Any]
    subject: str
    channels: tuple[str, ...]
    window_seconds: float
    window_overlap: float
    representation: Representation
    filters: dict[str, Any]
    cache_dir: str | None

    def cache_key(self, reader: Reader) -> str:
        """Identity of this subject's features: source files (path, size, mtime), options, parameters."""
        files = []
        for path in reader.source_files(self.subject):
            stat = Path(path).stat()
            files.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
        blob = json.dumps({"format": CACHE_FORMAT, "dataset": self.dataset, "subject": self.subject,
                           "reader": reader.options(), "files": files, "channels": self.channels,
                           "window": [self.window_seconds, self.window_overlap],
                           **self.representation.cache_fields(), "filters": self.filters,
                           **({"module": USER_DATASETS[self.dataset]} if self.dataset in USER_DATASETS else {})},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


def trial_features(job: SubjectJob, reader: Reader) -> Iterator[SubjectFeatures]:
    """One subject's features a trial at a time: each trial is read, filtered, windowed and transformed in turn, so
    only one trial (one file, for readers that stream) of recording is held alongside the features made so far."""
    made, skipped = False, 0
    for trial in reader.iter_trials(job.subject):
        names = [c.upper() for c in trial.channel_names]
        picked = trial.signal[[names.index(c) for c in job.channels]]
        where = f"{job.dataset} subject {job.subject} trial {trial.trial}"
        try:
            picked = zero_phase_filter(picked, trial.sampling_rate, **job.filters)
        except ValueError as exc:  # e.g. a trial shorter than the filter's padding
            raise DatasetError(f"{where}: cannot filter with {job.filters}: {exc}") from exc
        try:
            cut = job.representation.windows(picked, trial.sampling_rate, job.window_seconds, job.window_overlap)
            if trial.baseline is not None and len(cut):
                baseline = zero_phase_filter(trial.baseline[[names.index(c) for c in job.channels]],
                                             trial.sampling_rate, **job.filters)
                cut = cut - job.representation.baseline_reference(baseline, trial.sampling_rate).astype(np.float32)
        except ValueError as exc:
            raise DatasetError(f"{where} ({job.representation.name} features, channels {job.channels}): {exc}") from exc
        if len(cut) == 0:
            skipped += 1
            continue
        made, n = True, len(cut)
        yield SubjectFeatures(features=cut, labels=np.full(n, trial.label, dtype=np.int64),
                              trials=np.full(n, trial.trial, dtype=np.int32),
                              sessions=np.full(n, int(trial.session), dtype=np.int16),
                              stimulus=np.full(n, trial.stimulus or reader.stimulus(int(trial.session), trial.trial)))
    if skipped:
        log.warning("%s subject %s: %d trial(s) shorter than the %.3g s window were skipped",
                    job.dataset, job.subject, skipped, job.window_seconds)
    if not made:
        raise DatasetError(f"{job.dataset} subject {job.subject}: no trial is at least "
                           f"{job.window_seconds:g} s long (files: {reader.source_files(job.subject)})")


def compute_subject(job: SubjectJob, reader: Reader) -> SubjectFeatures:
    """All windows of one subject in memory (no cache)."""
    parts = list(trial_features(job, reader))
    return SubjectFeatures(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS})


def _entry_dir(job: SubjectJob, key: str) -> Path:
    return Path(job.cache_dir) / job.dataset / f"{job.subject}-{key}"


def _load_entry(entry: Path) -> SubjectFeatures | None:
    """A cache entry's arrays (memory-mapped), or None when it is missing or fails its checks."""
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if "stimulus" not in meta:  # written before stimulus ids were cached: the same key, rebuilt whole
            log.info("cache entry %s predates cached stimulus ids; rebuilding it", entry)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        arrays = {}
        for name in _ARRAYS:
            array = np.load(entry / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if list(array.shape) != meta[name]["shape"] or str(array.dtype) != meta[name]["dtype"]:
                raise ValueError(f"{name}.npy has shape {array.shape} {array.dtype}, meta says {meta[name]}")
            arrays[name] = array
        return SubjectFeatures(**arrays)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("STFT cache entry %s is corrupt (%s); rebuilding it", entry, exc)
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _store_entry(entry: Path, parts: Iterable[SubjectFeatures]) -> None:
    """Write a subject's trials into a temporary folder as they are computed (the features appended to their .npy, whose
    header is rewritten with the final count at the end), then rename the folder into place (atomic; a whole entry
    another process put there meanwhile is kept)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        columns: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS[1:]}
        header: dict[str, Any] = {}
        with open(tmp / "features.npy", "wb") as file:
            for part in parts:
                if not header:
                    header = {"descr": np.lib.format.dtype_to_descr(part.features.dtype), "fortran_order": False,
                              "shape": (0, *part.features.shape[1:])}
                    np.lib.format.write_array_header_1_0(file, header)
                    data_start = file.tell()
                file.write(np.ascontiguousarray(part.features, dtype=np.dtype(header["descr"])).data)
                header["shape"] = (header["shape"][0] + len(part.features), *header["shape"][1:])
                for name in columns:
                    columns[name].append(getattr(part, name))
            file.seek(0)
            np.lib.format.write_array_header_1_0(file, header)  # numpy pads the header so the count can grow in place
            if file.tell() != data_start:
                raise OSError(f"{tmp / 'features.npy'}: the rewritten .npy header changed length")
        meta = {"features": {"shape": list(header["shape"]), "dtype": str(np.dtype(header["descr"]))}}
        for name, arrays in columns.items():
            array = np.concatenate(arrays)
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            meta[name] = {"shape": list(array.shape), "dtype": str(array.dtype)}
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, entry)  # fails onto a non-empty folder: an entry is there already
        except OSError:
            if _load_entry(entry) is not None:  # another process stored it while this one computed: keep theirs,
                return                          # which it may be reading (deleting it first broke that reader)
            shutil.rmtree(entry, ignore_errors=True)  # broken: put this one in its place
            os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_subject(job: SubjectJob) -> SubjectFeatures | str:
    """Features of one subject: from the cache when valid, else computed (and cached).

    With a cache the entry's folder is returned (its arrays are read from it when the feature set is put together).
    """
    reader = get_reader(job.dataset, job.root, **job.reader_options)
    if job.cache_dir is None:
        return compute_subject(job, reader)
    entry = _entry_dir(job, job.cache_key(reader))
    if _load_entry(entry) is None:
        _store_entry(entry, trial_features(job, reader))
    return str(entry)


def _stacked(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The subjects' feature arrays one after another in a new array; a memory-mapped cache file is read straight into
    its rows, so its pages never count as this process's memory on top of the copy (peak: the feature set once)."""
    out = np.empty((sum(len(p) for p in parts), *parts[0].shape[1:]), dtype=np.result_type(*parts))
    start = 0
    for part in parts:
        rows = out[start:start + len(part)]
        start += len(part)
        if not (isinstance(part, np.memmap) and part.dtype == out.dtype and part.flags.c_contiguous):
            rows[...] = part
            continue
        with open(part.filename, "rb") as file:
            file.seek(part.offset)
            if file.readinto(rows.reshape(-1).view(np.uint8)) != rows.nbytes:
                raise DatasetError(f"STFT cache file {part.filename} is shorter than its header says")
    return out


def _materialise(result: SubjectFeatures | str) -> SubjectFeatures:
    if isinstance(result, SubjectFeatures):
        return result
    loaded = _load_entry(Path(result))
    if loaded is None:
        raise DatasetError(f"STFT cache entry {result} vanished or broke while being read")
    return loaded


def resolved_representation(config: DataConfig, model_representation: str | None = None) -> str:
    """`data.representation`, or for 'auto' the model's declared one ('stft' when it declares none)."""
    return config.representation if config.representation != "auto" else (model_representation or "stft")


def build_feature_set(config: DataConfig, n_jobs: int | None = None, representation: str | None = None) -> FeatureSet:
    """Read, window and transform every selected subject, `n_jobs` subjects at a time.

    `representation` is the resolved one (see `resolved_representation`); by default the config's.
    """
    readers = open_readers(config)
    channels = select_channels(config, readers)
    rates = [config.sampling_rate(r.name) for r in readers]
    chosen = REPRESENTATIONS[representation or resolved_representation(config)].configured(config, rates)
    released = [r.name for r in readers if config.delivers_de(r.name)]
    if released and chosen.name != "de":
        raise ConfigError(f"config key {config.option_key(released[0], 'source')} = 'released' gives {released[0]}'s "
                          f"differential-entropy frames, which the '{chosen.name}' representation cannot take: expected "
                          "a model on 'de' (dgcnn, de_logreg, de_svm) or the source 'raw'")
    cache_dir = os.path.join(os.path.expanduser(config.cache_dir), "features") if config.cache_stft else None
    jobs, subjects = [], []
    for reader in readers:
        names = reader.subjects()
        if not names:
            raise DatasetError(f"{reader.name}: no subject files found under {reader.root}")
        for subject in names[: config.max_subjects or None]:
            subjects.append(SubjectKey(reader.name, subject))
            jobs.append(SubjectJob(dataset=reader.name, root=str(reader.root),
                                   reader_options=config.reader_options(reader.name), subject=subject,
                                   channels=channels, window_seconds=config.window_seconds,
                                   window_overlap=config.window_overlap, representation=chosen,
                                   filters=config.signal_filters(reader.name), cache_dir=cache_dir))
    by_name = {r.name: r for r in readers}
    fingerprint = hashlib.sha256(" ".join(job.cache_key(by_name[job.dataset]) for job in jobs).encode()).hexdigest()
    per_subject = [_materialise(r) for r in _run_jobs(jobs, n_jobs)]
    frequencies = check_grids(readers, chosen, rates)
    shapes = {s.features.shape[1:] for s in per_subject}
    if len(shapes) != 1:
        raise DatasetError(f"feature shapes differ between subjects/datasets: {sorted(shapes)}; "
                           f"window and {chosen.name} settings must give one {chosen.layout}")
    synthetic = any(r.synthetic for r in readers)
    stimulus = [np.char.add(f"{key.dataset}/", np.asarray(s.stimulus)) for key, s in zip(subjects, per_subject)]
    return FeatureSet(
        features=_stacked([s.features for s in per_subject]),
        labels=np.concatenate([s.labels for s in per_subject]),
        subject_index=np.concatenate([np.full(len(s.labels), i, dtype=np.int32)
                                      for i, s in enumerate(per_subject)]),
        trials=np.concatenate([s.trials for s in per_subject]),
        sessions=np.concatenate([s.sessions for s in per_subject]),
        subjects=subjects, datasets=[r.name for r in readers], channel_names=channels,
        frequencies=frequencies, n_classes=readers[0].n_classes, class_names=readers[0].class_names,
        synthetic=synthetic, representation=chosen.name, stimulus=np.concatenate(stimulus),
        sampling_rate=float(chosen.time_rate(min(rates))),
        protocol={"datasets": {r.name: {"root": str(r.root), "labels": r.label_description(),
                                        "class_names": list(r.class_names),
                                        "options": r.options(), "synthetic": r.synthetic,
                                        "stimulus": r.stimulus_statement(),
                                        **({"module": USER_DATASETS[r.name]} if r.name in USER_DATASETS else {})}
                               for r in readers},
                  "channels": list(channels), "window_seconds": config.window_seconds,
                  "window_overlap": config.window_overlap, **chosen.cache_fields(),
                  "representation": chosen.describe(),
                  "passband_notes": passband_notes(chosen, {r.name: r.passband_hz for r in readers if r.passband_hz}),
                  "data_fingerprint": fingerprint[:16]},
    )


def check_grids(readers: Sequence[Reader], representation: Representation, rates: Sequence[float]) -> np.ndarray:
    """The representation's grid (STFT frequencies, band edges) every dataset shares; the one that differs is named."""
    grids = [(r.name, rate, representation.grid(rate)) for r, rate in zip(readers, rates)]
    first, first_rate, reference = grids[0]
    for name, rate, grid in grids[1:]:
        if grid.shape != reference.shape or not np.allclose(grid, reference, rtol=0, atol=1e-6):
            shown = lambda g: f"{len(g)} bins, {np.round(g[:3], 3).tolist()}... Hz"  # noqa: E731
            raise DatasetError(f"{name}'s STFT frequency grid at {rate:g} Hz ({shown(grid)}) differs from {first}'s at "
                               f"{first_rate:g} Hz ({shown(reference)}); choose data.stft_window_seconds so that "
                               "rate x window is a whole number of samples at both rates (e.g. 0.5 or 1.0 s)")
    return reference


def _run_jobs(jobs: list[SubjectJob], n_jobs: int | None) -> list[SubjectFeatures | str]:
    """Build subjects on `n_jobs` threads (default: one per core).

    Threads, not processes: the FFT, log and file I/O release the GIL, and threads need no
    `if __name__ == "__main__"` guard in user scripts nor a fork beside torch or Ray threads.
    """
    n_jobs = min(len(jobs), n_jobs or os.cpu_count() or 1)
    if n_jobs <= 1:
        return [build_subject(job) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(n_jobs) as pool:
        return list(pool.map(build_subject, jobs))
