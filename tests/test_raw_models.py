"""EEGNet, ShallowConvNet and DeepConvNet: shapes, the published layer structure, parameter counts, learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gru_xnet.config import ModelConfig
from gru_xnet.model import build_model
from gru_xnet.models import MODELS as MODELS_BY_NAME
from gru_xnet.models.deep import DeepConvNet
from gru_xnet.models.eegnet import EEGNet, MaxNormConv2d, MaxNormLinear, kernels_for
from gru_xnet.models.shallow import ShallowConvNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODELS = (EEGNet, ShallowConvNet, DeepConvNet)
DEAP, SEEDIV = (32, 512), (62, 800)  # 4 s windows at 128 Hz and at 200 Hz


def _layers(module: nn.Module) -> list[nn.Module]:
    """Leaf modules in registration order (the order of the forward pass)."""
    return [m for m in module.modules() if not list(m.children())]


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("input_shape", [DEAP, SEEDIV, (5, 600)])
def test_logits_for_a_batch_of_windows(model_class, input_shape):
    model = model_class(input_shape, 4).eval()
    with torch.no_grad():
        logits = model(torch.randn(3, *input_shape))
    assert logits.shape == (3, 4)
    assert torch.isfinite(logits).all()


def test_eegnet_layers_are_eegnet_8_2():
    model = EEGNet(DEAP, 3)
    layers = _layers(model)
    assert [type(m) for m in layers] == [
        nn.Conv2d, nn.BatchNorm2d, MaxNormConv2d, nn.BatchNorm2d, nn.ELU, nn.AvgPool2d, nn.Dropout,
        nn.Conv2d, nn.Conv2d, nn.BatchNorm2d, nn.ELU, nn.AvgPool2d, nn.Dropout, MaxNormLinear]
    temporal, bn_1, spatial, bn_2, _, pool_1, drop_1, depth, point, bn_3, _, pool_2, drop_2, dense = layers
    assert (temporal.in_channels, temporal.out_channels, temporal.kernel_size) == (1, 8, (1, 64))
    assert temporal.padding == (0, 32)
    assert (spatial.in_channels, spatial.out_channels, spatial.kernel_size, spatial.groups) == (8, 16, (32, 1), 8)
    assert spatial.max_norm == 1.0
    assert (depth.in_channels, depth.out_channels, depth.kernel_size, depth.groups) == (16, 16, (1, 16), 16)
    assert (point.in_channels, point.out_channels, point.kernel_size, point.groups) == (16, 16, (1, 1), 1)
    assert all(conv.bias is None for conv in (temporal, spatial, depth, point))
    assert (pool_1.kernel_size, pool_1.stride, pool_2.kernel_size, pool_2.stride) == ((1, 4), (1, 4), (1, 8), (1, 8))
    assert [bn.num_features for bn in (bn_1, bn_2, bn_3)] == [8, 16, 16]
    assert all((bn.momentum, bn.eps) == (0.01, 1e-3) for bn in (bn_1, bn_2, bn_3))  # Keras' defaults
    assert drop_1.p == drop_2.p == 0.25
    assert dense.max_norm == 0.25 and dense.out_features == 3
    assert EEGNet(DEAP, 3, kernel_length=100, dropout=0.5).temporal.kernel_size == (1, 100)


def test_eegnets_registered_kernels_are_half_a_second_at_the_inputs_rate():
    assert kernels_for(128.0) == {"kernel_length": 64, "separable_kernel_length": 16}  # the paper's
    assert kernels_for(200.0) == {"kernel_length": 100, "separable_kernel_length": 26}  # SEED: 0.5 s, not 0.32
    assert kernels_for(250.0) == {"kernel_length": 126, "separable_kernel_length": 32}
    config = ModelConfig(name="eegnet")
    model = build_model(config, SEEDIV, 3, sampling_rate=200.0, channels=[f"C{i}" for i in range(62)])
    assert (model.temporal.kernel_size, model.separable_depth.kernel_size) == ((1, 100), (1, 26))
    assert MODELS_BY_NAME["eegnet"].record(config, "raw", sampling_rate=200.0)["params"]["kernel_length"] == 100
    config.params = {"kernel_length": 50}  # model.params still wins over the rate's default
    assert build_model(config, SEEDIV, 3, sampling_rate=200.0).temporal.kernel_size == (1, 50)
    assert build_model(ModelConfig(name="eegnet"), DEAP, 3).temporal.kernel_size == (1, 64)  # rate unknown: 128 Hz


def test_shallow_layers_are_shallow_convnet():
    model = ShallowConvNet(DEAP, 3)
    layers = _layers(model)
    assert [type(m) for m in layers] == [nn.Conv2d, nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.Dropout, nn.Linear]
    temporal, spatial, bn, pool, drop, dense = layers
    assert (temporal.in_channels, temporal.out_channels, temporal.kernel_size) == (1, 40, (1, 25))
    assert temporal.bias is not None
    assert (spatial.in_channels, spatial.out_channels, spatial.kernel_size, spatial.bias) == (40, 40, (32, 1), None)
    assert bn.num_features == 40
    assert (pool.kernel_size, pool.stride) == ((1, 75), (1, 15))
    assert drop.p == 0.5 and dense.out_features == 3
    x = torch.randn(2, *DEAP)
    model.eval()
    with torch.no_grad():  # square before the mean pool, safe log after it
        power = pool(bn(spatial(temporal(x.unsqueeze(1)))) ** 2)
        torch.testing.assert_close(model(x), dense(torch.log(power.clamp(min=1e-6)).flatten(1)))


def test_deep_layers_are_deep_convnet():
    layers = _layers(DeepConvNet(DEAP, 3))
    block = [nn.Dropout, nn.Conv2d, nn.BatchNorm2d, nn.ELU, nn.MaxPool2d]
    assert [type(m) for m in layers] == ([nn.Conv2d, nn.Conv2d, nn.BatchNorm2d, nn.ELU, nn.MaxPool2d]
                                         + block * 3 + [nn.Linear])
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 25, (1, 10)), (25, 25, (32, 1)), (25, 50, (1, 10)), (50, 100, (1, 10)), (100, 200, (1, 10))]
    assert [c.bias is None for c in convs] == [False, True, True, True, True]  # BN follows all but the first
    pools = [m for m in layers if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [((1, 3), (1, 3))] * 4
    assert [m.p for m in layers if isinstance(m, nn.Dropout)] == [0.5] * 3
    assert [m.num_features for m in layers if isinstance(m, nn.BatchNorm2d)] == [25, 50, 100, 200]


def _n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_for_deap_windows():
    """Counted by hand for (32, 512) and 3 classes; time lengths follow each conv and pool."""
    c, n = 32, 3
    # EEGNet: T 512 -> conv 64 padded 32: 513 -> pool 4: 128 -> conv 16 padded 8: 129 -> pool 8: 16
    eegnet = 8 * 64 + 2 * 8 + 16 * c + 2 * 16 + 16 * 16 + 16 * 16 + 2 * 16 + (16 * 16 + 1) * n
    # Shallow: T 512 -> conv 25: 488 -> pool 75 stride 15: (488 - 75) // 15 + 1 = 28
    shallow = (40 * 25 + 40) + 40 * 40 * c + 2 * 40 + (40 * 28 + 1) * n
    # Deep: T 512 -> 503 -> 167 -> 158 -> 52 -> 43 -> 14 -> 5 -> 1
    deep = ((25 * 10 + 25) + 25 * 25 * c + 2 * 25 + (25 * 50 * 10 + 2 * 50) + (50 * 100 * 10 + 2 * 100)
            + (100 * 200 * 10 + 2 * 200) + (200 * 1 + 1) * n)
    assert (eegnet, shallow, deep) == (2387, 55683, 284128)
    assert [_n_parameters(m(DEAP, n)) for m in MODELS] == [eegnet, shallow, deep]


def test_eegnet_max_norm_holds_after_optimizer_steps():
    """Every depthwise spatial filter keeps norm <= 1 and every output unit <= 0.25 in the weights used."""
    torch.manual_seed(0)
    model = EEGNet((8, 128), 2)
    with torch.no_grad():
        model.spatial.weight.mul_(10.0)
        model.classifier.weight.mul_(10.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    x, y = torch.randn(8, 8, 128), torch.randint(0, 2, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        model(x)
    spatial = model.spatial.weight.flatten(1).norm(dim=1)  # (F1 * D,)
    dense = model.classifier.weight.norm(dim=1)  # (n_classes,)
    assert spatial.max() <= 1.0 + 1e-5 and spatial.max() >= 1.0 - 1e-5  # the bound binds
    assert dense.max() <= 0.25 + 1e-6 and dense.max() >= 0.25 - 1e-6


@pytest.mark.parametrize("model_class, minimum", [(EEGNet, 27), (ShallowConvNet, 99), (DeepConvNet, 441)])
def test_too_short_window_names_the_minimum(model_class, minimum):
    model_class((4, minimum), 2)
    with pytest.raises(ValueError, match=rf"input_shape=\(4, {minimum - 1}\): expected at least {minimum} samples"):
        model_class((4, minimum - 1), 2)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize("args, params, message", [
    ((512,), {}, r"input_shape=512: expected \(channels, samples\)"),
    (((32, 0),), {}, "input_shape"),
    (((32.0, 512),), {}, "input_shape"),
    ((DEAP,), {"n_classes": 1}, "n_classes=1: expected an integer >= 2"),
    ((DEAP,), {"dropout": 1.0}, r"dropout=1.0: expected a probability with 0 <= dropout < 1"),
])
def test_bad_arguments_name_the_parameter(model_class, args, params, message):
    params = {"n_classes": 3, **params}
    with pytest.raises(ValueError, match=message):
        model_class(*args, **params)


def test_eegnet_refuses_bad_kernel_length():
    with pytest.raises(ValueError, match="kernel_length=0: expected a positive integer"):
        EEGNet(DEAP, 3, kernel_length=0)


@pytest.mark.parametrize("model_class, input_shape", [(EEGNet, (4, 128)), (ShallowConvNet, (4, 200)),
                                                      (DeepConvNet, (4, 450))])
def test_overfits_a_tiny_batch_of_random_labels(model_class, input_shape):
    """Gradients reach every layer: 8 random windows with random labels are learnt by heart (no dropout)."""
    torch.manual_seed(0)
    model = model_class(input_shape, 4, dropout=0.0)
    x, y = torch.randn(8, *input_shape), torch.randint(0, 4, (8,))
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        logits = model(x)  # training mode: the batch's own BN statistics
        if (logits.argmax(1) == y).all():
            break
        optimizer.zero_grad()
        nn.functional.cross_entropy(logits, y).backward()
        optimizer.step()
    else:
        pytest.fail("training accuracy below 100 % after 200 Adam steps")
    assert all(not torch.equal(p, q) for p, q in zip(model.parameters(), initial))  # every tensor was updated
