"""Dataset names -> readers, finding each dataset's folder under a common data root, and a user's own datasets.

Each dataset is one module with one `Reader` subclass (see `base` for the contract, and why a reader module
imports its file library inside its read functions); this registry lists them.
`register_dataset_module(path)` adds the readers a user's file defines (`--dataset-module`).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import types
from pathlib import Path
from typing import Any

from .base import DatasetError, Reader, is_synthetic
from .amigos import AMIGOSReader
from .deap import DEAPReader
from .dreamer import DREAMERReader
from .faced import FACEDReader
from .gameemo import GAMEEMOReader
from .mahnob import MAHNOBReader
from .seed import SEEDReader
from .seediv import SEEDIVReader

READERS: dict[str, type[Reader]] = {reader.name: reader for reader in (DEAPReader, SEEDIVReader, GAMEEMOReader,
                                                                        SEEDReader, DREAMERReader, AMIGOSReader,
                                                                        FACEDReader, MAHNOBReader)}
DATASET_NAMES: list[str] = list(READERS)
"""Registered names, in registration order (a user's datasets join at the end)."""
USER_DATASETS: dict[str, dict[str, str]] = {}
"""A user's dataset name -> the `path` of the module defining it and its `source_sha256` (cache keys, run.json)."""

__all__ = ["DATASET_NAMES", "READERS", "canonical_name", "get_reader", "find_dataset_root", "is_synthetic",
           "register_dataset_module", "add_dataset_module_argument", "register_dataset_modules"]


def _normalise(name: str) -> str:
    """Upper-case without separators, so 'seed-iv', 'SEED_IV' and 'SEEDIV' compare equal."""
    return "".join(ch for ch in str(name).upper() if ch not in "-_ ")


def canonical_name(name: str) -> str:
    """The registered name for any spelling of a dataset's name or alias; unknown names list the known ones."""
    normalised = _normalise(name)
    for reader in READERS.values():
        if normalised in {_normalise(n) for n in (reader.name, *reader.aliases)}:
            return reader.name
    raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")


def get_reader(name: str, root: str | Path, **options: Any) -> Reader:
    """Build the reader of that dataset on root with its options (see each reader for the option names)."""
    reader = READERS[canonical_name(name)]
    allowed = [p for p in inspect.signature(reader.__init__).parameters if p not in ("self", "root")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(f"{reader.name}: unknown option(s) {unknown}; allowed options: {allowed}")
    return reader(root, **options)


def find_dataset_root(name: str, data_root: str | Path) -> Path:
    """The dataset's folder: data_root itself if it is one, else its child named like the dataset (any case)."""
    reader = READERS[canonical_name(name)]
    names = {_normalise(n) for n in (reader.name, *reader.aliases)}
    data_root = Path(data_root)
    if data_root.is_dir():
        if reader.looks_like(data_root):
            return data_root
        for child in sorted(data_root.iterdir()):
            if child.is_dir() and _normalise(child.name) in names and reader.looks_like(child):
                return child
    tried = [str(data_root)] + [str(data_root / alias) for alias in (reader.name, *reader.aliases)]
    raise DatasetError(f"{reader.name}: expected the dataset folder at one of {tried} (any case), found none with "
                       "its files; point data.data_root (--data-root) at your copy, or use --synthetic")


def register_dataset_module(path: str | Path) -> list[str]:
    """Run a user's dataset file and register every Reader subclass it defines; their names.

    The file is the user's own code, chosen to run (as a model file is); its path and SHA-256 are kept in
    `USER_DATASETS`. Registering the same file again replaces its readers.
    """
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"--dataset-module {path}: cannot read it: {exc}") from exc
    sha = hashlib.sha256(text.encode()).hexdigest()
    module = types.ModuleType(f"gru_xnet_user_dataset_{sha[:12]}")
    module.__file__ = str(path)
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)  # noqa: S102 - the user's own dataset file
    except Exception as exc:  # a user's file may fail in any way: name it and the error
        raise DatasetError(f"--dataset-module {path}: running it failed: {type(exc).__name__}: {exc}") from exc
    readers = [value for value in vars(module).values()
               if isinstance(value, type) and issubclass(value, Reader) and value.__module__ == module.__name__]
    if not readers:
        raise DatasetError(f"--dataset-module {path}: expected a subclass of gru_xnet.datasets.Reader, found none")
    for reader in readers:
        built_in = reader.name in READERS and READERS[reader.name].__module__.startswith(__package__ + ".")
        if not reader.name or built_in:
            raise DatasetError(f"--dataset-module {path}: {reader.__name__}.name = {reader.name!r}: expected a new "
                               f"name, not one of {', '.join(DATASET_NAMES)}")
        READERS[reader.name] = reader
        USER_DATASETS[reader.name] = {"path": str(path), "source_sha256": sha}
        if reader.name not in DATASET_NAMES:
            DATASET_NAMES.append(reader.name)
    return [reader.name for reader in readers]


def add_dataset_module_argument(parser: argparse.ArgumentParser) -> None:
    """`--dataset-module FILE.py` (repeatable) on a command line; `register_dataset_modules` reads what it got."""
    parser.add_argument("--dataset-module", action="append", default=[], metavar="FILE.py",
                        help="a file defining your own dataset (a gru_xnet.datasets.Reader subclass); repeatable")


def register_dataset_modules(paths: list[str]) -> None:
    """Register every `--dataset-module` file, before any config naming its datasets is read."""
    for path in paths:
        register_dataset_module(path)
