"""LOSO on a real local Ray instance: folds as Ray Train jobs, leakage, chance levels, failures, resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loso.splits import plan_folds
from loso.reaper import descendants
from loso.run import main
from loso.worker import FoldResources, fit_fold
from tests.conftest import tiny_config

pytestmark = [pytest.mark.ray, pytest.mark.heavy]
REPO = Path(__file__).resolve().parents[1]


def run_loso(root: Path, tmp_path: Path, name: str, *extra: str, datasets=("GAMEEMO",)) -> Path:
    """loso.run's main on `root` with a tiny config file; returns the output folder."""
    config = tiny_config(root, tmp_path, datasets=datasets, num_epochs=6)
    config_path = tmp_path / f"{name}.json"
    config.save(config_path)
    out = tmp_path / name
    code = main(["--config", str(config_path), "--data-root", str(root), "--output", str(out), *extra])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def planted(ray_session, learnable_root, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("planted")
    return run_loso(learnable_root, tmp, "loso")


def folds_of(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "folds").glob("*.json"))]


def test_every_subject_held_out_once_with_tables(planted):
    folds = folds_of(planted)
    assert sorted(f["fold"]["subject"] for f in folds) == ["S01", "S02", "S03", "S04"]
    for stem in ("per_subject", "per_dataset"):
        for suffix in (".md", ".tex"):
            text = (planted / "tables" / f"{stem}{suffix}").read_text()
            assert "SYNTHETIC DATA" in text and "protocol 'within'" in text and "GAMEEMO valence" in text
    table = pd.read_csv(planted / "tables" / "per_subject.csv")
    assert list(table["subject"]) == ["S01", "S02", "S03", "S04"]
    assert {"balanced_accuracy", "majority_accuracy", "trial_balanced_accuracy", "kappa", "macro_auc"} <= set(table)
    assert "GAMEEMO valence" in (planted / "tables" / "PROTOCOL.md").read_text()
    assert (planted / "figures" / "per_subject_accuracy.png").stat().st_size > 10_000
    fold = folds[0]
    assert fold["synthetic"] is True and len(fold["config_hash"]) == 12
    assert len(fold["predictions"]["y_pred"]) == fold["test"]["n"] == np.sum(fold["test"]["confusion_matrix"])


def test_test_subject_never_in_training_or_validation(planted):
    for fold in folds_of(planted):
        held_out = f"GAMEEMO/{fold['fold']['subject']}"
        seen = fold["seen_subjects"]
        assert seen["test"] == [held_out]
        assert held_out not in seen["train"] and held_out not in seen["val"]
        assert len(seen["val"]) == 1 and not set(seen["val"]) & set(seen["train"])


def test_a_run_says_where_its_time_went(planted):
    timings = json.loads((planted / "timings.json").read_text())
    assert {"features", "ray_start", "writing", "certificate", "tables_figures_report"} <= set(timings)
    assert timings["folds_started_at"] < timings["folds_finished_at"]
    for fold in folds_of(planted):
        phases = fold["phase_seconds"]
        assert phases["loop"] == fold["loop_seconds"] and phases["epoch_end"] > 0  # an epoch checkpoint each epoch
        assert sum(phases.values()) <= fold["train_seconds"] <= fold["wall_seconds"]
        assert timings["folds_started_at"] < fold["started_at"] < fold["finished_at"] < timings["folds_finished_at"]


def test_folds_ran_concurrently(planted):
    spans = sorted((f["started_at"], f["finished_at"]) for f in folds_of(planted))
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def test_planted_signal_beats_chance(planted):
    # 4 held-out subjects x 20 windows (4 games), a strong planted effect (signal_strength 3).
    # Chance is 50%; a mean balanced accuracy above 70% over 4 subjects is far outside label noise
    # (one subject's 4 games give at most a +-25 point swing by luck, the mean of 4 about +-12).
    datasets = pd.read_csv(planted / "tables" / "per_dataset.csv")
    assert datasets.loc[0, "level"] == "window" and datasets.loc[0, "balanced_accuracy_mean"] > 70.0


