"""Dataset names -> readers, and finding each dataset's folder under a common data root."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from .base import DatasetError, Reader, is_synthetic
from .deap import FILE_PATTERN as DEAP_FILE, DEAPReader
from .gameemo import SUBJECT_FOLDER, GAMEEMOReader
from .seediv import SESSION_LABELS, SEEDIVReader

DATASET_NAMES = ("DEAP", "SEEDIV", "GAMEEMO")
READERS: dict[str, type[Reader]] = {"DEAP": DEAPReader, "SEEDIV": SEEDIVReader, "GAMEEMO": GAMEEMOReader}

__all__ = ["DATASET_NAMES", "READERS", "canonical_name", "get_reader", "find_dataset_root", "is_synthetic"]


def _normalise(name: str) -> str:
    """Upper-case without separators, so 'seed-iv', 'SEED_IV' and 'SEEDIV' compare equal."""
    return "".join(ch for ch in str(name).upper() if ch not in "-_ ")


def canonical_name(name: str) -> str:
    """The canonical dataset name ('DEAP', 'SEEDIV', 'GAMEEMO') for any spelling; unknown names list the known ones."""
    normalised = _normalise(name)
    if normalised not in READERS:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")
    return normalised


def get_reader(name: str, root: str | Path, **options: Any) -> Reader:
    """Build the reader of that dataset on root with its options (see each reader for the option names)."""
    reader = READERS[canonical_name(name)]
    allowed = [p for p in inspect.signature(reader.__init__).parameters if p not in ("self", "root")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(f"{reader.name}: unknown option(s) {unknown}; allowed options: {allowed}")
    return reader(root, **options)


ALIASES = {"DEAP": ("DEAP",), "SEEDIV": ("SEEDIV", "SEED-IV", "SEED_IV"), "GAMEEMO": ("GAMEEMO",)}
"""Folder names tried under a common data root (any case; listed in errors)."""


def _looks_like(name: str, folder: Path) -> bool:
    """True when folder is that dataset's own folder (or its inner data folder)."""
    entries = [p.name for p in folder.iterdir()]
    if name == "DEAP":
        return "data_preprocessed_python" in entries or any(DEAP_FILE.match(e) for e in entries)
    if name == "SEEDIV":
        return "eeg_raw_data" in entries or all(s in entries for s in SESSION_LABELS)
    return any(SUBJECT_FOLDER.match(e) for e in entries)


def find_dataset_root(name: str, data_root: str | Path) -> Path:
    """The dataset's folder: data_root itself if it is one, else its child named like the dataset (any case)."""
    name = canonical_name(name)
    data_root = Path(data_root)
    if data_root.is_dir():
        if _looks_like(name, data_root):
            return data_root
        for child in sorted(data_root.iterdir()):
            if child.is_dir() and _normalise(child.name) == name and _looks_like(name, child):
                return child
    tried = [str(data_root)] + [str(data_root / alias) for alias in ALIASES[name]]
    raise DatasetError(f"{name}: expected the dataset folder at one of {tried} (any case), found none with its "
                       "files; point data.data_root (--data-root) at your copy, or use --synthetic")
