"""Grouped channel CNN vs. a Python loop over per-channel CNNs, forward + backward, same weights.

Also home of the per-channel reference CNN that tests/test_model.py checks ChannelCNN against.
Run: ``python bench/bench_model.py [--channels 62 --batch 16 --freq 25 --time 29 --repeats 20]``
(with the package installed, e.g. ``pip install -e .``, or ``PYTHONPATH=.``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from gru_xnet.model import ChannelCNN


def per_channel_reference(grouped: ChannelCNN) -> nn.ModuleList:
    """Build C separate plain CNNs holding copies of grouped's per-channel weights and BN state."""
    n_channels = grouped.n_channels
    references = nn.ModuleList()
    for c in range(n_channels):
        layers: list[nn.Module] = []
        for module in grouped.blocks:
            if isinstance(module, nn.Conv2d):
                width = module.out_channels // n_channels
                conv = nn.Conv2d(module.in_channels // n_channels, width, kernel_size=3, padding=1)
                conv.weight.data.copy_(module.weight.data[c * width:(c + 1) * width])
                conv.bias.data.copy_(module.bias.data[c * width:(c + 1) * width])
                layers.append(conv)
            elif isinstance(module, nn.BatchNorm2d):
                width = module.num_features // n_channels
                part = slice(c * width, (c + 1) * width)
                norm = nn.BatchNorm2d(width, eps=module.eps, momentum=module.momentum)
                norm.weight.data.copy_(module.weight.data[part])
                norm.bias.data.copy_(module.bias.data[part])
                norm.running_mean.copy_(module.running_mean[part])
                norm.running_var.copy_(module.running_var[part])
                norm.num_batches_tracked.copy_(module.num_batches_tracked)
                layers.append(norm)
            elif isinstance(module, nn.ReLU):
                layers.append(nn.ReLU())
            elif isinstance(module, nn.MaxPool2d):
                layers.append(nn.MaxPool2d(module.kernel_size, ceil_mode=True))
            else:
                raise TypeError(f"no per-channel reference for {type(module).__name__}")
        references.append(nn.Sequential(*layers))
    return references.train(grouped.training)


def run_per_channel(references: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """Apply CNN c to channel c of (B, C, F, T), one at a time; returns (B, C, k, F', T')."""
    return torch.stack([cnn(x[:, c:c + 1]) for c, cnn in enumerate(references)], dim=1)


def median_seconds(step: Callable[[], None], repeats: int, warmup: int, device: torch.device
                   ) -> float:
    """Median wall time of step() after warm-up, synchronising CUDA so timings are real."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time both implementations on identical weights and input and print the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=62)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--freq", type=int, default=25)
    parser.add_argument("--time", type=int, default=29)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)

    grouped = ChannelCNN(args.channels).to(device).train()
    looped = per_channel_reference(grouped).to(device)
    x = torch.randn(args.batch, args.channels, args.freq, args.time, device=device)

    def step_for(forward: Callable[[torch.Tensor], torch.Tensor], module: nn.Module
                 ) -> Callable[[], None]:
        def step() -> None:
            module.zero_grad(set_to_none=True)
            forward(x).square().mean().backward()
        return step

    with torch.no_grad():
        max_diff = (grouped(x) - run_per_channel(looped, x)).abs().max().item()
    t_grouped = median_seconds(step_for(grouped, grouped), args.repeats, args.warmup, device)
    t_looped = median_seconds(step_for(lambda inp: run_per_channel(looped, inp), looped),
                              args.repeats, args.warmup, device)
    print(f"device={device} threads={torch.get_num_threads()} channels={args.channels} "
          f"batch={args.batch} F={args.freq} T={args.time} repeats={args.repeats} "
          f"(max |grouped - loop| = {max_diff:.2e})")
    print(f"grouped ChannelCNN   fwd+bwd median: {t_grouped * 1e3:8.2f} ms")
    print(f"per-channel loop     fwd+bwd median: {t_looped * 1e3:8.2f} ms")
    print(f"speed-up (loop / grouped): {t_looped / t_grouped:.1f}x")


if __name__ == "__main__":
    main()
