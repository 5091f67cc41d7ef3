"""gru_xnet: channel-independent CNN -> feature fusion -> BiGRU -> self-attention -> classifier.

Input is a batch of per-channel log-power STFT images, shape ``(B, C, F, T)``.

* ``ChannelCNN`` gives every EEG channel its own 3-block CNN (Conv 3x3 -> BatchNorm -> ReLU ->
  MaxPool), computed for all channels at once as a grouped convolution (``groups=C``). The first
  ``time_pool_blocks`` blocks pool 2x2 (frequency and time), the others 2x1 (frequency only), so the
  time axis keeps enough steps for the sequence model.
* ``model_type`` decides what the BiGRU runs over:

  - ``'dynamic'``: the pooled STFT time axis. Each channel's map is averaged over frequency, the
    C channel vectors of a frame are concatenated and fused by ``Linear(C*k -> fusion_dim)``, so
    the sequence has one token per pooled time step (``gru_xnet.config.sequence_length``).
  - ``'standard'``: the EEG channels. Each channel's map is averaged over frequency and time and
    projected by one ``Linear(k -> fusion_dim)`` shared by all channels, so the sequence has one
    token per channel.

* A bidirectional GRU, multi-head self-attention in a pre-norm residual block (``x + attn(LN(x))``;
  skipped with ``use_attention=False``), a mean over the sequence and an MLP head give the class logits
  ``(B, n_classes)``; ``forward(x, return_attention=True)`` also returns the attention weights. Pre-norm:
  with the post-norm ``LN(x + attn(x))`` the dynamic model sat at chance for the whole quick schedule on
  2 of 5 temporal-signal folds, with pre-norm on none (bench/bench_ablation.py's data, seed 0).
* ``order_blind=True`` is the ablation control: every STFT frame is replaced by the window's mean
  frame before the CNN, so the model sees the same sequence length but no temporal order.

The argument rules (``validate_model_args``, ``check_sequence``) live in ``gru_xnet.config``, which
also applies them to a whole experiment's config; this module calls them.

``create_gru_xnet_model`` is the one entry point; it validates the arguments and the model keeps
them in ``model.hparams`` so a checkpoint can rebuild it with ``create_gru_xnet_model(**hparams)``.
``n_freq_bins``/``n_time_bins`` are recorded there; the layers themselves accept any F and T >= 1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gru_xnet.config import check_sequence, validate_model_args

class ChannelCNN(nn.Module):
    """One independent CNN per EEG channel, run for all channels in one grouped convolution.

    Each block: Conv 3x3 -> BatchNorm -> ReLU -> MaxPool (ceil mode, so 1-frame axes survive),
    2x2 in the first `time_pool_blocks` blocks and 2x1 (frequency only) after them.
    """

    def __init__(self, n_channels: int, cnn_channels: tuple[int, ...] = (32, 64, 128), time_pool_blocks: int = 2) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.out_channels = cnn_channels[-1]
        blocks: list[nn.Module] = []
        width_in = 1
        for block, width in enumerate(cnn_channels):
            blocks += [
                nn.Conv2d(n_channels * width_in, n_channels * width, kernel_size=3, padding=1,
                          groups=n_channels),
                nn.BatchNorm2d(n_channels * width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d((2, 2) if block < time_pool_blocks else (2, 1), ceil_mode=True),
            ]
            width_in = width
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, C, F, T) to per-channel feature maps (B, C, k, F', T')."""
        batch = x.shape[0]
        x = self.blocks(x)  # (B, C*k, F', T'), channel c owns features [c*k, (c+1)*k)
        return x.view(batch, self.n_channels, self.out_channels, *x.shape[-2:])


