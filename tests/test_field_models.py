"""TSception, DGCNN and the EEG Conformer against their reference implementations: parameter counts, the
hemisphere order TSception needs, DGCNN's Chebyshev terms and penalty (no training; see test_model_registry.py
for these models learning the planted signal through loso.benchmark)."""

from __future__ import annotations

import pytest
import torch

from gru_xnet.datasets.deap import DEAP_CHANNELS
from gru_xnet.datasets.faced import FACED_CHANNELS
from gru_xnet.datasets.gameemo import GAMEEMO_CHANNELS
from gru_xnet.datasets.seediv import SEEDIV_CHANNELS
from gru_xnet.models.dgcnn import DGCNN
from gru_xnet.models.eegconformer import EEGConformer
from gru_xnet.models.tsception import TSception, hemisphere_order


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def libeer_ts_channel_order(original_order: list[str]) -> list[str]:
    """LibEER's `generate_TS_channel_order` (LibEER/models/TSception.py lines 84-115, commit dddff97), transcribed:
    each numbered channel and its mirror, first-seen of each pair to the left list, mirrors to the right."""
    names, numbers, kept = [], [], []
    for channel in original_order:
        digits = sum(c.isdigit() for c in channel)
        if digits:
            names.append(channel[:len(channel) - digits])
            numbers.append(int(channel[len(channel) - digits:]))
            kept.append(channel)
    pairs = [names[i] + str(n - 1 if n % 2 == 0 else n + 1) for i, n in enumerate(numbers)]
    ordered: list[str] = []
    for i, channel in enumerate(kept):
        if channel not in ordered:
            ordered.extend([channel, pairs[i]])
    return ordered[0::2] + ordered[1::2]


@pytest.mark.parametrize("channels, used", [(DEAP_CHANNELS, 28), (SEEDIV_CHANNELS, 54), (GAMEEMO_CHANNELS, 14),
                                            (FACED_CHANNELS, 26)])
def test_hemisphere_order_is_libeers_left_then_mirrors_without_midline(channels, used):
    left, right = hemisphere_order(channels)
    ours = [channels[i] for i in left + right]
    assert len(ours) == used and ours == libeer_ts_channel_order(list(channels))
    assert all(int(channels[i][-1]) % 2 == 1 for i in left)  # odd: left hemisphere
    lower = hemisphere_order([c.lower() for c in channels])
    assert lower == (left, right)  # 10-20 names in any case


def test_unpairable_channels_are_refused_by_name():
    with pytest.raises(ValueError, match=r"\['F3', 'F4x', 'EOG'\].*no mirror"):
        hemisphere_order(["F3", "FZ", "F4x", "EOG", "C3", "C4"])


@pytest.mark.parametrize("channels, n_classes, rate, expected", [
    (DEAP_CHANNELS, 2, 128, 12_563),  # 28 paired channels, as EEGain's and LibEER's code count
    ([f"{site}{n}" for site in ("F", "C", "P", "O") for n in range(1, 9)], 2, 128, 13_913),  # 32 paired channels
    (SEEDIV_CHANNELS, 3, 200, 22_316),
])
def test_tsception_parameter_counts_match_the_references_at_any_window_length(channels, n_classes, rate, expected):
    for seconds in (1, 4):
        model = TSception((len(channels), seconds * rate), n_classes, sampling_rate=rate, channels=channels)
        assert n_parameters(model) == expected
        assert model(torch.randn(2, len(channels), seconds * rate)).shape == (2, n_classes)


def test_tsception_reads_its_channels_in_hemisphere_order():
    model = TSception((32, 256), 2, sampling_rate=128, channels=DEAP_CHANNELS).eval()
    x = torch.randn(3, 32, 256)
    midline = [DEAP_CHANNELS.index(c) for c in ("OZ", "PZ", "FZ", "CZ")]
    changed = x.clone()
    changed[:, midline] = 0.0
    torch.testing.assert_close(model(x), model(changed))  # midline channels are not read
    with pytest.raises(ValueError, match="inception_windows"):
        TSception((32, 256), 2, sampling_rate=128, channels=DEAP_CHANNELS, inception_windows=[0.5, 0.25, 0.001])


def test_dgcnn_sizes_torcheeg_default_and_libeer_variant():
    assert n_parameters(DGCNN((62, 5, 1), 3)) == 131_409  # TorchEEG DGCNN(in 5, 62 electrodes, K 2, hidden 32)
    libeer = DGCNN((62, 5, 1), 3, hidden=64, fc=[256], dropout=0.5, input_norm=False, bias=True, norm_penalty=0.01)
    assert n_parameters(libeer) == 1_021_384  # LibEER's DGCNN for SEED, 3 classes
    norms = sum(p.norm() for p in libeer.parameters())
    torch.testing.assert_close(libeer.penalty(), 0.01 * norms)


def test_dgcnn_chebyshev_terms_start_from_x_and_use_the_normalised_laplacian():
    model = DGCNN((4, 2, 1), 2, K=3, hidden=1, input_norm=False).eval()
    with torch.no_grad():
        model.adjacency.copy_(torch.ones(4, 4) - torch.eye(4))  # a complete graph: degree 3
        model.weights.zero_()
        model.weights[0, 0, 0] = 1.0  # only T0 x, first feature
    laplacian = torch.eye(4) - (torch.ones(4, 4) - torch.eye(4)) / 3
    torch.testing.assert_close(model.laplacian(), laplacian, atol=1e-5, rtol=1e-5)
    x = torch.rand(1, 4, 2, 1) + 0.5
    hidden = {}
    model.head.register_forward_hook(lambda _m, inputs, _o: hidden.setdefault("x", inputs[0]))
    model(x)
    torch.testing.assert_close(hidden["x"], x[:, :, 0, 0])  # T0 x is x itself (LibEER once used ones)


def test_eeg_conformer_matches_braindecodes_count_for_a_four_second_deap_window():
    # braindecode EEGConformer(n_chans=32, n_times=512, n_outputs=2), defaults: stem 1,040 + 51,240 + 80 + 1,640;
    # 6 blocks x 19,720; 28 tokens x 40 = 1,120 inputs to 256 (286,976), 256 -> 32 (8,224), 32 -> 2 (66).
    model = EEGConformer((32, 512), 2)
    assert n_parameters(model) == 467_586
    assert model(torch.randn(2, 32, 512)).shape == (2, 2)
    with pytest.raises(ValueError, match="heads=7"):
        EEGConformer((32, 512), 2, heads=7)
