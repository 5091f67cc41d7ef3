"""ShallowConvNet (Schirrmeister et al. 2017): an FBCSP-like net of band power in learnt spatial filters."""

from __future__ import annotations

import torch
from torch import nn

from gru_xnet.models.common import check_dropout, check_model_args, glorot_init


class ShallowConvNet(nn.Module):
    """Temporal conv, spatial conv, BN, square, mean pool, safe log, dropout, dense logits.

    The layers of braindecode's ShallowFBCSPNet; its final full-length conv is the equivalent dense layer.
    """

    N_FILTERS = 40
    KERNEL_LENGTH = 25
    POOL_LENGTH = 75
    POOL_STRIDE = 15
    LOG_EPS = 1e-6

    def __init__(self, input_shape: tuple[int, int], n_classes: int, *, dropout: float = 0.5):
        super().__init__()
        n_channels, n_samples = check_model_args(input_shape, n_classes, self.min_samples())
        self.temporal = nn.Conv2d(1, self.N_FILTERS, (1, self.KERNEL_LENGTH))
        self.spatial = nn.Conv2d(self.N_FILTERS, self.N_FILTERS, (n_channels, 1), bias=False)
        self.bn = nn.BatchNorm2d(self.N_FILTERS)
        self.pool = nn.AvgPool2d((1, self.POOL_LENGTH), stride=(1, self.POOL_STRIDE))
        self.drop = nn.Dropout(check_dropout(dropout))
        self.classifier = nn.Linear(self.N_FILTERS * self.out_samples(n_samples), n_classes)
        glorot_init(self)

    @classmethod
    def out_samples(cls, n_samples: int) -> int:
        """Pooled time steps left before the classifier for a window of `n_samples`."""
        return (n_samples - cls.KERNEL_LENGTH + 1 - cls.POOL_LENGTH) // cls.POOL_STRIDE + 1

    @classmethod
    def min_samples(cls) -> int:
        """The shortest window that fills one pooling window after the temporal conv (99 samples)."""
        return cls.KERNEL_LENGTH - 1 + cls.POOL_LENGTH

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `(B, n_classes)` of raw EEG windows `(B, C, T)`."""
        x = self.bn(self.spatial(self.temporal(x.unsqueeze(1))))  # (B, 40, 1, T - 24)
        x = self.pool(x.square())  # (B, 40, 1, T'): mean power
        x = self.drop(torch.log(torch.clamp(x, min=self.LOG_EPS)))  # (B, 40, 1, T'): log power
        return self.classifier(x.flatten(1))  # (B, n_classes)
