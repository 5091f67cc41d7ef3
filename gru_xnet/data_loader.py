"""Features to tensors on the training device: a split's windows (`gru_xnet.split`), train-only normalisation,
batched augmentation and balanced sampling, sharded by rank.

A fold's windows are read from the feature set's array where the batches are cut (on CPU, and on a GPU
the fold does not fit: gathered and normalised per batch, so no copy of the dataset per fold), or
written once into one tensor on the GPU when they fit there; every epoch's sampling and augmentation are
batched tensor operations driven by seeded `torch.Generator`s, with no per-window Python work. The single-process Trainer, the Ray worker and
Tune trials all call `make_loaders`; only the `(rank, world_size, device)` they pass differs, which
shards the training epoch like a DistributedSampler would.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gru_xnet.config import DataConfig
from gru_xnet.features import FeatureSet
from gru_xnet.representations import REPRESENTATIONS
from gru_xnet.split import SIDES, Split

log = logging.getLogger(__name__)
DEVICE_MEMORY_SHARE = 0.5
"""A fold's windows go onto the GPU when they take at most this share of its free memory."""


@dataclass
class Normalizer:
    """Z-score per row of the last axis (per (channel, frequency) for STFT images, per channel for raw signals,
    per (channel, band) for DE), fitted on training windows only (no test-subject statistics)."""

    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=np.float32))

    @classmethod
    def fit(cls, features: np.ndarray, indices: np.ndarray, groups: np.ndarray | None = None,
            cache: dict | None = None) -> "Normalizer":
        """Mean/std over the chosen windows and their last axis (time frames, samples, segments), summed group by
        group (`groups`: each window's subject) so that many folds can share a group's sums (`cache`)."""
        moments = Moments.of_groups(features, np.asarray(indices), groups, cache)
        mean = moments.total / moments.count
        std = np.sqrt(np.maximum(moments.squares / moments.count - mean ** 2, 1e-12))
        return cls(mean.astype(np.float32)[..., None], std.astype(np.float32)[..., None])

    @classmethod
    def identity(cls) -> "Normalizer":
        return cls(np.zeros((1, 1, 1), dtype=np.float32), np.ones((1, 1, 1), dtype=np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def sha256(self) -> str:
        """A hash of the statistics (shape, dtype and bytes of mean and std): what a fold records, so a leakage check
        can recompute them from the fold's training windows and compare."""
        digest = hashlib.sha256()
        for array in (self.mean, self.std):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class Moments:
    """Float64 sums of the values and their squares per row of the last axis, and how many values were summed."""

    total: np.ndarray
    squares: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray, rows: np.ndarray, chunk: int = 512) -> "Moments":
        """The sums over `rows`, read `chunk` windows at a time (the features may be a memory map)."""
        total = np.zeros(features.shape[1:-1], dtype=np.float64)
        squares = np.zeros_like(total)
        for start in range(0, len(rows), chunk):
            block = np.asarray(features[np.sort(rows[start:start + chunk])], dtype=np.float64)
            total += block.sum(axis=(0, -1))
            squares += (block ** 2).sum(axis=(0, -1))
        return cls(total, squares, len(rows) * features.shape[-1])

    @classmethod
    def of_groups(cls, features: np.ndarray, indices: np.ndarray, groups: np.ndarray | None,
                  cache: dict | None = None) -> "Moments":
        """The sums over `indices`, taken group by group in ascending order and added in that order: the same bits
        whether a group's part was computed now or found in `cache` (keyed by the group and its rows), so checking
        every fold of a LOSO reads each subject once instead of once per fold."""
        if groups is None or len(indices) == 0:
            return cls.of(features, indices)
        owner = groups[indices]
        parts = []
        for group in np.unique(owner):
            rows = indices[owner == group]
            key = (int(group), rows.tobytes())
            part = None if cache is None else cache.get(key)
            if part is None:
                part = cls.of(features, rows)
                if cache is not None:
                    cache[key] = part
            parts.append(part)
        total = parts[0]
        for part in parts[1:]:
            total = cls(total.total + part.total, total.squares + part.squares, total.count + part.count)
        return total


CHUNK_BYTES = 256 * 2 ** 20
"""Host memory a GPU-resident fold's windows pass through at a time while their device tensor is filled."""


@dataclass
class Windows:
    """One split side's windows, normalised where the batches are cut, with their labels and groups.

    The features stay in the FeatureSet's array (in a Ray worker, the object store's shared read-only copy):
    on CPU, and on a GPU whose memory the fold does not fit, each batch is gathered and normalised when it is
    cut (the normaliser is two small arrays), so no process holds a copy of the dataset. On a GPU that fits
    the fold, the normalised windows are written once into one device tensor, `CHUNK_BYTES` at a time.
    """

    source: np.ndarray           # (N_all, *window_shape) the feature set's array, never copied whole
    normalizer: Normalizer
    y: torch.Tensor              # (N,) int64, on the device
    dataset: torch.Tensor        # (N,) int64 dataset index, on the device
    indices: np.ndarray          # (N,) window indices into the FeatureSet (host: gathering, leakage checks)
    device: torch.device
    resident: torch.Tensor | None = None  # (N, *window_shape) normalised, on the GPU when the fold fits there

    @classmethod
    def build(cls, features: FeatureSet, indices: np.ndarray, normalizer: Normalizer, device: torch.device,
              on_device: bool) -> "Windows":
        take = lambda a: torch.as_tensor(np.asarray(a)[indices], dtype=torch.int64, device=device)  # noqa: E731
        windows = cls(features.features, normalizer, take(features.labels), take(features.dataset_index),
                      np.asarray(indices, dtype=np.int64), device)
        if on_device and device.type == "cuda":
            windows.resident = windows.to_device()
        return windows

    def __len__(self) -> int:
        return len(self.indices)

    def gather(self, positions: np.ndarray) -> np.ndarray:
        """Normalised float32 windows at `positions` (into this side), read from the shared array."""
        return self.normalizer(np.asarray(self.source[self.indices[positions]], dtype=np.float32))

    def to_device(self, chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
        """All windows, normalised, in one tensor on the device, filled chunk by chunk (host transient <= a chunk)."""
        out = torch.empty((len(self), *self.source.shape[1:]), dtype=torch.float32, device=self.device)
        step = max(1, chunk_bytes // (4 * math.prod(self.source.shape[1:])))
        for start in range(0, len(self), step):
            positions = np.arange(start, min(start + step, len(self)))
            out[start:start + len(positions)] = torch.from_numpy(self.gather(positions)).to(self.device)
        return out

    def array(self) -> np.ndarray:
        """Every window of this side, normalised, as one host array (scikit-learn models; tests)."""
        return self.gather(np.arange(len(self)))

    def batch(self, rows: torch.Tensor) -> torch.Tensor:
        """Features of `rows` (a device index tensor) on the device."""
        if self.resident is not None:
            return self.resident[rows]
        x = torch.from_numpy(self.gather(rows.cpu().numpy()))
        return x.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else x


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random copy of each normalised window of `x` (B, C, F, T), mimicking between-subject differences.

    Per window: a per-channel gain and a smooth per-frequency offset (shifts in log power), noise, and
    one time and one frequency mask (random width up to T/4 and F/8). Batched on x's device.
    """
    b, c, f, t = x.shape
    normal = lambda *shape: torch.randn(shape, generator=generator, device=x.device)  # noqa: E731
    spectral = F.avg_pool1d(normal(b, 1, f + 4) * 0.3, kernel_size=5, stride=1)  # (B, 1, F): smooth offsets
    out = x + normal(b, c, 1, 1) * 0.3 + spectral.view(b, 1, f, 1) + normal(b, c, f, t) * 0.1

    def mask(size: int, max_width: int) -> torch.Tensor:  # (B, size): one random band per window
        width = torch.randint(0, max_width + 1, (b,), generator=generator, device=x.device)
        start = (torch.rand(b, generator=generator, device=x.device) * (size - width + 1)).floor()
        position = torch.arange(size, device=x.device)
        return (position >= start[:, None]) & (position < (start + width)[:, None])

    hidden = mask(t, max(1, t // 4))[:, None, None, :] | mask(f, max(1, f // 8))[:, None, :, None]
    return out.masked_fill(hidden, 0.0)


class TrainBatches:
    """The training epoch of one rank: balanced, augmented, sharded batches `(x, y)` on the device.

    Items 0..N-1 are the training windows; item i >= N is an augmented copy of window i % N
    (`augmentation_ratio` copies per window), freshly augmented every epoch. Balanced: each (dataset,
    class) group is drawn equally often, with replacement. Every rank draws the same order from
    (seed, epoch) and takes every world_size-th item, as DistributedSampler does.
    """

    def __init__(self, windows: Windows, *, n_classes: int, augmentation_ratio: float, batch_size: int,
                 balance: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.windows, self.batch_size, self.balance = windows, batch_size, balance
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0
        self.n_items = len(windows) + int(round(augmentation_ratio * len(windows)))
        self.num_samples = math.ceil(self.n_items / world_size)
        groups = (windows.dataset * n_classes + windows.y).cpu()
        self.item_groups = groups[torch.arange(self.n_items) % len(windows)]
        # A last batch of one window would break BatchNorm in training mode: drop it.
        self.drop_last = self.num_samples % batch_size == 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        """Items this rank sees per epoch (before a dropped single-item batch)."""
        return self.num_samples

    def order(self) -> torch.Tensor:
        """This rank's items for the epoch (CPU int64), from a generator seeded by (seed, epoch)."""
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]))
        if self.balance:
            _, inverse, counts = torch.unique(self.item_groups, return_inverse=True, return_counts=True)
            weights = 1.0 / counts[inverse].double()
            order = torch.multinomial(weights, self.n_items, replacement=True, generator=generator)
        else:
            order = torch.randperm(self.n_items, generator=generator)
        total = self.num_samples * self.world_size
        order = torch.cat([order, order[: total - self.n_items]])
        return order[self.rank:total:self.world_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.windows.device
        items = self.order().to(device)
        generator = torch.Generator(device=device).manual_seed(
            int(np.random.SeedSequence([self.seed, self.epoch, self.rank, 1]).generate_state(1)[0]))
        n = len(self.windows)
        stop = len(items) - (len(items) % self.batch_size if self.drop_last else 0)
        for start in range(0, stop, self.batch_size):
            chunk = items[start:start + self.batch_size]
            rows = chunk % n
            x = self.windows.batch(rows)
            if self.n_items > n:
                x = torch.where((chunk >= n).view(-1, 1, 1, 1), augment_batch(x, generator), x)
            yield x, self.windows.y[rows]


class EvalBatches:
    """Validation or test windows in order, in batches `(x, y, dataset index, window index)`; never augmented."""

    def __init__(self, windows: Windows, batch_size: int):
        self.windows, self.batch_size = windows, batch_size

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]]:
        for start in range(0, len(self.windows), self.batch_size):
            rows = torch.arange(start, min(start + self.batch_size, len(self.windows)), device=self.windows.device)
            yield (self.windows.batch(rows), self.windows.y[rows], self.windows.dataset[rows],
                   self.windows.indices[start:start + self.batch_size])


