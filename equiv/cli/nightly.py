"""`equiv nightly`: the watch after a route goes live. Fresh runs on the last window of traffic; regressions."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from equiv.cli import app, user_errors
from equiv.cli.options import is_relative, parse_since, split_list
from equiv.errors import InputError

if TYPE_CHECKING:
    from equiv.config import Settings
    from equiv.history import Finding, Reference


def _routing_route(path: Path, route: str) -> dict[str, Any] | None:
    """The route's entry in routing.json: the decisions (and qualifying runs) tonight is compared with."""
    from equiv.routes import read_routing

    try:
        entry = read_routing(path).get("routes", {}).get(route) if path.is_file() else None
    except InputError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("prompt_types"), dict):
        return None
    return entry


def _routed_reference_pairs(ref: Reference, *, choice: dict[str, str], first: str | None) -> list[Any]:
    """The reference run's pairs of the candidate each prompt-type is routed to."""
    from equiv.history import load_reference_pairs, routed_pairs

    return routed_pairs(load_reference_pairs(ref), choice, first)


def fall_back(
    routing: Path,
    settings: Settings,
    route: str,
    run_id: str,
    regressed: dict[str, list[Finding]],
    verdicts: dict[str, str],
) -> list[str]:
    """`--fallback`: route each regressed prompt-type back to the baseline in routing.json (and the LiteLLM
    snippet), with tonight's run id and the reason. Returns what was done, one line per prompt-type."""
    from equiv.routes import read_routing, write_routing, write_snippet
    from equiv.store import utc_now

    entry = read_routing(routing).get("routes", {}).get(route)
    if not isinstance(entry, dict) or not isinstance(entry.get("prompt_types"), dict):
        return [f"{route}: not in {routing}: nothing to route back (qualify the route to manage its routing)"]
    baseline = entry.get("baseline")
    now = utc_now()
    done = []
    types = dict(entry["prompt_types"])
    for name, found in regressed.items():
        decision = types.get(name)
        # live: routed to a candidate (its model, or a configuration of the baseline's own model)
        if not isinstance(decision, dict) or not baseline:
            continue
        if decision.get("model") == baseline and not decision.get("candidate"):
            continue
        reason = "; ".join(f.message for f in found)
        fallback = {"at": now, "from_model": decision.get("model"), "qualified_by": decision.get("run_id")}
        if decision.get("candidate"):
            fallback["from_candidate"] = decision["candidate"]
        types[name] = {
            "model": baseline,
            "verdict": verdicts.get(name, decision.get("verdict")),
            "run_id": run_id,
            "reason": f"nightly regression: {reason}",
            "fallback": fallback,
        }
        done.append(f"{route} / {name}: back to {baseline} (run {run_id}: {reason})")
    if done:
        merged = write_routing(routing, {route: {**entry, "prompt_types": types, "updated_at": now}})
        write_snippet(routing, merged, settings)
    return done


