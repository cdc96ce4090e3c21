"""Regenerate docs/report.png from the realistic fixture: `python -m tests.report.make_screenshot`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from equiv.report.html import write_html

from .chromium import available, screenshot
from .factory import make_checks, make_history, make_pairs, make_run_info, make_verdict

ROOT = Path(__file__).resolve().parents[2]


def main(out: Path = ROOT / "docs" / "report.png", height: int = 2000) -> Path:
    if not available():
        sys.exit("chromium not found: apt-get install -y chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        write_html(page, make_verdict(), make_pairs(120), make_run_info(), make_checks(), make_history())
        out.unlink(missing_ok=True)
        screenshot(page, out, Path(tmp) / "profile", 1280, height)
    return out


if __name__ == "__main__":
    print(main(*(Path(a) for a in sys.argv[1:2])))
