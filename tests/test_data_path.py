"""The device-resident data path against the per-window numpy path it replaced: the same normalisation,
the same class/dataset balance, augmentations with the same distribution, seeded and sharded epochs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gru_xnet.config import DataConfig
from gru_xnet.data_loader import Normalizer, Windows, augment_batch, make_loaders
from gru_xnet.features import build_feature_set
from gru_xnet.split import Split


def reference_augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The per-window numpy augmentation the batched one replaced, kept as the distributional reference."""
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


def summary(out: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """Distribution statistics of augmented copies `out` (N, C, F, T) of windows `x` (masked cells left out)."""
    kept = out != 0
    shift = np.where(kept, out - x, np.nan)
    with warnings.catch_warnings():  # rows and columns masked whole have no mean
        warnings.simplefilter("ignore", RuntimeWarning)
        return _moments(shift, kept)


def _moments(shift: np.ndarray, kept: np.ndarray) -> dict[str, float]:
    return {"zero share": float((~kept).mean()),
            "channel gain SD": float(np.nanstd(np.nanmean(shift, axis=(2, 3)) - np.nanmean(shift, axis=(1, 2, 3))[:, None])),
            "spectral offset SD": float(np.nanstd(np.nanmean(shift, axis=(1, 3)) - np.nanmean(shift, axis=(1, 2, 3))[:, None])),
            "noise SD": float(np.nanstd(shift - np.nanmean(shift, axis=3, keepdims=True) - np.nanmean(shift, axis=2, keepdims=True)
                                        + np.nanmean(shift, axis=(2, 3), keepdims=True))),
            "mean shift": float(np.nanmean(shift))}


def test_batched_augmentation_has_the_reference_distribution():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1500, 4, 22, 29)).astype(np.float32)
    reference = np.stack([reference_augment(w, np.random.default_rng([7, i])) for i, w in enumerate(x)])
    batched = augment_batch(torch.from_numpy(x), torch.Generator().manual_seed(7)).numpy()
    ref, new = summary(reference, x), summary(batched, x)
    for key in ref:
        assert new[key] == pytest.approx(ref[key], abs=0.015), (key, ref[key], new[key])
    again = augment_batch(torch.from_numpy(x[:10]), torch.Generator().manual_seed(3))
    assert torch.equal(again, augment_batch(torch.from_numpy(x[:10]), torch.Generator().manual_seed(3)))


@pytest.fixture(scope="module")
def fold(synthetic_root: Path, tmp_path_factory):
    config = DataConfig(datasets=["DEAP", "GAMEEMO"], data_root=str(synthetic_root),
                        cache_dir=str(tmp_path_factory.mktemp("cache")), augmentation_ratio=2.0)
    features = build_feature_set(config)
    return features, Split((0, 1, 2, 4, 5), (6,), (3, 7)), config


def test_windows_are_normalised_with_training_statistics_only(fold):
    features, split, config = fold
    loaders = make_loaders(features, split, config, batch_size=8, seed=0)
    train = split.windows(features, "train")
    reference = Normalizer.fit(features.features, train)
    np.testing.assert_allclose(loaders.normalizer.mean, reference.mean)
    x = loaders.train.windows.array()
    np.testing.assert_allclose(x, reference(features.features[train]), rtol=1e-5, atol=1e-5)
    assert np.abs(x.mean(axis=(0, 3))).max() < 1e-4 and np.abs(x.std(axis=(0, 3)) - 1).max() < 1e-3
    test = loaders.test.windows
    assert set(features.subject_index[test.indices]) == {3, 7} and len(test) == len(split.windows(features, "test"))


def test_every_epoch_draws_each_dataset_and_class_group_equally_often(fold):
    features, split, config = fold
    loaders = make_loaders(features, split, config, batch_size=8, seed=0)
    windows = loaders.train.windows
    groups = (windows.dataset * 2 + windows.y).numpy()
    assert len(np.unique(groups)) == 4 and np.bincount(groups).max() > 1.5 * np.bincount(groups).min()
    seen, total = [], np.zeros(4)
    for epoch in range(20):
        loaders.train.set_epoch(epoch)
        rows = loaders.train.order() % len(windows)
        counts = np.bincount(groups[rows.numpy()], minlength=4)
        assert counts.sum() == len(loaders.train) == 3 * len(windows)  # windows + 2 augmented copies each
        total += counts
        seen.append(rows)
    assert np.abs(total / total.sum() - 0.25).max() < 0.02, total  # drawn with replacement, equal odds
    assert not torch.equal(seen[0], seen[1])  # a new order every epoch
    batches = list(loaders.train)
    assert sum(len(y) for _, y in batches) in (len(loaders.train), len(loaders.train) - 1)
    assert all(x.shape[1:] == features.features.shape[1:] and x.dtype == torch.float32 for x, _ in batches)


