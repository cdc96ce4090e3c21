from __future__ import annotations

from equiv.report.markdown import fmt_interval, fmt_pct, fmt_usd, md_text, render_markdown
from equiv.schema import Interval

from .factory import make_run_info, make_verdict


def test_summary_has_title_overall_and_one_row_per_type() -> None:
    md = render_markdown(make_verdict(), make_run_info())
    assert md.startswith("## equiv: gpt-4o → gpt-4o-mini (judge gpt-4.1)")
    assert "**Overall verdict: NO_GO**" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "prompt-type" not in line]
    assert len(rows) == 4
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    assert cells[0] == "ticket-triage"
    assert cells[1] == "**GO**"
    assert cells[2] == "200 (1 failed)"
    assert cells[3] == "-0.01 [-0.05, +0.02]"  # -0.015 rounds half-even on the float
    assert cells[4] == "-0.02 [-0.06, +0.03]"
    assert cells[5] == "94% [94%, 95%]"
    assert cells[6] == "$337/mo"
    assert cells[7].startswith("quality lower bound -0.05")
    assert "Reproduce: `equiv report reports/20250301-101500-3fa9c2e1`" in md
    assert "4 records skipped: no logged response" in md


def test_null_fields_render_as_dash() -> None:
    md = render_markdown(make_verdict())
    empty = next(line for line in md.splitlines() if line.startswith("| empty-type"))
    cells = [c.strip() for c in empty.strip("|").split(" | ")]
    assert cells[1] == "**INCONCLUSIVE**"
    assert cells[3:7] == ["—", "—", "—", "—"]
    summarize = next(line for line in md.splitlines() if line.startswith("| summarize"))
    assert "| — |" in summarize  # cost null -> saving dash


def test_pipes_newlines_and_html_in_data_cannot_break_the_table() -> None:
    v = make_verdict(hostile=True)
    md = render_markdown(v)
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(v.prompt_types)  # no row split by a newline
    header_cells = table[0].count(" | ")
    for row in table[2:]:
        # unescaped separators only: every data "|" was written as "\|"
        assert row.replace("\\|", "").count(" | ") == header_cells
    assert "<script>" not in md and "<b>" not in md
    assert "&lt;script&gt;" in md
    assert "\\|" in md


def test_no_model_output_in_summary() -> None:
    md = render_markdown(make_verdict())
    assert "Category: billing" not in md
    assert "Answer A is more complete" not in md


def test_formatters() -> None:
    assert md_text("a|b\nc", None) == "a\\|b c"
    assert md_text("x" * 300, 10).endswith("…")
    assert fmt_interval(Interval(estimate=-0.0001, ci_low=-0.1, ci_high=0.1)) == "+0.00 [-0.10, +0.10]"
    assert fmt_interval(None) == "—"
    assert fmt_pct(None) == "—" and fmt_pct(0.5) == "50%"
    assert fmt_usd(None) == "—"
    assert fmt_usd(0.000174) == "$0.000174"
    assert fmt_usd(1234.5) == "$1,234"
    assert fmt_usd(float("nan")) == "—"
