"""`equiv compare TRAFFIC`: run or resume one comparison and print the verdict table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from equiv.cli import app, user_errors


@app.command()
@user_errors
def compare(
    traffic: Annotated[
        list[str],
        typer.Argument(
            help="Traffic: files, folders or globs (JSONL, .gz/.zst, parquet, csv, json; s3:// and gs:// too; an "
            "OpenAI Batch input and output file together), or a LiteLLM proxy database (postgresql://...). "
            "Formats: see --format.",
            show_default=False,
        ),
    ],
    config: Annotated[str | None, typer.Option("--config", "-c", help="equiv.toml")] = None,
    baseline: Annotated[str | None, typer.Option(help="The model you pay for now.")] = None,
    candidate: Annotated[
        list[str] | None,
        typer.Option(
            help="The cheaper model to qualify, or a [[candidates]] name; repeat it to compare several "
            "(default: every [[candidates]] entry)."
        ),
    ] = None,
    judge: Annotated[str | None, typer.Option(help="The judge model.")] = None,
    per_type: Annotated[int | None, typer.Option("--per-type", help="Pairs sampled per prompt-type.")] = None,
    types: Annotated[str | None, typer.Option(help="Only these prompt-types (comma-separated).")] = None,
    margin: Annotated[float | None, typer.Option(help="Non-inferiority margin on the [-1, 1] scale.")] = None,
    alpha: Annotated[float | None, typer.Option(help="One-sided error rate of each GO.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    concurrency: Annotated[int | None, typer.Option()] = None,
    max_spend: Annotated[
        float | None,
        typer.Option(
            "--max-spend", help="Spend cap for this evaluation, USD (each call is reserved at its worst case first)."
        ),
    ] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples.")] = None,
    correction: Annotated[str | None, typer.Option(help="none | bonferroni | holm")] = None,
    ci: Annotated[str | None, typer.Option(help="percentile | bca")] = None,
    judge_calibration: Annotated[
        str | None,
        typer.Option("--judge-calibration", help="none | position (judges that return logprobs: local/ models)"),
    ] = None,
    baseline_source: Annotated[str | None, typer.Option("--baseline-source", help="logged | rerun")] = None,
    samples_per_prompt: Annotated[int | None, typer.Option("--samples-per-prompt")] = None,
    since: Annotated[str | None, typer.Option(help="Only traffic since then: 24h, 7d ... or an ISO 8601 time.")] = None,
    out: Annotated[Path, typer.Option(help="Parent folder of run directories.")] = Path("reports"),
    resume: Annotated[Path | None, typer.Option(help="Resume this run directory.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start a new run even if one matches.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip and count bad records.")] = False,
    traffic_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Force a traffic format: native, openai-log, openai-batch, litellm-spendlogs, litellm-payload, "
            "langfuse, helicone, otel-genai (default: the first record decides).",
        ),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="Only records whose dotted field equals the value: KEY=VALUE (repeatable)."),
    ] = None,
    prompt_type_field: Annotated[
        str | None,
        typer.Option("--prompt-type-field", help="The (dotted) field of a record that names its prompt-type."),
    ] = None,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="Prompts in a seeded order; each type stops as soon as an anytime-valid test decides "
            "(or at --per-type).",
        ),
    ] = False,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Generations and judge calls through the provider's Batch API (priced at the batch rate; resumable).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Compare baseline and candidate on sampled traffic; write reports/<run_id>/ and print the verdict."""
    # imported here, not at the top: `equiv --help` loads no pydantic model, numpy, scipy or litellm
    from rich.console import Console

    from equiv.api import window_start
    from equiv.cli.options import settings_from, split_list
    from equiv.cli.progress import ProgressPrinter
    from equiv.errors import AbortedError
    from equiv.pipeline import compare as run_compare
    from equiv.report.terminal import print_verdict

    settings = settings_from(
        config,
        baseline=baseline,
        candidate=(candidate[0] if len(candidate) == 1 else candidate) if candidate else None,
        judge=judge,
        per_type=per_type,
        types=split_list(types),
        margin=margin,
        alpha=alpha,
        seed=seed,
        concurrency=concurrency,
        max_spend_usd=max_spend,
        bootstrap=bootstrap,
        correction=correction,
        ci=ci,
        judge_calibration=judge_calibration,
        baseline_source=baseline_source,
        samples_per_prompt=samples_per_prompt,
        skip_invalid=skip_invalid or None,
        format=traffic_format,
        where=where or None,
        prompt_type_field=prompt_type_field,
        sequential=sequential or None,
        batch=batch or None,
    )
    err = Console(stderr=True)
    with ProgressPrinter(err, quiet=quiet) as progress:
        result = run_compare(
            traffic[0] if len(traffic) == 1 else traffic,
            settings,
            out=out,
            resume=resume,
            fresh=fresh,
            on_event=progress,
            since=window_start(since),
        )
    print_verdict(result.verdict, Console(), str(result.run_dir))
    if result.aborted:
        raise AbortedError(f"{result.aborted} (partial results in {result.run_dir})")
