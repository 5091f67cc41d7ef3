"""GRUXNet: shapes, grouped channel CNN vs per-channel CNNs, validation, rebuild from hparams."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from gru_xnet.model import ChannelCNN, GRUXNet, create_gru_xnet_model


def _load_bench() -> ModuleType:
    """Import bench/bench_model.py by path: it owns the per-channel reference the bench times."""
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_model.py"
    spec = importlib.util.spec_from_file_location("bench_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def _randomise_batchnorm(module: nn.Module) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    for norm in module.modules():
        if isinstance(norm, nn.BatchNorm2d):
            with torch.no_grad():
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.5, 0.5)
                norm.running_mean.uniform_(-0.2, 0.2)
                norm.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("n_channels", [32, 14, 62])
@pytest.mark.parametrize("model_type", ["dynamic", "standard"])
@pytest.mark.parametrize(("n_freq", "n_time", "n_classes"), [(16, 5, 2), (5, 8, 4), (25, 29, 2),
                                                              (1, 5, 4)])
def test_output_shape(n_channels: int, model_type: str, n_freq: int, n_time: int,
                      n_classes: int) -> None:
    torch.manual_seed(0)
    model = create_gru_xnet_model(n_channels, n_freq, n_time, n_classes=n_classes,
                                  model_type=model_type, gru_hidden_size=16, fusion_dim=32)
    logits = model(torch.randn(2, n_channels, n_freq, n_time))
    assert logits.shape == (2, n_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("n_freq", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("n_time", [1, 2, 3, 4, 5, 29])
@pytest.mark.parametrize("time_pool_blocks", [0, 1, 2, 3])
def test_channel_cnn_pooling_never_collapses_an_axis(n_freq: int, n_time: int, time_pool_blocks: int) -> None:
    cnn = ChannelCNN(3, (4, 8, 16), time_pool_blocks)
    out = cnn(torch.randn(2, 3, n_freq, n_time))
    assert out.shape == (2, 3, 16, -(-n_freq // 8), -(-n_time // 2 ** time_pool_blocks))


def test_default_sequence_has_eight_steps_from_distinct_frames() -> None:
    # 4 s windows, 0.5 s STFT frames 0.125 s apart, no padded edge frames: 29 frames; two 2x pools -> 8 steps,
    # step i pooled from frames 4i .. 4i+3 (none repeated or interpolated); the three 3x3 kernels let a
    # frame reach at most two steps either side.
    model = create_gru_xnet_model(4, 22, 29, gru_hidden_size=8, cnn_channels=(4, 8, 16)).eval()
    assert model.sequence_length == 8
    x = torch.zeros(1, 4, 22, 29)
    base = model.channel_cnn(x)
    for frame in range(29):
        poked = x.clone()
        poked[..., frame] = 5.0
        changed = (model.channel_cnn(poked) - base).abs().amax(dim=(0, 1, 2, 3))  # (T',)
        steps = changed.nonzero().flatten().tolist()
        assert frame // 4 in steps and set(steps) <= set(range(frame // 4 - 2, frame // 4 + 3))


def test_too_short_a_sequence_is_refused_and_standard_runs_over_channels() -> None:
    with pytest.raises(ValueError, match=r"1 step\(s\) .*n_time_bins=3, time_pool_blocks=2.*at least 2"):
        create_gru_xnet_model(4, 10, 3)
    assert create_gru_xnet_model(4, 10, 3, time_pool_blocks=1).sequence_length == 2
    assert create_gru_xnet_model(6, 10, 1, model_type="standard").sequence_length == 6


def test_sequence_axis_depends_on_model_type() -> None:
    x = torch.randn(2, 6, 40, 33)  # two time-pooling blocks: T' = 9
    sequences = {}
    for model_type in ("dynamic", "standard"):
        model = create_gru_xnet_model(6, 40, 33, model_type=model_type, gru_hidden_size=8).eval()
        model.bigru.register_forward_hook(
            lambda _m, _i, out, key=model_type: sequences.__setitem__(key, out[0].shape))
        model(x)
    assert sequences == {"dynamic": (2, 9, 16), "standard": (2, 6, 16)}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_grouped_cnn_equals_per_channel_cnns(train: bool) -> None:
    torch.manual_seed(0)
    n_channels = 5
    grouped = ChannelCNN(n_channels, (8, 16, 32), time_pool_blocks=1)
    _randomise_batchnorm(grouped)
    grouped.train(train)
    reference = bench.per_channel_reference(grouped)
    assert len(reference) == n_channels and reference.training == train
    x = torch.randn(3, n_channels, 12, 7)

    out = grouped(x)
    out_ref = bench.run_per_channel(reference, x)
    torch.testing.assert_close(out, out_ref)

    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (out_ref * weights).sum().backward()
    grouped_convs = [m for m in grouped.blocks if isinstance(m, nn.Conv2d)]
    for block, conv in enumerate(grouped_convs):
        ref_convs = [[m for m in cnn if isinstance(m, nn.Conv2d)][block] for cnn in reference]
        torch.testing.assert_close(conv.weight.grad,
                                   torch.cat([c.weight.grad for c in ref_convs]),
                                   rtol=1e-4, atol=1e-5)
        per_channel = conv.weight.grad.view(n_channels, -1)
        assert (per_channel.abs().sum(dim=1) > 0).all(), f"a channel has no gradient, block {block}"

    grouped_norms = [m for m in grouped.blocks if isinstance(m, nn.BatchNorm2d)]
    for block, norm in enumerate(grouped_norms):
        ref_norms = [[m for m in cnn if isinstance(m, nn.BatchNorm2d)][block] for cnn in reference]
        for stat in ("running_mean", "running_var"):
            torch.testing.assert_close(getattr(norm, stat),
                                       torch.cat([getattr(n, stat) for n in ref_norms]))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_channel_cnn_keeps_channels_independent(train: bool) -> None:
    torch.manual_seed(0)
    cnn = ChannelCNN(4, (8, 16, 32)).train(train)
    x = torch.randn(3, 4, 16, 9)
    base = cnn(x)
    for c in range(4):
        perturbed = x.clone()
        perturbed[:, c] += torch.randn_like(perturbed[:, c])
        changed = (cnn(perturbed) - base).abs().flatten(2).amax(dim=(0, 2))  # (C,)
        assert changed[c] > 0
        assert torch.all(changed[torch.arange(4) != c] == 0), f"perturbing {c} leaked: {changed}"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_attention_heads": 3}, r"num_attention_heads=3 .*256.*gru_hidden_size=128"),
    ({"dropout": 1.0}, r"dropout=1\.0 .*0 <= dropout < 1"),
    ({"model_type": "lstm"}, r"model_type='lstm' .*'standard', 'dynamic'"),
    ({"gru_hidden_size": 0}, r"gru_hidden_size=0 .*>= 1"),
    ({"cnn_channels": ()}, r"cnn_channels"),
])
def test_invalid_arguments_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_gru_xnet_model(n_channels=4, n_freq_bins=10, n_time_bins=5, **kwargs)


def test_forward_rejects_wrong_channel_count() -> None:
    model = create_gru_xnet_model(n_channels=4, n_freq_bins=10, n_time_bins=5)
    with pytest.raises(ValueError, match=r"C=4.*\(2, 5, 10, 5\)"):
        model(torch.randn(2, 5, 10, 5))


def test_hparams_rebuild_identical_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_gru_xnet_model(n_channels=14, n_freq_bins=20, n_time_bins=9, n_classes=4,
                                  model_type="standard", gru_hidden_size=24,
                                  num_attention_heads=6, dropout=0.3, cnn_channels=(8, 16),
                                  fusion_dim=40, gru_layers=3, fc_dims=(64,)).eval()
    torch.save({"hparams": model.hparams, "state_dict": model.state_dict()}, tmp_path / "ckpt.pth")
    checkpoint = torch.load(tmp_path / "ckpt.pth", weights_only=True)
    from_json = json.loads(json.dumps(checkpoint["hparams"]))  # tuples come back as lists

    for hparams in (checkpoint["hparams"], from_json):
        clone = create_gru_xnet_model(**hparams).eval()
        assert isinstance(clone, GRUXNet)
        assert clone.hparams == model.hparams
        assert repr(clone) == repr(model)
        clone.load_state_dict(checkpoint["state_dict"])
        x = torch.randn(2, 14, 20, 9)
        torch.testing.assert_close(clone(x), model(x))


def test_seed_readme_example() -> None:
    feats = np.random.randn(32, 200, 65).astype("float32")
    model = create_gru_xnet_model(n_channels=32, n_freq_bins=feats.shape[1],
                                  n_time_bins=feats.shape[2], n_classes=2, model_type="dynamic")
    assert model(torch.from_numpy(feats).unsqueeze(0).float()).shape == torch.Size([1, 2])
