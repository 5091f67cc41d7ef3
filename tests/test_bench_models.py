"""bench/bench_models.py builds every registered model on the windows it benchmarks: each model's representation,
with the data's channel names and rate (TSception places channels by hemisphere, EEGNet sizes kernels by rate)."""

from __future__ import annotations

import re
from pathlib import Path

from gru_xnet.datasets import write_synthetic
from gru_xnet.features import build_feature_set
from gru_xnet.models import MODELS

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_every_registered_model_is_built_and_sized_on_the_benchmarks_data(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the benchmarks import each other as top-level modules
    import bench_models

    write_synthetic(tmp_path / "data", ["DEAP"], 2, seconds=8.0)
    sizes = {}
    for model in MODELS:
        config = bench_models.config_for(model, tmp_path / "data", tmp_path, 1)
        real = build_feature_set(config.data, representation=MODELS[model].representation_of(config.data))
        sizes[model] = bench_models.size(config, real)
    counts = {model: int(re.search(r"\d[\d,]*", text).group().replace(",", "")) for model, text in sizes.items()}
    assert all(count > 0 for count in counts.values()), sizes