@app.command()
@user_errors
def nightly(
    config: Annotated[str, typer.Option("--config", "-c", help="equiv.toml with [[routes]].")] = "equiv.toml",
    since: Annotated[str, typer.Option(help="Traffic window: 24h, 7d ... or an ISO 8601 time.")] = "24h",
    route: Annotated[list[str] | None, typer.Option("--route", "-r", help="Only this route (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Parent folder of run directories and history.jsonl.")] = Path("reports"),
    history: Annotated[Path | None, typer.Option(help="History file (default: OUT/history.jsonl).")] = None,
    routing: Annotated[
        Path, typer.Option(help="routing.json: each prompt-type's qualifying run (what tonight is compared with).")
    ] = Path("routing.json"),
    summary: Annotated[Path | None, typer.Option(help="Combined summary.md (default: OUT/summary.md).")] = None,
    per_type: Annotated[int | None, typer.Option("--per-type", help="Pairs per prompt-type (all routes).")] = None,
    max_spend: Annotated[float | None, typer.Option("--max-spend", help="Cap on eval spend per route, USD.")] = None,
    fallback: Annotated[
        bool, typer.Option("--fallback", help="Route a regressed prompt-type back to the baseline in routing.json.")
    ] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new night even if the last one was killed before it finished.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Re-qualify every route on fresh traffic; exit 1 on a regression against the run that qualified it.

    A regression, per live prompt-type (GO in routing.json, or for a route without one, GO in its first
    nightly run): it is NO_GO tonight; its quality dropped against the qualifying run by a difference
    significant at alpha (both runs' bootstrap draws); or the candidate's cost relative to the baseline's
    rose by more than cost_regression_share. GO -> INCONCLUSIVE is a warning (exit 0). One line per route
    is appended to OUT/history.jsonl. A night killed before it finished is resumed by the same command.
    """
    from equiv.cli.qualify import plan_routes, rewrite_reports, run_route
    from equiv.errors import AbortedError
    from equiv.history import (
        HISTORY_FILE,
        NIGHT_STATE_FILE,
        append_history,
        assess,
        drop_tests,
        find_references,
        history_entry,
        night_to_resume,
        nightly_summary,
        read_history,
        read_night_state,
        record_findings,
        routed_choice,
        routed_pairs,
        routed_verdict,
        update_night_state,
    )
    from equiv.store import RunDir, utc_now, write_text_atomic

    settings, plans = plan_routes(
        config, split_list(",".join(route)) if route else None, {"per_type": per_type, "max_spend_usd": max_spend}
    )
    if fallback:
        from equiv.routes import read_routing

        read_routing(routing)  # --fallback will rewrite it: a damaged file is refused before anything is spent
    now = datetime.now(UTC)
    since_dt = parse_since(since, now)
    window = now - since_dt if is_relative(since) else None
    history_path = history or out / HISTORY_FILE
    state_path = out / NIGHT_STATE_FILE
    err, console = Console(stderr=True), Console()
    entries, warnings = read_history(history_path)
    for w in warnings:
        typer.echo(f"equiv: warning: {w}", err=True)
    err.print(Text(f"nightly: traffic since {since_dt.isoformat(timespec='seconds')}"))

    done: list[tuple[str, dict[str, Any], Path]] = []
    failed: list[str] = []
    aborted: str | None = None
    all_findings: list[Finding] = []
    fallbacks: list[str] = []
    state = read_night_state(state_path)
    for plan in plans:
        name = plan.route.name
        resume_since = None if fresh else night_to_resume(state, name, since, now, window)
        route_since = resume_since or since_dt
        if resume_since is not None:
            err.print(
                Text(
                    f"route {name}: resuming the night started "
                    f"{state['routes'][name].get('started_at')} (traffic since "
                    f"{route_since.isoformat(timespec='seconds')}): finished work is not bought again"
                )
            )
        else:  # recorded before any spend: a kill from here on is resumed by the same command
            update_night_state(
                state_path,
                name,
                status="running",
                since_arg=since,
                since=route_since.isoformat(),
                started_at=utc_now(),
                run_id=None,
            )
        try:
            result = run_route(
                plan, out=out, fresh=resume_since is None, quiet=quiet, command="nightly", since=route_since
            )
            if resume_since is not None and _older_night(result.info, state["routes"][name]):
                # the run found by its key is an earlier, finished night (an absolute --since on unchanged
                # traffic, killed before tonight's run directory existed): tonight still gets its own run
                result = run_route(plan, out=out, fresh=True, quiet=quiet, command="nightly", since=route_since)
        except InputError as e:  # e.g. no traffic in the window: the other routes still run
            failed.append(f"route {name}: {e.message}")
            err.print(Text(f"equiv: error: route {name}: {e.message}", style="bold red"))
            update_night_state(state_path, name, status="failed", error=e.message)
            continue
        if result.aborted:  # the night stays "running": the same command resumes it
            aborted = f"route {name}: {result.aborted} (partial results in {result.run_dir}; not added to history)"
            break
        routing_entry = _routing_route(routing, name)
        # several candidates: each prompt-type is watched on the candidate it is routed to
        choice = routed_choice(routing_entry, result.verdict)
        watched = routed_verdict(result.verdict, choice)
        first = result.verdict.candidates[0].name if result.verdict.candidates else None
        entry = history_entry(name, watched, run_dir=result.run_dir, since=route_since.isoformat(), timestamp=utc_now())
        references = find_references(
            name,
            routing_entry,
            entries,
            out,
            exclude_run_id=result.verdict.run_id,
            routing_dir=routing.parent,
        )
        if not any(r.live for r in references.values()):
            err.print(
                Text(
                    f"route {name}: no prompt-type is live yet (none GO in {routing} or an earlier night): "
                    "nothing to regress from; tonight's GO types are watched from now on",
                    style="yellow",
                )
            )
        tests = drop_tests(
            watched,
            routed_pairs(RunDir(result.run_dir).load_pairs(), choice, first),
            references,
            plan.settings,
            reference_pairs=partial(_routed_reference_pairs, choice=choice, first=first),
        )
        findings, records = assess(
            name,
            entry,
            references,
            tests,
            alpha=plan.settings.alpha,
            correction=plan.settings.correction,
            cost_share=settings.cost_regression_share,
        )
        record_findings(entry, findings, records)
        notes = [f"{'REGRESSION' if f.is_regression else 'WARNING'} {f}" for f in findings]
        result.verdict.notes.extend(notes)
        if fallback:
            regressed: dict[str, list[Finding]] = {}
            for f in findings:
                if f.is_regression and _is_from_routing(references.get(f.prompt_type)):
                    regressed.setdefault(f.prompt_type, []).append(f)
            if regressed:
                did = fall_back(
                    routing,
                    settings,
                    name,
                    result.verdict.run_id,
                    regressed,
                    {tv.prompt_type: tv.verdict for tv in watched.prompt_types},
                )
                fallbacks += did
                entry["fallbacks"] = did
                result.verdict.notes.extend(f"FALLBACK {d}" for d in did)
        route_history = [e for e in entries if e.get("route") == name]
        rewrite_reports(result, [*route_history, entry])
        if result.verdict.run_id not in {str(e.get("run_id")) for e in route_history}:
            append_history(history_path, entry)
            entries.append(entry)
        update_night_state(state_path, name, status="done", run_id=result.verdict.run_id, finished_at=utc_now())
        all_findings += findings
        done.append((name, entry, result.run_dir))
        for f in findings:
            console.print(
                Text(
                    f"{'REGRESSION' if f.is_regression else 'WARNING'} {f}",
                    style="bold red" if f.is_regression else "yellow",
                )
            )
        for t, rec in records.items():
            if "p_value" in rec:
                console.print(
                    Text(
                        f"  {name} / {t}: {rec.get('verdict')}, quality {rec['reference_estimate']:+.3f} (run "
                        f"{rec.get('reference_run_id')}) -> {rec['estimate']:+.3f}, difference {rec['diff']:+.3f}, "
                        f"p = {rec['p_value']:.3g} (level {rec['level']:.3g}): {rec['status']}"
                    )
                )
        for d in entry.get("fallbacks") or []:
            console.print(Text(f"FALLBACK {d}", style="bold yellow"))

    summary_path = summary or out / "summary.md"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        summary_path, nightly_summary(done, all_findings, failed, aborted, since_dt.isoformat(), fallbacks)
    )
    console.print(Text(f"History: {history_path}   Summary: {summary_path}"))
    if aborted:
        raise AbortedError(aborted)
    regressions = [f for f in all_findings if f.is_regression]
    if regressions:
        types = sorted({f"{r.route}/{r.prompt_type}" for r in regressions})
        console.print(
            Text(f"nightly: {len(regressions)} regression(s) in {', '.join(types)}: exit 1", style="bold red")
        )
        raise typer.Exit(1)
    if failed:
        raise InputError("; ".join(failed))
    n_warn = len(all_findings)
    console.print(Text(f"nightly: no regression{f' ({n_warn} warning(s))' if n_warn else ''}", style="bold green"))


def _older_night(info: dict[str, Any], night: dict[str, Any]) -> bool:
    """The run started before the night being resumed did (timestamps are UTC ISO 8601 'Z' strings)."""
    started, night_started = info.get("started_at"), night.get("started_at")
    return isinstance(started, str) and isinstance(night_started, str) and started < night_started


def _is_from_routing(ref: Reference | None) -> bool:
    return ref is not None and ref.source == "routing.json"