def test_shuffled_labels_stay_near_chance(shuffled_root, tmp_path):
    # In process: a fold's result is the same as on Ray (test_a_fold_gives_the_same_result_in_process_and_on_ray...).
    out = run_loso(shuffled_root, tmp_path, "shuffled", "--local")
    datasets = pd.read_csv(out / "tables" / "per_dataset.csv")
    # Labels carry no signal: the mean over 4 subjects of 48 windows each stays within 20 points of
    # chance, and the test against chance is not significant.
    assert abs(datasets.loc[0, "balanced_accuracy_mean"] - 50.0) < 20.0
    assert not datasets.loc[0, "p_vs_chance"] < 0.05


def test_two_workers_give_the_same_result_shape(ray_session, synthetic_root, tmp_path):
    from gru_xnet.features import build_feature_set

    config = tiny_config(synthetic_root, tmp_path, num_epochs=2)
    features = build_feature_set(config.data)
    fold = plan_folds(features, subjects=["s01"])[0]
    ref = ray_session.put(features)

    def fit(workers: int) -> dict:  # both folds at once on the session's 2 CPUs: one start-up's wait, not two
        return fit_fold(run_name=f"w{workers}", config=config, features_ref=ref, split=fold.split, seed=0,
                        resources=FoldResources(workers=workers, cpus_per_worker=1 / workers),
                        storage_path=str(tmp_path / "ray"))[0]

    with ThreadPoolExecutor(2) as pool:
        one, two = pool.map(fit, (1, 2))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one.keys() == two.keys() and one["test"].keys() == two["test"].keys()
    assert len(one["predictions"]["y_pred"]) == len(two["predictions"]["y_pred"]) == one["test"]["n"]
    assert len(one["history"]) == len(two["history"]) == 2
    assert one["seen_subjects"] == two["seen_subjects"]


