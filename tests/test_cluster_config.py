"""cluster.yaml passes Ray's own autoscaler schema validation, offline."""

from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER = Path(__file__).resolve().parents[1] / "cluster.yaml"


def test_cluster_yaml_is_valid():
    config = yaml.safe_load(CLUSTER.read_text())
    validate_config(prepare_config(config))
    assert config["head_node_type"] in config["available_node_types"]
    assert any("pip install" in c and "gru_xnet" in c for c in config["setup_commands"])


def test_validation_would_catch_mistakes():
    config = yaml.safe_load(CLUSTER.read_text())
    config["head_node_type"] = "missing"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(prepare_config(config))
    config = yaml.safe_load(CLUSTER.read_text())
    config["bogus_key"] = 1
    with pytest.raises(jsonschema.ValidationError, match="bogus_key"):
        validate_config(prepare_config(config))
