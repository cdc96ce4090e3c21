"""`equiv compare --since`: only traffic from the window is sampled; a window with no traffic is a clear error."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from equiv.cli import _register, app

FIXTURES = Path(__file__).parents[1] / "fixtures"


def run(*args: str) -> tuple[int, str]:
    _register()
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


def test_since_keeps_only_the_window(tmp_path: Path) -> None:
    since = "2026-11-06T00:00:00+00:00"
    rows = [json.loads(line) for line in (FIXTURES / "traffic.jsonl").read_text().splitlines()]
    expected = sorted(
        r["id"]
        for r in rows
        if r["prompt_type"] == "ticket-triage"
        and datetime.fromisoformat(r["timestamp"]) >= datetime.fromisoformat(since)
    )
    assert 0 < len(expected) < 120
    code, out = run(
        "compare",
        str(FIXTURES / "traffic.jsonl"),
        "--config",
        str(FIXTURES / "equiv.toml"),
        "--types",
        "ticket-triage",
        "--per-type",
        "500",
        "--since",
        since,
        "--out",
        str(tmp_path),
        "--bootstrap",
        "500",
        "--quiet",
    )
    assert code == 0, out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    got = sorted(json.loads(line)["pair_id"] for line in (run_dir / "pairs.jsonl").read_text().splitlines())
    assert got == expected


def test_since_with_no_traffic_in_the_window_is_exit_2(tmp_path: Path) -> None:
    code, out = run(
        "compare",
        str(FIXTURES / "traffic.jsonl"),
        "--config",
        str(FIXTURES / "equiv.toml"),
        "--since",
        "2030-01-01",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert code == 2, out
    assert "2030" in out or "since" in out


def test_bad_since_is_exit_2(tmp_path: Path) -> None:
    code, out = run(
        "compare",
        str(FIXTURES / "traffic.jsonl"),
        "--config",
        str(FIXTURES / "equiv.toml"),
        "--since",
        "yesterday-ish",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert code == 2 and "--since" in out
