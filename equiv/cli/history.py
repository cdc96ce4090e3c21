"""`equiv history`: the trend per route and prompt-type over past nightly runs, from reports/history.jsonl."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from equiv.cli import app, user_errors

_STYLE = {"GO": "bold green", "NO_GO": "bold red", "INCONCLUSIVE": "bold yellow"}


def _signed(x: Any, digits: int = 3) -> str:
    return f"{x:+.{digits}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def _pct(x: Any) -> str:
    return f"{x:.1%}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def trend_table(route: str, entries: list[dict[str, Any]]) -> Table:
    """One row per run and prompt-type, grouped by prompt-type, oldest first (the trend reads downwards)."""
    from equiv.report.terminal import clean  # noqa: PLC0415

    last = entries[-1]
    title = Text(f"route {clean(route, 60)}: {clean(str(last.get('baseline', '')), 60)} -> "
                 f"{clean(str(last.get('candidate', '')), 60)}  ({len(entries)} run(s))")
    table = Table(title=title)
    for col in ("prompt-type", "when", "run", "verdict", "quality diff [CI]", "saving", "cand $/req", "regression"):
        table.add_column(col, overflow="fold")
    names: list[str] = []
    for e in entries:
        names += [t for t in e.get("prompt_types", {}) if t not in names]
    for i, name in enumerate(names):
        if i:
            table.add_section()
        for e in entries:
            t = e.get("prompt_types", {}).get(name)
            if not isinstance(t, Mapping):
                continue
            verdict = str(t.get("verdict") or "")
            regressed = any(str(r).startswith(f"{route} / {name}:") for r in e.get("regressions") or [])
            cost = t.get("candidate_usd_per_request")
            table.add_row(
                Text(clean(name, 60)),
                str(e.get("timestamp") or e.get("decided_at") or "").replace("T", " ").removesuffix("Z")[:16],
                Text(clean(str(e.get("run_id", "")), 40)),
                Text(verdict, style=_STYLE.get(verdict, "")),
                f"{_signed(t.get('estimate'))} [{_signed(t.get('ci_low'))}, {_signed(t.get('ci_high'))}]",
                _pct(t.get("saving")),
                f"${cost:.6g}" if isinstance(cost, (int, float)) else "—",
                Text("REGRESSION", style="bold red") if regressed else Text(""),
            )
    return table


@app.command()
@user_errors
def history(
    route: Annotated[str | None, typer.Option("--route", "-r", help="Only this route.")] = None,
    out: Annotated[Path, typer.Option(help="Folder holding history.jsonl.")] = Path("reports"),
    file: Annotated[Path | None, typer.Option("--history", help="History file (default: OUT/history.jsonl).")] = None,
    last: Annotated[int, typer.Option(help="Show at most this many runs per route.", min=1)] = 14,
) -> None:
    """Show verdict, quality estimate and interval, and saving per prompt-type over past nightly runs."""
    from equiv.errors import InputError  # noqa: PLC0415
    from equiv.history import HISTORY_FILE, read_history  # noqa: PLC0415

    path = file or out / HISTORY_FILE
    if not path.is_file():
        raise InputError(f"{path}: no history yet; `equiv nightly` appends one line per route each run")
    entries, warnings = read_history(path, route)
    err = Console(stderr=True)
    for w in warnings:
        err.print(Text(f"equiv: warning: {w}", style="yellow"))
    if not entries:
        raise InputError(f"{path}: no runs of route '{route}'" if route else f"{path}: no runs recorded")
    by_route: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_route.setdefault(str(e["route"]), []).append(e)
    console = Console()
    for name, runs in by_route.items():
        console.print(trend_table(name, runs[-last:]))
