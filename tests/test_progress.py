"""Progress where there is no terminal (a CI log): plain lines with done/total, failures, retries, spend, ETA.

No wall-clock assertions: EQUIV_PROGRESS_INTERVAL_S=0 prints a line after every finished pair or check, and
the plain printer takes a fake clock.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from equiv.cli.progress import DEFAULT_INTERVAL_S, INTERVAL_ENV, PlainProgress, ProgressPrinter, progress_interval

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(
    r"^equiv: (started|progress|finished|stopped) (\d+)/(\d+) pairs \+ judge checks \(\d+%\), (\d+) failed, "
    r"(\d+) retries(?: \(last: [^)]*\))?, spent \$(\d+\.\d{4}) \(cap \$5\.00\), elapsed \d+:\d\d"
    r"(?:, eta (?:\d+:)?\d+:\d\d|, eta \?)?$"
)


def test_a_run_whose_stderr_is_a_pipe_prints_plain_progress_lines(tmp_path: Path) -> None:
    env = {**os.environ, INTERVAL_ENV: "0", "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "equiv",
            "compare",
            str(ROOT / "fixtures" / "traffic.jsonl"),
            "--config",
            str(ROOT / "fixtures" / "equiv.toml"),
            "--per-type",
            "3",
            "--types",
            "ticket-triage",
            "--bootstrap",
            "200",
            "--out",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "\x1b" not in err and "\r" not in err  # no cursor moves or colours in a log
    lines = [line for line in err.splitlines() if re.match(r"equiv: (started|progress|finished|stopped) ", line)]
    assert lines, err
    parsed = []
    for line in lines:
        m = LINE.match(line)
        assert m, line
        parsed.append((m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(6))))
    total = parsed[0][2]
    assert parsed[0][:2] == ("started", 0) and "eta ?" in lines[0]
    assert parsed[-1][:3] == ("finished", total, total) and "eta" not in lines[-1]
    progress = [p for p in parsed if p[0] == "progress"]
    assert [p[1] for p in progress] == list(range(1, total + 1))  # one line per finished pair or check
    assert all(", eta " in line for line in lines if line.startswith("equiv: progress"))
    spent = [p[3] for p in parsed]
    assert spent == sorted(spent) and spent[-1] > 0  # spend so far, growing


def _printer(interval: str | None, monkeypatch: pytest.MonkeyPatch) -> tuple[ProgressPrinter, io.StringIO]:
    if interval is None:
        monkeypatch.delenv(INTERVAL_ENV, raising=False)
    else:
        monkeypatch.setenv(INTERVAL_ENV, interval)
    buf = io.StringIO()
    return ProgressPrinter(Console(file=buf, width=300, color_system=None)), buf


def _estimate(printer: ProgressPrinter, spent_before: float = 0.0) -> None:
    printer(
        "estimate",
        {
            "usd": 0.5,
            "pairs": 4,
            "done": 0,
            "total": 4,
            "checks": 0,
            "spent_before": spent_before,
            "cap": 5.0,
            "run_dir": "/r",
            "resumed": spent_before > 0,
        },
    )


def test_lines_count_failures_retries_and_spend(monkeypatch: pytest.MonkeyPatch) -> None:
    printer, buf = _printer("0", monkeypatch)
    assert printer.plain  # a StringIO is no terminal
    with printer:
        _estimate(printer, spent_before=0.01)
        printer("phase", {"name": "pairs", "total": 4, "done": 0})
        printer("call", {"model": "m", "cost": 0.02})
        printer("retry", {"model": "m", "error": "RateLimitError: slow down", "delay": 1.5, "attempt": 1})
        printer("retry", {"model": "m", "error": "Timeout: read", "delay": 2.0, "attempt": 2})
        printer("pair", {"prompt_type": "t", "error": None})
        printer("pair", {"prompt_type": "t", "error": "generation failed: boom"})
    lines = [line for line in buf.getvalue().splitlines() if line.startswith("equiv: ") and "/4 pairs" in line]
    assert lines[0].startswith("equiv: started 0/4 pairs (0%), 0 failed, 0 retries, spent $0.0100 (cap $5.00)")
    assert lines[1].startswith("equiv: progress 1/4 pairs (25%), 0 failed, 2 retries (last: Timeout), spent $0.0300")
    assert lines[2].startswith("equiv: progress 2/4 pairs (50%), 1 failed, 2 retries (last: Timeout), spent $0.0300")
    assert lines[-1].startswith("equiv: stopped 2/4 pairs (50%), 1 failed, 2 retries")  # the run ended short
    assert len(lines) == 4


def test_eta_from_the_rate_of_this_session() -> None:
    now = [100.0]
    buf = io.StringIO()
    lines = PlainProgress(Console(file=buf, width=300, color_system=None), interval=0, clock=lambda: now[0])
    lines.start("pairs", total=30, done=10)  # resumed: 10 were done before
    now[0] += 40
    for _ in range(5):
        lines.advance()  # 5 in 40 s -> 15 left take 120 s
    assert lines.line("progress").endswith("elapsed 0:40, eta 2:00")
    lines.finish()
    assert buf.getvalue().splitlines()[-1].startswith("equiv: stopped 15/30 pairs (50%)")
    lines.finish()  # once
    assert sum("stopped" in line for line in buf.getvalue().splitlines()) == 1


def test_the_timer_prints_between_events_and_stops_at_the_end() -> None:
    buf = io.StringIO()
    seen = threading.Event()

    class Watch(io.StringIO):
        def write(self, s: str) -> int:
            if "equiv: progress" in s:
                seen.set()
            return buf.write(s)

    lines = PlainProgress(Console(file=Watch(), width=300, color_system=None), interval=0.01)
    lines.start("pairs", total=2, done=0)
    assert seen.wait(60)  # a line came from the timer, with no event at all
    lines.advance()
    lines.advance()
    lines.finish()
    out = buf.getvalue().splitlines()
    assert out[0].startswith("equiv: started 0/2") and out[-1].startswith("equiv: finished 2/2")
    assert lines._thread is None
    n = len(out)
    lines.finish()
    assert len(buf.getvalue().splitlines()) == n  # nothing after the end


def test_interval_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert progress_interval() == DEFAULT_INTERVAL_S == 30
    for raw, want in (("0", 0.0), ("2.5", 2.5), ("-1", 30.0), ("soon", 30.0), ("nan", 30.0), ("inf", 30.0)):
        monkeypatch.setenv(INTERVAL_ENV, raw)
        assert progress_interval() == want, raw


def test_quiet_and_terminal_modes_print_no_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    printer, buf = _printer("0", monkeypatch)
    printer.quiet = True
    with printer:
        _estimate(printer)
        printer("phase", {"name": "pairs", "total": 1, "done": 0})
        printer("pair", {"prompt_type": "t", "error": None})
    assert "equiv: started" not in buf.getvalue() and "estimated evaluation cost" in buf.getvalue()
    tty = ProgressPrinter(Console(file=io.StringIO(), force_terminal=True, width=100))
    assert not tty.plain  # a terminal gets the live bar
