"""`equiv qualify`: the gate before a route. Runs each route's comparison; exit code = the gate; writes routing.json."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from equiv.cli import app, user_errors
from equiv.cli.options import split_list

if TYPE_CHECKING:
    from equiv.config import Route, Settings
    from equiv.pipeline import RunResult


EXIT_GO, EXIT_NO_GO, EXIT_INCONCLUSIVE, EXIT_ABORTED = 0, 1, 3, 4


@dataclass
class RoutePlan:
    route: Route
    settings: Settings
    traffic: Path | str


@dataclass
class RouteRun:
    plan: RoutePlan
    result: RunResult


def plan_routes(config: str, names: list[str] | None, overrides: dict[str, Any]) -> tuple[Settings, list[RoutePlan]]:
    """Load the config and check every chosen route (traffic found, prices and keys known) before any spend."""
    from equiv.config import load_settings
    from equiv.pipeline import resolve_models
    from equiv.routes import route_settings, route_traffic, select_routes

    settings = load_settings(config, overrides)
    plans = []
    for route in select_routes(settings, names):
        rs = route_settings(settings, route)
        plans.append(RoutePlan(route, rs, route_traffic(settings, route)))
        resolve_models(rs)
    return settings, plans


def run_route(
    plan: RoutePlan, *, out: Path, fresh: bool, quiet: bool, command: str, since: datetime | None = None
) -> RunResult:
    """One route's comparison (resumable like `equiv compare`), its verdict printed, the route recorded in run.json."""
    from equiv.cli.progress import ProgressPrinter
    from equiv.pipeline import compare
    from equiv.report.terminal import print_verdict
    from equiv.store import RunDir
    from equiv.traffic.paths import traffic_display

    err = Console(stderr=True)
    err.print(
        Text(
            f"route {plan.route.name}: {plan.route.baseline} -> {plan.route.candidate} on "
            f"{traffic_display(plan.traffic)}",
            style="bold",
        )
    )
    with ProgressPrinter(err, quiet=quiet) as progress:
        result = compare(plan.traffic, plan.settings, out=out, fresh=fresh, on_event=progress, since=since)
    result.info.update(route=plan.route.name, command=command, since=since.isoformat() if since is not None else None)
    RunDir(result.run_dir).write_run_info(result.info)
    Console().print(Text(f"\nroute {plan.route.name}", style="bold"))
    print_verdict(result.verdict, Console(), str(result.run_dir))
    return result


def rewrite_reports(result: RunResult, history: list[dict[str, Any]] | None) -> None:
    """Rebuild the run's reports from its files, now with the route's history (trend) and any new notes."""
    from equiv.pipeline import write_reports
    from equiv.store import RunDir

    run = RunDir(result.run_dir)
    checks = run.load_checks() if run.file("checks.jsonl").exists() else None
    write_reports(result.run_dir, result.verdict, run.load_pairs(), checks, result.info, history)


def gate_code(verdicts: list[str]) -> int:
    """SPEC exit codes: 1 if any NO_GO, else 3 if any INCONCLUSIVE, else 0."""
    if "NO_GO" in verdicts:
        return EXIT_NO_GO
    if "INCONCLUSIVE" in verdicts:
        return EXIT_INCONCLUSIVE
    return EXIT_GO


@app.command()
@user_errors
def qualify(
    config: Annotated[str, typer.Option("--config", "-c", help="equiv.toml with [[routes]].")] = "equiv.toml",
    route: Annotated[list[str] | None, typer.Option("--route", "-r", help="Only this route (repeatable).")] = None,
    routing: Annotated[Path, typer.Option(help="The routing file to merge decisions into.")] = Path("routing.json"),
    out: Annotated[Path, typer.Option(help="Parent folder of run directories.")] = Path("reports"),
    summary: Annotated[Path | None, typer.Option(help="Combined summary.md (default: OUT/summary.md).")] = None,
    per_type: Annotated[int | None, typer.Option("--per-type", help="Pairs per prompt-type (all routes).")] = None,
    max_spend: Annotated[float | None, typer.Option("--max-spend", help="Cap on eval spend per route, USD.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="New runs even if matching ones exist.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Qualify routes before switching them on: exit 0 all GO, 1 any NO_GO, 3 inconclusive, 4 aborted.

    Writes routing.json (a prompt-type goes to the candidate only on GO; with several candidates, to the
    cheapest GO) and routing.litellm.yaml beside it (and routing.prompts/ with routed system prompts).
    """
    from equiv.errors import AbortedError
    from equiv.history import HISTORY_FILE, read_history
    from equiv.routes import (
        qualify_summary,
        read_routing,
        route_decision,
        type_labels,
        write_prompt_files,
        write_routing,
        write_snippet,
    )
    from equiv.store import write_json_atomic, write_text_atomic

    settings, plans = plan_routes(
        config, split_list(",".join(route)) if route else None, {"per_type": per_type, "max_spend_usd": max_spend}
    )
    read_routing(routing)  # a damaged routing file is refused before anything is spent
    runs: list[RouteRun] = []
    aborted: str | None = None
    for plan in plans:
        result = run_route(plan, out=out, fresh=fresh, quiet=quiet, command="qualify")
        history, _warnings = read_history(out / HISTORY_FILE, plan.route.name)
        if history:
            rewrite_reports(result, history)
        if result.aborted:
            aborted = f"route {plan.route.name}: {result.aborted} (partial results in {result.run_dir})"
            break  # routing is not updated from a partial run; routes decided so far are kept
        runs.append(RouteRun(plan, result))

    decided = {r.plan.route.name: route_decision(r.plan.route, r.result.verdict, r.result.run_dir) for r in runs}
    console = Console()
    if decided:
        write_prompt_files(routing, decided, settings)  # the routed candidates' system prompts, beside it
        merged = write_routing(routing, decided)
        snippet = write_snippet(routing, merged, settings)
        for r in runs:
            write_json_atomic(r.result.run_dir / routing.name, merged)
        console.print(Text(f"\nRouting: {routing}  (LiteLLM config: {snippet})", style="bold"))
        for name, entry in decided.items():
            for t, d in entry["prompt_types"].items():
                via = f" ({d['candidate']})" if d.get("candidate") and d["candidate"] != d["model"] else ""
                console.print(Text(f"  {name} / {t}: {d['verdict']:<12} -> {d['model']}{via}"))
    code = gate_code([label for r in runs for label in type_labels(r.result.verdict).values()])
    summary_path = summary or out / "summary.md"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(summary_path, qualify_summary(runs_for_summary(runs), routing, code, aborted))
    console.print(Text(f"Summary: {summary_path}"))
    if aborted:
        raise AbortedError(aborted)
    label = {
        EXIT_GO: "every prompt-type GO",
        EXIT_NO_GO: "a prompt-type is NO_GO",
        EXIT_INCONCLUSIVE: "inconclusive (no NO_GO): not enough evidence to switch",
    }[code]
    console.print(Text(f"Gate: exit {code} — {label}", style="bold green" if code == 0 else "bold red"))
    raise typer.Exit(code)


def runs_for_summary(runs: list[RouteRun]) -> list[tuple[Route, Any, Path]]:
    return [(r.plan.route, r.result.verdict, r.result.run_dir) for r in runs]
