"""DeepConvNet (Schirrmeister et al. 2017): four conv-max-pool blocks of 25, 50, 100, 200 filters."""

from __future__ import annotations

import torch
from torch import nn

from gru_xnet.models.common import check_dropout, check_model_args, glorot_init


class DeepConvNet(nn.Module):
    """A split temporal/spatial first block, three dropout-conv-BN-ELU-max-pool blocks, dense logits.

    The layers of braindecode's Deep4Net; its final full-length conv is the equivalent dense layer.
    """

    FILTERS = (25, 50, 100, 200)
    KERNEL_LENGTH = 10
    POOL = 3

    def __init__(self, input_shape: tuple[int, int], n_classes: int, *, dropout: float = 0.5):
        super().__init__()
        n_channels, n_samples = check_model_args(input_shape, n_classes, self.min_samples())
        dropout = check_dropout(dropout)
        first = self.FILTERS[0]
        self.block_1 = nn.Sequential(
            nn.Conv2d(1, first, (1, self.KERNEL_LENGTH)),
            nn.Conv2d(first, first, (n_channels, 1), bias=False),
            nn.BatchNorm2d(first), nn.ELU(), nn.MaxPool2d((1, self.POOL), stride=(1, self.POOL)),
        )
        self.blocks = nn.Sequential(*(
            nn.Sequential(
                nn.Dropout(dropout), nn.Conv2d(n_in, n_out, (1, self.KERNEL_LENGTH), bias=False),
                nn.BatchNorm2d(n_out), nn.ELU(), nn.MaxPool2d((1, self.POOL), stride=(1, self.POOL)),
            )
            for n_in, n_out in zip(self.FILTERS[:-1], self.FILTERS[1:])
        ))
        self.classifier = nn.Linear(self.FILTERS[-1] * self.out_samples(n_samples), n_classes)
        glorot_init(self)

    @classmethod
    def out_samples(cls, n_samples: int) -> int:
        """Time steps left after the four blocks for a window of `n_samples` (< 1: too short)."""
        n = n_samples
        for _ in cls.FILTERS:
            n = (n - cls.KERNEL_LENGTH + 1 - cls.POOL) // cls.POOL + 1
        return n

    @classmethod
    def min_samples(cls) -> int:
        """The shortest window that leaves one time step after the four blocks (441 samples)."""
        n = 1
        for _ in cls.FILTERS:
            n = cls.POOL * n + cls.KERNEL_LENGTH - 1
        return n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `(B, n_classes)` of raw EEG windows `(B, C, T)`."""
        x = self.block_1(x.unsqueeze(1))  # (B, 25, 1, (T - 9) // 3)
        x = self.blocks(x)  # (B, 200, 1, T')
        return self.classifier(x.flatten(1))  # (B, n_classes)
