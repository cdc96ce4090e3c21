"""summary.md: the headline table of a verdict, short enough for a pull-request comment.

Only numbers, labels and the decision's own reasons are shown; model output never is. Every text that
comes from data (type names, reasons, model names) goes through `md_text`, so a `|` or a newline in a
prompt-type cannot break the table and no HTML in it renders on a code host.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from equiv.schema import Interval, TypeVerdict, Verdict

DASH = "—"  # shown wherever a value is null (n = 0, cost unknown, no judge check ...)

_MD_SPECIALS = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "\r": " ",
        "\n": " ",
        "\t": " ",
    }
)


def md_text(value: object, limit: int | None = 240) -> str:
    """Data text made safe for one markdown table cell: one line, no live markup, bounded length."""
    text = " ".join(str(value).split())  # collapses every newline / tab / run of spaces
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text.translate(_MD_SPECIALS)


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def fmt_signed(x: float | None, digits: int = 2) -> str:
    """A quality difference: always signed, so -0.03 and +0.03 read differently at a glance."""
    if not _finite(x):
        return DASH
    assert x is not None
    text = f"{x:+.{digits}f}"
    return "+0." + "0" * digits if text == "-0." + "0" * digits else text


def fmt_interval(iv: Interval | None, digits: int = 2) -> str:
    if iv is None:
        return DASH
    low, high = fmt_signed(iv.ci_low, digits), fmt_signed(iv.ci_high, digits)
    mark = " extrapolated" if iv.extrapolated else ""  # LC outside the observed lengths: not evidence
    return f"{fmt_signed(iv.estimate, digits)} [{low}, {high}]{mark}"


def fmt_pct(x: float | None, digits: int = 0) -> str:
    """A share in [0, 1] (or a saving, possibly negative) as a percentage."""
    if not _finite(x):
        return DASH
    assert x is not None
    return f"{x * 100:.{digits}f}%"


def fmt_pct_interval(iv: Interval | None, digits: int = 0) -> str:
    if iv is None:
        return DASH
    return f"{fmt_pct(iv.estimate, digits)} [{fmt_pct(iv.ci_low, digits)}, {fmt_pct(iv.ci_high, digits)}]"


def fmt_usd(x: float | None) -> str:
    """Money: whole dollars for large sums, enough significant digits for per-request prices."""
    if not _finite(x):
        return DASH
    assert x is not None
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    if a == 0:
        return "$0"
    # per-request costs are tiny: keep three significant digits
    digits = max(2, 2 - int(math.floor(math.log10(a))))
    return f"{sign}${a:.{digits}f}"


def fmt_rate(x: float | None, digits: int = 2) -> str:
    if not _finite(x):
        return DASH
    assert x is not None
    return f"{x:.{digits}f}"


def first_reason(tv: TypeVerdict) -> str:
    return tv.reasons[0] if tv.reasons else ""


def reproduce_command(verdict: Verdict, run_info: Mapping[str, Any] | None) -> str:
    """`equiv report RUN_DIR`: re-analyses from pairs.jsonl, no model calls."""
    info = run_info or {}
    if isinstance(info.get("reproduce"), str):  # a re-analysis records its own command (flags included)
        return str(info["reproduce"])
    run_dir = info.get("run_dir") or f"reports/{verdict.run_id}"
    return f"equiv report {run_dir}"


def _instrument_lines(verdict: Verdict) -> list[str]:
    """The per-type instruments the analysis recorded: one table of checks, one line per type (nothing for a
    verdict without them)."""
    from equiv.report.instruments import check_cells, has_instruments, summary_parts

    types = [tv for tv in verdict.prompt_types if has_instruments(tv)]
    if not types:
        return []
    lines = ["", "**Instruments**", ""]
    rows = [(tv, c) for tv in types for c in tv.checks or ()]
    if rows:
        lines.append(
            "| prompt-type | check | kind | baseline pass | candidate pass | difference [CI] | agreement | result |"
        )
        lines.append("|---|---|---|---:|---:|---:|---:|---|")
        for tv, c in rows:
            cells = check_cells(c)
            name = cells["name"] if cells["name"] == cells["check"] else f"{cells['name']} ({cells['check']})"
            row = [md_text(tv.prompt_type, 80), md_text(name, 80), cells["kind"]]
            row += [cells[k] or " " for k in ("baseline", "candidate", "diff", "agreement")]
            row.append(md_text(cells["result"]) or " ")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    for tv in types:
        parts = summary_parts(tv, checks=False)
        if parts:
            lines.append(f"- {md_text(tv.prompt_type, 80)}: " + " · ".join(md_text(p, 400) for p in parts))
    return lines


def render_markdown(verdict: Verdict, run_info: Mapping[str, Any] | None = None) -> str:
    """The summary.md text: title, overall verdict, one headline row per prompt-type, notes, reproduce."""
    info = run_info or {}
    lines: list[str] = []
    lines.append(
        f"## equiv: {md_text(verdict.baseline)} → {md_text(verdict.candidate)} (judge {md_text(verdict.judge)})"
    )
    lines.append("")
    facts = [
        f"**Overall verdict: {verdict.verdict}**",
        f"margin {fmt_rate(verdict.margin)}",
        f"alpha {fmt_rate(verdict.alpha, 3).rstrip('0').rstrip('.')}",
        f"correction {md_text(verdict.correction)}",
        f"run {md_text(verdict.run_id, None)}",
    ]
    if verdict.eval_cost_usd is not None:
        facts.append(f"eval cost {fmt_usd(verdict.eval_cost_usd)}")
    lines.append(" · ".join(facts))
    lines.append("")

    show_monthly = any(tv.cost is not None and tv.cost.monthly_saving_usd is not None for tv in verdict.prompt_types)
    header = ["prompt-type", "verdict", "n", "quality diff [CI]", "LC diff [CI]", "saving [CI]"]
    if show_monthly:
        header.append("monthly saving")
    header.append("reason")
    lines.append("| " + " | ".join(header) + " |")
    aligns = ["---", ":---:", "---:", "---:", "---:", "---:"] + (["---:"] if show_monthly else []) + ["---"]
    lines.append("|" + "|".join(aligns) + "|")
    for tv in verdict.prompt_types:
        n_cell = str(tv.n) + (f" ({tv.n_failed} failed)" if tv.n_failed else "")
        row = [
            md_text(tv.prompt_type, 80),
            f"**{tv.verdict}**",
            n_cell,
            fmt_interval(tv.quality_diff),
            fmt_interval(tv.lc_quality_diff),
            fmt_pct_interval(tv.cost.saving) if tv.cost is not None else DASH,
        ]
        if show_monthly:
            monthly = tv.cost.monthly_saving_usd if tv.cost is not None else None
            row.append(fmt_usd(monthly) + ("/mo" if _finite(monthly) else ""))
        row.append(md_text(first_reason(tv)) or DASH)
        lines.append("| " + " | ".join(row) + " |")
    if not verdict.prompt_types:
        lines.append("| (no prompt-types) |" + " |" * (len(header) - 1))
    lines.append("")

    from equiv.report.warnings import type_warnings

    cautions = [(tv.prompt_type, w) for tv in verdict.prompt_types if tv.verdict == "GO" for w in type_warnings(tv)]
    notes: list[str] = []
    if verdict.aborted:
        notes.append(f"Run stopped early: {md_text(verdict.aborted)}. Results are partial.")
    notes.extend(md_text(n) for n in verdict.notes)
    lines.append(
        "Quality diff = candidate minus baseline on [-1, 1] (judge, both orders); LC = length-controlled. "
        f"GO needs both lower bounds above -{fmt_rate(verdict.margin)} and a cheaper candidate."
    )
    lines.extend(_instrument_lines(verdict))
    if cautions:  # a GO is what gets acted on: what weakens it is said next to it, not only in report.html
        lines.append("")
        lines.append("**Before acting on a GO**")
        lines.append("")
        lines.extend(f"- {md_text(t, 80)}: {md_text(w)}" for t, w in cautions)
    if notes:
        lines.append("")
        lines.append("**Notes**")
        lines.append("")
        lines.extend(f"- {n}" for n in notes)
    lines.append("")
    # inside a code span nothing is interpreted; only a backtick or newline could break out of it
    command = " ".join(reproduce_command(verdict, info).replace("`", "'").split())
    lines.append(f"Reproduce: `{command}`")
    lines.append("")
    return "\n".join(lines)
