"""`equiv history`: the trend per route and prompt-type over past nightly runs, from reports/history.jsonl."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from equiv.cli import app, user_errors

_STYLE = {"GO": "bold green", "NO_GO": "bold red", "INCONCLUSIVE": "bold yellow"}


def _signed(x: Any, digits: int = 2) -> str:
    return f"{x:+.{digits}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def _pct(x: Any) -> str:
    return f"{x:.0%}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def trend_tables(route: str, entries: list[dict[str, Any]]) -> list[Table]:
    """One table per prompt-type, one row per run, oldest first (the trend reads downwards); fits 80 columns."""
    from equiv.report.terminal import clean

    last = entries[-1]
    names: list[str] = []
    for e in entries:
        names += [t for t in e.get("prompt_types", {}) if t not in names]
    tables = []
    for name in names:
        title = Text(
            f"{clean(route, 40)} / {clean(name, 40)}: {clean(str(last.get('baseline', '')), 40)} -> "
            f"{clean(str(last.get('candidate', '')), 40)}"
        )
        table = Table(title=title, box=box.SIMPLE_HEAD)
        for col in ("when (UTC)", "verdict", "quality diff [CI]", "saving", "cand $/1k req", ""):
            right = col in ("quality diff [CI]", "saving", "cand $/1k req")
            table.add_column(col, justify="right" if right else "left", no_wrap=col != "verdict")
        for e in entries:
            t = e.get("prompt_types", {}).get(name)
            if not isinstance(t, Mapping):
                continue
            verdict = str(t.get("verdict") or "")
            night: Mapping[str, Any] = t["nightly"] if isinstance(t.get("nightly"), Mapping) else {}
            regressed = night.get("status") == "regression" or any(
                str(r).startswith(f"{route} / {name}:") for r in e.get("regressions") or []
            )
            warned = night.get("status") == "warning"
            cost = t.get("candidate_usd_per_request")
            when = str(e.get("timestamp") or e.get("decided_at") or "").replace("T", " ").removesuffix("Z")
            table.add_row(
                when[5:16] if len(when) >= 16 else when,
                Text(verdict, style=_STYLE.get(verdict, "")),
                f"{_signed(t.get('estimate'))} [{_signed(t.get('ci_low'))}, {_signed(t.get('ci_high'))}]",
                _pct(t.get("saving")),
                f"{cost * 1000:.4f}" if isinstance(cost, (int, float)) else "—",
                Text("REGR", style="bold red") if regressed else Text("warn", style="yellow") if warned else Text(""),
            )
        tables.append(table)
    return tables


@app.command()
@user_errors
def history(
    route: Annotated[str | None, typer.Option("--route", "-r", help="Only this route.")] = None,
    out: Annotated[Path, typer.Option(help="Folder holding history.jsonl.")] = Path("reports"),
    file: Annotated[Path | None, typer.Option("--history", help="History file (default: OUT/history.jsonl).")] = None,
    last: Annotated[int, typer.Option(help="Show at most this many runs per route.", min=1)] = 14,
) -> None:
    """Show verdict, quality estimate and interval, and saving per prompt-type over past nightly runs."""
    from equiv.errors import InputError
    from equiv.history import HISTORY_FILE, read_history
    from equiv.report.terminal import clean

    path = file or out / HISTORY_FILE
    if not path.is_file():
        raise InputError(f"{path}: no history yet; `equiv nightly` appends one line per route each run")
    entries, warnings = read_history(path, route)
    for w in warnings:
        typer.echo(f"equiv: warning: {w}", err=True)
    if not entries:
        raise InputError(f"{path}: no runs of route '{route}'" if route else f"{path}: no runs recorded")
    by_route: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_route.setdefault(str(e["route"]), []).append(e)
    console = Console()
    for name, runs in by_route.items():
        runs = runs[-last:]
        for table in trend_tables(name, runs):
            console.print(table)
        for e in runs:
            for r in e.get("regressions") or []:
                console.print(
                    Text(f"REGRESSION in run {clean(str(e.get('run_id')), 40)}: {clean(str(r), 300)}", style="bold red")
                )
            for w in e.get("warnings") or []:
                console.print(
                    Text(f"warning in run {clean(str(e.get('run_id')), 40)}: {clean(str(w), 300)}", style="yellow")
                )
