"""Put the demo's per-dataset printout (from a log of `loso.run`) into README.md's sample block, as printed.

Usage: python scripts/readme_sample.py DEMO_LOG (run by scripts/docs_figures.sh).
"""

import re
import sys
from pathlib import Path

MARKER = "<!-- the demo's printout (scripts/docs_figures.sh) -->\n```text\n"

printed = Path(sys.argv[1]).read_text()
sample = printed[printed.index("Per dataset (over subjects):"):printed.index("\nPooled ")].rstrip()
readme = Path(__file__).resolve().parents[1] / "README.md"
text, found = re.subn(re.escape(MARKER) + r".*?```", lambda _: MARKER + sample + "\n```", readme.read_text(),
                      count=1, flags=re.S)
if not found:
    sys.exit(f"error: {readme} has no sample block (a line {MARKER.splitlines()[0]!r}, then a text block)")
readme.write_text(text)