def _train_workers_of(ray_module) -> list[int]:
    """PIDs of this Ray session's Train worker processes (children of its raylet)."""
    raylet = ray_module._private.worker._global_node.all_processes["raylet"][0].process.pid
    pids = subprocess.run(["pgrep", "-f", "ray::RayTrainWorker"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in pids if f"PPid:\t{raylet}\n" in Path(f"/proc/{p}/status").read_text()]


def _kill_worker_after_epoch(ray_module, storage: Path, epoch: int, stop: threading.Event) -> list[int]:
    """Kill -9 the Ray Train worker (a crashed node or an OOM kill) once its fold has checkpointed `epoch`."""
    while not stop.is_set():
        for job in storage.glob("*/checkpoint_*/job.json"):
            try:
                reached = json.loads(job.read_text())["epoch"]
            except (OSError, ValueError):  # being written
                continue
            if reached >= epoch and (found := _train_workers_of(ray_module)):
                os.kill(found[0], signal.SIGKILL)
                return found[:1]
        time.sleep(0.05)
    return []


@pytest.mark.faults
def test_a_killed_worker_resumes_its_fold_from_the_last_epoch_checkpoint(ray_session, synthetic_root, tmp_path):
    stop = threading.Event()
    killed: list[int] = []
    out = tmp_path / "killed"
    killer = threading.Thread(target=lambda: killed.extend(_kill_worker_after_epoch(ray_session, out / "ray", 3, stop)))
    killer.start()
    fold_args = ("--subjects", "S01", "--training.num_epochs", "10", "--training.patience", "10")
    try:
        run_loso(synthetic_root, tmp_path, "killed", *fold_args, "--max-failures", "2")
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker process was found to kill"
    fold = folds_of(out)[0]
    assert fold["attempt"] == 2 and fold["first_epoch"] > 1, (fold["attempt"], fold["first_epoch"])
    assert fold["epochs_run"] == 10 and not list((out / "failed").glob("*.json"))
    reference = folds_of(run_loso(synthetic_root, tmp_path, "uninterrupted", *fold_args, "--local"))[0]
    assert reference["first_epoch"] == 1
    assert fold["history"] == reference["history"] and fold["predictions"] == reference["predictions"]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def interrupted(learnable_root, tmp_path_factory) -> dict[str, dict]:
    """Two `loso.run` processes at once, each on its own private Ray instance and one fold at a time, each stopped once
    it has saved a fold: one with SIGTERM (what a scheduler or Kubernetes sends), one with SIGKILL (no handler runs,
    the lock file stays). Each trains one fold at a time: on 2 cores the two take the time of one."""
    tmp = tmp_path_factory.mktemp("interrupted")
    runs = {}
    for name, signum in (("terminated", signal.SIGTERM), ("resumed", signal.SIGKILL)):
        config_path = tmp / f"{name}.json"
        tiny_config(learnable_root, tmp, datasets=("GAMEEMO",), num_epochs=6).save(config_path)
        out = tmp / name
        args = ["--config", str(config_path), "--data-root", str(learnable_root), "--output", str(out),
                "--max-concurrent-folds", "1"]
        with open(tmp / f"{name}.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "loso.run", *args, "--num-cpus", "2"], cwd=REPO,
                                    stdout=log, stderr=subprocess.STDOUT, text=True)
        runs[name] = {"signal": signum, "args": args, "out": out, "proc": proc, "log": tmp / f"{name}.log"}
    deadline = time.time() + 240
    waiting = dict(runs)
    while waiting:
        for name, run in list(waiting.items()):
            saved = list((run["out"] / "folds").glob("*.json"))
            if saved or run["proc"].poll() is not None or time.time() > deadline:
                run["ray_processes"] = sorted(descendants(run["proc"].pid))
                run["proc"].send_signal(run["signal"])
                del waiting[name]
        time.sleep(0.2)
    for run in runs.values():
        run["returncode"] = run["proc"].wait(timeout=120)
    return runs


@pytest.mark.faults
def test_a_driver_killed_with_sigkill_resumes_to_the_uninterrupted_tables(planted, interrupted):
    killed = interrupted["resumed"]
    args, out, ray_processes = killed["args"], killed["out"], killed["ray_processes"]
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in ray_processes):
        time.sleep(0.2)
    left = [p for p in ray_processes if _alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert ray_processes and not left, f"{len(left)} of the killed run's {len(ray_processes)} Ray processes outlived it"
    done_before = sorted(p.name for p in (out / "folds").glob("*.json"))
    assert 1 <= len(done_before) < 4 and (out / ".lock").exists()
    saved = {name: (out / "folds" / name).read_text() for name in done_before}
    assert main([*args, "--resume"]) == 0  # takes the dead run's lock over
    assert len(folds_of(out)) == 4
    assert all((out / "folds" / name).read_text() == text for name, text in saved.items()), "a saved fold was redone"
    for table in ("per_subject.csv", "per_dataset.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / table), pd.read_csv(planted / "tables" / table))


def test_refuses_to_mix_runs_without_resume(planted):
    config = json.loads((planted / "run.json").read_text())["config"]
    assert main(["--config", str(planted.parent / "loso.json"), "--data-root", config["data"]["data_root"],
                 "--output", str(planted)]) == 2


def test_folds_train_with_the_config_seed_by_default_and_resume_refuses_other_seeds(planted, caplog):
    # Defect: loso.run trained with seed 0 while run.json's config said seed 42.
    run = json.loads((planted / "run.json").read_text())
    assert run["config"]["seed"] == 42 and run["seeds"] == [42]
    assert {f["fold"]["seed"] for f in folds_of(planted)} == {42}
    assert all(p.name.endswith("-seed42.json") for p in (planted / "folds").glob("*.json"))
    config = str(planted.parent / "loso.json")
    assert main(["--config", config, "--data-root", run["config"]["data"]["data_root"], "--output", str(planted),
                 "--seeds", "7", "--resume"]) == 2
    assert "different seeds (seeds: [42] there, [7] now)" in caplog.text


def test_a_fold_gives_the_same_result_in_process_and_on_ray_whatever_cpus_it_gets(planted, learnable_root, tmp_path):
    # Defect: one fold gave 95 % with --cpus-per-worker 1 and 80 % with 2 (torch threads inherited from Ray).
    config = str(planted.parent / "loso.json")
    local = tmp_path / "local"
    assert main(["--config", config, "--data-root", str(learnable_root), "--output", str(local), "--local"]) == 0
    two_cpus = tmp_path / "two_cpus"
    assert main(["--config", config, "--data-root", str(learnable_root), "--output", str(two_cpus),
                 "--subjects", "S02", "--cpus-per-worker", "2"]) == 0
    reference = {f["fold"]["fold_id"]: f for f in folds_of(planted)}
    for out in (local, two_cpus):
        for fold in folds_of(out):
            same = reference[fold["fold"]["fold_id"]]
            assert fold["predictions"] == same["predictions"] and fold["history"] == same["history"]
            assert fold["torch_threads"] == same["torch_threads"] == 1
    assert len(folds_of(local)) == 4
    pd.testing.assert_frame_equal(pd.read_csv(local / "tables" / "per_subject.csv"),
                                  pd.read_csv(planted / "tables" / "per_subject.csv"))
    assert main(["--config", config, "--data-root", str(learnable_root), "--output", str(tmp_path / "x"),
                 "--local", "--workers-per-fold", "2"]) == 2


@pytest.mark.faults
def test_a_second_run_on_one_output_is_refused_and_a_dead_runs_lock_is_taken_over(planted, caplog):
    data_root = json.loads((planted / "run.json").read_text())["config"]["data"]["data_root"]
    args = ["--config", str(planted.parent / "loso.json"), "--data-root", data_root, "--output", str(planted),
            "--resume"]
    lock = planted / ".lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": "now"}))
    assert main(args) == 2
    assert f"in use by another loso.run (host {socket.gethostname()}, pid {os.getpid()}" in caplog.text
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "since": "then"}))
    assert main(args) == 0  # every fold is done: it only rebuilds the tables
    assert f"locked by pid {gone.pid} on this host, which is gone; taking the lock over" in caplog.text
    assert not lock.exists()


