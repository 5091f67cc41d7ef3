"""EEGNet-F1,D (Lawhern et al. 2018), laid out as braindecode's EEGNetv4, with the paper's max-norm classifier."""

from __future__ import annotations

import math

import torch
from torch import nn

from gru_xnet.models.common import check_dropout, check_model_args, glorot_init


class MaxNorm:
    """Mixin for a conv or dense layer: Keras' max_norm, each output unit's weights at L2 norm <= `max_norm`.

    Rescaled before every forward, as braindecode does: every forward, training or evaluation, uses
    weights that obey the constraint, as Keras' projection after each update would give.
    """

    def __init__(self, *args, max_norm: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.weight.copy_(torch.renorm(self.weight, p=2, dim=0, maxnorm=self.max_norm))
        return super().forward(x)


class MaxNormConv2d(MaxNorm, nn.Conv2d):
    """Conv2d with max-norm output filters."""


class MaxNormLinear(MaxNorm, nn.Linear):
    """Linear layer with max-norm output units."""


class EEGNet(nn.Module):
    """Compact CNN: temporal filters, depthwise spatial filters per temporal filter, a separable conv, dense logits.

    `kernel_length` is half a second in the paper (64 at 128 Hz), `separable_kernel_length` half a second after
    the first pooling (16); the registry scales both to the input's rate (`kernels_for`). `dropout` 0.25 across
    subjects, 0.5 within. Temporal convolutions pad `k // 2` each side as braindecode (T -> T + 1
    for even k), so the minimum window is computed, not assumed.
    """

    POOL_1 = 4
    POOL_2 = 8
    SPATIAL_MAX_NORM = 1.0
    CLASSIFIER_MAX_NORM = 0.25

    def __init__(self, input_shape: tuple[int, int], n_classes: int, *, F1: int = 8, D: int = 2, F2: int = 16,
                 kernel_length: int = 64, separable_kernel_length: int = 16, dropout: float = 0.25):
        super().__init__()
        for name, value in (("F1", F1), ("D", D), ("F2", F2), ("kernel_length", kernel_length),
                            ("separable_kernel_length", separable_kernel_length)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        n_channels, n_samples = check_model_args(input_shape, n_classes,
                                                 self.min_samples(kernel_length, separable_kernel_length))
        dropout = check_dropout(dropout)
        self.temporal = nn.Conv2d(1, F1, (1, kernel_length), padding=(0, kernel_length // 2), bias=False)
        self.bn_temporal = nn.BatchNorm2d(F1, momentum=0.01, eps=1e-3)
        self.spatial = MaxNormConv2d(F1, F1 * D, (n_channels, 1), groups=F1, bias=False,
                                     max_norm=self.SPATIAL_MAX_NORM)
        self.bn_spatial = nn.BatchNorm2d(F1 * D, momentum=0.01, eps=1e-3)
        self.elu_1 = nn.ELU()
        self.pool_1 = nn.AvgPool2d((1, self.POOL_1))
        self.drop_1 = nn.Dropout(dropout)
        self.separable_depth = nn.Conv2d(F1 * D, F1 * D, (1, separable_kernel_length),
                                         padding=(0, separable_kernel_length // 2), groups=F1 * D, bias=False)
        self.separable_point = nn.Conv2d(F1 * D, F2, 1, bias=False)
        self.bn_separable = nn.BatchNorm2d(F2, momentum=0.01, eps=1e-3)
        self.elu_2 = nn.ELU()
        self.pool_2 = nn.AvgPool2d((1, self.POOL_2))
        self.drop_2 = nn.Dropout(dropout)
        n_out = self.out_samples(n_samples, kernel_length, separable_kernel_length)
        self.classifier = MaxNormLinear(F2 * n_out, n_classes, max_norm=self.CLASSIFIER_MAX_NORM)
        glorot_init(self)

    @classmethod
    def out_samples(cls, n_samples: int, kernel_length: int = 64, separable_kernel_length: int = 16) -> int:
        """Time steps left before the classifier for a window of `n_samples`."""
        growth_1, growth_2 = (_padded_growth(k) for k in (kernel_length, separable_kernel_length))
        return ((n_samples + growth_1) // cls.POOL_1 + growth_2) // cls.POOL_2

    @classmethod
    def min_samples(cls, kernel_length: int = 64, separable_kernel_length: int = 16) -> int:
        """The shortest window that leaves one time step before the classifier (27 by default)."""
        growth_1, growth_2 = (_padded_growth(k) for k in (kernel_length, separable_kernel_length))
        return cls.POOL_1 * (cls.POOL_2 - growth_2) - growth_1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `(B, n_classes)` of raw EEG windows `(B, C, T)`."""
        x = self.bn_temporal(self.temporal(x.unsqueeze(1)))  # (B, F1, C, T + 1)
        x = self.elu_1(self.bn_spatial(self.spatial(x)))  # (B, F1 * D, 1, T + 1)
        x = self.drop_1(self.pool_1(x))  # (B, F1 * D, 1, T1)
        x = self.separable_point(self.separable_depth(x))  # (B, F2, 1, T1 + 1)
        x = self.drop_2(self.pool_2(self.elu_2(self.bn_separable(x))))  # (B, F2, 1, T2)
        return self.classifier(x.flatten(1))  # (B, n_classes)


def kernels_for(sampling_rate: float) -> dict[str, int]:
    """The paper's kernels at `sampling_rate` Hz: half a second before and after the first pooling, each the nearest
    even number of samples (halves rounded up): 64 and 16 at 128 Hz, 100 and 26 at 200 Hz."""
    def even(samples: float) -> int:
        return max(2, 2 * math.floor(samples / 2 + 0.5))

    return {"kernel_length": even(sampling_rate / 2),
            "separable_kernel_length": even(sampling_rate / 2 / EEGNet.POOL_1)}


def _padded_growth(kernel_length: int) -> int:
    """Samples a stride-1 conv padded `k // 2` on each side adds: 1 for an even kernel, 0 for an odd one."""
    return 2 * (kernel_length // 2) - kernel_length + 1