def fits_on_device(n_windows: int, window_shape: Sequence[int], device: torch.device) -> bool:
    """Whether `n_windows` float32 windows take at most DEVICE_MEMORY_SHARE of the GPU's free memory (always on CPU)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return n_windows * math.prod(window_shape) * 4 <= DEVICE_MEMORY_SHARE * free


@dataclass
class Loaders:
    """The batches of one split plus what the model needs to know about the input."""

    train: TrainBatches
    val: EvalBatches | None
    test: EvalBatches | None
    normalizer: Normalizer
    input_shape: tuple[int, ...]
    n_classes: int


def make_loaders(features: FeatureSet, split: Split, config: DataConfig, *, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, device: torch.device = torch.device("cpu")) -> Loaders:
    """Training batches (augmented, balanced, sharded) and unsharded val/test batches of a split, on `device`."""
    sides = {side: split.windows(features, side) for side in SIDES}
    if len(sides["train"]) == 0:
        raise ValueError(f"split has no training windows (subjects {split.train})")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if len(np.intersect1d(sides[a], sides[b])):
            raise ValueError(f"split puts {len(np.intersect1d(sides[a], sides[b]))} window(s) on the {a} and {b} "
                             "sides: a leak")
    normalizer = (Normalizer.fit(features.features, sides["train"], features.subject_index)
                  if config.normalization == "train" else Normalizer.identity())
    window_shape = features.features.shape[1:]
    on_device = fits_on_device(sum(len(rows) for rows in sides.values()), window_shape, device)
    if not on_device:
        log.info("the fold's windows exceed %.0f%% of the free GPU memory: gathered from host memory and copied "
                 "per batch", 100 * DEVICE_MEMORY_SHARE)
    windows = {side: Windows.build(features, rows, normalizer, device, on_device) if len(rows) else None
               for side, rows in sides.items()}
    augment = config.use_augmented and REPRESENTATIONS[features.representation].augment
    train = TrainBatches(windows["train"], n_classes=features.n_classes,
                         augmentation_ratio=config.augmentation_ratio if augment else 0.0,
                         batch_size=batch_size, balance=config.balance_classes, seed=seed, rank=rank,
                         world_size=world_size)
    evaluation = lambda side: EvalBatches(windows[side], batch_size) if windows[side] is not None else None  # noqa: E731
    return Loaders(train=train, val=evaluation("val"), test=evaluation("test"), normalizer=normalizer,
                   input_shape=tuple(window_shape), n_classes=features.n_classes)
