"""The call cache: shared by every run under one --out folder, keyed by what defines an output only."""

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from equiv.llm import client
from equiv.llm.cache import CallCache, call_key, sibling_call_files
from equiv.llm.client import ModelSpec
from equiv.llm.runner import Runner
from equiv.schema import Completion

SPEC = ModelSpec(
    name="cand",
    call_model="fake/skill-90",
    api_base=None,
    api_key_env=None,
    input_per_token=1e-6,
    output_per_token=2e-6,
    timeout_s=5,
)
MSG = [{"role": "user", "content": "hello there"}]


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []

    async def fake_acomplete(spec: ModelSpec, messages: Any, params: Any, api_key: Any) -> Completion:
        sent.append(messages[0]["content"])
        return Completion(
            model=spec.name, output="answer", prompt_tokens=10, completion_tokens=5, cost_usd=spec.cost(10, 5)
        )

    monkeypatch.setattr(client, "acomplete", fake_acomplete)
    return sent


def run_calls(run_dir: Path, spec: ModelSpec, prompts: list[str]) -> tuple[Runner, list[Completion]]:
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = CallCache(run_dir / "calls.jsonl", sibling_call_files(run_dir))
    r = Runner(cache=cache, concurrency=4, max_retries=0, max_spend_usd=10.0, api_keys={})

    async def go() -> list[Completion]:
        return list(await asyncio.gather(*(r.call(spec, [{"role": "user", "content": p}], {}) for p in prompts)))

    out = asyncio.run(go())
    cache.close()
    return r, out


def test_a_second_run_in_the_folder_buys_only_new_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = counting(monkeypatch)
    first, _ = run_calls(tmp_path / "run-a", SPEC, [f"q{i}" for i in range(60)])
    assert len(sent) == 60 and first.spent == pytest.approx(60 * SPEC.cost(10, 5))
    second, out = run_calls(tmp_path / "run-b", SPEC, [f"q{i}" for i in range(120)])
    assert len(sent) == 120  # only the 60 new prompts were bought
    assert second.stats.cache_hits == 60 and len(out) == 120
    assert CallCache(tmp_path / "run-b" / "calls.jsonl").total_cost() == pytest.approx(60 * SPEC.cost(10, 5))


def test_a_corrected_price_or_name_re_prices_and_buys_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = counting(monkeypatch)
    run_calls(tmp_path / "run-a", SPEC, ["q1", "q2"])
    fixed = dataclasses.replace(SPEC, name="renamed", input_per_token=3e-6, timeout_s=60)
    r, out = run_calls(tmp_path / "run-b", fixed, ["q1", "q2"])
    assert len(sent) == 2 and r.spent == 0
    assert all(c.model == "renamed" and c.cost_usd == pytest.approx(fixed.cost(10, 5)) for c in out)


def test_key_ignores_the_display_name_and_price_but_not_the_endpoint() -> None:
    k = call_key("openai/m", None, MSG, {}, 0)
    assert k == call_key("openai/m", None, MSG, {}, 0)
    assert k != call_key("openai/m", "http://127.0.0.1:1/v1", MSG, {}, 0)


def test_a_torn_line_in_another_run_is_not_read(tmp_path: Path) -> None:
    other = tmp_path / "run-a"
    other.mkdir()
    good = CallCache(other / "calls.jsonl")
    good.put("a" * 64, Completion(model="m", output="x", prompt_tokens=1, completion_tokens=1, cost_usd=0.1))
    good.close()
    with open(other / "calls.jsonl", "a") as fh:
        fh.write('{"key": "' + "b" * 64 + '", "completion": {"model": "m", "outp')
    mine = CallCache(
        tmp_path / "run-b" / "calls.jsonl" if (tmp_path / "run-b").mkdir() is None else None,
        sibling_call_files(tmp_path / "run-b"),
    )
    assert mine.get("a" * 64) is not None and mine.get("b" * 64) is None
    assert mine.total_cost() == 0
