"""Ray Train state on S3: `loso.run --storage-path s3://...` against a local S3-compatible server (moto)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loso.cli import storage_join
from tests.conftest import free_port, tiny_config

pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parents[1]
BUCKET = "gru-xnet"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}


def test_storage_join_keeps_a_uri_query_at_the_end():
    query = "?endpoint_override=127.0.0.1:9000&scheme=http"
    assert storage_join(f"s3://bucket/prefix/{query}", "search", "train") == f"s3://bucket/prefix/search/train{query}"
    assert storage_join("s3://bucket", "train") == "s3://bucket/train"
    assert storage_join("/tmp/odd?name", "train") == "/tmp/odd?name/train"  # a folder has no query


@pytest.fixture
def s3_server():
    """A moto S3 server on a free local port with an empty bucket; yields its endpoint URL."""
    pytest.importorskip("moto", reason="moto[server] (the dev extra) is not installed")
    from pyarrow.fs import S3FileSystem

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.1)
        S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="testing",
                     secret_key="testing", region="us-east-1", allow_bucket_creation=True).create_dir(BUCKET)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _objects(endpoint: str, prefix: str) -> list[str]:
    """Every object under s3://BUCKET/prefix, as paths relative to it."""
    from pyarrow.fs import FileSelector, FileType, S3FileSystem

    fs = S3FileSystem(endpoint_override=endpoint.removeprefix("http://"), scheme="http", access_key="testing",
                      secret_key="testing", region="us-east-1")
    root = f"{BUCKET}/{prefix}"
    return sorted(info.path.removeprefix(root + "/") for info in fs.get_file_info(FileSelector(root, recursive=True))
                  if info.type == FileType.File)


@pytest.mark.storage
def test_a_joined_uri_keeps_its_endpoint_query_for_pyarrow(s3_server, monkeypatch):
    from pyarrow.fs import FileSystem

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the endpoint comes from the query only
    base = f"s3://{BUCKET}/query?endpoint_override={s3_server.removeprefix('http://')}&scheme=http"
    fs, path = FileSystem.from_uri(storage_join(base, "search", "train"))
    assert path == f"{BUCKET}/query/search/train"
    with fs.open_output_stream(f"{path}/marker") as stream:
        stream.write(b"1")
    assert _objects(s3_server, "query") == ["search/train/marker"]


@pytest.mark.storage
def test_loso_keeps_ray_train_state_on_s3(s3_server, learnable_root, tmp_path):
    config = tiny_config(learnable_root, tmp_path, datasets=("GAMEEMO",), num_epochs=2)
    config.save(tmp_path / "tiny.json")
    out = tmp_path / "loso"
    # What a user on S3 sets: the standard AWS variables, read by pyarrow in the driver and in Ray's workers.
    env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": s3_server}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "loso.run", "--config", str(tmp_path / "tiny.json"), "--data-root",
               str(learnable_root), "--output", str(out), "--subjects", "S01", "--num-cpus", "2",
               "--max-concurrent-folds", "1", "--storage-path", f"s3://{BUCKET}/runs"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log = proc.communicate(timeout=120)[0]
    finally:  # its local Ray instance lives in its process group: nothing of it outlives the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, log
    folds = [json.loads(p.read_text()) for p in (out / "folds").glob("*.json")]
    assert [f["fold"]["subject"] for f in folds] == ["S01"] and folds[0]["test"]["n"] > 0
    assert not (out / "ray").exists()  # no local run state: Ray Train wrote its run folders to the bucket
    objects = _objects(s3_server, "runs")
    assert any("/checkpoint_" in name and name.endswith(".pt") for name in objects), objects
