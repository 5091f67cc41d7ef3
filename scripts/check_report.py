"""Open a run's `report.html` in headless Chromium and say what a reader would see; or take its screenshot.

    python scripts/check_report.py RUN/report.html [--screenshot docs/img/report.png]

The check (used by tests/test_report.py, which fails without Chromium under CI=true): the page's sections, whether
every image decodes, the page's scroll width at a 1280 x 900 window, and every reference to something outside the
page (`src`, `href`, `srcset`, CSS `url()` and `@import` other than `data:` URIs or in-page `#` anchors), read from
the HTML itself. The checker script is injected into a copy, never into the report.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,900"]
"""Headless and offline: without the background-networking flags Chromium tries to reach Google's hosts at start."""

CHECKER = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const result = {images: images.length, decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
                  scroll_width: document.documentElement.scrollWidth,
                  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id)};
  const pre = document.createElement('pre');
  pre.id = 'report-check';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


class _References(HTMLParser):
    """Every src / href / srcset value and every CSS url() / @import of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in ("src", "href"):
                self.found.append(value)
            elif name == "srcset":
                self.found += [part.strip().split(" ")[0] for part in value.split(",") if part.strip()]
            elif name == "style":
                self.found += _css_references(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += _css_references(data)


def _css_references(css: str) -> list[str]:
    urls = [m.strip("'\" ") for m in re.findall(r"url\(([^)]*)\)", css)]
    imports = [m.strip("'\" ") for m in re.findall(r"@import\s+(?:url\()?([^;)\s]+)", css)]
    return urls + imports


def external_references(html: str) -> list[str]:
    """What the page would fetch: references other than `data:` URIs and in-page `#` anchors."""
    parser = _References()
    parser.feed(html)
    return [ref for ref in parser.found if not ref.startswith(("data:", "#"))]


def chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_check(report: Path) -> dict:
    """What headless Chromium makes of the page once loaded (every image fetched and decoded, or broken): its sections,
    images and how many decoded to a picture, scroll width."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(report.read_text().replace("</body>", CHECKER + "</body>"))
        dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", "--dump-dom",
                              "--virtual-time-budget=20000", copy.as_uri()],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="report-check">(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError(f"the checker did not run in Chromium; DOM tail: {dom[-500:]}")
    return json.loads(found.group(1))


def screenshot(report: Path, png: Path, height: int = 2400) -> None:
    """A PNG of the page's top `height` pixels at 1280 px wide."""
    with tempfile.TemporaryDirectory() as tmp:
        flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--window-size")] + [f"--window-size=1280,{height}"]
        subprocess.run([chromium(), *flags, f"--user-data-dir={tmp}/profile", f"--screenshot={png.resolve()}",
                        report.resolve().as_uri()], capture_output=True, timeout=120, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of the page here")
    args = parser.parse_args(argv)
    if chromium() is None:
        print("error: no chromium on PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    result = {**browser_check(args.report), "external_references": external_references(args.report.read_text())}
    print(json.dumps(result, indent=2))
    if args.screenshot:
        screenshot(args.report, args.screenshot)
        print(f"screenshot: {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
