"""Every command answers `--help`, a bad option, an unknown name and a bad config value before a heavy library loads.

Each command runs in a fresh interpreter (`python -m` as `runpy` does it); at the moment it exits, the
harness reads `sys.modules` and reports which of torch, Ray, scipy, pandas, scikit-learn, Optuna and
matplotlib are loaded. Deterministic: what is imported, never how long it takes (bench/bench_cli.py times it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "scipy", "pandas", "sklearn", "optuna", "matplotlib")

HARNESS = r"""
import contextlib, io, json, logging, runpy, sys
module, heavy, cases = sys.argv[1], set(json.loads(sys.argv[2])), json.loads(sys.argv[3])
for args in cases:
    logging.root.handlers.clear()  # each command's logging.basicConfig writes to this case's captured stream
    out = io.StringIO()
    sys.argv = [module, *args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = None
        except SystemExit as exc:
            code = exc.code
    loaded = sorted({name.split(".")[0] for name in sys.modules} & heavy)  # at the moment the command exited
    print(json.dumps({"args": args, "code": code, "loaded": loaded, "output": out.getvalue()}), flush=True)
"""

HELP = (["--help"], 0, "usage: python -m ")
CASES = {
    "loso.run": [
        HELP,
        (["--protocol", "bogus"], 2, "invalid choice: 'bogus'"),
        (["--datasets", "NOPE"], 2, "data.datasets[0]"),
        (["--model", "resnet"], 2, "'model.name' = 'resnet'"),
        (["--split", "nope"], 2, "unknown split 'nope'"),
        (["--split", "holdout:{tmp}/missing.yaml"], 2, "--split holdout:{tmp}/missing.yaml: cannot read"),
        (["--split", "holdout:{tmp}/lists.yaml"], 2, "lists.yaml: key 'SEDD': unknown dataset"),
        (["--training.learning_rate", "-1"], 2, "training.learning_rate"),
        (["--model", "eegnet", "--data.representation", "stft"], 2, "data.representation"),
        (["--data.stft_window_seconds", "0.001"], 2, "no usable STFT"),
        (["--data.dataset_options", '{"DREAMER": {"comparison": "=="}}'], 2, "dataset_options['DREAMER'].comparison"),
        (["--synthetic-subjects", "0"], 2, "argument --synthetic-subjects: '0': expected an integer >= 1"),
        (["--training.optimizer", "sgd"], 2, "'training.optimizer' = 'sgd'"),
        (["--data.raw.sampling_rate", "-1"], 2, "'data.raw.sampling_rate' = -1"),
    ],
    "loso.benchmark": [
        HELP,
        (["--models"], 2, "expected at least one argument"),
        (["--models", "eegnet", "nope"], 2, "'model.name' = 'nope'"),
        (["--models", "de_svm", "--split", "kfold:1"], 2, "expected K an integer >= 2"),
        ([], 2, "needs --models MODEL ... or --card NAME"),
        (["--models", "eegnet", "--tasks", "valence"], 2, "--tasks picks tasks of a card"),
        (["--card", "nope"], 2, "--card 'nope': no such card; the cards are eegain-loso"),
        (["--card", "eegain-loso", "--datasets", "GAMEEMO"], 2, "has no dataset 'GAMEEMO'; it has MAHNOB, DEAP, AMIGOS"),
        (["--card", "eegain-loso", "--datasets", "DEAP", "--tasks", "dominance"], 2,
         "has no task 'dominance' for DEAP; it has DEAP: arousal valence"),
        (["--card", "eegain-loso", "--models", "dgcnn"], 2, "runs no model 'dgcnn'; it has tsception, eegnet"),
        (["--card", "eegain-loso", "--datasets", "SEED", "--training.batch_size", "0"], 2, "training.batch_size"),
    ],
    "loso.cards": [
        HELP,
        ([], 0, "deviations (13)"),
        (["nope"], 2, "--card 'nope': no such card"),
        (["eegain-loso", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ],
    "loso.compare": [
        HELP,
        (["a", "b", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["{tmp}/missing_a", "{tmp}/missing_b"], 2, "has no run.json"),
    ],
    "loso.aggregate": [
        HELP,
        (["a", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["{tmp}/missing"], 2, "has no run.json"),
    ],
    "tune.search": [
        HELP,
        (["--scheduler", "bogus"], 2, "invalid choice: 'bogus'"),
        (["--datasets", "NOPE"], 2, "data.datasets[0]"),
        (["--model", "de_svm"], 2, "needs no search"),
        (["--split", "kfold:1"], 2, "expected K an integer >= 2"),
        (["--split", "holdout:{tmp}/lists.yaml"], 2, "a nested search re-plans its outer folds"),
        (["--training.learning_rate", "-1"], 2, "training.learning_rate"),
        (["--space", "{tmp}/space.json"], 2, "search space key 'gru_hidden_size'"),
        (["--grace-period", "99"], 2, "--grace-period 99"),
    ],
    "gru_xnet.train": [
        HELP,
        (["--bogus"], 2, "expected overrides as '--section.key value' pairs"),
        (["--datasets", "NOPE"], 2, "data.datasets[0]"),
        (["--model", "resnet"], 2, "'model.name' = 'resnet'"),
        (["--training.batch_size", "0"], 2, "training.batch_size"),
    ],
    "gru_xnet.predict": [
        HELP,
        (["--bogus"], 2, "the following arguments are required"),
        (["--checkpoint", "{tmp}/model.pth", "--dataset", "NOPE", "--data-root", "{tmp}"], 2, "unknown dataset 'NOPE'"),
    ],
    "gru_xnet.datasets.check": [
        HELP,
        (["--data-root", "{tmp}", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["--data-root", "{tmp}", "--datasets", "NOPE"], 2, "NOPE"),
    ],
    "gru_xnet.datasets.synthetic": [
        HELP,
        (["--out", "{tmp}/syn", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["--out", "{tmp}/syn", "--datasets", "NOPE"], 2, "unknown dataset 'NOPE'"),
        (["--out", "{tmp}/syn", "--subjects", "0"], 2, "n_subjects"),
    ],
}


def test_every_command_is_covered():
    """A module with a `main` run under `if __name__ == "__main__"` is a command: each one has its cases here."""
    commands = set()
    for package in ("gru_xnet", "loso", "tune"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text()
            if re.search(r"^def main\(", text, re.M) and re.search(r'^if __name__ == "__main__":', text, re.M):
                commands.add(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__main__"))
    assert commands == set(CASES)


@pytest.mark.parametrize("module", sorted(CASES))
def test_command_answers_before_heavy_imports(module, tmp_path):
    (tmp_path / "space.json").write_text('{"gru_hidden_size": {"choices": [[16, 32]]}}')
    (tmp_path / "lists.yaml").write_text("SEDD:\n  test: [1]\n  validation: []\n")
    cases = [([a.replace("{tmp}", str(tmp_path)) for a in args], code, said.replace("{tmp}", str(tmp_path)))
             for args, code, said in CASES[module]]
    result = subprocess.run([sys.executable, "-c", HARNESS, module, json.dumps(HEAVY),
                             json.dumps([args for args, _, _ in cases])],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(reports) == len(cases), result.stdout + result.stderr
    for (args, code, said), report in zip(cases, reports):
        assert report["code"] == code and said in report["output"], (args, report)
        assert report["loaded"] == [], f"python -m {module} {' '.join(args)} loaded {report['loaded']}"
