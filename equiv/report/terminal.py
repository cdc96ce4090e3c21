"""The verdict table in the terminal. Text from traffic or models is untrusted: control chars stripped."""

from __future__ import annotations

import math
import re

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from equiv.report.instruments import check_summary, summary_parts
from equiv.report.markdown import (
    DASH,
    KEEP_BASELINE,
    RECOMMENDED_MARK,
    baseline_cost,
    candidate_types,
    fmt_interval,
    fmt_pct,
    fmt_usd,
    recommended_for,
    several_candidates,
    type_verdict_of,
)
from equiv.report.spend import eval_cost_tail, sequential_text, sequential_types
from equiv.report.warnings import type_warnings
from equiv.schema import CostSummary, Interval, TypeVerdict, Verdict

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_STYLE = {"GO": "bold green", "NO_GO": "bold red", "INCONCLUSIVE": "bold yellow"}


def clean(text: str, limit: int = 200) -> str:
    """Untrusted text made safe for a terminal: no escape sequences, no bidi tricks, bounded length."""
    text = _CTRL.sub("", text.replace("\n", " ").replace("\t", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def verdict_table(verdict: Verdict) -> Table:
    """One row per prompt-type, 80 columns wide for names up to about 24 characters (longer ones fold).

    Only the name column may wrap; everything else is narrow and never cut: failures sit under the verdict,
    the saving's interval and the monthly saving under the saving.
    """
    title = Text(
        f"{clean(verdict.baseline, 80)} -> {clean(verdict.candidate, 80)}\n"
        f"judge {clean(verdict.judge, 60)}, margin {verdict.margin:g}, alpha {verdict.alpha:g}"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)
    table.add_column("prompt-type", overflow="fold", min_width=10)
    table.add_column("verdict", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("quality diff [CI]\nlength-controlled", no_wrap=True)
    table.add_column("saving", justify="right", no_wrap=True)
    for tv in verdict.prompt_types:
        verdict_cell = Text(tv.verdict, style=_STYLE[tv.verdict])
        if tv.n_failed:
            verdict_cell.append(f"\n{tv.n_failed} failed")
        table.add_row(
            Text(clean(tv.prompt_type, 60)),
            verdict_cell,
            f"{tv.n}",
            fmt_interval(tv.quality_diff) + "\n" + fmt_interval(tv.lc_quality_diff),
            _saving(tv.cost.saving if tv.cost else None, tv.cost.monthly_saving_usd if tv.cost else None),
        )
    return table


def _saving(iv: Interval | None, monthly: float | None) -> str:
    """The saving; its interval below unless token counts were fixed (no uncertainty); then the monthly saving."""
    if iv is None:
        return DASH
    lines = [fmt_pct(iv.estimate, 1)]
    if abs(iv.ci_high - iv.ci_low) >= 0.0005:
        lines.append(f"[{iv.ci_low * 100:.1f}, {iv.ci_high * 100:.1f}]")
    if monthly is not None and math.isfinite(monthly):
        lines.append(f"{fmt_usd(monthly)}/mo")
    return "\n".join(lines)


def candidates_table(verdict: Verdict) -> Table:
    """Several candidates: per prompt-type a row with the baseline's cost, then one row per candidate (the
    recommended one marked), 80 columns wide for names up to about 20 characters (longer ones fold). The
    saving is its estimate only and the cost column holds the cost per request, then per task (calls_per_task)
    and the cost gate, where the analysis has them: summary.md and report.html have the rest."""
    title = Text(
        f"{clean(verdict.baseline, 80)} -> {len(verdict.candidates or ())} candidates\n"
        f"judge {clean(verdict.judge, 60)}, margin {verdict.margin:g}, alpha {verdict.alpha:g}"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)
    table.add_column("prompt-type\n candidate", overflow="fold", min_width=16)
    table.add_column("verdict", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("quality diff [CI]\nlength-controlled", no_wrap=True)
    table.add_column("saving", justify="right", no_wrap=True)
    cands = verdict.candidates or []
    types = candidate_types(verdict)
    per_task = any(
        tv.cost is not None and tv.cost.candidate_usd_per_task is not None for c in cands for tv in c.prompt_types
    )
    table.add_column("$/request\n$/task" if per_task else "$/request", justify="right", no_wrap=True)
    for i, t in enumerate(types):
        base = baseline_cost(verdict, t)
        table.add_row(
            Text(clean(t, 60), style="bold"),
            Text("baseline", style="dim"),
            "",
            "",
            "",
            _cost(base.baseline_usd_per_request, base.baseline_usd_per_task) if base else DASH,
        )
        rec = (verdict.recommended or {}).get(t)
        for j, c in enumerate(cands):
            tv = type_verdict_of(c, t)
            mark = RECOMMENDED_MARK if c.name == rec else " "
            name = Text(f" {mark} {clean(c.name, 60)}", style="bold" if c.name == rec else "")
            last = j == len(cands) - 1 and i < len(types) - 1
            if tv is None:
                table.add_row(name, DASH, "", "", "", "", end_section=last)
                continue
            table.add_row(name, *_candidate_cells(tv), end_section=last)
    return table


def _candidate_cells(tv: TypeVerdict) -> list[Text | str]:
    verdict_cell = Text(tv.verdict, style=_STYLE[tv.verdict])
    if tv.n_failed:
        verdict_cell.append(f"\n{tv.n_failed} failed")
    cost = tv.cost
    return [
        verdict_cell,
        f"{tv.n}",
        fmt_interval(tv.quality_diff) + "\n" + fmt_interval(tv.lc_quality_diff),
        fmt_pct(cost.saving.estimate, 1) if cost else DASH,
        _cost(cost.candidate_usd_per_request, cost.candidate_usd_per_task, cost) if cost else DASH,
    ]


def _cost(per_request: float | None, per_task: float | None, cost: CostSummary | None = None) -> Text:
    """Cost per request; below it the cost per task (calls_per_task) and the cost gate, where the analysis has them."""
    text = Text(fmt_usd(per_request))
    if per_task is not None:
        text.append(f"\n{fmt_usd(per_task)}")
    if cost is not None and cost.over_budget:
        text.append("\nover budget", style="bold red")
    return text


def _labelled(verdict: Verdict) -> list[tuple[str, TypeVerdict]]:
    """(label, verdict) of every prompt-type: its name, with the candidate's in brackets when there are several."""
    if not several_candidates(verdict):
        return [(clean(tv.prompt_type, 60), tv) for tv in verdict.prompt_types]
    cands = verdict.candidates or []
    return [
        (f"{clean(t, 60)} ({clean(c.name, 60)})", tv)
        for t in candidate_types(verdict)
        for c in cands
        if (tv := type_verdict_of(c, t)) is not None
    ]


def reasons(verdict: Verdict) -> list[Text]:
    """One line per prompt-type saying why, below the table (a reason column makes the table unreadable)."""
    lines = []
    for label, tv in _labelled(verdict):
        line = Text(f"{label}: ") + Text(tv.verdict, style=_STYLE[tv.verdict])
        line += Text(" — " + clean(tv.reasons[0] if tv.reasons else "", 400))
        lines.append(line)
    return lines


def recommended_lines(verdict: Verdict) -> list[Text]:
    """Several candidates: per prompt-type the one the analysis recommends (the cheapest GO), or none."""
    if not several_candidates(verdict):
        return []
    lines = []
    for t in candidate_types(verdict):
        rec = recommended_for(verdict, t)
        line = Text(f"recommended ({clean(t, 60)}): ")
        if rec is None:
            line += Text(KEEP_BASELINE, style="bold")
        else:
            line += Text(f"{RECOMMENDED_MARK} {clean(rec.name, 60)}", style="bold green")
            line += Text(f" ({clean(rec.model, 80)})")
        lines.append(line)
    return lines


def instrument_lines(verdict: Verdict) -> list[Text]:
    """Per type with instruments: its checks in one line, then how many pairs the judge saw, the panel's kappa,
    the judge-check kinds and agreement with people (the analysis's figures; nothing for a type without them)."""
    lines = []
    for name, tv in _labelled(verdict):
        checks = [check_summary(c) for c in tv.checks or ()]
        if checks:
            lines.append(Text(f"checks ({name}): " + clean("; ".join(checks), 600)))
        rest = summary_parts(tv, checks=False)
        if rest:
            lines.append(Text(f"judging ({name}): " + clean("; ".join(rest), 800)))
    return lines


def sequential_lines(verdict: Verdict) -> list[Text]:
    """--sequential: per type where its anytime-valid test stopped (nothing for a fixed-n run)."""
    lines = []
    for t, cand, tv in sequential_types(verdict):
        assert tv.sequential is not None
        label = clean(t, 60) + (f" ({clean(cand, 60)})" if cand is not None else "")
        lines.append(Text(f"sequential ({label}): " + clean(sequential_text(tv.sequential), 300)))
    return lines


def print_verdict(verdict: Verdict, console: Console, run_dir: str | None = None) -> None:
    several = several_candidates(verdict)
    console.print(candidates_table(verdict) if several else verdict_table(verdict))
    for line in recommended_lines(verdict):
        console.print(line)
    for line in reasons(verdict):
        console.print(line)
    for line in instrument_lines(verdict):
        console.print(line)
    for line in sequential_lines(verdict):
        console.print(line)
    if several:  # the top-level verdict is the first candidate's: each candidate's own is what to read
        overall = Text("Overall: ")
        for k, c in enumerate(verdict.candidates or ()):
            overall += Text((", " if k else "") + f"{clean(c.name, 60)} ") + Text(c.verdict, style=_STYLE[c.verdict])
    else:
        overall = Text("Overall: ") + Text(verdict.verdict, style=_STYLE[verdict.verdict])
    spent = verdict.eval_cost_usd if verdict.eval_cost_usd is not None else getattr(verdict.eval_cost, "usd", None)
    if spent is not None:  # then the eval-cost line's rest: the fixed-n design's spend, the share of the saving
        overall += Text(f"   evaluation cost ${spent:.4f}" + clean(eval_cost_tail(verdict), 400))
    console.print(overall)
    for label, tv in _labelled(verdict):  # a GO is what gets acted on: what weakens it is printed with it
        if tv.verdict == "GO":
            for w in type_warnings(tv):
                console.print(Text(f"caution ({label}, GO): " + clean(w, 400), style="yellow"))
    if verdict.aborted:
        console.print(Text("Run stopped early: " + clean(verdict.aborted, 400), style="bold red"))
    for note in verdict.notes:
        console.print(Text("note: " + clean(note, 300)))
    if run_dir:
        console.print(Text(f"Run directory: {run_dir}  (report.html, verdict.json, summary.md)"))
