"""Checkpoints as plain data: weights, hyper-parameters, config and label mapping, loadable with
`torch.load(weights_only=True)` so opening one never runs code from the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "gru_xnet-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file is missing, truncated, or not a gru_xnet checkpoint."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus format tags) atomically: a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; raises CheckpointError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]  # torch's messages run to paragraphs
        raise CheckpointError(f"checkpoint {path} cannot be read as a weights-only torch file "
                              f"(truncated, corrupt, or holding code objects): {reason}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gru_xnet checkpoint: expected a dict with "
                              f"format={FORMAT!r}")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {data.get('version')!r}; "
                              f"this gru_xnet reads version {VERSION}")
    missing = [k for k in ("model_state", "config") if k not in data] + ([] if "model" in data or "hparams" in data
                                                                      else ["model or hparams"])
    if missing:
        raise CheckpointError(f"{path} lacks {missing}")
    return data
