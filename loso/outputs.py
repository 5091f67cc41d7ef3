"""A LOSO run folder: where each result lives, the manifest that guards it, and reading results back.

```
<out>/run.json                                  what was run (protocol, seeds, config, permutation scheme, provenance)
<out>/folds/<fold_id>.json                      a fold trained on the real labels
<out>/permutations/<fold_id>-perm<k>.json       the k-th permutation-null retraining of that fold
<out>/failed/<job_id>.json                      a fold job that failed past its retries
<out>/certificate.json                          the leakage checks the run made on its plan and results
<out>/timings.json                              seconds per stage of the last invocation (features, Ray, writing, ...)
<out>/.lock                                     host and pid of the loso.run writing this folder
```
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from gru_xnet.config import ConfigError, write_text_atomic
from loso.protocol import with_legacy_keys

log = logging.getLogger("loso")

RESUME_KEYS = ("config_hash", "data_fingerprint", "split", "split_validation", "protocol", "sessions", "datasets",
               "labels", "synthetic", "seeds", "tuned_on", "model_source_sha256", "model.params", "model.decision")
"""What must match between run.json and a new invocation for their folds to share one folder and one table
('model.*': the model record's parameters as used, e.g. EEGNet's kernels at the data's rate, and how its class
scores are read)."""
LEGACY_MODEL = {"decision": "probability"}
"""A model record's entries in runs from before they were recorded (every model, de_svm with Platt scaling
included, then decided by probabilities)."""


def result_path(out: Path, fold_id: str, variant: int) -> Path:
    """Where the result of one label variant of a fold is written (variant 0: the real labels)."""
    if variant == 0:
        return out / "folds" / f"{fold_id}.json"
    return out / "permutations" / f"{fold_id}-perm{variant:03d}.json"


def load_results(out: Path) -> tuple[list[dict], list[dict]]:
    """(observed results, permutation-null results) of a run folder in file-name order, a subject tested in several
    folds pooled into one record (`loso.pooling`)."""
    from loso.pooling import pool_subjects  # scipy (its metrics) loads when results are read, not with the commands

    read = lambda folder: [json.loads(p.read_text()) for p in sorted((out / folder).glob("*.json"))]  # noqa: E731
    return pool_subjects(read("folds")), pool_subjects(read("permutations"))


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_output(out: Path, manifest: dict, resume: bool) -> None:
    """Refuse to mix results of different protocols, seeds or data, or to overwrite finished folds without --resume."""
    path = out / "run.json"
    if path.exists():
        previous = json.loads(path.read_text())
        old, now = _resume_values(previous), _resume_values(manifest)
        changed = [k for k in RESUME_KEYS if old[k] != now[k]]
        if changed:
            why = " (its data files changed since)" if "data_fingerprint" in changed else ""
            details = "; ".join(f"{k}: {_shown(old[k])} there, {_shown(now[k])} now" for k in changed)
            raise ConfigError(f"{out} holds a LOSO run with a different {', '.join(changed)}{why} ({details}); "
                              "its folds cannot be mixed with this run's: use another --output")
        _check_permutation_scheme(out, previous, manifest)
        done = list((out / "folds").glob("*.json"))
        if done and not resume:
            raise ConfigError(f"{out} already has {len(done)} finished fold(s); pass --resume to run "
                              "only the missing ones, or choose another --output")
    write_text_atomic(path, json.dumps(manifest, indent=2))


def _resume_values(manifest: dict) -> dict:
    """The RESUME_KEYS of a run.json or manifest, older ones read with their legacy defaults."""
    values = with_legacy_keys(manifest)
    model = {**LEGACY_MODEL, **(values.get("model") or {})}
    return {key: model.get(key.split(".", 1)[1]) if key.startswith("model.") else values.get(key)
            for key in RESUME_KEYS}


def _check_permutation_scheme(out: Path, old: dict, manifest: dict) -> None:
    """Refuse to add permutation replicates to ones drawn by another scheme: their null would be a mixture."""
    drawn = any((out / "permutations").glob("*.json"))
    if not drawn or old.get("permutation_scheme") == manifest["permutation_scheme"]:
        return
    raise ConfigError(
        f"{out} holds permutation results of permutation scheme {old.get('permutation_scheme', 1)}, which cannot be "
        f"mixed with this version's scheme {manifest['permutation_scheme']} (replicate k is one relabelled dataset "
        "shared by every fold and seed; scheme 1 relabelled each fold and seed apart, a null too narrow with several "
        f"seeds): delete {out / 'permutations'} and run again with --resume to redraw the null (the observed folds "
        "are kept), or use another --output")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold `<out>/.lock` while this process writes the folder; refuse a folder another live run holds.

    A lock left by a process that is gone from this host (killed with SIGKILL, say) is taken over with a
    warning, so `--resume` still works; a lock from another host is refused, as its process cannot be checked.
    """
    path = out / ".lock"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output folder {out}: {exc.strerror or exc}") from exc
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except PermissionError as exc:
            raise ConfigError(f"cannot write in the output folder {out}: {exc.strerror}") from exc
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}
            if holder.get("host") == mine["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
                log.warning("WARNING: %s was locked by pid %s on this host, which is gone; taking the lock over",
                            out, holder["pid"])
                path.unlink(missing_ok=True)
                continue
            raise ConfigError(f"{out} is in use by another loso.run (host {holder.get('host', '?')}, pid "
                              f"{holder.get('pid', '?')}, since {holder.get('since', '?')}); wait for it to finish, or "
                              f"use another --output (if that run is gone, delete {path})")
        with os.fdopen(fd, "w") as fh:
            json.dump(mine, fh)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)

