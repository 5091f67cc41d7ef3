"""EEG Conformer (Song et al., IEEE TNSRE 2023): a ShallowConvNet stem cut into tokens, a transformer encoder, an MLP.

Laid out as braindecode's `EEGConformer` (`braindecode/models/eegconformer.py`, commit eb3ddee6: `_PatchEmbedding`,
`_TransformerEncoderBlock`, `_FullyConnected`, the final linear layer) with its defaults: 40 temporal filters of 25
samples, a spatial convolution over every channel, average pooling 75 / stride 15, 6 pre-norm encoder blocks of 10
heads, dropout 0.5, a 256 -> 32 head. Attention scales by the head width, as braindecode's scaled-dot-product
attention does (the authors' code divides by the square root of the whole embedding).
"""

from __future__ import annotations

import torch
from torch import nn

from gru_xnet.models.common import check_dropout, check_model_args


class EncoderBlock(nn.Module):
    """Pre-norm multi-head self-attention and a 4x GELU feed-forward block, each with dropout and a residual."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.norm_attention = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm_feed_forward = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm_attention(x)  # (B, S, D)
        x = x + self.drop(self.attention(y, y, y, need_weights=False)[0])
        return x + self.drop(self.feed_forward(self.norm_feed_forward(x)))  # (B, S, D)


class EEGConformer(nn.Module):
    """Raw EEG windows `(B, C, T)` to logits through convolutional tokens and self-attention among them."""

    def __init__(self, input_shape: tuple[int, int], n_classes: int, *, n_filters: int = 40, filter_length: int = 25,
                 pool_length: int = 75, pool_stride: int = 15, layers: int = 6, heads: int = 10, dropout: float = 0.5,
                 attention_dropout: float = 0.5):
        super().__init__()
        for name, value in (("n_filters", n_filters), ("filter_length", filter_length), ("pool_length", pool_length),
                            ("pool_stride", pool_stride), ("layers", layers), ("heads", heads)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        if n_filters % heads:
            raise ValueError(f"heads={heads}: expected a divisor of n_filters={n_filters} (the embedding width)")
        n_channels, n_samples = check_model_args(input_shape, n_classes, filter_length - 1 + pool_length)
        self.stem = nn.Sequential(
            nn.Conv2d(1, n_filters, (1, filter_length)), nn.Conv2d(n_filters, n_filters, (n_channels, 1)),
            nn.BatchNorm2d(n_filters), nn.ELU(), nn.AvgPool2d((1, pool_length), stride=(1, pool_stride)),
            nn.Dropout(check_dropout(dropout)))
        self.projection = nn.Conv2d(n_filters, n_filters, 1)
        self.encoder = nn.Sequential(*(EncoderBlock(n_filters, heads, check_dropout(attention_dropout))
                                       for _ in range(layers)))
        tokens = (n_samples - filter_length + 1 - pool_length) // pool_stride + 1
        self.head = nn.Sequential(nn.Linear(tokens * n_filters, 256), nn.ELU(), nn.Dropout(0.5),
                                  nn.Linear(256, 32), nn.ELU(), nn.Dropout(0.3), nn.Linear(32, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `(B, n_classes)` of raw EEG windows `(B, C, T)`."""
        x = self.projection(self.stem(x.unsqueeze(1)))  # (B, D, 1, S): one token per pooling window
        x = self.encoder(x.squeeze(2).transpose(1, 2))  # (B, S, D)
        return self.head(x.flatten(1))  # (B, n_classes)
