"""gru_xnet: CNN-BiGRU-self-attention EEG emotion recognition (model library, no Ray inside)."""

__version__ = "0.1.0"
