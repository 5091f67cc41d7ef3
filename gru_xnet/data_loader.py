"""Features to torch: subject-wise splits, train-only normalisation, augmentation, balanced sharded sampling.

The single-process Trainer and the Ray worker both call `make_loaders`; the only difference is the
(rank, world_size) they pass, which shards the training epoch like a DistributedSampler would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gru_xnet.config import DataConfig
from gru_xnet.features import FeatureSet


@dataclass(frozen=True)
class Split:
    """Subject indices (into FeatureSet.subjects) on each side; never one subject on two sides.

    `sessions`, when set, restricts every side to those sessions (SEED-IV per-session LOSO).
    """

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    sessions: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        sides = [set(self.train), set(self.val), set(self.test)]
        if sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2]:
            raise ValueError(f"split puts a subject on two sides: {self}")
        if not self.train:
            raise ValueError("split has no training subject")

    def windows(self, features: FeatureSet, side: str) -> np.ndarray:
        return features.windows_of(getattr(self, side), self.sessions)


def _partition(subjects: Sequence[int], n_val: int, n_test: int, rng: np.random.Generator):
    order = [subjects[i] for i in rng.permutation(len(subjects))]
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def subject_split(features: FeatureSet, config: DataConfig, seed: int) -> Split:
    """Split each dataset's subjects by train/val/test ratios (at least one where a ratio is > 0)."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for dataset in features.datasets:
        subjects = features.subjects_of(dataset)
        n = len(subjects)
        n_test = max(1, round(config.test_ratio * n)) if config.test_ratio > 0 else 0
        n_val = max(1, round(config.val_ratio * n)) if config.val_ratio > 0 else 0
        if n - n_test - n_val < 1:
            raise ValueError(f"{dataset} has {n} subject(s): too few for train/val/test ratios "
                             f"{config.train_ratio}/{config.val_ratio}/{config.test_ratio}")
        tr, va, te = _partition(subjects, n_val, n_test, rng)
        train += tr
        val += va
        test += te
    return Split(tuple(sorted(train)), tuple(sorted(val)), tuple(sorted(test)))


