"""What the raw-EEG models share: checking their window and classes, and the Glorot start of their weights."""

from __future__ import annotations

from torch import nn


def check_model_args(input_shape: tuple[int, int], n_classes: int, min_samples: int) -> tuple[int, int]:
    """`(C, T)` as ints, refusing a window shorter than `min_samples` or fewer than 2 classes."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else input_shape
    if not (isinstance(shape, tuple) and len(shape) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)):
        raise ValueError(f"input_shape={input_shape!r}: expected (channels, samples), two positive integers")
    if not (isinstance(n_classes, int) and not isinstance(n_classes, bool) and n_classes >= 2):
        raise ValueError(f"n_classes={n_classes!r}: expected an integer >= 2")
    if shape[1] < min_samples:
        raise ValueError(f"input_shape={shape!r}: expected at least {min_samples} samples per window "
                         f"for the convolutions and pooling, got {shape[1]}")
    return shape


def check_dropout(dropout: float) -> float:
    """A dropout probability in [0, 1)."""
    if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1):
        raise ValueError(f"dropout={dropout!r}: expected a probability with 0 <= dropout < 1")
    return float(dropout)


def glorot_init(model: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for convolutions and dense layers, as the papers and braindecode."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

