"""Restricted unpickling for DEAP's .dat and FACED's .pkl files: numpy arrays and plain containers only, no code."""

from __future__ import annotations

import builtins
import codecs
import importlib
import io
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import DatasetError

_LATIN1_NAMES = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"}


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for `_codecs.encode`, which Python 3 protocol-2 pickles use for bytes; latin1 only."""
    if not isinstance(text, str) or encoding.lower() not in _LATIN1_NAMES:
        raise pickle.UnpicklingError(f"_codecs.encode refused for encoding {encoding!r}")
    return codecs.encode(text, "latin1", errors)


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    """The only globals a DEAP pickle may name: numpy array reconstruction and plain container types."""
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:
        multiarray = importlib.import_module("numpy.core.multiarray")
    allowed: dict[tuple[str, str], Callable[..., Any]] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    try:
        numeric = importlib.import_module("numpy._core.numeric")
    except ImportError:
        numeric = importlib.import_module("numpy.core.numeric")
    for module in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol-5 pickles: an array from its bytes
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    for module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "ndarray")] = np.ndarray
        allowed[(module, "dtype")] = np.dtype
    for module in ("builtins", "__builtin__"):
        for name in ("list", "dict", "tuple", "set", "frozenset", "bytearray", "complex"):
            allowed[(module, name)] = getattr(builtins, name)
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


ALLOWED_GLOBALS = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose find_class resolves only ALLOWED_GLOBALS and refuses everything else."""

    def __init__(self, file: io.BufferedIOBase, source: Path) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return an allow-listed global; refuse any other with an error naming the file and the global."""
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self.source}: refused to load global {module}.{name} from the pickle; only numpy "
                f"arrays and plain containers are allowed"
            ) from None


def load_pickle(path: str | Path) -> Any:
    """Load a (Python-2, latin1) pickle safely; truncated or malformed files raise DatasetError naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return RestrictedUnpickler(handle, path).load()
    except DatasetError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OSError) as exc:
        raise DatasetError(
            f"{path}: expected a complete pickle of numpy arrays, found an unreadable or truncated "
            f"file ({type(exc).__name__}: {exc})"
        ) from exc
