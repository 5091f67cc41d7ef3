"""The model registry: every model the framework trains, by name, plus your own from a file or module.

An entry is a `ModelSpec` (see `gru_xnet.models.spec`): the rest of the code asks the entry for its input
representation, constructor, defaults and search space, never branches on a name. The registry imports
neither torch nor scikit-learn: a torch model's entry names its constructor by place (its `nn.Module` lives
in its own module here, imported when the first model is built) and `de_linear`'s builders import
scikit-learn inside. A new model: its module, and its entry below.
"""

from __future__ import annotations

from gru_xnet.config import ConfigError
from gru_xnet.models import de_linear
from gru_xnet.models.spec import ModelSpec
from gru_xnet.models.user import load_user_spec

LEARNING_RATE_SPACE = {"learning_rate": {"key": "training.learning_rate", "low": 1e-4, "high": 1e-2, "log": True}}
DROPOUT_SPACE = {"dropout": {"key": "model.params.dropout", "low": 0.1, "high": 0.6}}
"""The search space the raw-EEG CNNs share: their dropout and the learning rate."""

GRU_XNET = ModelSpec(
    name="gru_xnet", build="gru_xnet.models.gruxnet:from_window", representation="stft",
    summary="CNN-BiGRU-attention (this package): per-channel CNN, feature fusion, BiGRU, self-attention",
    params_from_config=lambda config: config.gru_xnet_args(),
    describe=lambda config, input_shape: config.describe_sequence(input_shape),
    space={"gru_hidden_size": {"key": "model.gru_hidden_size", "choices": [16, 32, 64]},
           "num_attention_heads": {"key": "model.num_attention_heads", "choices": [1, 2, 4]},
           "dropout": {"key": "model.dropout", "low": 0.1, "high": 0.5},
           **LEARNING_RATE_SPACE})
EEGNET = ModelSpec(
    name="eegnet", build="gru_xnet.models.eegnet:EEGNet", representation="raw",
    summary="EEGNet-8,2 (Lawhern et al. 2018), in-house after braindecode's layers",
    defaults={"F1": 8, "D": 2, "F2": 16, "kernel_length": 64, "separable_kernel_length": 16, "dropout": 0.25},
    rate_defaults="gru_xnet.models.eegnet:kernels_for",
    space={"F1": {"key": "model.params.F1", "choices": [4, 8, 16]},
           "dropout": {"key": "model.params.dropout", "low": 0.1, "high": 0.5}, **LEARNING_RATE_SPACE})
SHALLOW = ModelSpec(
    name="shallowconvnet", build="gru_xnet.models.shallow:ShallowConvNet", representation="raw",
    summary="ShallowConvNet (Schirrmeister et al. 2017), in-house after braindecode's layers",
    defaults={"dropout": 0.5},
    space={**DROPOUT_SPACE, **LEARNING_RATE_SPACE})
DEEP = ModelSpec(
    name="deepconvnet", build="gru_xnet.models.deep:DeepConvNet", representation="raw",
    summary="DeepConvNet (Schirrmeister et al. 2017), in-house after braindecode's layers",
    defaults={"dropout": 0.5},
    space={**DROPOUT_SPACE, **LEARNING_RATE_SPACE})
TSCEPTION = ModelSpec(
    name="tsception", build="gru_xnet.models.tsception:TSception", representation="raw",
    summary="TSception (Ding et al., IEEE TAC 2022), in-house after TorchEEG's and LibEER's layers; channels in "
            "hemisphere order (left, then their right mirrors; midline dropped)",
    defaults={"num_T": 15, "num_S": 15, "hidden": 32, "dropout": 0.5, "inception_windows": [0.5, 0.25, 0.125]},
    space={**DROPOUT_SPACE, **LEARNING_RATE_SPACE})
DGCNN = ModelSpec(
    name="dgcnn", build="gru_xnet.models.dgcnn:DGCNN", representation="de",
    summary="DGCNN (Song et al., IEEE TAC 2018): Chebyshev graph convolution over a learnt electrode graph, each "
            "electrode's DE bands x segments as its features; defaults after TorchEEG's",
    defaults={"K": 2, "hidden": 32, "fc": [64], "dropout": 0.0, "input_norm": True, "bias": False,
              "norm_penalty": 0.0},
    space={"hidden": {"key": "model.params.hidden", "choices": [16, 32, 64]},
           "K": {"key": "model.params.K", "choices": [2, 3]}, **LEARNING_RATE_SPACE})
EEG_CONFORMER = ModelSpec(
    name="eegconformer", build="gru_xnet.models.eegconformer:EEGConformer", representation="raw",
    summary="EEG Conformer (Song et al., IEEE TNSRE 2023), in-house after braindecode's EEGConformer",
    defaults={"n_filters": 40, "filter_length": 25, "pool_length": 75, "pool_stride": 15, "layers": 6, "heads": 10,
              "dropout": 0.5, "attention_dropout": 0.5},
    space={**DROPOUT_SPACE, **LEARNING_RATE_SPACE})

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    GRU_XNET, EEGNET, SHALLOW, DEEP, TSCEPTION, DGCNN, EEG_CONFORMER, de_linear.DE_LOGREG, de_linear.DE_SVM)}


def model_spec(name: str) -> ModelSpec:
    """The entry registered as `name`, or a user's `file.py:function` / `package.module:function` loaded now."""
    if name in MODELS:
        return MODELS[name]
    if ":" in name:
        return load_user_spec(name)
    raise ConfigError(f"config key 'model.name' = {name!r} is invalid: expected one of {', '.join(MODELS)}, "
                      "'path/to/file.py:function' or 'package.module:function'")
