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


def test_kuberay_job_runs_loso_on_gpu_workers():
    job = yaml.safe_load((CLUSTER.parent / "k8s" / "rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    entrypoint = spec["entrypoint"].split()
    assert entrypoint[:3] == ["python", "-m", "loso.run"] and "--address" in entrypoint
    assert entrypoint[entrypoint.index("--address") + 1] == "auto"
    cluster = spec["rayClusterSpec"]
    import ray

    assert cluster["rayVersion"] == ray.__version__  # the manifest follows the Ray this project pins
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]
    workers = cluster["workerGroupSpecs"][0]
    container = workers["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1 and workers["maxReplicas"] >= workers["replicas"]
    data_root = entrypoint[entrypoint.index("--data-root") + 1]
    assert data_root in [m["mountPath"] for m in head["volumeMounts"]]  # the driver reads the data; workers get
    assert "volumeMounts" not in container                                # the features from the object store
    output = entrypoint[entrypoint.index("--output") + 1]
    assert any(output.startswith(m["mountPath"]) for m in head["volumeMounts"])  # results land on a volume
    assert entrypoint[entrypoint.index("--storage-path") + 1].startswith("s3://")


def test_storage_uris_keep_their_double_slash():
    from loso.cli import storage_join

    assert storage_join("s3://bucket/prefix/", "search", "train") == "s3://bucket/prefix/search/train"
    assert storage_join("/tmp/x", "train") == "/tmp/x/train"
