"""Config: presets, validation errors that name the key, JSON round trip, CLI-style overrides."""

import json

import pytest

from gru_xnet.config import (ConfigError, DataConfig, ExperimentConfig, ModelConfig, TrainingConfig,
                             get_full_training_config, get_quick_test_config, resolve_config)


def test_seed_defaults():
    config = get_full_training_config()
    assert (config.model.gru_hidden_size, config.model.num_attention_heads, config.model.dropout) == (128, 4, 0.5)
    assert config.model.cnn_channels == [32, 64, 128] and config.model.fc_dims == [256, 128]
    assert (config.training.learning_rate, config.training.batch_size, config.training.num_epochs) == (1e-3, 128, 30)
    assert config.training.patience == 10 and config.training.use_amp and config.training.use_scheduler
    assert config.data.augmentation_ratio == 2.0 and config.data.use_augmented
    assert sorted(config.data.datasets) == ["DEAP", "GAMEEMO", "SEEDIV"]


@pytest.mark.parametrize("preset", [get_quick_test_config, get_full_training_config])
def test_json_round_trip(tmp_path, preset):
    config = preset()
    config.training.batch_size = 64
    config.data.gameemo_positive_games = [2, 4]
    config.save(tmp_path / "c.json")
    loaded = ExperimentConfig.load(tmp_path / "c.json")
    assert loaded == config
    assert loaded.fingerprint() == config.fingerprint()


def test_tuning_provenance_round_trips_outside_the_fingerprint(tmp_path):
    config = get_quick_test_config()
    before = config.fingerprint()
    config.tuned_on = ["DEAP/s01", "SEEDIV/3"]
    config.save(tmp_path / "tuned.json")
    assert ExperimentConfig.load(tmp_path / "tuned.json").tuned_on == ["DEAP/s01", "SEEDIV/3"]
    assert config.fingerprint() == before  # same hyper-parameters, same results: resume and compare still match
    with pytest.raises(ConfigError, match="tuned_on"):
        ExperimentConfig.from_dict({"tuned_on": ["s01"]})


@pytest.mark.parametrize("data, key", [
    ({"model": {"dropout": 1.0}}, "model.dropout"),
    ({"model": {"dropout": -0.1}}, "model.dropout"),
    ({"model": {"num_attention_heads": 3}}, "model.num_attention_heads"),
    ({"model": {"model_type": "lstm"}}, "model.model_type"),
    ({"training": {"batch_size": 0}}, "training.batch_size"),
    ({"training": {"batch_size": "64"}}, "training.batch_size"),
    ({"training": {"use_amp": 1}}, "training.use_amp"),
    ({"training": {"learning_rate": 0}}, "training.learning_rate"),
    ({"training": {"lr": 0.1}}, "training.lr"),
    ({"data": {"datasets": ["DEAP", "MNIST"]}}, "data.datasets[1]"),
    ({"data": {"train_ratio": 0.5}}, "train_ratio"),
    ({"data": {"seediv_classes": 4}}, "data.seediv_classes"),
    ({"data": {"deap_comparison": "=="}}, "data.deap_comparison"),
    ({"data": {"freq_range": [50, 1]}}, "data.freq_range"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(data)
    assert key in str(err.value)


def test_error_lists_allowed_values():
    with pytest.raises(ConfigError, match="DEAP.*SEEDIV.*GAMEEMO"):
        DataConfig(datasets=["deep"])
    with pytest.raises(ConfigError, match="divide.*256"):
        ModelConfig(num_attention_heads=5)


def test_dataset_names_are_case_insensitive():
    assert DataConfig(datasets=["deap", "seed-iv"]).datasets == ["DEAP", "SEEDIV"]


def test_assignment_after_construction_is_checked_by_validate():
    config = get_quick_test_config()
    config.model.dropout = 1.5
    with pytest.raises(ConfigError, match="model.dropout"):
        config.validate()


def test_seediv_four_classes_only_alone():
    assert DataConfig(datasets=["SEEDIV"], seediv_classes=4).n_classes == 4
    assert DataConfig(datasets=["SEEDIV"]).n_classes == 2


def test_set_option_parses_cli_text():
    config = get_quick_test_config()
    config.set_option("training.batch_size", "16")
    config.set_option("data.datasets", "DEAP,SEEDIV")
    config.set_option("model.dropout", "0.25")
    assert (config.training.batch_size, config.data.datasets, config.model.dropout) == (16, ["DEAP", "SEEDIV"], 0.25)
    with pytest.raises(ConfigError, match="training.nope"):
        config.set_option("training.nope", "1")


def test_load_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"training": {"num_epochs": -1}}))
    with pytest.raises(ConfigError, match="bad.json.*training.num_epochs"):
        ExperimentConfig.load(path)
    with pytest.raises(ConfigError, match="quick"):
        resolve_config(str(tmp_path / "missing.json"))


def test_training_config_defaults_validate():
    assert TrainingConfig().monitor == "loss"


def test_set_option_lists_of_numbers_and_rollback():
    config = get_quick_test_config()
    config.set_option("model.cnn_channels", "4,8,16")
    config.set_option("data.freq_range", "1,40")
    assert config.model.cnn_channels == [4, 8, 16] and config.data.freq_range == [1.0, 40.0]
    with pytest.raises(ConfigError, match="model.dropout"):
        config.set_option("model.dropout", "1.5")
    assert config.model.dropout == 0.3