@pytest.mark.faults
def test_an_unwritable_output_gives_one_error_and_keeps_the_saved_folds(planted, learnable_root, tmp_path, caplog,
                                                                       monkeypatch):
    import ray

    import loso.driver

    args = ["--config", str(planted.parent / "loso.json"), "--data-root", str(learnable_root),
            "--max-concurrent-folds", "1"]
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main([*args, "--output", str(blocker / "out")]) == 2
    assert f"cannot create the output folder {blocker / 'out'}: Not a directory" in caplog.text

    real_write, written = loso.driver.write_text_atomic, []

    def disk_full_after_one_fold(path: Path, text: str) -> None:  # fault injection in the atomic writer
        if written:
            raise OSError(28, "No space left on device")
        real_write(path, text)
        written.append(path)

    monkeypatch.setattr(loso.driver, "write_text_atomic", disk_full_after_one_fold)
    out = tmp_path / "full"
    caplog.clear()
    assert main([*args, "--output", str(out)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "No space left on device. The 1 result file(s) saved before are intact" in errors[0]
    assert [p.name for p in (out / "folds").iterdir()] == [written[0].name]  # no half-written file next to it
    assert json.loads(written[0].read_text())["test"]["n"] > 0 and not (out / ".lock").exists()
    deadline = time.time() + 30  # the cancelled runner's worker group is released as its owner exits
    while time.time() < deadline and any(pg["state"] != "REMOVED" for pg in ray.util.placement_group_table().values()):
        time.sleep(0.2)
    assert all(pg["state"] == "REMOVED" for pg in ray.util.placement_group_table().values()), "a runner goes on"
    monkeypatch.setattr(loso.driver, "write_text_atomic", real_write)
    assert main([*args, "--output", str(out), "--resume", "--local"]) == 0 and len(folds_of(out)) == 4


@pytest.mark.faults
def test_sigterm_is_handled_like_ctrl_c(interrupted):
    terminated = interrupted["terminated"]
    out, log = terminated["out"], terminated["log"].read_text()
    assert terminated["returncode"] == 128 + signal.SIGTERM, log
    assert "interrupted:" in log and "run again with --resume" in log, log
    assert "SIGTERM received" not in log and "Stack trace" not in log and "*** " not in log, log
    assert not (out / ".lock").exists() and 1 <= len(list((out / "folds").glob("*.json"))) < 4


def test_a_half_written_ray_train_snapshot_from_a_killed_run_is_dropped(tmp_path, caplog):
    from loso.worker import SNAPSHOT_FILE, drop_half_written_state

    (tmp_path / "run-a").mkdir()
    (tmp_path / "run-a" / SNAPSHOT_FILE).write_text("")  # what a SIGKILL during Ray's write leaves
    (tmp_path / "run-b").mkdir()
    (tmp_path / "run-b" / SNAPSHOT_FILE).write_text('{"checkpoints": []}')
    for name in ("run-a", "run-b", "run-c"):
        drop_half_written_state(str(tmp_path), name)
    assert not (tmp_path / "run-a" / SNAPSHOT_FILE).exists() and "half-written" in caplog.text
    assert (tmp_path / "run-b" / SNAPSHOT_FILE).exists()
