"""CPU training throughput: fp32 vs bf16 autocast, and the data loader's share of step time.

    python bench/bench_train.py [--config quick|full] [--channels 32] [--windows 512] [--epochs 2]

Uses the real path (make_loaders' normalised window tensor, batched augmentation and balanced
sampling, engine.train_one_epoch) on random features of the config's DEAP window shape, and times: an epoch of
the data loader alone, and a training epoch with autocast off and with bf16 autocast.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gru_xnet.config import DataConfig, ExperimentConfig, resolve_config
from gru_xnet.data_loader import make_loaders
from gru_xnet.engine import Precision, make_optimizer, train_one_epoch
from gru_xnet.features import FeatureSet, SubjectKey
from gru_xnet.model import build_model, model_input
from gru_xnet.preprocessing import STFTPreprocessor
from gru_xnet.split import Split


def window_shape(config: ExperimentConfig) -> tuple[int, int]:
    """(frequency bins, STFT frames) of one DEAP window under `config`'s data settings."""
    data = config.data
    stft = STFTPreprocessor.for_sampling_rate(128, data.stft_window_seconds, data.stft_overlap, data.freq_range)
    return stft.n_freq_bins, data.n_frames("DEAP")


def random_features(n: int, shape: tuple[int, ...], representation: str = "stft",
                    source: FeatureSet | None = None) -> FeatureSet:
    """A FeatureSet of `n` random windows of `shape` (channels first) from 4 subjects; with `source`, under its
    channel names and time-axis rate (a model that places channels or sizes kernels by rate needs real ones)."""
    rng = np.random.default_rng(0)
    channels = shape[0]
    named = ({"channel_names": tuple(source.channel_names), "sampling_rate": source.sampling_rate} if source else
             {"channel_names": tuple(f"C{i}" for i in range(channels))})
    return FeatureSet(features=rng.standard_normal((n, *shape), dtype=np.float32),
                      labels=rng.integers(0, 2, n), subject_index=np.arange(n, dtype=np.int32) % 4,
                      trials=np.ones(n, np.int32), sessions=np.ones(n, np.int16),
                      subjects=[SubjectKey("DEAP", f"s0{i}") for i in range(1, 5)], datasets=["DEAP"],
                      frequencies=np.zeros(0), n_classes=2, class_names=("low", "high"), synthetic=True,
                      representation=representation, **named)


def training_rate(config: ExperimentConfig, channels: int = 32, windows: int = 512, epochs: int = 2,
                  precision: Precision = Precision("cpu", None), shape: tuple[int, ...] | None = None,
                  representation: str = "stft", source: FeatureSet | None = None) -> float:
    """Training windows/s of `config`'s model (a torch one) on the real CPU path (after one warm-up epoch), on
    random windows of `shape` (default: the config's STFT images), named after `source`'s (see random_features)."""
    features = random_features(windows, shape or (channels, *window_shape(config)), representation, source)
    loaders = make_loaders(features, Split((0, 1, 2, 3), (), ()), DataConfig(datasets=["DEAP"], augmentation_ratio=1.0),
                           batch_size=config.training.batch_size, seed=0)
    torch.manual_seed(0)
    model = build_model(config.model, loaders.input_shape, 2, **model_input(features))
    optimizer = make_optimizer(model, config.training)
    cpu = torch.device("cpu")
    train_one_epoch(model, loaders.train, optimizer, device=cpu, precision=precision, scaler=precision.scaler())
    start = time.perf_counter()
    for _ in range(epochs):
        train_one_epoch(model, loaders.train, optimizer, device=cpu, precision=precision, scaler=precision.scaler())
    return len(loaders.train) * epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="quick")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--windows", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    config = resolve_config(args.config)
    features = random_features(args.windows, (args.channels, *window_shape(config)))
    data = DataConfig(datasets=["DEAP"], augmentation_ratio=1.0)
    loaders = make_loaders(features, Split((0, 1, 2, 3), (), ()), data, batch_size=config.training.batch_size, seed=0)
    items = len(loaders.train)

    start = time.perf_counter()
    for _ in range(args.epochs):
        for _batch in loaders.train:
            pass
    loading = (time.perf_counter() - start) / args.epochs

    rates = {name: training_rate(config, args.channels, args.windows, args.epochs, precision)
             for name, precision in (("fp32", Precision("cpu", None)), ("bf16 autocast", Precision("cpu", torch.bfloat16)))}
    print(f"{args.config} model, {args.channels} channels, input (F, T) = {window_shape(config)}, batch "
          f"{config.training.batch_size}, {items} windows per epoch (half augmented), {torch.get_num_threads()} threads")
    for name, rate in rates.items():
        print(f"{name:14s} {rate:8.1f} windows/s")
    print(f"bf16 / fp32 throughput: {rates['bf16 autocast'] / rates['fp32']:.2f}x")
    print(f"data loader alone: {items / loading:8.1f} windows/s = "
          f"{100 * (items / rates['fp32']) ** -1 * loading:.1f}% of an fp32 step's time")


if __name__ == "__main__":
    main()
