"""The LOSO plan: one fold per held-out subject (and seed), with validation subjects drawn from the
training subjects only, so the held-out subject is touched once, for the test."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from gru_xnet.data_loader import Split, validation_subjects
from gru_xnet.features import FeatureSet
from loso.training import OBSERVED

PROTOCOLS = ("within", "joint")
SEEDIV_SESSIONS = ("pooled", "separate")


@dataclass(frozen=True)
class Fold:
    """One held-out subject (one SEED-IV session of it with 'separate'), one seed, and its split."""

    fold_id: str
    dataset: str
    subject: str
    session: int | None
    seed: int
    split: Split

    def to_dict(self) -> dict:
        return asdict(self)


def plan_folds(features: FeatureSet, *, protocol: str = "within", seediv_sessions: str = "pooled",
               seeds: Sequence[int] = (0,), subjects: Sequence[str] | None = None,
               val_fraction: float = 0.2) -> list[Fold]:
    """Every selected subject held out once per seed.

    within: train on the other subjects of the same dataset; joint: on the other subjects of every
    selected dataset. SEED-IV 'pooled' holds out all three sessions of a subject together;
    'separate' runs one LOSO per session (training on that session of the other subjects).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: expected one of {PROTOCOLS}")
    if seediv_sessions not in SEEDIV_SESSIONS:
        raise ValueError(f"seediv_sessions={seediv_sessions!r}: expected one of {SEEDIV_SESSIONS}")
    if seediv_sessions == "separate" and protocol == "joint" and len(features.datasets) > 1:
        raise ValueError("seediv_sessions='separate' restricts training to one SEED-IV session; "
                         "combine it with protocol 'within', not 'joint'")
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    wanted = features.subject_ids(subjects)
    folds = []
    for seed in seeds:
        for test in wanted:
            key = features.subjects[test]
            pool = [i for i in range(len(features.subjects)) if i != test
                    and (protocol == "joint" or features.subjects[i].dataset == key.dataset)]
            if not pool:
                raise ValueError(f"{key}: no other subject to train on")
            sessions = ([None] if key.dataset != "SEEDIV" or seediv_sessions == "pooled"
                        else sorted({int(s) for s in features.sessions[features.windows_of([test])]}))
            for session in sessions:
                train, val = validation_subjects(features, pool, val_fraction, seed=[seed, test])
                session_tag = f"-session{session}" if session is not None else ""
                folds.append(Fold(
                    fold_id=f"{key.dataset}-{key.subject}{session_tag}-seed{seed}", dataset=key.dataset,
                    subject=key.subject, session=session, seed=seed,
                    split=Split(train, val, (test,), None if session is None else (session,))))
    return folds



VARIANTS_PER_JOB = 20
"""Label variants (the real labels and permutations) one fold job trains in turn."""


@dataclass(frozen=True)
class FoldJob:
    """One fold's label variants that one worker group trains in turn (0 = the real labels)."""

    fold: Fold
    variants: tuple[int, ...]

    @property
    def job_id(self) -> str:
        if self.variants == (OBSERVED,):
            return self.fold.fold_id
        return f"{self.fold.fold_id}-variants{self.variants[0]:03d}-{self.variants[-1]:03d}"


def plan_jobs(folds: list[Fold], permutations: int, done: Callable[[Fold, int], bool]) -> list[FoldJob]:
    """The variants not `done` yet, in jobs of at most VARIANTS_PER_JOB; every fold's first job first."""
    chunks = []
    for fold in folds:
        missing = [v for v in range(permutations + 1) if not done(fold, v)]
        chunks += [(i, FoldJob(fold, tuple(missing[i:i + VARIANTS_PER_JOB])))
                   for i in range(0, len(missing), VARIANTS_PER_JOB)]
    return [job for _, job in sorted(chunks, key=lambda chunk: chunk[0])]
