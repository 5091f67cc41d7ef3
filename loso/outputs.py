"""A LOSO run folder: where each result lives, the manifest that guards it, and reading results back.

```
<out>/run.json                                  what was run (protocol, seeds, config, provenance)
<out>/folds/<fold_id>.json                      a fold trained on the real labels
<out>/permutations/<fold_id>-perm<k>.json       the k-th permutation-null retraining of that fold
<out>/failed/<job_id>.json                      a fold job that failed past its retries
```
"""

from __future__ import annotations

import json
from pathlib import Path

from gru_xnet.config import ConfigError, write_text_atomic

RESUME_KEYS = ("config_hash", "data_fingerprint", "protocol", "seediv_sessions", "datasets", "labels", "synthetic",
               "seeds", "tuned_on")
"""What must match between run.json and a new invocation for their folds to share one folder and one table."""


def result_path(out: Path, fold_id: str, variant: int) -> Path:
    """Where the result of one label variant of a fold is written (variant 0: the real labels)."""
    if variant == 0:
        return out / "folds" / f"{fold_id}.json"
    return out / "permutations" / f"{fold_id}-perm{variant:03d}.json"


def load_results(out: Path) -> tuple[list[dict], list[dict]]:
    """(observed fold results, permutation-null results) of a run folder, in file-name order."""
    read = lambda folder: [json.loads(p.read_text()) for p in sorted((out / folder).glob("*.json"))]  # noqa: E731
    return read("folds"), read("permutations")


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_output(out: Path, manifest: dict, resume: bool) -> None:
    """Refuse to mix results of different protocols, seeds or data, or to overwrite finished folds without --resume."""
    path = out / "run.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = [k for k in RESUME_KEYS if old.get(k) != manifest.get(k)]
        if changed:
            why = " (its data files changed since)" if "data_fingerprint" in changed else ""
            details = "; ".join(f"{k}: {_shown(old.get(k))} there, {_shown(manifest.get(k))} now" for k in changed)
            raise ConfigError(f"{out} holds a LOSO run with a different {', '.join(changed)}{why} ({details}); "
                              "its folds cannot be mixed with this run's: use another --output")
        done = list((out / "folds").glob("*.json"))
        if done and not resume:
            raise ConfigError(f"{out} already has {len(done)} finished fold(s); pass --resume to run "
                              "only the missing ones, or choose another --output")
    write_text_atomic(path, json.dumps(manifest, indent=2))