class GRUXNet(nn.Module):
    """Channel CNN, feature fusion, BiGRU, self-attention and classifier (see module docstring)."""

    def __init__(self, n_channels: int, n_freq_bins: int, n_time_bins: int, n_classes: int = 2,
                 model_type: str = "dynamic", gru_hidden_size: int = 128,
                 num_attention_heads: int = 4, dropout: float = 0.5,
                 cnn_channels: tuple[int, ...] = (32, 64, 128), fusion_dim: int = 256,
                 gru_layers: int = 2, fc_dims: tuple[int, ...] = (256, 128), time_pool_blocks: int = 2,
                 use_attention: bool = True, order_blind: bool = False) -> None:
        super().__init__()
        cnn_channels, fc_dims = tuple(cnn_channels), tuple(fc_dims)
        self.hparams: dict[str, Any] = {
            "n_channels": n_channels, "n_freq_bins": n_freq_bins, "n_time_bins": n_time_bins,
            "n_classes": n_classes, "model_type": model_type, "gru_hidden_size": gru_hidden_size,
            "num_attention_heads": num_attention_heads, "dropout": dropout,
            "cnn_channels": cnn_channels, "fusion_dim": fusion_dim, "gru_layers": gru_layers,
            "fc_dims": fc_dims, "time_pool_blocks": time_pool_blocks, "use_attention": use_attention,
            "order_blind": order_blind,
        }
        validate_model_args(**self.hparams)
        self.sequence_length = check_sequence(model_type, n_channels, n_time_bins, time_pool_blocks)
        self.n_channels = n_channels
        self.model_type = model_type
        self.order_blind = order_blind
        k = cnn_channels[-1]
        attn_dim = 2 * gru_hidden_size

        self.channel_cnn = ChannelCNN(n_channels, cnn_channels, time_pool_blocks)
        fusion_in = n_channels * k if model_type == "dynamic" else k
        self.fusion = nn.Sequential(nn.Linear(fusion_in, fusion_dim), nn.ReLU(inplace=True),
                                    nn.Dropout(dropout))
        self.bigru = nn.GRU(fusion_dim, gru_hidden_size, num_layers=gru_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if gru_layers > 1 else 0.0)
        self.attention = nn.MultiheadAttention(attn_dim, num_attention_heads, batch_first=True) if use_attention else None
        self.attention_norm = nn.LayerNorm(attn_dim) if use_attention else None
        head: list[nn.Module] = []
        width_in = attn_dim
        for width in fc_dims:
            head += [nn.Linear(width_in, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width_in = width
        head.append(nn.Linear(width_in, n_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Map STFT images (B, C, F, T) to class logits (B, n_classes).

        With `return_attention=True`, returns `(logits, weights)`: the self-attention weights averaged
        over heads, (B, S, S) with rows = querying step (None without attention).
        """
        if x.dim() != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input of shape (B, C={self.n_channels}, F, T), "
                             f"got {tuple(x.shape)}")
        if self.order_blind:
            x = x.mean(dim=3, keepdim=True).expand_as(x)  # (B, C, F, T): every frame is the mean frame
        x = self.channel_cnn(x)  # (B, C, k, F', T')
        if self.model_type == "dynamic":
            x = x.mean(dim=3)  # (B, C, k, T')
            x = x.permute(0, 3, 1, 2).flatten(2)  # (B, T', C*k)
        else:
            x = x.mean(dim=(3, 4))  # (B, C, k)
        x = self.fusion(x)  # (B, S, fusion_dim), S = T' (dynamic) or C (standard)
        x, _ = self.bigru(x)  # (B, S, 2H)
        weights = None
        if self.attention is not None:
            normed = self.attention_norm(x)  # (B, S, 2H)
            attended, weights = self.attention(normed, normed, normed, need_weights=return_attention)  # (B, S, S)
            x = x + attended  # (B, S, 2H)
        logits = self.head(x.mean(dim=1))  # (B, 2H) -> (B, n_classes)
        return (logits, weights) if return_attention else logits


def create_gru_xnet_model(n_channels: int, n_freq_bins: int, n_time_bins: int, n_classes: int = 2,
                          model_type: str = "dynamic", gru_hidden_size: int = 128,
                          num_attention_heads: int = 4, dropout: float = 0.5,
                          cnn_channels: tuple[int, ...] = (32, 64, 128), fusion_dim: int = 256,
                          gru_layers: int = 2, fc_dims: tuple[int, ...] = (256, 128), time_pool_blocks: int = 2,
                          use_attention: bool = True, order_blind: bool = False) -> GRUXNet:
    """Build a validated GRUXNet; ``create_gru_xnet_model(**model.hparams)`` rebuilds the same one.

    Raises ValueError naming the argument, its value and the allowed values for bad arguments.
    """
    return GRUXNet(n_channels=n_channels, n_freq_bins=n_freq_bins, n_time_bins=n_time_bins,
                   n_classes=n_classes, model_type=model_type, gru_hidden_size=gru_hidden_size,
                   num_attention_heads=num_attention_heads, dropout=dropout,
                   cnn_channels=cnn_channels, fusion_dim=fusion_dim, gru_layers=gru_layers,
                   fc_dims=fc_dims, time_pool_blocks=time_pool_blocks, use_attention=use_attention,
                   order_blind=order_blind)


def from_window(input_shape: tuple[int, int, int], n_classes: int, **params: Any) -> GRUXNet:
    """The registry's constructor: a GRUXNet for windows of shape (C, F, T)."""
    n_channels, n_freq, n_time = input_shape
    return create_gru_xnet_model(n_channels=n_channels, n_freq_bins=n_freq, n_time_bins=n_time, n_classes=n_classes,
                                 **params)
