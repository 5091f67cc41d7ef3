"""The documentation builds (strict, offline), covers every public module, its tutorials run as written, and the
README stays one screen that opens with the two commands."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TESTED = re.compile(r"<!-- tested(, runs beside the block before)? -->\n```bash\n(.*?)```", re.S)
"""A tested block; one marked as running beside the block before starts a second shell session (a page's part that
needs nothing of the part before it, e.g. the same run on other data): on 2 cores the two take the time of one."""
EXPECTED = re.compile(r"<!-- expected -->\n```text\n(.*?)```", re.S)


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


def test_pages_with_commands_say_to_activate_the_venv_before_the_first():
    # Defect: bare `python -m ...` in the README and the docs with nothing saying to activate .venv first; with the
    # system Python: "No module named 'ray'".
    for path in [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = path.read_text()
        commands = [block.start(1) + line.start() for block in re.finditer(r"```bash\n(.*?)```", text, re.S)
                    for line in re.finditer(r"^python ", block[1], re.M)]
        if commands:
            assert -1 < text.find("source .venv/bin/activate") < commands[0], path.relative_to(REPO)


def printed_tables(printout: str) -> list[tuple[str, list[str]]]:
    """The table sections of a printout ('Per subject ...', 'Per dataset ...'), each up to the next section, confusion
    matrix or '#' line: (title, lines)."""
    sections: list[tuple[str, list[str]]] = []
    current = None
    for line in printout.splitlines():
        if line.startswith("Per "):
            current = (line, [])
            sections.append(current)
        elif line.startswith(("Pooled ", "Tables in ", "#")):
            current = None
        elif current is not None:
            current[1].append(line)
    return sections


def shape(lines: list[str]) -> list[list[str]]:
    """A table's lines with every number masked and dash rules shortened: what two runs on two CPUs share. Method
    footnotes and the collapse marker '*' are left out (on another CPU's kernels a subject off chance can change the
    Wilcoxon method, and one subject's model can predict one class, as seen with ATEN_CPU_CAPABILITY=default)."""
    return [["#" if re.search(r"\d", t) else "-" if set(t) == {"-"} else t for t in line.split() if t != "*"]
            for line in lines if line.strip() and not line.startswith(("every row:", "["))]


def above_chance(lines: list[str]) -> list[bool]:
    """Per row of a per-dataset table: does the 95 % CI of the mean lie above its baseline (balanced accuracy: chance
    1/K; accuracy: the majority baseline)?"""
    rows = [re.match(r"\s*\S+\s+(?:window|trial)\s+\S+\s+[\d.]+ \[([\d.]+), [\d.]+\]\s+([\d.]+)", line) for line in lines]
    return [float(row[1]) > float(row[2]) for row in rows if row]


def sessions(text: str) -> list[str]:
    """The page's tested blocks as shell sessions: each block joins the session of the block before it, unless it is
    marked as running beside that one."""
    found: list[list[str]] = []
    for beside, block in TESTED.findall(text):
        if beside or not found:
            found.append([])
        found[-1].append(block)
    return ["\n".join(blocks) for blocks in found]


@pytest.mark.parametrize("page", ["first-loso.md", "own-model.md"])
def test_tutorial_pages_run_as_written(page, tmp_path):
    # The page's tested blocks in order, as the shell session of a reader who activated .venv as the page says: the
    # venv of this interpreter first on PATH (a part marked as needing nothing of the part before runs beside it, in a
    # second session). Where the page shows the expected tables, the printed ones (of the sessions in page order) have
    # their shape (columns, rows) and the same answer to "above chance?".
    text = (DOCS / page).read_text()
    scripts = sessions(text)
    assert scripts, f"{page} has no tested block"
    assert "source .venv/bin/activate" in text.split("<!-- tested")[0]
    (tmp_path / "examples").symlink_to(REPO / "examples")
    venv = Path(sys.executable).parent
    env = {**os.environ, "VIRTUAL_ENV": str(venv.parent), "PATH": f"{venv}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}  # the feature cache (~/.cache) stays in tmp_path
    logs = [(tmp_path / f"session{i}.out", tmp_path / f"session{i}.err") for i in range(len(scripts))]
    started = []
    for script, (out, err) in zip(scripts, logs):
        with open(out, "w") as stdout, open(err, "w") as stderr:  # the session writes to its own copies
            started.append(subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                                            stdout=stdout, stderr=stderr))
    printout = ""
    for process, (out, err) in zip(started, logs):
        process.wait(timeout=600)
        assert process.returncode == 0, f"{page}:\n{out.read_text()[-2000:]}{err.read_text()[-3000:]}"
        assert "Traceback" not in err.read_text()
        printout += out.read_text()
    printed = printed_tables(printout)
    expected = [section for block in EXPECTED.findall(text) for section in printed_tables(block)]
    seen: dict[str, int] = {}
    for title, lines in expected:
        k = seen[title] = seen.get(title, -1) + 1  # the page's k-th table of this title is the run's k-th
        actual = [shown for t, shown in printed if t == title][k]
        assert shape(actual) == shape(lines), f"{page}: {title} (#{k + 1})\n" + "\n".join(actual)
        assert above_chance(actual) == above_chance(lines), f"{page}: {title} (#{k + 1})\n" + "\n".join(actual)
    if page == "first-loso.md":  # the page shows a learnt signal, then chance on shuffled labels
        assert [set(above_chance(lines)) for title, lines in expected if title.startswith("Per dataset")] == [
            {True}, {False}]


def test_readme_is_one_screen_of_links_opening_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    first = text.split("```")[1].splitlines()  # the first code block: its language, then the commands
    assert text.startswith("# gru_xnet\n\n```bash") and len(first) == 3
    assert first[1].startswith("bash scripts/demo.sh") and first[2].startswith("bash scripts/test.sh")
    assert len(text.splitlines()) < 150
    assert "python -m loso.run --datasets DEAP --data-root" in "\n".join(text.splitlines()[:30])
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (REPO / link).is_file(), link
