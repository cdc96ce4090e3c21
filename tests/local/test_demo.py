"""The bundled demo on real local models (needs equiv[local]; opt-in: pytest -m slow tests/local/test_demo.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import bundled_installed

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "fixtures" / "demo"
needs_models = pytest.mark.skipif(
    not (bundled_installed("qwen2.5-coder-1.5b") and bundled_installed("qwen2.5-coder-0.5b")),
    reason="equiv[local] (xllamacpp and the bundled weights) not installed",
)


@needs_models
def test_real_server_answers_the_constrained_verdict(tmp_path: Path) -> None:
    """One real call: the 0.5B model on llama.cpp, the verdict grammar enforced, through equiv's client."""
    import asyncio

    from equiv.config import Settings
    from equiv.judging.pairwise import LOCAL_JUDGE_CLOSE, LOCAL_JUDGE_PARAMS, LOCAL_JUDGE_PREFILL
    from equiv.judging.parse import parse_reply
    from equiv.llm import client
    from equiv.local.server import serving

    settings = Settings(judge="local/qwen2.5-coder-0.5b")
    spec = client.resolve_model("local/qwen2.5-coder-0.5b", settings)
    msgs = [
        {"role": "user", "content": "Which answer to 2+2 is right? A: 4. B: 5. Reply as JSON."},
        {"role": "assistant", "content": LOCAL_JUDGE_PREFILL},
    ]
    with serving(settings, ["local/qwen2.5-coder-0.5b"]):
        comp = asyncio.run(client.acomplete(spec, msgs, {"temperature": 0, **LOCAL_JUDGE_PARAMS}, None))
    # llama.cpp continues the prefilled reply and returns it whole: only the verdict word was written
    assert comp.output.startswith(LOCAL_JUDGE_PREFILL) and comp.completion_tokens <= 2, comp
    winner, _reason = parse_reply(comp.output + LOCAL_JUDGE_CLOSE)
    assert winner in ("A", "B", "tie"), comp.output
    assert comp.first_token_logprobs and {"A", "B"} & set(comp.first_token_logprobs), comp
    assert comp.prompt_tokens > 10 and comp.cost_usd == 0.0


@pytest.mark.slow
@needs_models
def test_demo_end_to_end(tmp_path: Path) -> None:
    """`equiv compare fixtures/demo/traffic.jsonl --config fixtures/demo/equiv.toml` as a user runs it."""
    t0 = time.perf_counter()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "equiv",
            "compare",
            str(DEMO / "traffic.jsonl"),
            "--config",
            str(DEMO / "equiv.toml"),
            "--out",
            str(tmp_path),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ},
        cwd=ROOT,
    )
    wall = time.perf_counter() - t0
    print(f"\ndemo wall time {wall:.0f} s\n{p.stdout}\n{p.stderr[-2000:]}")
    assert p.returncode == 0, p.stderr
    run_dir = next(d for d in tmp_path.iterdir() if d.is_dir())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    types = {t["prompt_type"]: t for t in verdict["prompt_types"]}
    assert set(types) == {"ticket-triage", "invoice-extraction", "summary"}
    for t in types.values():
        assert t["n"] >= 30 and t["judge_check"] is not None
    assert any("is the baseline model itself" in n for n in verdict["notes"])
    assert "equiv.local.serve" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
