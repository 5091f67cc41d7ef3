"""gru_xnet: channel-independent CNN -> feature fusion -> BiGRU -> self-attention -> classifier.

Input is a batch of per-channel log-power STFT images, shape ``(B, C, F, T)``.

* ``ChannelCNN`` gives every EEG channel its own 3-block CNN (Conv 3x3 -> BatchNorm -> ReLU ->
  MaxPool 2x2), computed for all channels at once as a grouped convolution (``groups=C``).
* ``model_type`` decides what the BiGRU runs over:

  - ``'dynamic'``: the pooled STFT time axis. Each channel's map is averaged over frequency, the
    C channel vectors of a frame are concatenated and fused by ``Linear(C*k -> fusion_dim)``, so
    the sequence has one token per (pooled) time frame.
  - ``'standard'``: the EEG channels. Each channel's map is averaged over frequency and time and
    projected by one ``Linear(k -> fusion_dim)`` shared by all channels, so the sequence has one
    token per channel.

* A bidirectional GRU, multi-head self-attention with a residual connection and LayerNorm, a mean
  over the sequence and an MLP head give the class logits ``(B, n_classes)``.

``create_gru_xnet_model`` is the one entry point; it validates the arguments and the model keeps
them in ``model.hparams`` so a checkpoint can rebuild it with ``create_gru_xnet_model(**hparams)``.
``n_freq_bins``/``n_time_bins`` are recorded there; the layers themselves accept any F and T >= 1.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gru_xnet.checkpoint import CheckpointError, read_checkpoint

if TYPE_CHECKING:
    from gru_xnet.config import ModelConfig

MODEL_TYPES = ("standard", "dynamic")


def validate_model_args(n_channels: int, n_freq_bins: int, n_time_bins: int, n_classes: int,
                        model_type: str, gru_hidden_size: int, num_attention_heads: int,
                        dropout: float, cnn_channels: tuple[int, ...], fusion_dim: int,
                        gru_layers: int, fc_dims: tuple[int, ...]) -> None:
    """Raise ValueError naming the argument, its value and what is allowed, for any bad argument."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type={model_type!r} is not supported; allowed: {MODEL_TYPES}")
    sizes = {"n_channels": n_channels, "n_freq_bins": n_freq_bins, "n_time_bins": n_time_bins,
             "n_classes": n_classes, "gru_hidden_size": gru_hidden_size,
             "num_attention_heads": num_attention_heads, "fusion_dim": fusion_dim,
             "gru_layers": gru_layers}
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} is invalid; allowed: an integer >= 1")
    for name, widths in (("cnn_channels", cnn_channels), ("fc_dims", fc_dims)):
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"{name}={widths!r} is invalid; allowed: a sequence of integers >= 1")
    if not cnn_channels:
        raise ValueError("cnn_channels=() is invalid; allowed: at least one CNN block width")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} is out of range; allowed: 0 <= dropout < 1")
    if (2 * gru_hidden_size) % num_attention_heads:
        raise ValueError(f"num_attention_heads={num_attention_heads} must divide the attention "
                         f"width 2 * gru_hidden_size = {2 * gru_hidden_size} "
                         f"(gru_hidden_size={gru_hidden_size})")


