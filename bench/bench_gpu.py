"""The GPU path in one run: training windows/s of the real data path vs a GPU-resident ceiling, and a
packed LOSO's fold wall time vs its epoch loop.

    python bench/bench_gpu.py                        # on a GPU machine: full and quick model, batch 128 and 512
    python bench/bench_gpu.py --device cpu --windows 128 --batches 32 --configs quick --loso-subjects 3 --loso-epochs 2

Rows, full model first: the real path (`make_loaders` on the device: one normalised window tensor,
batched augmentation and balanced sampling, then `engine.train_one_epoch`) against the ceiling (the
same model's forward, backward and optimizer step on one batch already on the device, repeated), in
fp32 and bf16 autocast; target real >= 80 % of the ceiling. Then one LOSO through `loso.run` (Ray,
`--gpus-per-worker auto`: folds packed onto the GPU) on synthetic DEAP: each fold's time from start to
result on the driver against its epoch loop, and the whole run's wall time per fold; target fold wall
<= epoch loop + 5 s. On CPU the same code runs at small sizes (CI checks that it starts).
The generated data is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench_train import random_features, window_shape
from gru_xnet.config import resolve_config
from gru_xnet.data_loader import make_loaders
from gru_xnet.datasets import write_synthetic
from gru_xnet.engine import Precision, make_optimizer, train_one_epoch
from gru_xnet.model import build_model
from gru_xnet.split import Split
from loso.run import main as loso_main
from scratch import add_keep_argument, scratch_dir


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def real_rate(config, features, device: torch.device, precision: Precision, batch: int) -> float:
    """Windows/s of full epochs on the real path (after a warm-up epoch)."""
    loaders = make_loaders(features, Split((0, 1, 2, 3), (), ()), config.data, batch_size=batch, seed=0, device=device)
    torch.manual_seed(0)
    model = build_model(config.model, loaders.input_shape, 2).to(device)
    optimizer = make_optimizer(model, config.training)
    scaler = precision.scaler()
    train_one_epoch(model, loaders.train, optimizer, device=device, precision=precision, scaler=scaler)
    _sync(device)
    start = time.perf_counter()
    for epoch in range(1, 3):
        loaders.train.set_epoch(epoch)
        train_one_epoch(model, loaders.train, optimizer, device=device, precision=precision, scaler=scaler)
    _sync(device)
    return 2 * len(loaders.train) / (time.perf_counter() - start)


def ceiling_rate(config, shape, device: torch.device, precision: Precision, batch: int, steps: int) -> float:
    """Windows/s of the model's step alone, on one batch already on the device."""
    torch.manual_seed(0)
    model = build_model(config.model, shape, 2).to(device).train()
    optimizer = make_optimizer(model, config.training)
    scaler = precision.scaler()
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 2, (batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(x)
        scaler.scale(loss_fn(logits.float(), y)).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def packed_loso(tmp: Path, args: argparse.Namespace) -> None:
    """One LOSO through loso.run on the cluster path; per-fold wall (start to result) vs epoch loop."""
    write_synthetic(tmp / "data", ["DEAP"], args.loso_subjects)
    config = resolve_config(args.loso_config)
    config.data.datasets, config.data.data_root, config.data.cache_dir = ["DEAP"], str(tmp / "data"), str(tmp / "cache")
    config.training.num_epochs, config.training.early_stopping = args.loso_epochs, False
    config.save(tmp / "loso.json")
    started = time.perf_counter()
    assert loso_main(["--config", str(tmp / "loso.json"), "--output", str(tmp / "loso")]) == 0
    wall = time.perf_counter() - started
    folds = [json.loads(p.read_text()) for p in sorted((tmp / "loso" / "folds").glob("*.json"))]
    extra = [f["wall_seconds"] - f["loop_seconds"] for f in folds]
    runners = len({f["runner"] for f in folds})
    print(f"\nLOSO, {len(folds)} folds of synthetic DEAP ({args.loso_config} config, {args.loso_epochs} epochs) on "
          f"{folds[0]['device']}, {runners} runner(s) at once: {wall:.1f} s in all")
    print(f"fold wall (start to result on the driver) - epoch loop: mean {np.mean(extra):.2f} s, max "
          f"{np.max(extra):.2f} s  (target <= 5 s); epoch loop mean {np.mean([f['loop_seconds'] for f in folds]):.1f} s")
    print(f"whole run per fold, everything charged (runners x wall - epoch loops) / folds: "
          f"{(runners * wall - sum(f['loop_seconds'] for f in folds)) / len(folds):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--windows", type=int, default=4096, help="training windows of the real path's fold")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--configs", nargs="+", default=["full", "quick"])
    parser.add_argument("--steps", type=int, default=30, help="ceiling: timed optimizer steps")
    parser.add_argument("--loso-subjects", type=int, default=5)
    parser.add_argument("--loso-epochs", type=int, default=12)
    parser.add_argument("--loso-config", default="full")
    add_keep_argument(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = {"fp32": Precision(device.type, None), "bf16": Precision(device.type, torch.bfloat16)}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}")
    with scratch_dir("bench_gpu_", args.keep) as tmp:
        for config_name in args.configs:
            print("\n| config | batch | precision | real path (windows/s) | GPU-resident ceiling | real / ceiling |")
            print("|---|---|---|---|---|---|")
            config = resolve_config(config_name)
            config.data.augmentation_ratio = 1.0
            features = random_features(args.windows, (args.channels, *window_shape(config)))
            shape = features.features.shape[1:]
            for batch in args.batches:
                for label, precision in precisions.items():
                    real = real_rate(config, features, device, precision, batch)
                    ceiling = ceiling_rate(config, shape, device, precision, batch, args.steps)
                    print(f"| {config_name} | {batch} | {label} | {real:,.0f} | {ceiling:,.0f} | {real / ceiling:.0%} |",
                          flush=True)
            if config_name == args.configs[0]:
                packed_loso(tmp, args)


if __name__ == "__main__":
    main()
