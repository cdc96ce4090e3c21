"""The terminal verdict: readable at 80 columns, every interval whole, untrusted text defanged."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from equiv.report.markdown import fmt_interval
from equiv.report.terminal import clean, print_verdict
from equiv.schema import Interval, Verdict

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


def test_a_go_on_a_shaky_judge_is_printed_with_its_cautions_and_summary_md_says_them_too() -> None:
    """The HTML report's judge warnings reach the terminal and summary.md for a GO (what gets acted on)."""
    from equiv.report.markdown import render_markdown

    verdict = make_verdict()
    go = next(tv for tv in verdict.prompt_types if tv.verdict == "GO")
    buf = io.StringIO()
    print_verdict(verdict, Console(file=buf, width=200, color_system=None))
    assert "caution" not in buf.getvalue() and "Before acting on a GO" not in render_markdown(verdict)
    go.position_consistency = 0.0
    assert go.diagnostics is not None
    go.diagnostics.position_a_share = 1.0
    buf = io.StringIO()
    print_verdict(verdict, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert f"caution ({go.prompt_type}, GO): Position consistency is 0%" in out
    assert "position A) in 100%" in out
    md = render_markdown(verdict)
    assert "**Before acting on a GO**" in md and f"- {go.prompt_type}: Position consistency is 0%" in md
    others = [tv for tv in verdict.prompt_types if tv.verdict != "GO"]
    assert others and not any(f"caution ({tv.prompt_type}" in out for tv in others)


def _demo_like() -> Verdict:
    """The demo's shape at its widest: long names, failures, a wide saving interval, a large monthly saving."""
    verdict = make_verdict()
    names = ["invoice-extraction", "one-line-summary", "ticket-triage-urgent", "reply-draft"]
    for tv, name in zip(verdict.prompt_types, names, strict=False):
        tv.prompt_type = name
        tv.verdict = "INCONCLUSIVE"
        tv.n, tv.n_failed = 1200, 12
    cost = verdict.prompt_types[0].cost
    assert cost is not None and cost.saving is not None
    cost.monthly_saving_usd = 123456.7
    cost.saving = Interval(estimate=0.941, ci_low=-0.123, ci_high=0.947)
    return verdict


def test_prompt_type_names_are_never_broken_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # as in a terminal (or CI log) 80 columns wide
    verdict = _demo_like()
    buf = io.StringIO()
    print_verdict(verdict, Console(file=buf, color_system=None), run_dir="/r")
    out = buf.getvalue()
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    table = lines[: next(i for i, line in enumerate(lines) if ": INCONCLUSIVE — " in line)]
    for tv in verdict.prompt_types:
        assert any(line.startswith(tv.prompt_type + " ") for line in table), (tv.prompt_type, "\n".join(table))
        assert fmt_interval(tv.quality_diff) in out and fmt_interval(tv.lc_quality_diff) in out
    assert "[-12.3, 94.7]" in out and "$123,457/mo" in out and "12 failed" in out
    assert "gpt-4o -> gpt-4o-mini" in out and "judge gpt-4.1, margin 0.1, alpha 0.05" in out  # title unbroken
    assert "…" not in out


def test_a_name_too_long_for_80_columns_folds_and_the_numbers_stay_whole() -> None:
    verdict = _demo_like()
    verdict.prompt_types[0].prompt_type = "customer-support-invoice-extraction-v2"
    buf = io.StringIO()
    print_verdict(verdict, Console(file=buf, width=80, color_system=None))
    out = buf.getvalue()
    assert all(len(line) <= 80 for line in out.splitlines())
    for tv in verdict.prompt_types:
        assert fmt_interval(tv.quality_diff) in out and fmt_interval(tv.lc_quality_diff) in out
