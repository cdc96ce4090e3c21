"""Render report.html for 1,000 pairs and print its size and render time.

    python benchmarks/bench_report.py [N_PAIRS]

Three inputs: short realistic texts, realistic texts with every 7th answer ~12k chars, and the
worst case (every answer ~16k chars of markup-heavy text that must be cut to fit).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equiv.report.html import render_html
from equiv.report.markdown import render_markdown
from tests.report.factory import (
    make_checks,
    make_history,
    make_pairs,
    make_run_info,
    make_verdict,
)


def _huge(n: int):  # type: ignore[no-untyped-def]
    pairs = make_pairs(n)
    for p in pairs:
        if p.candidate is not None:
            p.candidate.output = "word <b> & " * 1500
        if p.baseline is not None:
            p.baseline.output = "baseline text " * 1200
    return pairs


def main(n: int = 1000, repeat: int = 5) -> None:
    verdict, info, checks, history = make_verdict(), make_run_info(), make_checks(), make_history()
    cases = {
        "short texts": make_pairs(n),
        "every 7th answer 12k chars": make_pairs(n, long_every=7),
        "every answer 13-16k chars": _huge(n),
    }
    print(f"report.html for {n:,} pairs (best and median of {repeat} renders)")
    for name, pairs in cases.items():
        raw = sum(
            len(p.baseline.output or "") + len(p.candidate.output or "") if p.baseline and p.candidate else 0
            for p in pairs
        )
        times = []
        html = ""
        for _ in range(repeat):
            t0 = time.perf_counter()
            html = render_html(verdict, pairs, info, checks, history)
            times.append(time.perf_counter() - t0)
        size = len(html.encode("utf-8"))
        print(
            f"  {name:28s} answers {raw / 1e6:6.2f} MB -> page {size / 1e6:5.2f} MB   "
            f"render best {min(times) * 1000:6.0f} ms, median {statistics.median(times) * 1000:6.0f} ms"
        )
    t0 = time.perf_counter()
    md = render_markdown(verdict, info)
    print(f"summary.md: {len(md):,} bytes in {(time.perf_counter() - t0) * 1000:.1f} ms")
    open_time(render_html(verdict, cases["short texts"], info, checks, history), n)


_PROBE = (
    "<script>addEventListener('load',()=>setTimeout(()=>{"
    "const n=performance.getEntriesByType('navigation')[0];"
    "const p=performance.getEntriesByName('first-contentful-paint')[0];"
    "document.body.setAttribute('data-load-ms',Math.round(n.loadEventStart));"
    "document.body.setAttribute('data-fcp-ms',p?Math.round(p.startTime):-1)},50))</script>"
)


def open_time(html: str, n: int, repeat: int = 3) -> None:
    """How long headless Chromium takes to paint and load the page from disk (needs Debian's chromium)."""
    if not shutil.which("chromium"):
        print("open time: skipped (no chromium)")
        return
    # the page's Content-Security-Policy forbids foreign scripts: drop it in this measuring copy only
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", _PROBE + "</body>")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        fcp, load = [], []
        for _ in range(repeat):
            dom = subprocess.run(
                [
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    f"--user-data-dir={tmp}/profile",
                    "--virtual-time-budget=3000",
                    "--dump-dom",
                    page.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            ).stdout
            m1, m2 = re.search(r'data-fcp-ms="(-?\d+)"', dom), re.search(r'data-load-ms="(\d+)"', dom)
            if m1 and m2:
                fcp.append(int(m1.group(1)))
                load.append(int(m2.group(1)))
    if not load:
        print("open time: chromium gave no timing")
        return
    print(
        f"open in headless Chromium, {n:,} pairs: first paint median {statistics.median(fcp):.0f} ms, "
        f"load event median {statistics.median(load):.0f} ms (of {len(load)} opens)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
