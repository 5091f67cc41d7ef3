"""Folds and fold jobs: what one training holds out (its test subjects, scored each on its own) and the label
variants one worker group trains for it. How folds are planned is a split's (`loso.splits`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from gru_xnet.split import Split

PROTOCOLS = ("within", "joint")
SESSIONS = ("pooled", "separate")
WITHIN_SUBJECT_VALIDATION = ("none", "trials")
"""`--within-subject-validation`: none (the papers' rule: every training trial trains, nothing is chosen on held-out
trials of the test subject) or trials (a seeded ~20 % of the training trials validates)."""
OBSERVED = 0
"""Variant 0 of a fold trains on the real labels; variant k > 0 on replicate k of the permutation null."""


@dataclass(frozen=True)
class Fold:
    """One training and its test: the test subjects ('DATASET/subject', each scored and saved on its own), the
    session it is restricted to (None: all), its seed and its split."""

    fold_id: str
    tests: tuple[str, ...]
    session: int | None
    seed: int
    split: Split

    def result_id(self, test: str) -> str:
        """The name of one test subject's result file: the fold's own id when it tests one subject."""
        return self.fold_id if len(self.tests) == 1 else f"{self.fold_id}-{test.replace('/', '-')}"

    @property
    def result_ids(self) -> list[str]:
        return [self.result_id(test) for test in self.tests]

    def record(self, test: str) -> dict:
        """The `fold` entry of a test subject's result file: the aggregator's unit (dataset, subject, session, seed)."""
        dataset, subject = test.split("/", 1)
        return {"fold_id": self.result_id(test), "dataset": dataset, "subject": subject, "session": self.session,
                "seed": self.seed, "split": asdict(self.split), "trained_as": self.fold_id}


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
