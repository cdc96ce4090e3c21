"""`equiv calibrate`: how often the judge agrees with people (SPEC "Judges": Calibration against people).

equiv calibrate LABELS.jsonl --judge MODEL     judge labelled pairs; write reports/<run_id>/calibration.json
equiv calibrate RUN_DIR --labels labels.jsonl  people's labels of a run (no model call): human_agreement
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from equiv.cli import app, user_errors

if TYPE_CHECKING:
    from rich.console import Console


@app.command()
@user_errors
def calibrate(
    target: Annotated[
        Path,
        typer.Argument(
            help='A labels file (pairs.jsonl lines with "gold"), or a run directory (with --labels).',
            show_default=False,
        ),
    ],
    labels: Annotated[
        Path | None,
        typer.Option(help="With a run directory: people's labels of its pairs (equiv label's labels.jsonl)."),
    ] = None,
    judge: Annotated[str | None, typer.Option(help="The judge model to calibrate.")] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="equiv.toml")] = None,
    out: Annotated[Path, typer.Option(help="Parent folder of run directories.")] = Path("reports"),
    n: Annotated[
        int | None, typer.Option("--n", min=1, help="Judge a seeded subset of this many pairs (stratified by type).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the subset and of the bootstrap.")] = None,
    max_spend: Annotated[float | None, typer.Option("--max-spend", help="Spend cap for this run, USD.")] = None,
    concurrency: Annotated[int | None, typer.Option()] = None,
    template: Annotated[str | None, typer.Option(help="Judge template (default judges/pairwise.md).")] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples.")] = None,
    alpha: Annotated[float | None, typer.Option(help="Intervals are two-sided (1 - 2*alpha).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure the judge against human or gold labels: agreement (ties excluded), kappa, position consistency."""
    from rich.console import Console

    from equiv.cli.options import settings_from
    from equiv.errors import AbortedError, InputError

    if target.is_dir():
        if labels is None:
            raise InputError(
                f"{target} is a run directory: give the labels of its pairs with --labels labels.jsonl "
                "(or a labels file instead of the directory, to judge labelled pairs)"
            )
        given = {
            "--judge": judge,
            "--config": config,
            "--n": n,
            "--seed": seed,
            "--max-spend": max_spend,
            "--concurrency": concurrency,
            "--template": template,
            "--bootstrap": bootstrap,
            "--alpha": alpha,
        }
        used = [flag for flag, v in given.items() if v is not None]
        if used:
            raise InputError(
                f"{', '.join(used)}: not used with a run directory (no model call: its verdicts are the judge's, "
                "and its reports keep the run's own settings; `equiv report` re-analyzes with others)"
            )
        from equiv.calibration import label_run

        done = label_run(target, labels)
        typer.echo(
            f"equiv: {done.n_matched} label(s) recorded in {done.run_dir / 'human_labels.jsonl'} "
            f"({done.n_total} in all)"
            + (f"; {done.n_skipped} skipped: pair_id not in this run" if done.n_skipped else "")
        )
        console = Console()
        print_calibration(done.calibration, console, str(done.run_dir))
        _print_blocks(done.verdict, console)
        return
    if labels is not None:
        raise InputError(f"--labels goes with a run directory; {target} is not one (give LABELS alone to judge it)")

    from equiv.calibration import calibrate as run_calibrate
    from equiv.cli.progress import ProgressPrinter

    settings = settings_from(
        config,
        judge=judge,
        seed=seed,
        max_spend_usd=max_spend,
        concurrency=concurrency,
        judge_template=template,
        bootstrap=bootstrap,
        alpha=alpha,
    )
    err = Console(stderr=True)
    with ProgressPrinter(err, quiet=quiet) as progress:

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "estimate":
                _print_estimate(err, data)
            else:
                progress(kind, data)

        result = run_calibrate(target, settings, out=out, n=n, on_event=on_event)
    print_calibration(result.calibration, Console(), str(result.run_dir))
    if result.aborted:
        raise AbortedError(f"{result.aborted} (partial results in {result.run_dir})")


def _print_estimate(console: Console, data: dict[str, Any]) -> None:
    done = f"{data['done']} of {data['total']} pairs already judged; " if data["resumed"] else ""
    same = f" ({data['identical']} with identical answers: not judged)" if data["identical"] else ""
    console.print(
        f"equiv: run directory {data['run_dir']}\n"
        f"equiv: {done}{data['pairs']} labelled pairs to judge{same}, {data['calls']} judge calls; "
        f"estimated evaluation cost ${data['usd']:.4f} (cap ${data['cap']:.2f}"
        + (f", ${data['spent_before']:.4f} already spent" if data["spent_before"] else "")
        + ")",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _ci(iv: dict[str, Any] | None, pct: bool = True) -> str:
    """An estimate over its interval (two lines, so the table stays within 80 columns)."""
    if iv is None:
        return "—"
    if pct:
        return f"{iv['estimate']:.0%}\n[{iv['ci_low']:.0%}, {iv['ci_high']:.0%}]"
    return f"{iv['estimate']:.2f}\n[{iv['ci_low']:.2f}, {iv['ci_high']:.2f}]"


def print_calibration(calib: dict[str, Any], console: Console, where: str) -> None:
    """Per prompt-type (and overall): n, agreement without ties [CI], kappa, position consistency, and
    what "the longer answer wins" scores on the same pairs (agreement without ties)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from equiv.report.terminal import clean

    alpha = calib.get("alpha")
    level = f"{1 - 2 * float(alpha):.0%} intervals" if isinstance(alpha, int | float) else "intervals"
    title = Text(f"judge {clean(str(calib.get('judge') or ''), 60)} vs the labels ({level})")
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)
    table.add_column("prompt-type", overflow="fold", min_width=10)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("agreement\n(no ties)", no_wrap=True)
    table.add_column("kappa", no_wrap=True)
    table.add_column("position\nconsistency", no_wrap=True)
    table.add_column("longer answer\nwins (no ties)", no_wrap=True)
    rows = list(calib.get("prompt_types") or [])
    if len(rows) > 1 or not rows:
        rows.append({**calib, "prompt_type": "all"})
    for row in rows:
        base = (row.get("baselines") or {}).get("longer_answer_wins") or {}
        n_text = f"{row['n']}"
        if row.get("n_failed"):
            n_text += f"\n{row['n_failed']} failed"
        table.add_row(
            Text(clean(str(row["prompt_type"]), 60)),
            n_text,
            _ci(row.get("agreement_without_ties")),
            _ci(row.get("kappa"), pct=False),
            _ci(row.get("position_consistency")),
            _ci(base.get("agreement_without_ties")),
        )
    console.print(table)
    cost = calib.get("eval_cost_usd")
    spent = f"; evaluation spent ${cost:.4f}" if isinstance(cost, int | float) else ""
    console.print(f"calibration.json in {where}{spent}", markup=False, highlight=False, soft_wrap=True)


def _print_blocks(verdict: Any, console: Console) -> None:
    """Mode 2: which types' GO the labels now block (SPEC: >= 30 labels, agreement below 0.6)."""
    from equiv.stats.agreement import human_agreement_blocks

    for tv in getattr(verdict, "prompt_types", []):
        h = getattr(tv, "human_agreement", None)
        if h is not None and human_agreement_blocks(h):
            console.print(
                f"{tv.prompt_type}: the judge agrees with people too rarely to allow a GO (verdict {tv.verdict})",
                markup=False,
                highlight=False,
            )
