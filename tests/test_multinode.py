"""A real two-node Ray cluster (a head and a second node as separate processes): folds and trials on both.

Its own cluster, apart from the test session's Ray instance; both nodes are shut down at teardown,
also when the test fails, and no process of theirs may remain.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import free_port, tiny_config

pytestmark = [pytest.mark.multinode, pytest.mark.heavy]
REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
       "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "5"}  # nothing runs when the nodes are stopped
WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
deadline = time.time() + 90
while sum(node["Alive"] for node in ray.nodes()) < 2 and time.time() < deadline:
    time.sleep(0.5)
sys.exit(0 if sum(node["Alive"] for node in ray.nodes()) == 2 else 1)
"""


def _processes_under(folder: Path) -> list[str]:
    """Command lines of live processes that mention `folder` (each Ray node's processes name its temp folder)."""
    found = subprocess.run(["pgrep", "-af", str(folder)], capture_output=True, text=True).stdout.splitlines()
    return [line for line in found if "pgrep" not in line]


@pytest.fixture
def two_nodes(tmp_path):
    """The address of a head node and a second node, each with 1 CPU and its own temp folder.

    The temp folders are short paths under /tmp: Ray's socket paths must stay under 108 bytes.
    """
    ray = str(Path(sys.executable).parent / "ray")
    temp = Path(tempfile.mkdtemp(prefix="gxn-nodes-", dir="/tmp"))
    port = free_port()
    node = ["--block", "--num-cpus", "1", "--num-gpus", "0",
            "--object-store-memory", str(100 * 1024 ** 2)]
    logs = open(tmp_path / "nodes.log", "w")
    nodes = [subprocess.Popen([ray, "start", "--head", "--port", str(port), "--include-dashboard", "false",
                               "--temp-dir", str(temp / "head"), *node], env=ENV, stdout=logs, stderr=logs)]
    try:
        address = f"127.0.0.1:{port}"
        nodes.append(subprocess.Popen([ray, "start", "--address", address, "--temp-dir", str(temp / "second"),
                                       *node], env=ENV, stdout=logs, stderr=logs))
        ready = subprocess.Popen([sys.executable, "-c", WAIT_FOR_NODES, address], env=ENV,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while ready.poll() is None and all(proc.poll() is None for proc in nodes):
            time.sleep(0.2)
        ready.kill()
        assert ready.wait() == 0, f"the two nodes did not come up: {(tmp_path / 'nodes.log').read_text()[-3000:]}"
        yield address
    finally:
        for proc in reversed(nodes):  # the second node, then the head
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs.close()
        left = _processes_under(temp)
        for line in left:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"processes of the two nodes outlived them: {left}"


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, started: float) -> subprocess.CompletedProcess:
    """Wait for a `_start`ed command; its output and return code."""
    try:
        stdout, stderr = process.communicate(timeout=300)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        print(f"{process.args[2]} --output {process.args[process.args.index('--output') + 1]}: "
              f"{time.time() - started:.1f} s")


def _run(*args: str) -> subprocess.CompletedProcess:
    return _finish(_start(*args), time.time())


def test_folds_and_trials_spread_over_two_nodes_with_one_machines_results(two_nodes, learnable_root, tmp_path):
    config = tmp_path / "tiny.json"
    tiny_config(learnable_root, tmp_path, datasets=("GAMEEMO",), num_epochs=4).save(config)
    common = ["--config", str(config), "--data-root", str(learnable_root), "--seeds", "1", "2"]
    shared = tmp_path / "shared_storage"  # what NFS or a bucket is on a real cluster
    started = time.time()  # one machine's run (in one process, no Ray, its own feature cache) beside the cluster's
    local = _start("loso.run", *common, "--output", str(tmp_path / "one_machine"), "--local",
                   "--data.cache_dir", str(tmp_path / "one_machine_cache"))
    try:
        cluster = _run("loso.run", *common, "--output", str(tmp_path / "cluster"), "--address", two_nodes,
                       "--storage-path", str(shared / "loso"))
    finally:
        one_machine = _finish(local, started)
    assert cluster.returncode == 0, cluster.stdout[-3000:] + cluster.stderr[-3000:]
    folds = [json.loads(p.read_text()) for p in sorted((tmp_path / "cluster" / "folds").glob("*.json"))]
    assert len(folds) == 8
    assert len({fold["node"]["id"] for fold in folds}) == 2, "every fold ran on one node"
    assert any((shared / "loso").glob("cluster-runner*"))

    assert one_machine.returncode == 0, one_machine.stderr[-3000:]
    for table in ("per_subject.csv", "per_dataset.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cluster" / "tables" / table),
                                      pd.read_csv(tmp_path / "one_machine" / "tables" / table))

    search = _run("tune.search", "--config", str(config), "--data-root", str(learnable_root), "--seed", "0",
                  "--output", str(tmp_path / "search"), "--num-samples", "2", "--scheduler", "none",
                  "--address", two_nodes, "--storage-path", str(shared / "tune"))
    assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
    trials = pd.read_csv(tmp_path / "search" / "trials.csv")
    assert len(trials) == 2 and set(trials["status"]) == {"complete"}
    assert any((shared / "tune").iterdir())
