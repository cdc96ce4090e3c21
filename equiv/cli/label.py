"""`equiv label RUN_DIR`: write label.html, a blind labelling page for people (SPEC "Judges", calibration)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from equiv.cli import app, user_errors


@app.command()
@user_errors
def label(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (with pairs.jsonl).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many pairs to label (stratified by prompt-type).")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of the random sides.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the page here (default: RUN_DIR/label.html).")] = None,
) -> None:
    """Write label.html: a self-contained page that shows a sample of pairs blind and saves labels.jsonl."""
    from equiv.label import write_label_page

    page = write_label_page(run_dir, n=n, seed=seed, out=out)
    types = len({i.pair.prompt_type for i in page.items})
    typer.echo(
        f"equiv: wrote {page.path} ({len(page.items)} pairs to label from {types} "
        f"prompt-type{'s' if types != 1 else ''}; {page.n_labelable} labelable in the run)"
    )
    left_out = page.skipped.failed + page.skipped.missing + page.skipped.identical
    if left_out:
        typer.echo(
            f"  left out: {page.skipped.failed} failed, {page.skipped.missing} missing an answer, "
            f"{page.skipped.identical} with identical answers"
        )
    typer.echo(
        "  Open it in a browser (it works offline). Keys: 1 = answer 1 is better, 2 = answer 2 is better, "
        "0 = tie, Backspace = back.\n"
        "  Labels are kept in the browser until you press Save (or S), which downloads labels.jsonl; then:\n"
        f"  equiv calibrate {shlex.quote(str(run_dir))} --labels labels.jsonl"
    )
