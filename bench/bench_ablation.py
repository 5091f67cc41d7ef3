"""Does the temporal model use time? LOSO ablations on the band and the temporal synthetic signals.

    python bench/bench_ablation.py [--subjects 5 --seeds 0 1 2 --epochs 12 --cores 2] [--keep]

Part 1, ablation: `loso.run --local` (the same fold code as a Ray worker) on synthetic DEAP with the
class planted in band power (`band`) or only in the order of band bursts (`temporal`), for the
`dynamic` model, `standard` (sequence over channels), the order-blind control (`dynamic` on windows
whose every frame is the window's mean frame) and `dynamic` without attention. Quick preset (12
epochs); 8 trials of 8 s per subject; balanced accuracy mean +- SD over subjects (seeds averaged within a
subject) and the SD of the mean over seeds: one seed's training trajectory depends on the CPU's floating-point
kernels, so no claim here rests on one seed.

Part 2, sequence options: the `dynamic` model's balanced accuracy on both signals (every seed) and its
training throughput and feature size for STFT framings and time pooling that give the BiGRU at least
8 steps, against the framing the seed used (1 s frames 0.5 s apart: 2 steps).

Runs `--cores` LOSO processes at once (each with the config's 1 torch thread). Prints Markdown tables.
The generated data and outputs are deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from bench_train import training_rate, window_shape
from gru_xnet.config import ExperimentConfig, get_quick_test_config, sequence_length
from gru_xnet.datasets import write_synthetic
from gru_xnet.features import build_feature_set
from scratch import add_keep_argument, scratch_dir

VARIANTS = {"dynamic": {}, "standard": {"model_type": "standard"}, "order-blind control": {"order_blind": True},
            "dynamic, no attention": {"use_attention": False}}
OPTIONS = {  # name: (stft window s, overlap, time-pooling blocks)
    "0.5 s frames, 0.125 s hop, time pooled in 2 blocks (default)": (0.5, 0.75, 2),
    "0.5 s frames, 0.25 s hop, time pooled in 1 block": (0.5, 0.5, 1),
    "1 s frames, 0.25 s hop, no time pooling": (1.0, 0.75, 0),
    "1 s frames, 0.5 s hop, time pooled in 2 blocks (the seed's framing)": (1.0, 0.5, 2),
}


def config_for(root: Path, tmp: Path, epochs: int, model: dict, stft: tuple[float, float, int] | None = None
               ) -> ExperimentConfig:
    config = get_quick_test_config()
    config.data.datasets, config.data.data_root, config.data.cache_dir = ["DEAP"], str(root), str(tmp / "cache")
    config.training.num_epochs = epochs
    for key, value in model.items():
        setattr(config.model, key, value)
    if stft is not None:
        config.data.stft_window_seconds, config.data.stft_overlap, config.model.time_pool_blocks = stft
    config.validate()
    return config


def run_loso(config: ExperimentConfig, out: Path, seeds: list[int]) -> tuple[pd.DataFrame, ...]:
    """One `loso.run --local` in its own process; its per-subject, per-dataset and per-fold tables."""
    config.save(out.with_suffix(".json"))
    subprocess.run([sys.executable, "-m", "loso.run", "--config", str(out.with_suffix(".json")), "--output", str(out),
                    "--local", "--seeds", *map(str, seeds)], check=True, capture_output=True)
    return tuple(pd.read_csv(out / "tables" / f"{name}.csv") for name in ("per_subject", "per_dataset", "per_fold"))


def summary(subjects: pd.DataFrame, datasets: pd.DataFrame, folds: pd.DataFrame) -> str:
    """Mean ± SD over subjects (seeds averaged within a subject), then each seed's mean over subjects."""
    window = datasets.query("level == 'window'").iloc[0]
    per_seed = folds.query("level == 'window'").groupby("seed")["balanced_accuracy"].mean()
    seeds = " / ".join(f"{value:.1f}" for value in per_seed)
    spread = "" if pd.isna(window["seed_sd"]) else f", SD {window['seed_sd']:.1f}"
    return (f"{subjects['balanced_accuracy'].mean():.1f} ± {subjects['balanced_accuracy'].std(ddof=1):.1f} "
            f"(seeds {seeds}{spread})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    add_keep_argument(parser)
    args = parser.parse_args()
    with scratch_dir("bench_ablation_", args.keep) as tmp:
        for signal in ("band", "temporal"):  # 8 trials of 8 s per subject: 16 windows of 4 s
            write_synthetic(tmp / signal, ["DEAP"], args.subjects, seconds=8.0, signal=signal)
        runs = {(signal, name): (config_for(tmp / signal, tmp, args.epochs, model), args.seeds)
                for name, model in VARIANTS.items() for signal in ("band", "temporal")}
        default = next(iter(OPTIONS))  # the `dynamic` runs above; the other framings with the same seeds
        runs |= {(signal, option): (config_for(tmp / signal, tmp, args.epochs, {}, stft), args.seeds)
                 for option, stft in OPTIONS.items() if option != default for signal in ("band", "temporal")}
        for config, _ in runs.values():  # fill the feature cache first: the parallel runs then only read it
            build_feature_set(config.data)
        with concurrent.futures.ThreadPoolExecutor(args.cores) as pool:
            futures = {key: pool.submit(run_loso, config, tmp / f"run{i}", seeds)
                       for i, (key, (config, seeds)) in enumerate(runs.items())}
            results = {key: future.result() for key, future in futures.items()}

        print(f"## Ablation: LOSO balanced accuracy (%), synthetic DEAP, {args.subjects} subjects, seeds "
              f"{' '.join(map(str, args.seeds))}, quick preset, {args.epochs} epochs\n")
        print("| model | band signal | temporal signal |\n|---|---|---|")
        for name in VARIANTS:
            print(f"| {name} | {summary(*results[('band', name)])} | {summary(*results[('temporal', name)])} |")

        print(f"\n## Sequence options for the dynamic model (seeds {' '.join(map(str, args.seeds))}; throughput: quick "
              "model, 32 channels, CPU, 1 thread)\n")
        print("| STFT framing and pooling | input (F, T) | BiGRU steps | features per window | train windows/s "
              "| band | temporal |\n|---|---|---|---|---|---|---|")
        for option, stft in OPTIONS.items():
            config = config_for(tmp / "band", tmp, args.epochs, {}, stft)
            freqs, frames = window_shape(config)
            steps = sequence_length("dynamic", 32, frames, config.model.time_pool_blocks)
            torch.set_num_threads(config.training.num_threads)
            rate = training_rate(config, windows=256, epochs=1)
            band, temporal = (summary(*results[(signal, "dynamic" if option == default else option)])
                              for signal in ("band", "temporal"))
            print(f"| {option} | ({freqs}, {frames}) | {steps} | {32 * freqs * frames * 4 / 1024:.1f} KiB "
                  f"| {rate:.0f} | {band} | {temporal} |")


if __name__ == "__main__":
    main()
