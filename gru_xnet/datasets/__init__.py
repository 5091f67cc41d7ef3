"""Dataset readers (DEAP, SEED-IV, GAMEEMO) behind one registry, and the synthetic generator writing their formats."""

from .base import DatasetError, Reader, Trial
from .registry import DATASET_NAMES, canonical_name, find_dataset_root, get_reader, is_synthetic


__all__ = [
    "Trial", "Reader", "DatasetError", "DATASET_NAMES", "canonical_name", "get_reader", "find_dataset_root",
    "is_synthetic", "write_synthetic",
]


def __getattr__(name: str):
    """Import the generator lazily, so `python -m gru_xnet.datasets.synthetic` runs it once, cleanly."""
    if name == "write_synthetic":
        from .synthetic import write_synthetic

        return write_synthetic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
