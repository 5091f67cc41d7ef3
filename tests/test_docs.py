"""The documentation builds (strict, offline), covers every public module, its tutorials run as written, and the
README stays one screen that opens with the two commands."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TESTED = re.compile(r"<!-- tested -->\n```bash\n(.*?)```", re.S)


def test_the_docs_build_strictly_and_offline(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "fonts.googleapis" not in (tmp_path / "site" / "index.html").read_text()  # theme.font: false
    assert "plan_folds" in (tmp_path / "site" / "api" / "splits" / "index.html").read_text()


def public_modules() -> set[str]:
    names = set()
    for package in ("gru_xnet", "loso", "tune"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            if path.name == "__init__.py":
                if path.read_text().strip():  # a package with content of its own
                    names.add(".".join(parts[:-1]))
            elif not path.name.startswith("_"):
                names.add(".".join(parts))
    return names


def test_every_public_module_is_in_the_api_reference():
    documented = {line[4:].strip() for page in (DOCS / "api").glob("*.md") for line in page.read_text().splitlines()
                  if line.startswith("::: ")}
    assert public_modules() - documented == set()
    assert documented - public_modules() == set()


@pytest.mark.parametrize("page", ["first-loso.md", "own-model.md"])
def test_tutorial_pages_run_as_written(page, tmp_path):
    blocks = TESTED.findall((DOCS / page).read_text())
    assert blocks, f"{page} has no tested block"
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}  # the feature cache (~/.cache) stays in tmp_path
    for block in blocks:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{page}:\n{block}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr


def test_readme_is_one_screen_of_links_opening_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    first = text.split("```")[1].splitlines()  # the first code block: its language, then the commands
    assert text.startswith("# gru_xnet\n\n```bash") and len(first) == 3
    assert first[1].startswith("bash scripts/demo.sh") and first[2].startswith("bash scripts/test.sh")
    assert len(text.splitlines()) < 150
    assert "python -m loso.run --datasets DEAP --data-root" in "\n".join(text.splitlines()[:30])
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (REPO / link).is_file(), link
