"""One table, three files: plain CSV (header row first, for pandas, R and Excel), Markdown and LaTeX; and the
narrower view of a table for a terminal (`to_text`).

The statement of what was run is the caption of the Markdown and LaTeX tables and never a line of
the CSV; a run folder keeps it beside the CSVs (`tables/PROTOCOL.md`, `run.json`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gru_xnet.config import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

MISSING = "--"
TERMINAL_WIDTH = 120
"""What the printed views fit: tables are cut into blocks (`to_text`), prose is wrapped (`wrap`)."""
_LATEX_SPECIAL = str.maketrans({"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                                "\\": r"\textbackslash{}"})


def to_markdown(table: pd.DataFrame, caption: Sequence[str]) -> str:
    """The caption as quoted lines, then the table (missing values as '--')."""
    cells = table.astype(object).where(table.notna(), None)
    body = cells.to_markdown(index=False, floatfmt=".2f", missingval=MISSING)
    return "".join(f"> {line}\n" for line in caption) + "\n" + body + "\n"


def read_caption(markdown: Path) -> list[str]:
    """The caption lines of a table `to_markdown` wrote (its leading '> ' lines)."""
    lines = []
    for line in markdown.read_text().splitlines():
        if not line.startswith("> "):
            break
        lines.append(line[2:])
    return lines


def to_latex(table: pd.DataFrame, caption: Sequence[str]) -> str:
    """A booktabs `table` with the caption, cells and headers escaped, missing values as '--'."""
    styler = (table.style.hide(axis="index").format(precision=2, na_rep=MISSING, escape="latex")
              .format_index(escape="latex", axis=1))
    return styler.to_latex(caption="; ".join(caption).translate(_LATEX_SPECIAL), hrules=True,
                           position_float="centering")


def wrap(text: str, prefix: str = "", width: int = TERMINAL_WIDTH) -> str:
    """`text` wrapped at word boundaries to `width` columns, every line after `prefix` (indented on continuation)."""
    return textwrap.fill(text, width, initial_indent=prefix, subsequent_indent=prefix + "  ",
                         break_long_words=False, break_on_hyphens=False)


def to_text(table: pd.DataFrame, keys: int = 1, width: int = TERMINAL_WIDTH) -> str:
    """The table for a terminal of `width` columns: cut into blocks that each repeat the first `keys` columns.

    With two header levels, (group, name), a group's label is printed once above its columns. A group, or a run
    of ungrouped columns, stays in one block: a table wider than `width` is cut between them.
    """
    import pandas as pd

    header = list(table.columns) if isinstance(table.columns, pd.MultiIndex) else [("", c) for c in table.columns]
    cells = table.astype(object).where(table.notna(), MISSING).astype(str)
    columns = [[str(name), *cells.iloc[:, i]] for i, (_, name) in enumerate(header)]
    sizes = [max(map(len, column)) for column in columns]
    units: list[list[int]] = []  # columns that stay together: a group, or a run of ungrouped columns
    for i, (group, _) in enumerate(header):
        if i > keys and header[units[-1][0]][0] == group:
            units[-1].append(i)
        else:
            units.append([i])

    def span(unit: list[int]) -> int:
        return sum(sizes[i] for i in unit) + 2 * (len(unit) - 1)

    for unit in units:  # a group label wider than its columns widens the last of them
        label = header[unit[0]][0]
        sizes[unit[-1]] += max(0, len(label) + 4 - span(unit)) if label else 0
    blocks = [units[:keys]]
    for unit in units[keys:]:
        if len(blocks[-1]) > keys and sum(span(u) + 2 for u in blocks[-1]) + span(unit) > width:
            blocks.append(units[:keys])
        blocks[-1].append(unit)
    texts = []
    for block in blocks:
        labels = [header[unit[0]][0] for unit in block]
        lines = ["  ".join(f" {label} ".center(span(unit), "-") if label else " " * span(unit)
                           for label, unit in zip(labels, block)).rstrip()] if any(labels) else []
        order = [i for unit in block for i in unit]
        lines += ["  ".join(columns[i][row].rjust(sizes[i]) for i in order) for row in range(len(columns[0]))]
        texts.append("\n".join(lines))
    return "\n\n".join(texts)


def write_table(table: pd.DataFrame, stem: Path, caption: Sequence[str], display: pd.DataFrame | None = None) -> None:
    """`stem`.csv holds `table` as it is; `stem`.md and .tex show `display` (default: `table`) under `caption`."""
    write_text_atomic(stem.with_suffix(".csv"), table.to_csv(index=False))
    shown = table if display is None else display
    write_text_atomic(stem.with_suffix(".md"), to_markdown(shown, caption))
    write_text_atomic(stem.with_suffix(".tex"), to_latex(shown, caption))