def validation_subjects(features: FeatureSet, pool: Sequence[int], val_fraction: float,
                        seed: int | Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split a pool of training subjects into (train, val), per dataset, for early stopping."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for dataset in features.datasets:
        members = [s for s in pool if features.subjects[s].dataset == dataset]
        if not members:
            continue
        n_val = min(len(members) - 1, max(1, round(val_fraction * len(members)))) if val_fraction > 0 else 0
        tr, va, _ = _partition(members, n_val, 0, rng)
        train += tr
        val += va
    return tuple(sorted(train)), tuple(sorted(val))


@dataclass
class Normalizer:
    """Z-score per (channel, frequency), fitted on training windows only (no test-subject statistics)."""

    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=np.float32))

    @classmethod
    def fit(cls, features: np.ndarray, indices: np.ndarray, chunk: int = 512) -> "Normalizer":
        """Streaming mean/std over the chosen windows and their time frames."""
        total = np.zeros(features.shape[1:3], dtype=np.float64)
        squares = np.zeros_like(total)
        count = 0
        for start in range(0, len(indices), chunk):
            block = np.asarray(features[np.sort(indices[start:start + chunk])], dtype=np.float64)
            total += block.sum(axis=(0, 3))
            squares += (block ** 2).sum(axis=(0, 3))
            count += block.shape[0] * block.shape[3]
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean ** 2, 1e-12))
        return cls(mean.astype(np.float32)[..., None], std.astype(np.float32)[..., None])

    @classmethod
    def identity(cls) -> "Normalizer":
        return cls(np.zeros((1, 1, 1), dtype=np.float32), np.ones((1, 1, 1), dtype=np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random copy of a normalised window `(C, F, T)`, mimicking between-subject differences.

    A per-channel gain and a smooth per-frequency offset (shifts in log power), noise, and one time
    and one frequency mask. Feature-domain augmentation keeps copies free: nothing is stored.
    """
    c, f, t = x.shape
    spectral = np.convolve(rng.normal(0.0, 0.3, size=f + 4), np.ones(5) / 5, mode="valid")
    out = x + rng.normal(0.0, 0.3, size=(c, 1, 1)) + spectral[None, :, None]
    out = (out + rng.normal(0.0, 0.1, size=x.shape)).astype(np.float32)
    width = rng.integers(0, max(1, t // 4) + 1)
    start = rng.integers(0, t - width + 1)
    out[:, :, start:start + width] = 0.0
    width = rng.integers(0, max(1, f // 8) + 1)
    start = rng.integers(0, f - width + 1)
    out[:, start:start + width, :] = 0.0
    return out


class WindowDataset(Dataset):
    """Windows of a FeatureSet, normalised, with `n_augmented` extra seeded augmented copies.

    Items are `(x (C, F, T) float32, label, dataset index, window index)`; item i >= len(indices) is
    copy `i // len(indices)` of window `i % len(indices)`, the same every epoch and on every rank.
    """

    def __init__(self, features: FeatureSet, indices: np.ndarray, normalizer: Normalizer,
                 augmentation_ratio: float = 0.0, seed: int = 0):
        self.features = features
        self.indices = np.asarray(indices, dtype=np.int64)
        self.normalizer = normalizer
        self.n_augmented = int(round(augmentation_ratio * len(self.indices)))
        self.seed = seed
        self.dataset_index = features.dataset_index

    def __len__(self) -> int:
        return len(self.indices) + self.n_augmented

    def window_of(self, item: int) -> int:
        return int(self.indices[item % len(self.indices)])

    def __getitem__(self, item: int):
        window = self.window_of(item)
        x = self.normalizer(np.asarray(self.features.features[window], dtype=np.float32))
        if item >= len(self.indices):
            x = augment(x, np.random.default_rng([self.seed, item]))
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                int(self.features.labels[window]), int(self.dataset_index[window]), window)

    def groups(self) -> np.ndarray:
        """(dataset, class) group of every item, for balanced sampling."""
        windows = self.indices[np.arange(len(self)) % len(self.indices)]
        return self.dataset_index[windows] * self.features.n_classes + self.features.labels[windows]


class EpochSampler(Sampler[int]):
    """Per-epoch order of training items, optionally class- and dataset-balanced, sharded by rank.

    Balanced: every (dataset, class) group is drawn equally often (with replacement), so neither a
    majority class nor the largest dataset dominates. Every rank computes the same permutation from
    (seed, epoch) and takes every world_size-th item, as DistributedSampler does.
    """

    def __init__(self, groups: np.ndarray, *, balance: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.groups = np.asarray(groups)
        self.balance = balance
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.num_samples = math.ceil(len(self.groups) / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.groups)
        if self.balance:
            labels, counts = np.unique(self.groups, return_counts=True)
            weight = 1.0 / counts[np.searchsorted(labels, self.groups)]
            order = rng.choice(n, size=n, replace=True, p=weight / weight.sum())
        else:
            order = rng.permutation(n)
        total = self.num_samples * self.world_size
        order = np.concatenate([order, order[: total - n]])
        return iter(order[self.rank:total:self.world_size].tolist())


@dataclass
class Loaders:
    """The three loaders of one split plus what the model needs to know about the input."""

    train: DataLoader
    val: DataLoader | None
    test: DataLoader | None
    sampler: EpochSampler
    normalizer: Normalizer
    input_shape: tuple[int, int, int]
    n_classes: int


def make_loaders(features: FeatureSet, split: Split, config: DataConfig, *, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, pin_memory: bool = False) -> Loaders:
    """Training loader (augmented, balanced, sharded) and unsharded val/test loaders for a split."""
    train_idx = split.windows(features, "train")
    if len(train_idx) == 0:
        raise ValueError(f"split has no training windows (subjects {split.train})")
    normalizer = (Normalizer.fit(features.features, train_idx) if config.normalization == "train"
                  else Normalizer.identity())
    ratio = config.augmentation_ratio if config.use_augmented else 0.0
    train_set = WindowDataset(features, train_idx, normalizer, ratio, seed)
    sampler = EpochSampler(train_set.groups(), balance=config.balance_classes, seed=seed,
                           rank=rank, world_size=world_size)
    common = {"batch_size": batch_size, "num_workers": config.num_workers, "pin_memory": pin_memory,
              "persistent_workers": config.num_workers > 0}

    def eval_loader(side: str) -> DataLoader | None:
        idx = split.windows(features, side)
        return DataLoader(WindowDataset(features, idx, normalizer), shuffle=False, **common) if len(idx) else None

    # A last batch of one window would break BatchNorm in training mode: drop it.
    drop_last = len(sampler) % batch_size == 1
    return Loaders(train=DataLoader(train_set, sampler=sampler, drop_last=drop_last, **common),
                   val=eval_loader("val"), test=eval_loader("test"), sampler=sampler, normalizer=normalizer,
                   input_shape=tuple(features.features.shape[1:]), n_classes=features.n_classes)
