"""The report in a real browser: hostile payloads do not run, the page renders, the console stays empty.

Needs Debian's `chromium` (apt-get install -y chromium); skipped where /usr/bin/chromium is absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from equiv.report.html import outcomes, write_html

from . import chromium
from .factory import make_checks, make_history, make_pairs, make_run_info, make_verdict

pytestmark = [
    pytest.mark.browser,
    # CI sets EQUIV_REQUIRE_BROWSER=1 after installing chromium: there a missing browser fails the run
    pytest.mark.skipif(
        not Path("/usr/bin/chromium").exists() and not os.environ.get("EQUIV_REQUIRE_BROWSER"),
        reason="needs /usr/bin/chromium",
    ),
]

N = 60
TITLE = "<title>equiv verdict: gpt-4o → gpt-4o-mini · NO_GO</title>"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("hostile") / "report.html"
    write_html(
        page,
        make_verdict(hostile=True),
        make_pairs(N, hostile=True),
        make_run_info(),
        make_checks(hostile=True),
        make_history(),
    )
    return page


def _assert_nothing_ran(dom: str) -> None:
    assert TITLE in dom  # every payload tries to overwrite document.title
    assert "PWNED" not in dom.split("</title>")[0]
    assert "<pwned" not in dom.lower()  # the onerror payload appends a <pwned> element
    for tag in ("<img", "<iframe", "<svg onload"):
        assert tag not in dom.lower()
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+=", dom)  # no event-handler attribute anywhere
    assert dom.count("<script") == 1


def _assert_rendered(dom: str, shown: int = N) -> None:
    assert '<table class="headline">' in dom
    assert dom.count('<article class="pair"') == N
    assert '<form id="filters" class="filters">' in dom  # the filter script ran and revealed it
    assert f"{shown} of {N} pairs shown" in dom


def test_hostile_report_executes_no_payload_and_console_is_empty(hostile_report: Path, tmp_path: Path) -> None:
    dom, console = chromium.dump_dom(hostile_report, tmp_path / "profile")
    assert console == []  # no error, no CSP violation (there is no injected script to block)
    _assert_nothing_ran(dom)
    _assert_rendered(dom)
    assert "&lt;script&gt;document.title='PWNED-script'" in dom  # shown as text


def test_escaping_alone_stops_payloads_without_the_csp(hostile_report: Path, tmp_path: Path) -> None:
    # Drop the Content-Security-Policy: what remains between the payloads and execution is escaping.
    html = hostile_report.read_text(encoding="utf-8")
    stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    assert stripped != html
    page = tmp_path / "nocsp.html"
    page.write_text(stripped, encoding="utf-8")
    dom, console = chromium.dump_dom(page, tmp_path / "profile")
    assert console == []
    _assert_nothing_ran(dom)
    _assert_rendered(dom)


def test_filters_hide_what_does_not_match(tmp_path: Path) -> None:
    pairs = make_pairs(N)
    page = tmp_path / "report.html"
    write_html(page, make_verdict(), pairs, make_run_info())
    driver = (
        "<script>var f=document.getElementById('filters');f.elements.type.value='reply-draft';"
        "f.elements.outcome.value='lost';f.dispatchEvent(new Event('change'));</script></body>"
    )
    html = page.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", driver)
    page.write_text(html, encoding="utf-8")
    dom, console = chromium.dump_dom(page, tmp_path / "profile")
    assert console == []
    expected = sum(p.prompt_type == "reply-draft" and "lost" in outcomes(p) for p in pairs)
    assert 0 < expected < N
    visible = re.findall(r'<article class="pair"[^>]*data-type="([^"]+)" data-outcome="([^"]+)">', dom)
    hidden = re.findall(r'<article class="pair"[^>]*hidden[^>]*>', dom)
    assert len(visible) == expected and len(hidden) == N - expected
    assert all(t == "reply-draft" and "lost" in o.split() for t, o in visible)
    assert f"{expected} of {N} pairs shown" in dom


def test_reads_with_scripts_off(hostile_report: Path, tmp_path: Path) -> None:
    # --dump-dom needs JavaScript itself, so "scripts off" is simulated by a CSP that allows no script.
    html = hostile_report.read_text(encoding="utf-8")
    noscript = re.sub(r"script-src &#39;sha256-[^;]+&#39;", "script-src &#39;none&#39;", html)
    assert noscript != html
    page = tmp_path / "noscript.html"
    page.write_text(noscript, encoding="utf-8")
    dom, console = chromium.dump_dom(page, tmp_path / "profile")
    assert len(console) == 1 and "Content Security Policy" in console[0]  # only our own script, blocked
    assert '<table class="headline">' in dom
    assert '<form id="filters" class="filters" hidden="">' in dom  # filters stay out of the way
    assert dom.count('<article class="pair"') == N
    assert "hidden" not in "".join(re.findall(r"<article[^>]*>", dom))  # every pair is listed
    _assert_nothing_ran(dom)


def test_screenshot_of_realistic_report(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    write_html(page, make_verdict(), make_pairs(120), make_run_info(), make_checks(), make_history())
    png = tmp_path / "report.png"
    chromium.screenshot(page, png, tmp_path / "profile", 1280, 1600)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a rendered page, not a blank one
