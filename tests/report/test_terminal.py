"""The terminal verdict: readable at 80 columns, every interval whole, untrusted text defanged."""

from __future__ import annotations

import io

from rich.console import Console

from equiv.report.markdown import fmt_interval
from equiv.report.terminal import clean, print_verdict

from .factory import make_verdict


def render(width: int, hostile: bool = False) -> str:
    buf = io.StringIO()
    print_verdict(make_verdict(hostile=hostile), Console(file=buf, width=width, color_system=None), run_dir="/r")
    return buf.getvalue()


def test_intervals_are_never_cut_at_80_columns() -> None:
    out = render(80)
    verdict = make_verdict()
    for tv in verdict.prompt_types:
        assert fmt_interval(tv.quality_diff, digits=2) in out
        assert fmt_interval(tv.lc_quality_diff, digits=2) in out
        assert tv.verdict in out
    assert "…" not in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_each_type_has_its_reason_below_the_table() -> None:
    out = render(120)
    for tv in make_verdict().prompt_types:
        assert f"{tv.prompt_type}: {tv.verdict} — " in out


def test_clean_strips_escape_sequences_and_bidi() -> None:
    hostile = "ok\x1b[2J\x1b]0;pwned\x07 \u202eevil\r\nnext"
    out = clean(hostile)
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out and "\x07" not in out
    assert out.startswith("ok[2J]0;pwned")
    assert len(clean("x" * 1000, limit=50)) == 50
