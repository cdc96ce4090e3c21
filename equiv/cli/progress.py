"""Progress on stderr while a run works: estimate, a bar with ETA, retries/backoff, aborts.

On a terminal: a live bar. Elsewhere (a CI log, a pipe, a file) a live bar prints nothing until the run ends,
so a plain line is printed instead, as pytest and inspect_ai do: one when the work starts, one every
`EQUIV_PROGRESS_INTERVAL_S` seconds (default 30; 0 = after every finished pair or check) and one at the end:

    equiv: progress 37/88 pairs + judge checks (42%), 1 failed, 3 retries (last: RateLimitError),
    spent $0.0213 (cap $5.00), elapsed 0:41, eta 0:58      (one line)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from equiv.report.terminal import clean

INTERVAL_ENV = "EQUIV_PROGRESS_INTERVAL_S"
DEFAULT_INTERVAL_S = 30.0


def progress_interval() -> float:
    """Seconds between plain progress lines: EQUIV_PROGRESS_INTERVAL_S, else 30 (a bad value: the default)."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 and value == value and value != float("inf") else DEFAULT_INTERVAL_S


def _clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class PlainProgress:
    """The phase in progress as plain lines (no cursor moves, no colours): at start, on a timer, at the end.

    The counters are written by the event handler (the run's event loop) and read by the timer thread,
    both under `lock`.
    """

    def __init__(self, console: Console, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.interval = interval
        self.clock = clock
        self.lock = threading.RLock()
        self.name = ""
        self.total = self.done = self.done_at_start = 0
        self.failed = self.retries = 0
        self.last_retry = ""
        self.spent = 0.0
        self.cap: float | None = None
        self.started = 0.0
        self.active = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, name: str, total: int, done: int) -> None:
        self.finish()
        with self.lock:
            self.name, self.total, self.done, self.done_at_start = name, total, done, done
            self.started = self.clock()
            self.active = True
            self.emit("started")
        if self.interval > 0:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._tick, args=(self._stop,), name="equiv-progress", daemon=True)
            self._thread.start()

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            with self.lock:
                self.emit("progress")

    def advance(self) -> None:
        with self.lock:
            if not self.active:
                return
            self.done += 1
            if self.interval == 0:
                self.emit("progress")

    def finish(self) -> None:
        """The timer stopped and the phase's last line printed (once)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()  # outside the lock: the timer may be waiting for it
        with self.lock:
            if self.active:
                self.emit("finished" if self.done >= self.total else "stopped")
                self.active = False

    def emit(self, state: str) -> None:
        """Print one line; the caller holds `lock`."""
        if self.active:
            self.console.print(Text(self.line(state)), markup=False, highlight=False, soft_wrap=True)

    def line(self, state: str) -> str:
        """`equiv: STATE D/T NAME (P%), F failed, R retries, spent $S (cap $C), elapsed M:SS[, eta M:SS]`."""
        elapsed = max(0.0, self.clock() - self.started)
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        retries = f"{self.retries} retries"
        if self.retries and self.last_retry:
            retries += f" (last: {self.last_retry})"
        cap = f" (cap ${self.cap:.2f})" if self.cap is not None else ""
        parts = [
            f"equiv: {state} {self.done}/{self.total} {self.name}{pct}",
            f"{self.failed} failed",
            retries,
            f"spent ${self.spent:.4f}{cap}",
            f"elapsed {_clock(elapsed)}",
        ]
        if state in ("started", "progress"):
            ran, left = self.done - self.done_at_start, self.total - self.done
            parts.append(f"eta {_clock(elapsed / ran * left) if ran > 0 else '?'}")
        return ", ".join(parts)


class ProgressPrinter:
    def __init__(self, console: Console, quiet: bool = False, plain: bool | None = None) -> None:
        self.console = console
        self.quiet = quiet
        # a live bar only where someone watches a terminal; a plain line everywhere else
        self.plain = (not console.is_terminal or console.is_dumb_terminal) if plain is None else plain
        self.progress: Progress | None = None
        self.lines: PlainProgress | None = None
        self.task: Any = None
        self.retries = 0
        self.last_backoff: tuple[float, str] | None = None  # (seconds, error class) of the latest retry
        self.failed = 0
        self.spent = 0.0  # what the run has spent: before this session (a resume) plus the calls bought since
        self.cap: float | None = None

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.lines is not None:
            self.lines.finish()

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

    def _sync_lines(self) -> None:
        if self.lines is not None:
            with self.lines.lock:
                self.lines.failed, self.lines.retries, self.lines.spent = self.failed, self.retries, self.spent
                self.lines.last_retry = self.last_backoff[1] if self.last_backoff else ""
                self.lines.cap = self.cap

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "estimate":
            self.spent = float(data.get("spent_before") or 0.0)
            self.cap = float(data["cap"]) if data.get("cap") is not None else None
            done = f"{data['done']} of {data['total']} pairs already done; " if data["resumed"] else ""
            self.console.print(
                f"equiv: run directory {data['run_dir']}\n"
                f"equiv: {done}{data['pairs']} pairs to run + ~{data['checks']} judge checks; "
                f"estimated evaluation cost ${data['usd']:.4f} (cap ${data['cap']:.2f}"
                + (f", ${data['spent_before']:.4f} already spent" if data["spent_before"] else "")
                + ")",
                markup=False,
                highlight=False,
                soft_wrap=True,  # a path may hold "[...]"; never cut a path
            )
        elif kind == "phase":
            self._stop()
            if self.quiet:
                return
            if self.plain:
                self.lines = PlainProgress(self.console, progress_interval())
                self._sync_lines()
                self.lines.start(str(data["name"]), int(data["total"]), int(data["done"]))
                return
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}", markup=False),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(data["name"], total=data["total"], completed=data["done"], status="")
        elif kind in ("pair", "check"):
            if data.get("error"):
                self.failed += 1
            if self.progress is not None:
                self.progress.update(self.task, advance=1, status=self._status())
            if self.lines is not None:
                self._sync_lines()  # then advance: a line printed on this event counts this failure
                self.lines.advance()
        elif kind == "call":
            self.spent += float(data.get("cost") or 0.0)
            self._sync_lines()
        elif kind == "retry":
            self.retries += 1
            self.last_backoff = (float(data.get("delay") or 0.0), clean(str(data.get("error", "")).split(":")[0], 40))
            if self.progress is not None:
                self.progress.update(self.task, status=self._status())
            self._sync_lines()
        elif kind == "aborted":
            self._stop()
            # the reason quotes provider error text: printed as plain Text, never parsed as rich markup
            self.console.print(
                Text("equiv: stopping: ", style="bold red") + Text(clean(data["reason"], 400)), highlight=False
            )