class ChannelCNN(nn.Module):
    """One independent CNN per EEG channel, run for all channels in one grouped convolution.

    Each block: Conv 3x3 -> BatchNorm -> ReLU -> MaxPool 2x2 (ceil mode, so 1-frame axes survive).
    """

    def __init__(self, n_channels: int, cnn_channels: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.out_channels = cnn_channels[-1]
        blocks: list[nn.Module] = []
        width_in = 1
        for width in cnn_channels:
            blocks += [
                nn.Conv2d(n_channels * width_in, n_channels * width, kernel_size=3, padding=1,
                          groups=n_channels),
                nn.BatchNorm2d(n_channels * width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
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
                 gru_layers: int = 2, fc_dims: tuple[int, ...] = (256, 128)) -> None:
        super().__init__()
        cnn_channels, fc_dims = tuple(cnn_channels), tuple(fc_dims)
        validate_model_args(n_channels, n_freq_bins, n_time_bins, n_classes, model_type,
                            gru_hidden_size, num_attention_heads, dropout, cnn_channels,
                            fusion_dim, gru_layers, fc_dims)
        self.hparams: dict[str, Any] = {
            "n_channels": n_channels, "n_freq_bins": n_freq_bins, "n_time_bins": n_time_bins,
            "n_classes": n_classes, "model_type": model_type, "gru_hidden_size": gru_hidden_size,
            "num_attention_heads": num_attention_heads, "dropout": dropout,
            "cnn_channels": cnn_channels, "fusion_dim": fusion_dim, "gru_layers": gru_layers,
            "fc_dims": fc_dims,
        }
        self.n_channels = n_channels
        self.model_type = model_type
        k = cnn_channels[-1]
        attn_dim = 2 * gru_hidden_size

        self.channel_cnn = ChannelCNN(n_channels, cnn_channels)
        fusion_in = n_channels * k if model_type == "dynamic" else k
        self.fusion = nn.Sequential(nn.Linear(fusion_in, fusion_dim), nn.ReLU(inplace=True),
                                    nn.Dropout(dropout))
        self.bigru = nn.GRU(fusion_dim, gru_hidden_size, num_layers=gru_layers, batch_first=True,
                            bidirectional=True, dropout=dropout if gru_layers > 1 else 0.0)
        self.attention = nn.MultiheadAttention(attn_dim, num_attention_heads, batch_first=True)
        self.attention_norm = nn.LayerNorm(attn_dim)
        head: list[nn.Module] = []
        width_in = attn_dim
        for width in fc_dims:
            head += [nn.Linear(width_in, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width_in = width
        head.append(nn.Linear(width_in, n_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map STFT images (B, C, F, T) to class logits (B, n_classes)."""
        if x.dim() != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected input of shape (B, C={self.n_channels}, F, T), "
                             f"got {tuple(x.shape)}")
        x = self.channel_cnn(x)  # (B, C, k, F', T')
        if self.model_type == "dynamic":
            x = x.mean(dim=3)  # (B, C, k, T')
            x = x.permute(0, 3, 1, 2).flatten(2)  # (B, T', C*k)
        else:
            x = x.mean(dim=(3, 4))  # (B, C, k)
        x = self.fusion(x)  # (B, S, fusion_dim), S = T' (dynamic) or C (standard)
        x, _ = self.bigru(x)  # (B, S, 2H)
        attended, _ = self.attention(x, x, x, need_weights=False)  # (B, S, 2H)
        x = self.attention_norm(x + attended)  # (B, S, 2H)
        x = x.mean(dim=1)  # (B, 2H)
        return self.head(x)  # (B, n_classes)


def create_gru_xnet_model(n_channels: int, n_freq_bins: int, n_time_bins: int, n_classes: int = 2,
                          model_type: str = "dynamic", gru_hidden_size: int = 128,
                          num_attention_heads: int = 4, dropout: float = 0.5,
                          cnn_channels: tuple[int, ...] = (32, 64, 128), fusion_dim: int = 256,
                          gru_layers: int = 2, fc_dims: tuple[int, ...] = (256, 128)) -> GRUXNet:
    """Build a validated GRUXNet; ``create_gru_xnet_model(**model.hparams)`` rebuilds the same one.

    Raises ValueError naming the argument, its value and the allowed values for bad arguments.
    """
    return GRUXNet(n_channels=n_channels, n_freq_bins=n_freq_bins, n_time_bins=n_time_bins,
                   n_classes=n_classes, model_type=model_type, gru_hidden_size=gru_hidden_size,
                   num_attention_heads=num_attention_heads, dropout=dropout,
                   cnn_channels=cnn_channels, fusion_dim=fusion_dim, gru_layers=gru_layers,
                   fc_dims=fc_dims)


def build_model(config: "ModelConfig", input_shape: tuple[int, int, int], n_classes: int) -> GRUXNet:
    """The model a ModelConfig describes, for features of shape `(C, F, T)`."""
    n_channels, n_freq, n_time = input_shape
    return create_gru_xnet_model(n_channels=n_channels, n_freq_bins=n_freq, n_time_bins=n_time,
                                 n_classes=n_classes, **dataclasses.asdict(config))


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> GRUXNet:
    """Rebuild a trained model from a gru_xnet checkpoint (weights-only load), in eval mode.

    The checkpoint's other fields (config, class names, channels, normaliser) are in
    `model.checkpoint_meta`, so predictions can be made on new recordings.
    """
    data = read_checkpoint(path, map_location=map_location)
    model = create_gru_xnet_model(**data["hparams"])
    try:
        model.load_state_dict(data["model_state"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored hyper-parameters: {exc}") from exc
    model.checkpoint_meta = {k: v for k, v in data.items() if k not in ("model_state", "optimizer_state",
                                                                        "best_state")}
    return model.eval()
