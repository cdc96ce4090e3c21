"""The verdict table in the terminal. Text from traffic or models is untrusted: control chars stripped."""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

from equiv.schema import Interval, Verdict

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_STYLE = {"GO": "bold green", "NO_GO": "bold red", "INCONCLUSIVE": "bold yellow"}


def clean(text: str, limit: int = 200) -> str:
    """Untrusted text made safe for a terminal: no escape sequences, no bidi tricks, bounded length."""
    text = _CTRL.sub("", text.replace("\n", " ").replace("\t", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_interval(iv: Interval | None, pct: bool = False) -> str:
    if iv is None:
        return "—"
    if pct:
        return f"{iv.estimate:+.1%} [{iv.ci_low:+.1%}, {iv.ci_high:+.1%}]"
    return f"{iv.estimate:+.3f} [{iv.ci_low:+.3f}, {iv.ci_high:+.3f}]"


def verdict_table(verdict: Verdict) -> Table:
    title = Text(f"{clean(verdict.baseline, 80)} -> {clean(verdict.candidate, 80)}  (judge {clean(verdict.judge, 60)}, "
                 f"margin {verdict.margin:g}, alpha {verdict.alpha:g})")
    table = Table(title=title, show_lines=False)
    for col in ("prompt-type", "verdict", "n", "quality diff [CI]", "length-controlled", "saving [CI]", "reason"):
        table.add_column(col, overflow="fold")
    for tv in verdict.prompt_types:
        saving = fmt_interval(tv.cost.saving, pct=True) if tv.cost else "—"
        n = f"{tv.n}" + (f" ({tv.n_failed} failed)" if tv.n_failed else "")
        table.add_row(
            Text(clean(tv.prompt_type, 60)),
            Text(tv.verdict, style=_STYLE[tv.verdict]),
            n,
            fmt_interval(tv.quality_diff),
            fmt_interval(tv.lc_quality_diff),
            saving,
            Text(clean(tv.reasons[0] if tv.reasons else "", 160)),
        )
    return table


def print_verdict(verdict: Verdict, console: Console, run_dir: str | None = None) -> None:
    console.print(verdict_table(verdict))
    overall = Text("Overall: ") + Text(verdict.verdict, style=_STYLE[verdict.verdict])
    if verdict.eval_cost_usd is not None:
        overall += Text(f"   evaluation cost ${verdict.eval_cost_usd:.4f}")
    console.print(overall)
    if verdict.aborted:
        console.print(Text("Run stopped early: " + clean(verdict.aborted, 400), style="bold red"))
    for note in verdict.notes:
        console.print(Text("note: " + clean(note, 300)))
    if run_dir:
        console.print(Text(f"Run directory: {run_dir}  (report.html, verdict.json, summary.md)"))
