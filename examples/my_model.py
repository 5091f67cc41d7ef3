"""An example of your own model for `--model examples/my_model.py:make`: a small CNN over STFT images.

`make(input_shape, n_classes, **params)` gets one window's shape without the batch axis (here
`(C, F, T)`: channels, frequencies, frames) and returns a `torch.nn.Module` mapping `(B, *input_shape)`
to logits `(B, n_classes)`. Parameters come from `--model.params '{"width": 16}'`. The file is read
once by the driver and shipped to the workers as text: keep it self-contained.
"""

import torch
from torch import nn


class SpectralCNN(nn.Module):
    """Channels as input planes, two conv blocks over (frequency, time), global average pooling, a linear head."""

    def __init__(self, n_channels: int, n_classes: int, width: int, dropout: float):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(n_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def make(input_shape, n_classes, width=16, dropout=0.25):
    """The model for STFT windows of `input_shape` = (C, F, T)."""
    return SpectralCNN(input_shape[0], n_classes, width, dropout)


make.representation = "stft"  # optional: the input this model takes ('stft', 'raw' or 'de')
