"""`equiv report RUN_DIR|pairs.jsonl`: re-analyze from pairs.jsonl alone, no model calls.

A re-analysis never destroys the verdict a run wrote: it rebuilds the run's own files only when it
arrives at the same verdict.json (a lost report.html, a re-render); a re-analysis that decides
differently (another margin, alpha, correction, calibration, or a newer equiv's rules) goes to
`<run>/reanalysis/<settings hash>/` unless `--out` names a folder, with `reanalysis.json` recording
the command that reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
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
    judge_calibration: Annotated[
        str | None,
        typer.Option(
            help="none | position: re-decide verdicts from the judge's logprobs, corrected for its position preference"
        ),
    ] = None,
    judge_check: Annotated[
        bool | None,
        typer.Option(
            "--judge-check/--no-judge-check",
            help="Let the judge check block a GO (a check that ran is reported either way).",
        ),
    ] = None,
    types: Annotated[str | None, typer.Option(help="Only these prompt-types (comma-separated).")] = None,
    sequential: Annotated[
        bool | None,
        typer.Option(
            "--sequential/--no-sequential",
            help="Replay the run in its recorded (else seeded) order with the anytime-valid sequential test: "
            "where each type would have stopped, and its verdict there.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write verdict.json, summary.md, report.html here (default: the run itself when the verdict is "
            "unchanged, else <run>/reanalysis/<hash>/)."
        ),
    ] = None,
) -> None:
    """Recompute verdict.json, summary.md and report.html from pairs.jsonl (new margin, alpha, correction ...)."""
    from equiv.api import ANALYSIS_KEYS, reanalyze
    from equiv.pipeline import write_reports
    from equiv.report.terminal import print_verdict
    from equiv.store import write_json_atomic

    flags = {
        "margin": margin,
        "alpha": alpha,
        "bootstrap": bootstrap,
        "seed": seed,
        "correction": correction,
        "ci": ci,
        "judge_calibration": judge_calibration,
        "judge_check": judge_check,
        "types": split_list(types),
        "sequential": sequential,
    }
    again = reanalyze(target, config=config, **flags)
    result, settings, pairs, checks, info = again.analysis, again.settings, again.pairs, again.checks, again.info
    folder, history, verdict = again.folder, again.history, again.analysis.verdict
    run_id = verdict.run_id
    analysed = settings.model_dump(mode="json", include={*ANALYSIS_KEYS, "types"})
    if out is not None:
        out_dir = out
    else:
        existing = folder / "verdict.json"
        same = existing.is_file() and _same_verdict(existing, verdict.model_dump(mode="json"))
        missing = not existing.is_file() and (info or target.is_dir())
        if same or missing:
            out_dir = folder  # re-rendering what the run decided: nothing it wrote changes meaning
        else:
            digest = hashlib.sha256(json.dumps(analysed, sort_keys=True).encode()).hexdigest()[:10]
            out_dir = folder / "reanalysis" / digest
    out_dir.mkdir(parents=True, exist_ok=True)
    command = ["equiv", "report", str(target), *_flag_words(config, flags), "--out", str(out_dir)]
    reproduce = " ".join(shlex.quote(w) for w in command)
    info = {**info, "reanalyzed": True, "reproduce": reproduce}
    if out_dir != folder:
        write_json_atomic(
            out_dir / "reanalysis.json",
            {"source": str(target), "run_id": run_id, "command": reproduce, "settings": analysed},
        )
    write_reports(out_dir, result, pairs, checks, info, history)
    print_verdict(verdict, Console(), str(out_dir))
    if out is None and out_dir != folder:
        typer.echo(f"equiv: the run's own verdict.json is kept; this re-analysis is in {out_dir}", err=True)


def _same_verdict(path: Path, new: dict[str, object]) -> bool:
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(new)))
    except (OSError, ValueError):
        return False


def _flag_words(config: str | None, flags: Mapping[str, object]) -> list[str]:
    """The flags given, as words of a command line that reproduces this re-analysis."""
    words = ["--config", config] if config else []
    for key, value in flags.items():
        if value is None:
            continue
        if key in ("judge_check", "sequential"):
            flag = key.replace("_", "-")
            words.append(f"--{flag}" if value else f"--no-{flag}")
        elif key == "types" and isinstance(value, list):
            words += ["--types", ",".join(map(str, value))]
        else:
            words += [f"--{key.replace('_', '-')}", str(value)]
    return words
