"""Progress on stderr while a run works: estimate, a bar with ETA, retries/backoff, aborts."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from equiv.report.terminal import clean


class ProgressPrinter:
    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.progress: Progress | None = None
        self.task: Any = None
        self.retries = 0
        self.last_backoff: tuple[float, str] | None = None  # (seconds, error class) of the latest retry
        self.failed = 0
        self.spent = 0.0

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _status(self) -> str:
        parts = []
        if self.retries:
            text = f"{self.retries} retries"
            if self.last_backoff is not None:
                delay, kind = self.last_backoff
                text += f" (backing off {delay:.1f}s after {kind})"
            parts.append(text)
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "estimate":
            done = f"{data['done']} of {data['total']} pairs already done; " if data["resumed"] else ""
            self.console.print(
                f"equiv: run directory {data['run_dir']}\n"
                f"equiv: {done}{data['pairs']} pairs to run + ~{data['checks']} judge checks; "
                f"estimated evaluation cost ${data['usd']:.4f} (cap ${data['cap']:.2f}"
                + (f", ${data['spent_before']:.4f} already spent" if data["spent_before"] else "") + ")",
                markup=False, highlight=False, soft_wrap=True,  # a path may hold "[...]"; never cut a path
            )
        elif kind == "phase":
            self._stop()
            if self.quiet:
                return
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}", markup=False),
                console=self.console, transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(data["name"], total=data["total"], completed=data["done"], status="")
        elif kind in ("pair", "check"):
            if data.get("error"):
                self.failed += 1
            if self.progress is not None:
                self.progress.update(self.task, advance=1, status=self._status())
        elif kind == "retry":
            self.retries += 1
            self.last_backoff = (float(data.get("delay") or 0.0), clean(str(data.get("error", "")).split(":")[0], 40))
            if self.progress is not None:
                self.progress.update(self.task, status=self._status())
        elif kind == "aborted":
            self._stop()
            # the reason quotes provider error text: printed as plain Text, never parsed as rich markup
            self.console.print(Text("equiv: stopping: ", style="bold red") + Text(clean(data["reason"], 400)),
                               highlight=False)
