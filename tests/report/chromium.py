"""Headless Chromium driven from the command line: dump the DOM, collect console output, screenshot.

No websocket or driver library: `--dump-dom` prints the DOM after the load event (scripts have run)
and `--enable-logging=stderr --v=0` prints every console message, including Content-Security-Policy
violations and uncaught exceptions, as `INFO:CONSOLE` lines on stderr.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

FLAGS = [
    "--headless",
    "--no-sandbox",  # we run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
]


def available() -> bool:
    return Path("/usr/bin/chromium").exists() or shutil.which("chromium") is not None


def _run(args: list[str], profile: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def dump_dom(page: Path, profile: Path) -> tuple[str, list[str]]:
    """(DOM after load, console messages) of a local page."""
    proc = _run(["--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()], profile)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout, console_lines(proc.stderr)


def screenshot(page: Path, png: Path, profile: Path, width: int = 1280, height: int = 2000) -> None:
    proc = _run([f"--screenshot={png.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()], profile)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot ({proc.returncode}): {proc.stderr[-2000:]}")
