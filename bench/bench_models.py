"""Every registered model side by side: input, size, training speed, one LOSO fold, band and temporal scores.

    python bench/bench_models.py [--subjects 5 --epochs 12 --cores 2 --models gru_xnet eegnet ...] [--keep]

Per model, on synthetic DEAP written in the real format: its representation and window shape; its size
(trainable parameters, or the features a linear model weighs); training windows/s on random windows of
that shape with 2 torch threads, fp32 and bf16 autocast (torch models, the real loader and engine; a
scikit-learn model: windows fitted per second for one grid value), as a ratio to gru_xnet's fp32 rate
measured in the same run; the wall time of one `loso.run --local` fold (quick preset, `--epochs`); and
its LOSO balanced accuracy (mean +- SD over subjects) on the band signal (class in band power) and the
temporal signal (class only in the order of band bursts). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from bench_train import random_features, training_rate
from gru_xnet.config import ExperimentConfig, get_quick_test_config
from gru_xnet.data_loader import make_loaders
from gru_xnet.datasets import write_synthetic
from gru_xnet.engine import Precision
from gru_xnet.estimators import fit_on_loaders, is_estimator
from gru_xnet.features import FeatureSet, build_feature_set
from gru_xnet.model import build_model, model_input
from gru_xnet.models import MODELS
from gru_xnet.split import Split
from scratch import add_keep_argument, scratch_dir

THREADS = 2


def config_for(model: str, root: Path, tmp: Path, epochs: int) -> ExperimentConfig:
    config = get_quick_test_config()
    config.model.name = model
    config.data.datasets, config.data.data_root, config.data.cache_dir = ["DEAP"], str(root), str(tmp / "cache")
    config.training.num_epochs = epochs
    config.validate()
    return config


def loso(config: ExperimentConfig, out: Path, *extra: str) -> tuple[float, pd.DataFrame]:
    """(wall seconds, per-subject table) of one `loso.run --local` in its own process."""
    config.save(out.with_suffix(".json"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "loso.run", "--config", str(out.with_suffix(".json")), "--output", str(out),
                    "--local", *extra], check=True, capture_output=True)
    return time.perf_counter() - started, pd.read_csv(out / "tables" / "per_subject.csv")


def speed(config: ExperimentConfig, real: FeatureSet) -> dict[str, float]:
    """Training windows/s on random windows shaped and named like `real`'s: fp32 and bf16 for a torch model, one fit
    for a scikit-learn one."""
    torch.set_num_threads(THREADS)
    shape, representation = real.features.shape[1:], real.representation
    model = build_model(config.model, shape, 2, **model_input(real))
    if not is_estimator(model):
        return {name: training_rate(config, windows=256, epochs=1, precision=precision, shape=shape,
                                    representation=representation, source=real)
                for name, precision in (("fp32", Precision("cpu", None)), ("bf16", Precision("cpu", torch.bfloat16)))}
    features = random_features(2048, shape, representation, real)
    loaders = make_loaders(features, Split((0, 1, 2, 3), (), ()), config.data, batch_size=64, seed=0)
    started = time.perf_counter()
    fit_on_loaders(model, {}, loaders, features.subject_index)
    return {"fit": len(features) / (time.perf_counter() - started)}


def size(config: ExperimentConfig, real: FeatureSet) -> str:
    shape = real.features.shape[1:]
    model = build_model(config.model, shape, 2, **model_input(real))
    if is_estimator(model):
        return f"linear, {math.prod(shape):,} features"
    return f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,}"


def score(subjects: pd.DataFrame) -> str:
    values = subjects["balanced_accuracy"]  # window level (trial level: trial_balanced_accuracy)
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    add_keep_argument(parser)
    args = parser.parse_args()
    models = list(dict.fromkeys(["gru_xnet", *args.models]))  # gru_xnet: the baseline of the speed ratios
    with scratch_dir("bench_models_", args.keep) as tmp:
        for signal in ("band", "temporal"):  # 8 trials of 8 s per subject: 16 windows of 4 s
            write_synthetic(tmp / signal, ["DEAP"], args.subjects, seconds=8.0, signal=signal)
        inputs = {}
        for model in models:  # fill the feature cache first: the parallel runs then only read it
            config = config_for(model, tmp / "band", tmp, args.epochs)
            representation = MODELS[model].representation_of(config.data)
            for signal in ("band", "temporal"):
                features = build_feature_set(config_for(model, tmp / signal, tmp, args.epochs).data,
                                             representation=representation)
            inputs[model] = features  # the temporal signal's: same shape, channels and rate as the band's
        with concurrent.futures.ThreadPoolExecutor(args.cores) as pool:
            runs = {(model, signal): pool.submit(loso, config_for(model, tmp / signal, tmp, args.epochs),
                                                 tmp / f"{model}-{signal}")
                    for model in models for signal in ("band", "temporal")}
            results = {key: future.result() for key, future in runs.items()}
        one_fold = {model: loso(config_for(model, tmp / "band", tmp, args.epochs), tmp / f"{model}-fold",
                                "--subjects", "s01")[0] for model in models}
        speeds = {model: speed(config_for(model, tmp / "band", tmp, args.epochs), inputs[model]) for model in models}
    baseline = speeds["gru_xnet"]["fp32"]
    print(f"## Models on synthetic DEAP: {args.subjects} subjects, quick preset, {args.epochs} epochs, LOSO balanced "
          f"accuracy (%) mean ± SD over subjects; speed with {THREADS} torch threads, ratio to gru_xnet fp32 "
          f"({baseline:.0f} windows/s) in this run\n")
    print("| model | input | size | train windows/s fp32 | bf16 | one fold (s) | band signal | temporal signal |")
    print("|---|---|---|---|---|---|---|---|")
    for model in models:
        real, rate = inputs[model], speeds[model]
        fp32, bf16 = ((f"{rate['fit']:.0f} (fit, {rate['fit'] / baseline:.1f}x)", "--") if "fit" in rate else
                      (f"{rate['fp32']:.0f} ({rate['fp32'] / baseline:.2f}x)", f"{rate['bf16']:.0f}"))
        print(f"| {model} | {real.representation} {tuple(real.features.shape[1:])} | "
              f"{size(config_for(model, tmp, tmp, 1), real)} | {fp32} "
              f"| {bf16} | {one_fold[model]:.1f} | {score(results[(model, 'band')][1])} "
              f"| {score(results[(model, 'temporal')][1])} |")


if __name__ == "__main__":
    main()
