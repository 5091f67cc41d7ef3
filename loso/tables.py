"""One table, three files: plain CSV (header row first, for pandas, R and Excel), Markdown and LaTeX.

The statement of what was run is the caption of the Markdown and LaTeX tables and never a line of
the CSV; a run folder keeps it beside the CSVs (`tables/PROTOCOL.md`, `run.json`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gru_xnet.config import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

MISSING = "--"
_LATEX_SPECIAL = str.maketrans({"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                                "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                                "\\": r"\textbackslash{}"})


def to_markdown(table: pd.DataFrame, caption: Sequence[str]) -> str:
    """The caption as quoted lines, then the table (missing values as '--')."""
    cells = table.astype(object).where(table.notna(), None)
    body = cells.to_markdown(index=False, floatfmt=".2f", missingval=MISSING)
    return "".join(f"> {line}\n" for line in caption) + "\n" + body + "\n"


def to_latex(table: pd.DataFrame, caption: Sequence[str]) -> str:
    """A booktabs `table` with the caption, cells and headers escaped, missing values as '--'."""
    styler = (table.style.hide(axis="index").format(precision=2, na_rep=MISSING, escape="latex")
              .format_index(escape="latex", axis=1))
    return styler.to_latex(caption="; ".join(caption).translate(_LATEX_SPECIAL), hrules=True,
                           position_float="centering")


def write_table(table: pd.DataFrame, stem: Path, caption: Sequence[str], display: pd.DataFrame | None = None) -> None:
    """`stem`.csv holds `table` as it is; `stem`.md and .tex show `display` (default: `table`) under `caption`."""
    write_text_atomic(stem.with_suffix(".csv"), table.to_csv(index=False))
    shown = table if display is None else display
    write_text_atomic(stem.with_suffix(".md"), to_markdown(shown, caption))
    write_text_atomic(stem.with_suffix(".tex"), to_latex(shown, caption))
