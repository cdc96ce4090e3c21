"""Integration harness: a real OpenAI-compatible server on 127.0.0.1, driven through litellm by `equiv`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app
from equiv.llm import fake
from equiv.testing.loopback import LoopbackServer

TOPICS = [
    "billing refund",
    "password reset email",
    "sync conflict spreadsheet",
    "invoice export crash",
    "mailbox migration plan",
    "timezone dashboard report",
    "team plan downgrade",
    "two factor codes",
]
WORDS = (
    "customer account subscription payment duplicate charge support ticket priority urgent device mobile "
    "desktop browser network firewall certificate renewal export import archive storage quota folder "
    "shared permission admin workspace calendar meeting schedule notification email attachment"
).split()


def make_records(types: list[str], per_type: int, baseline: str = "skill-95", seed: int = 7) -> list[dict[str, Any]]:
    """Traffic whose logged responses were produced by the server's `baseline` model."""
    import random

    rng = random.Random(seed)
    out = []
    for t in types:
        for i in range(per_type):
            words = rng.sample(WORDS, 12)
            content = f"[{t}] Customer #{i}: {rng.choice(TOPICS)} " + " ".join(words)
            msgs = [{"role": "user", "content": content}]
            text, pt, ct = fake.reply(baseline, msgs)
            out.append(
                {
                    "id": f"{t}-{i:04d}",
                    "prompt_type": t,
                    "messages": msgs,
                    "response": text,
                    "model": baseline,
                    "usage": {"prompt_tokens": pt, "completion_tokens": ct},
                    "params": {"temperature": 0, "max_tokens": 200},
                }
            )
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


PRICES = {
    "skill-99": (2.5, 10.0),
    "skill-95": (2.5, 10.0),
    "skill-99-v2": (0.15, 0.6),
    "skill-60": (0.15, 0.6),
    "skill-80-verbose": (0.15, 0.6),
    "skill-93": (0.15, 0.6),
    "judge": (2.0, 8.0),
    "judge-verbose": (2.0, 8.0),
    "judge-always-a": (2.0, 8.0),
    "judge-tie": (2.0, 8.0),
    "judge-brackets": (2.0, 8.0),
}


def write_config(
    path: Path,
    srv: LoopbackServer,
    *,
    baseline: str,
    candidate: str,
    judge: str = "judge",
    key_env: str | None = None,
    **top: Any,
) -> Path:
    lines = [f'baseline = "openai/{baseline}"', f'candidate = "openai/{candidate}"', f'judge = "openai/{judge}"']
    defaults = {"concurrency": 8, "bootstrap": 2000, "max_spend_usd": 5.0, "timeout_s": 5.0}
    for k, v in {**defaults, **top}.items():
        lines.append(f"{k} = {json.dumps(v)}")
    for name in {baseline, candidate, judge}:
        pin, pout = PRICES.get(name, (1.0, 1.0))
        lines += [
            f'[models."openai/{name}"]',
            f'api_base = "{srv.base_url}"',
            f"input_cost_per_mtok = {pin}",
            f"output_cost_per_mtok = {pout}",
        ]
        if key_env:
            lines.append(f'api_key_env = "{key_env}"')
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def equiv_cli() -> Any:
    _register()
    runner = CliRunner()

    def run(*args: str) -> Result:
        r = runner.invoke(app, list(args), catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr if r.stderr_bytes is not None else "")

    return run


def run_subprocess(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    p = subprocess.run(
        [sys.executable, "-m", "equiv", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return Result(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(seed=1) as srv:
        yield srv


def only_run_dir(out: Path) -> Path:
    dirs = [p for p in out.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def load_verdict(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "verdict.json").read_text())
