"""TSception (Ding et al., IEEE TAC 2022): multi-scale temporal kernels, then global and per-hemisphere spatial kernels.

Checked against the reference implementations TorchEEG (`torcheeg/models/cnn/tsception.py`, commit b6039b1),
LibEER (`LibEER/models/TSception.py`, commit dddff97) and EEGain (`eegain/models/tsception.py`, commit 43dcbf6):
the same layers and parameter count (12,563 for 28 channels, 2 classes, 128 Hz). The hemisphere kernel needs the
channels in hemisphere order, which LibEER derives from 10-20 names (`generate_TS_channel_order`, lines 84-115 of
its TSception.py) and which this model derives the same way from the `channels` the model contract passes.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import nn

from gru_xnet.models.common import check_dropout, check_model_args

ELECTRODE = re.compile(r"([A-Za-z]+?)(\d+|z)", re.IGNORECASE)
"""A 10-20 name: letters, then a number (odd: left hemisphere, even: right) or 'z' (midline)."""


def hemisphere_order(channels: Sequence[str]) -> tuple[list[int], list[int]]:
    """Indices of the left-hemisphere channels (input order) and of their right mirrors, midline channels dropped.

    A channel is left when its 10-20 number is odd, right when even; its mirror has the same letters and the
    number one up (left) or down (right), matched case-insensitively. A channel that is neither midline nor
    paired is refused by name: the hemisphere kernel would have no mirror for it.
    """
    index = {name.upper(): i for i, name in enumerate(channels)}
    left, right, unpaired = [], [], []
    for i, name in enumerate(channels):
        match = ELECTRODE.fullmatch(name.strip())
        if match and match.group(2).lower() == "z":
            continue
        if not match:
            unpaired.append(name)
            continue
        letters, number = match.group(1).upper(), int(match.group(2))
        mirror = f"{letters}{number + 1 if number % 2 else number - 1}"
        if mirror not in index:
            unpaired.append(name)
        elif number % 2:
            left.append(i)
            right.append(index[mirror])
    if unpaired:
        raise ValueError(f"channels {unpaired}: TSception pairs every non-midline 10-20 channel with its mirror "
                         "(odd number left, even right, 'z' midline); these have no mirror among the input channels")
    return left, right


def _block(in_channels: int, out_channels: int, kernel: tuple[int, int], stride, pool: int) -> nn.Sequential:
    """Conv, LeakyReLU, average pooling over time: the reference's `conv_block`."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride=stride), nn.LeakyReLU(),
                         nn.AvgPool2d((1, pool), stride=(1, pool)))


class TSception(nn.Module):
    """Raw EEG windows `(B, C, T)` to logits: three temporal kernels of `inception_windows` seconds, a spatial
    kernel over every channel and one over each hemisphere, a fusion kernel, the mean over time, a small head."""

    POOL = 8

    def __init__(self, input_shape: tuple[int, int], n_classes: int, *, sampling_rate: float,
                 channels: Sequence[str], num_T: int = 15, num_S: int = 15, hidden: int = 32, dropout: float = 0.5,
                 inception_windows: Sequence[float] = (0.5, 0.25, 0.125)):
        super().__init__()
        for name, value in (("num_T", num_T), ("num_S", num_S), ("hidden", hidden)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        kernels = [int(w * sampling_rate) for w in inception_windows]
        if len(kernels) != 3 or min(kernels) < 1:
            raise ValueError(f"inception_windows={list(inception_windows)!r} at {sampling_rate:g} Hz: expected three "
                             "windows in seconds of at least one sample each")
        n_channels, _ = check_model_args(input_shape, n_classes, self.min_samples(kernels))
        if len(channels) != n_channels:
            raise ValueError(f"channels: expected {n_channels} names, one per input channel, found {len(channels)}")
        left, right = hemisphere_order(channels)
        self.register_buffer("order", torch.tensor(left + right), persistent=False)
        paired = len(left) + len(right)
        self.temporal = nn.ModuleList(_block(1, num_T, (1, k), 1, self.POOL) for k in kernels)
        self.bn_temporal = nn.BatchNorm2d(num_T)
        self.spatial = _block(num_T, num_S, (paired, 1), 1, self.POOL // 4)
        self.hemispheres = _block(num_T, num_S, (len(left), 1), (len(left), 1), self.POOL // 4)
        self.bn_spatial = nn.BatchNorm2d(num_S)
        self.fusion = _block(num_S, num_S, (3, 1), 1, 4)
        self.bn_fusion = nn.BatchNorm2d(num_S)
        self.classifier = nn.Sequential(nn.Linear(num_S, hidden), nn.ReLU(), nn.Dropout(check_dropout(dropout)),
                                        nn.Linear(hidden, n_classes))

    @classmethod
    def out_steps(cls, n_samples: int, kernels: Sequence[int]) -> int:
        """Time steps left after the fusion block for a window of `n_samples` (0: too short)."""
        steps = sum(max(0, n_samples - k + 1) // cls.POOL for k in kernels)
        return steps // (cls.POOL // 4) // 4

    @classmethod
    def min_samples(cls, kernels: Sequence[int]) -> int:
        """The shortest window that leaves one time step after the fusion block."""
        n = max(kernels)
        while cls.out_steps(n, kernels) < 1:
            n += 1
        return n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `(B, n_classes)` of raw EEG windows `(B, C, T)`."""
        x = x[:, self.order].unsqueeze(1)  # (B, 1, C', T): left hemisphere, then the mirrors
        x = self.bn_temporal(torch.cat([branch(x) for branch in self.temporal], dim=-1))  # (B, num_T, C', T1)
        x = torch.cat([self.spatial(x), self.hemispheres(x)], dim=2)  # (B, num_S, 3, T2): all, left, right
        x = self.bn_fusion(self.fusion(self.bn_spatial(x)))  # (B, num_S, 1, T3)
        return self.classifier(x.mean(dim=-1).flatten(1))  # (B, n_classes)
