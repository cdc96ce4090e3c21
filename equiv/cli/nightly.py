"""`equiv nightly`: the watch after a route goes live. Fresh runs on the last window of traffic; regressions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from equiv.cli import app, user_errors
from equiv.cli.options import parse_since, split_list
from equiv.errors import InputError


def _previous_from_routing(path: Path, route: str) -> dict[str, Any] | None:
    """Before a route's first nightly entry, its routing.json decision is the state to compare with."""
    from equiv.routes import read_routing  # noqa: PLC0415

    try:
        entry = read_routing(path).get("routes", {}).get(route) if path.is_file() else None
    except InputError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("prompt_types"), dict):
        return None
    return {"route": route, "run_id": entry.get("run_id"), "prompt_types": entry["prompt_types"]}


@app.command()
@user_errors
def nightly(
    config: Annotated[str, typer.Option("--config", "-c", help="equiv.toml with [[routes]].")] = "equiv.toml",
    since: Annotated[str, typer.Option(help="Traffic window: 24h, 7d ... or an ISO 8601 time.")] = "24h",
    route: Annotated[list[str] | None, typer.Option("--route", "-r", help="Only this route (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Parent folder of run directories and history.jsonl.")] = Path("reports"),
    history: Annotated[Path | None, typer.Option(help="History file (default: OUT/history.jsonl).")] = None,
    routing: Annotated[Path, typer.Option(help="routing.json: the baseline state of a route with no history yet.")]
    = Path("routing.json"),
    summary: Annotated[Path | None, typer.Option(help="Combined summary.md (default: OUT/summary.md).")] = None,
    per_type: Annotated[int | None, typer.Option("--per-type", help="Pairs per prompt-type (all routes).")] = None,
    max_spend: Annotated[float | None, typer.Option("--max-spend", help="Cap on eval spend per route, USD.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Re-qualify every route on fresh traffic; exit 1 on a regression since the route's last run.

    A regression: a prompt-type that was GO is not GO now; its quality estimate dropped by more than the
    margin with non-overlapping intervals; or the candidate's cost per request rose by more than
    cost_regression_share. One line per route is appended to OUT/history.jsonl.
    """
    from equiv.cli.qualify import plan_routes, rewrite_reports, run_route  # noqa: PLC0415
    from equiv.errors import AbortedError  # noqa: PLC0415
    from equiv.history import (  # noqa: PLC0415
        HISTORY_FILE,
        append_history,
        find_regressions,
        history_entry,
        last_entry,
        nightly_summary,
        read_history,
        vanished_types,
    )
    from equiv.store import utc_now, write_text_atomic  # noqa: PLC0415

    settings, plans = plan_routes(config, split_list(",".join(route)) if route else None,
                                  {"per_type": per_type, "max_spend_usd": max_spend})
    since_dt = parse_since(since)
    history_path = history or out / HISTORY_FILE
    err, console = Console(stderr=True), Console()
    entries, warnings = read_history(history_path)
    for w in warnings:
        typer.echo(f"equiv: warning: {w}", err=True)
    err.print(Text(f"nightly: traffic since {since_dt.isoformat(timespec='seconds')}"))

    done: list[tuple[str, dict[str, Any], Path]] = []
    failed: list[str] = []
    aborted: str | None = None
    all_regressions = []
    for plan in plans:
        name = plan.route.name
        try:
            result = run_route(plan, out=out, fresh=True, quiet=quiet, command="nightly", since=since_dt)
        except InputError as e:  # e.g. no traffic in the window: the other routes still run
            failed.append(f"route {name}: {e.message}")
            err.print(Text(f"equiv: error: route {name}: {e.message}", style="bold red"))
            continue
        if result.aborted:
            aborted = f"route {name}: {result.aborted} (partial results in {result.run_dir}; not added to history)"
            break
        entry = history_entry(name, result.verdict, run_dir=result.run_dir, since=since_dt.isoformat(),
                              timestamp=utc_now())
        previous = last_entry(entries, name) or _previous_from_routing(routing, name)
        regs = find_regressions(previous, entry, margin=plan.settings.margin,
                                cost_share=settings.cost_regression_share)
        entry["regressions"] = [str(r) for r in regs]
        gone = vanished_types(previous, entry)
        notes = [f"REGRESSION {r}" for r in regs]
        notes += [f"{t} was GO in run {previous.get('run_id') if previous else '?'} and had no traffic in this "
                  f"window: not re-checked" for t in gone]
        result.verdict.notes.extend(notes)
        route_history = [e for e in entries if e.get("route") == name]
        rewrite_reports(result, [*route_history, entry])
        append_history(history_path, entry)
        entries.append(entry)
        all_regressions += regs
        done.append((name, entry, result.run_dir))
        for note in notes:
            console.print(Text(note, style="bold red" if note.startswith("REGRESSION") else "yellow"))

    summary_path = summary or out / "summary.md"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(summary_path, nightly_summary(done, all_regressions, failed, aborted, since_dt.isoformat()))
    console.print(Text(f"History: {history_path}   Summary: {summary_path}"))
    if aborted:
        raise AbortedError(aborted)
    if all_regressions:
        types = sorted({f"{r.route}/{r.prompt_type}" for r in all_regressions})
        console.print(Text(f"nightly: {len(all_regressions)} regression(s) in {', '.join(types)}: exit 1",
                           style="bold red"))
        raise typer.Exit(1)
    if failed:
        raise InputError("; ".join(failed))
    console.print(Text("nightly: no regression", style="bold green"))
