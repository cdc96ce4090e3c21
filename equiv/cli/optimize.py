"""`equiv optimize TRAFFIC`: search the candidate's system prompt, select it on validation, qualify it held out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equiv.cli import app, user_errors


@app.command()
@user_errors
def optimize(
    traffic: Annotated[list[str], typer.Argument(help="Traffic, as for `equiv compare`.", show_default=False)],
    types: Annotated[str, typer.Option(help="The prompt-type(s) to optimize (comma-separated): one search each.")],
    budget_usd: Annotated[
        float,
        typer.Option("--budget-usd", help="Hard cap on what the search and the held-out qualification spend, USD."),
    ],
    config: Annotated[str | None, typer.Option("--config", "-c", help="equiv.toml")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="The model you pay for now (its answers are the target).")
    ] = None,
    candidate: Annotated[
        str | None, typer.Option(help="The cheaper model, or a [[candidates]] name (its prompt is the start).")
    ] = None,
    judge: Annotated[str | None, typer.Option(help="The judge model (the search's objective).")] = None,
    reflection_model: Annotated[
        str | None,
        typer.Option(
            "--reflection-model", help="Proposes new prompts (default: the judge; better from another family)."
        ),
    ] = None,
    per_type: Annotated[
        int | None, typer.Option("--per-type", help="Distinct prompts sampled, before the split.")
    ] = None,
    max_metric_calls: Annotated[
        int | None, typer.Option("--max-metric-calls", help="Scored answers the search may use (default 6x train+val).")
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    out: Annotated[
        Path, typer.Option(help="Parent folder of the search's and the qualification's run directories.")
    ] = Path("reports"),
    prompts: Annotated[Path, typer.Option(help="Where prompts/<type>.json is written.")] = Path("prompts"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Find a system prompt that makes the candidate hold, and prove it on prompts the search never saw."""
    from rich.console import Console
    from rich.text import Text

    from equiv.cli.options import settings_from, split_list
    from equiv.cli.progress import ProgressPrinter
    from equiv.errors import AbortedError, InputError
    from equiv.optimize import optimize as run_optimize
    from equiv.report.terminal import clean

    settings = settings_from(config, baseline=baseline, candidate=candidate, judge=judge, per_type=per_type, seed=seed)
    names = split_list(types) or []
    if not names:
        raise InputError("--types names the prompt-type(s) to optimize")
    console, err = Console(), Console(stderr=True)
    spent = 0.0
    for t in names:
        with ProgressPrinter(err, quiet=quiet) as progress:
            result = run_optimize(
                traffic[0] if len(traffic) == 1 else traffic,
                settings,
                prompt_type=t,
                budget_usd=budget_usd - spent,
                reflection_model=reflection_model,
                out=out,
                prompts_dir=prompts,
                max_metric_calls=max_metric_calls,
                on_event=progress,
            )
        d = result.data
        spent += float(d["eval_cost_usd"])
        s, h = d["search"], d["heldout"]

        def fig(x: float | None) -> str:
            return f"{x:.3f}" if isinstance(x, float) else "-"

        console.print(Text(f"\n{clean(t, 80)}: held-out verdict {result.verdict}", style="bold"))
        sp, seed_s, best_s = d["splits"], s["seed"], s["best"]
        console.print(
            Text(
                f"  splits: train {sp['train']}, validation {sp['val']}, held-out {sp['heldout']} (disjoint prompt "
                "clusters)\n  search score (0 = always worse than the baseline, 0.5 = as good, length-controlled): "
                f"seed prompt train {fig(seed_s['train'])} / val {fig(seed_s['val'])}; optimized train "
                f"{fig(best_s['train'])} / val {fig(best_s['val'])}\n  {s['candidates_tried']} prompts tried, "
                f"{s['evaluations']} evaluations, ${d['eval_cost_usd']:.4f} spent"
            )
        )
        q = h.get("quality_diff")
        if q:
            console.print(
                Text(f"  held-out quality diff {q['estimate']:+.3f} [{q['ci_low']:+.3f}, {q['ci_high']:+.3f}]")
            )
        for c in d["cautions"]:
            console.print(Text(f"  caution: {clean(c, 300)}", style="yellow"))
        if s.get("stopped"):
            console.print(Text(f"  search stopped early: {clean(s['stopped'], 200)}", style="yellow"))
        console.print(Text(f"  prompt: {result.prompt_file}   held-out run: {result.run_dir}"))
        if h.get("aborted"):
            raise AbortedError(
                f"the held-out qualification stopped: {h['aborted']} (partial results in {result.run_dir})"
            )