def test_one_seed_gives_the_same_epoch_and_ranks_share_it_without_overlap(fold):
    features, split, config = fold
    first = [make_loaders(features, split, config, batch_size=8, seed=3) for _ in range(2)]
    a, b = (list(loaders.train) for loaders in first)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    other = list(make_loaders(features, split, config, batch_size=8, seed=4).train)
    assert not torch.equal(a[0][0], other[0][0])
    shards = [make_loaders(features, split, config, batch_size=8, seed=3, rank=r, world_size=2).train for r in (0, 1)]
    whole = make_loaders(features, split, config, batch_size=8, seed=3).train.order()
    assert len(shards[0]) == len(shards[1]) == -(-len(whole) // 2)
    interleaved = torch.stack([shards[0].order(), shards[1].order()], dim=1).flatten()[:len(whole)]
    assert torch.equal(interleaved, whole)


def test_augmented_items_differ_from_their_window_and_real_items_do_not(fold):
    features, split, config = fold
    config_plain = DataConfig(**{**config.__dict__, "augmentation_ratio": 0.0})
    loaders = make_loaders(features, split, config_plain, batch_size=1000, seed=0)
    x, _ = next(iter(loaders.train))
    rows = loaders.train.order() % len(loaders.train.windows)
    torch.testing.assert_close(x, torch.from_numpy(loaders.train.windows.gather(rows[:len(x)].numpy())))  # as they are
    augmented = make_loaders(features, split, config, batch_size=10_000, seed=0).train
    x, _ = next(iter(augmented))
    items = augmented.order()[:len(x)]
    source = torch.from_numpy(augmented.windows.gather((items % len(augmented.windows)).numpy()))
    copies = items >= len(augmented.windows)
    assert torch.equal(x[~copies], source[~copies]) and not torch.isclose(x[copies], source[copies]).all()


def test_windows_too_large_for_the_device_stay_in_host_memory(fold):
    features, split, config = fold
    rows = split.windows(features, "val")
    norm = Normalizer.identity()
    resident = Windows.build(features, rows, norm, torch.device("cpu"), on_device=True)
    host = Windows.build(features, rows, norm, torch.device("cpu"), on_device=False)
    picked = torch.tensor([2, 0, 5])
    assert torch.equal(resident.batch(picked), host.batch(picked))
    assert torch.equal(resident.batch(picked), torch.from_numpy(features.features[rows[[2, 0, 5]]]))


def test_a_fold_holds_no_copy_of_the_features_and_the_chunked_device_fill_equals_one_shot(fold):
    features, split, config = fold
    loaders = make_loaders(features, split, config, batch_size=8, seed=0)
    for batches in (loaders.train, loaders.val, loaders.test):
        assert batches.windows.source is features.features and batches.windows.resident is None  # CPU: no copy
    windows = loaders.val.windows
    window_bytes = 4 * int(np.prod(features.features.shape[1:]))
    chunked = windows.to_device(chunk_bytes=3 * window_bytes)  # 3 windows per chunk: several chunks and a tail
    np.testing.assert_array_equal(chunked.numpy(), windows.array())
    np.testing.assert_array_equal(windows.array(), loaders.normalizer(features.features[windows.indices]))


def test_runners_in_flight_are_limited_by_the_nodes_memory_too():
    from loso.worker import FoldResources

    resources = FoldResources(workers=1, cpus_per_worker=0.5)
    per_runner = resources.runner_bytes()
    assert resources.concurrent_folds({"CPU": 64.0}) == 128  # no memory figure: CPUs decide
    assert resources.concurrent_folds({"CPU": 64.0, "memory": 5.5 * per_runner}) == 5
    assert FoldResources(workers=2).runner_bytes() > per_runner  # each DDP worker adds its own
    assert resources.concurrent_folds({"CPU": 64.0, "memory": 0.5 * per_runner}) == 1  # never below one
