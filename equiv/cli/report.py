"""`equiv report RUN_DIR|pairs.jsonl`: re-analyze from pairs.jsonl alone, no model calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from equiv.cli import app, user_errors
from equiv.cli.options import split_list


@app.command()
@user_errors
def report(
    target: Annotated[Path, typer.Argument(help="A run directory or a pairs.jsonl file.")],
    config: Annotated[str | None, typer.Option("--config", "-c")] = None,
    margin: Annotated[float | None, typer.Option()] = None,
    alpha: Annotated[float | None, typer.Option()] = None,
    bootstrap: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    correction: Annotated[str | None, typer.Option(help="none | bonferroni | holm")] = None,
    ci: Annotated[str | None, typer.Option(help="percentile | bca")] = None,
    judge_calibration: Annotated[str | None, typer.Option(
        help="none | position: re-decide verdicts from the judge's logprobs, corrected for its position preference")
    ] = None,
    types: Annotated[str | None, typer.Option(help="Only these prompt-types (comma-separated).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write verdict.json, summary.md, report.html here.")] = None,
) -> None:
    """Recompute verdict.json, summary.md and report.html from pairs.jsonl (new margin, alpha, correction ...)."""
    from equiv.analyze import analyze  # noqa: PLC0415
    from equiv.config import load_settings  # noqa: PLC0415
    from equiv.pipeline import write_reports  # noqa: PLC0415
    from equiv.report.terminal import print_verdict  # noqa: PLC0415
    from equiv.store import load_pairs_from  # noqa: PLC0415

    pairs, checks, info, folder = load_pairs_from(target)
    if not pairs:
        from equiv.errors import InputError  # noqa: PLC0415

        raise InputError(f"{target}: no pairs to analyze")
    # the run's own settings first, then the config file, then flags
    recorded = {k: v for k, v in (info.get("settings") or {}).items()
                if k in ("margin", "alpha", "bootstrap", "seed", "correction", "ci", "judge_check",
                          "judge_calibration")}
    in_file = load_settings(config).model_fields_set
    flags = {"margin": margin, "alpha": alpha, "bootstrap": bootstrap, "seed": seed, "correction": correction,
             "ci": ci, "judge_calibration": judge_calibration, "types": split_list(types)}
    overrides = {k: v for k, v in recorded.items() if k not in in_file}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    settings = load_settings(config, overrides)
    out_dir = out or folder
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = str(info.get("run_id") or folder.name)
    verdict = analyze(pairs, checks if settings.judge_check else None, settings, run_id=run_id,
                      eval_cost_usd=info.get("eval_cost_usd"), monthly_volume=info.get("monthly_volume"),
                      aborted=info.get("aborted"))
    # what the run knew beside its pairs (skipped records, failures by reason ...), as compare reported it
    verdict.notes.extend(n for n in info.get("run_notes") or [] if n not in verdict.notes)
    info = {**info, "reanalyzed": True}
    history = None
    if info.get("route"):  # a qualify/nightly run: its route's trend, and the regressions nightly found
        from equiv.history import HISTORY_FILE, read_history  # noqa: PLC0415

        history = read_history(folder.parent / HISTORY_FILE, str(info["route"]))[0] or None
        for entry in history or []:
            if entry.get("run_id") == run_id:
                verdict.notes.extend(f"REGRESSION {r}" for r in entry.get("regressions") or [])
    write_reports(out_dir, verdict, pairs, checks, info, history)
    print_verdict(verdict, Console(), str(out_dir))
