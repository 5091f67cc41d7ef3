"""Models by config and by checkpoint: `build_model` for a fold, `load_model` for a saved one, whatever the entry.

The gru_xnet network lives in `gru_xnet.models.gruxnet`; its seed-API names are re-exported here.
A scikit-learn model is handed around fitted inside an `EstimatorModule`, so evaluation and prediction
treat every model alike; its checkpoint holds its fitted arrays, never a pickle.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from gru_xnet.checkpoint import CheckpointError, read_checkpoint
from gru_xnet.config import ConfigError, ModelConfig
from gru_xnet.estimators import EstimatorModule, estimator_state, is_estimator, load_estimator_state
from gru_xnet.models import ModelSpec, model_spec
from gru_xnet.models.gruxnet import ChannelCNN, GRUXNet, create_gru_xnet_model  # the seed API

__all__ = ["ChannelCNN", "GRUXNet", "build_model", "create_gru_xnet_model", "load_model", "model_input",
           "model_payload"]
log = logging.getLogger(__name__)


def build_model(config: ModelConfig, input_shape: tuple[int, ...], n_classes: int, spec: ModelSpec | None = None, *,
                sampling_rate: float | None = None, channels: Sequence[str] = ()):
    """The (unfitted) model `config` names, for windows of `input_shape` (at `sampling_rate` along their time axis,
    of `channels`): a torch module or a scikit-learn classifier."""
    return (spec or model_spec(config.name)).instantiate(config, input_shape, n_classes, sampling_rate=sampling_rate,
                                                         channels=channels)


def model_input(features) -> dict[str, Any]:
    """What a builder may be told of a feature set's windows beyond their shape (`INPUT_ARGUMENTS`): the rate of
    their time axis and the channel names, for `build_model` and `ModelSpec.record`."""
    return {"sampling_rate": features.sampling_rate, "channels": tuple(features.channel_names)}


def model_payload(model: nn.Module, record: dict[str, Any], input_shape: tuple[int, ...], n_classes: int) -> dict:
    """The checkpoint fields that rebuild `model`: its record, window shape, classes and plain-data weights."""
    state = estimator_state(model.estimator) if isinstance(model, EstimatorModule) else model.state_dict()
    return {"model": record, "input_shape": list(input_shape), "n_classes": n_classes, "model_state": state,
            "hparams": getattr(model, "hparams", {})}


def _spec_of(path: Path, record: dict[str, Any]) -> ModelSpec:
    """The entry that made a checkpoint's model; a user file from its recorded path, with its SHA-256 compared."""
    name = record["name"]
    if record.get("path"):
        name = f"{record['path']}:{name.rsplit(':', 1)[1]}"
    try:
        spec = model_spec(name)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its model {record['name']!r} cannot be loaded: {exc}") from exc
    if record.get("source_sha256") and spec.origin.get("source_sha256") != record["source_sha256"]:
        log.warning("%s: %s changed since training (source SHA-256 %s then, %s now)", path, record.get("path"),
                    record["source_sha256"][:16], spec.origin.get("source_sha256", "?")[:16])
    return spec


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained model from a gru_xnet checkpoint (weights-only load), in eval mode: its builder called with
    the recorded parameters and, when it names them, the recorded sampling rate and channels.

    The checkpoint's other fields (config, class names, channels, normaliser) are in
    `model.checkpoint_meta`, so predictions can be made on new recordings.
    """
    data = read_checkpoint(path, map_location=map_location)
    spec = _spec_of(Path(path), data["model"]) if "model" in data else None
    try:
        if spec is not None:
            record = data["model"]
            built = spec.construct(record["params"], data["input_shape"], data["n_classes"],
                                   sampling_rate=record.get("sampling_rate"), channels=record.get("channels") or ())
            if is_estimator(built):
                model = EstimatorModule(load_estimator_state(built, data["model_state"]), data["n_classes"])
            else:
                model = built
                model.load_state_dict(data["model_state"])
        else:  # written before the model registry: a gru_xnet model rebuilt from its hyper-parameters
            model = create_gru_xnet_model(**data["hparams"])
            model.load_state_dict(data["model_state"])
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored model and parameters: {exc}") from exc
    model.checkpoint_meta = {k: v for k, v in data.items() if k not in ("model_state", "optimizer_state",
                                                                        "best_state")}
    return model.eval()
