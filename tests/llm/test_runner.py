"""The runner's rules, with client.acomplete replaced by a scripted fake (the provider path is tested
end to end in tests/integration against a real HTTP server)."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import AbortedError, AuthError, SpendCapReached
from equiv.llm import client
from equiv.llm.cache import CallCache, call_key
from equiv.llm.client import CallError, ModelSpec
from equiv.llm.runner import Runner
from equiv.schema import Completion

SPEC = ModelSpec(
    name="m",
    call_model="fake/skill-90",
    api_base=None,
    api_key_env=None,
    input_per_token=1e-6,
    output_per_token=2e-6,
    timeout_s=5,
)
MSG = [{"role": "user", "content": "hello there"}]


def scripted(monkeypatch: pytest.MonkeyPatch, script: list[Any]) -> list[int]:
    calls: list[int] = []

    async def fake_acomplete(spec: ModelSpec, messages: Any, params: Any, api_key: Any) -> Completion:
        calls.append(1)
        item = script.pop(0) if script else "ok"
        if isinstance(item, CallError):
            raise item
        await asyncio.sleep(0.001)
        return Completion(
            model=spec.name, output=item, prompt_tokens=10, completion_tokens=5, cost_usd=spec.cost(10, 5)
        )

    monkeypatch.setattr(client, "acomplete", fake_acomplete)
    return calls


def runner(tmp_path: Path, **kw: Any) -> Runner:
    args: dict[str, Any] = dict(
        cache=CallCache(tmp_path / "calls.jsonl"),
        concurrency=4,
        max_retries=3,
        max_spend_usd=10.0,
        api_keys={},
        backoff_base_s=0.001,
        backoff_max_s=0.01,
    )
    args.update(kw)
    return Runner(**args)


def test_transient_errors_are_retried_then_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = scripted(monkeypatch, [CallError("transient", "429"), CallError("transient", "500"), "fine"])
    r = runner(tmp_path)
    out = asyncio.run(r.call(SPEC, MSG, {}))
    assert out.output == "fine" and len(calls) == 3 and r.stats.retries == 2


def test_retries_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = scripted(monkeypatch, [CallError("transient", "500")] * 10)
    with pytest.raises(CallError):
        asyncio.run(runner(tmp_path, max_retries=2).call(SPEC, MSG, {}))
    assert len(calls) == 3


def test_auth_error_aborts_at_once_and_stops_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = scripted(monkeypatch, [CallError("auth", "401 bad key")] + ["ok"] * 50)
    r = runner(tmp_path, concurrency=1)

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(r.call(SPEC, [{"role": "user", "content": str(i)}], {}) for i in range(20)), return_exceptions=True
        )

    results = asyncio.run(many())
    assert isinstance(results[0], AuthError)
    assert all(isinstance(x, AbortedError) for x in results)
    assert len(calls) == 1  # no call after the auth failure


def test_results_are_cached_and_resumed_without_rebuying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = scripted(monkeypatch, ["one"])
    r = runner(tmp_path)
    asyncio.run(r.call(SPEC, MSG, {"temperature": 0}))
    r.cache.close()
    r2 = runner(tmp_path)  # a new process on the same run directory
    out = asyncio.run(r2.call(SPEC, MSG, {"temperature": 0}))
    assert out.output == "one" and len(calls) == 1 and r2.spent == pytest.approx(SPEC.cost(10, 5))
    asyncio.run(r2.call(SPEC, MSG, {"temperature": 0.7}))  # different params: a different call
    assert len(calls) == 2


def test_torn_cache_line_is_dropped(tmp_path: Path) -> None:
    c = CallCache(tmp_path / "calls.jsonl")
    c.put("k1", Completion(model="m", output="x", prompt_tokens=1, completion_tokens=1, cost_usd=0.5))
    c.close()
    with open(tmp_path / "calls.jsonl", "a") as fh:
        fh.write('{"key": "k2", "completion": {"model": "m", "outp')
    c2 = CallCache(tmp_path / "calls.jsonl")
    assert c2.get("k1") is not None and c2.get("k2") is None and c2.dropped_lines == 1
    c2.put("k3", Completion(model="m", output="y", prompt_tokens=1, completion_tokens=1, cost_usd=0.1))
    c2.close()
    assert CallCache(tmp_path / "calls.jsonl").get("k3") is not None


def test_spend_cap_holds_under_concurrency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, [])
    # worst case per call: (prompt ~ chars/3 + 8) * 1e-6 + 100 * 2e-6 ~= 0.000215 USD; actual 0.00002
    r = runner(tmp_path, max_spend_usd=0.001, concurrency=16, default_max_tokens=100)

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(r.call(SPEC, [{"role": "user", "content": f"q{i}"}], {}) for i in range(200)), return_exceptions=True
        )

    results = asyncio.run(many())
    assert any(isinstance(x, SpendCapReached) for x in results)
    assert r.spent <= 0.001  # never past the cap: in-flight calls were reserved before sending


def test_breaker_stops_a_provider_that_keeps_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, [CallError("transient", "503")] * 1000)
    r = runner(tmp_path, max_retries=50, breaker_threshold=10)
    with pytest.raises(AbortedError, match="keeps failing"):
        asyncio.run(r.call(SPEC, MSG, {}))


def test_call_key_depends_on_what_affects_output() -> None:
    base = call_key("openai/m", None, MSG, {"temperature": 0}, 0)
    assert base == call_key("openai/m", None, MSG, {"temperature": 0}, 0)
    assert base != call_key("openai/m", None, MSG, {"temperature": 0}, 1)
    assert base != call_key("openai/m", "http://x", MSG, {"temperature": 0}, 0)
    assert base != call_key("openai/m2", None, MSG, {"temperature": 0}, 0)
    assert base != call_key("openai/m", None, MSG, {"temperature": 0.5}, 0)


def test_identical_concurrent_calls_are_bought_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = scripted(monkeypatch, ["shared"])
    r = runner(tmp_path)

    async def both() -> list[Completion]:
        return list(await asyncio.gather(r.call(SPEC, MSG, {}), r.call(SPEC, MSG, {})))

    a, b = asyncio.run(both())
    assert a.output == b.output == "shared" and len(calls) == 1
    assert r.spent == pytest.approx(SPEC.cost(10, 5))


def test_failure_rate_breaker_trips_after_a_window_of_mostly_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from equiv.llm.runner import Tuning

    # 2 of every 3 attempts fail: never 25 in a row, but 67% > 50% for longer than the (0.2 s) window
    scripted(monkeypatch, [CallError("transient", "503"), CallError("transient", "503"), "ok"] * 2000)
    r = runner(
        tmp_path,
        max_retries=50,
        concurrency=1,
        tuning=Tuning(breaker_window_s=0.2, breaker_min_calls=10, backoff_base_s=0.001, backoff_max_s=0.002),
    )

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(r.call(SPEC, [{"role": "user", "content": f"q{i}"}], {}) for i in range(2000)), return_exceptions=True
        )

    results = asyncio.run(many())
    aborted = [x for x in results if isinstance(x, AbortedError)]
    assert aborted and "keeps failing" in aborted[0].message and "of the last" in aborted[0].message
    assert r.consecutive_failures < r.breaker_threshold  # it was the rate breaker, not the run of failures


def test_failure_rate_breaker_ignores_a_healthy_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from equiv.llm.runner import Tuning

    # 40% failing, evenly: no run of >= 10 attempts is more than half failures, whatever the timing
    scripted(monkeypatch, [CallError("transient", "429"), "ok", CallError("transient", "500"), "ok", "ok"] * 400)
    r = runner(
        tmp_path,
        max_retries=50,
        concurrency=1,
        tuning=Tuning(breaker_window_s=0.02, breaker_min_calls=10, backoff_base_s=0.001, backoff_max_s=0.002),
    )

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(r.call(SPEC, [{"role": "user", "content": f"q{i}"}], {}) for i in range(300)), return_exceptions=True
        )

    assert all(isinstance(x, Completion) for x in asyncio.run(many()))


def test_failure_rate_breaker_ignores_a_burst_shorter_than_its_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from equiv.llm.runner import Tuning

    scripted(monkeypatch, [CallError("transient", "503")] * 20)  # 20 failures at once, then all fine
    r = runner(
        tmp_path,
        max_retries=50,
        concurrency=1,
        tuning=Tuning(breaker_window_s=5.0, breaker_min_calls=10, backoff_base_s=0.001, backoff_max_s=0.002),
    )

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(r.call(SPEC, [{"role": "user", "content": f"q{i}"}], {}) for i in range(50)), return_exceptions=True
        )

    assert all(isinstance(x, Completion) for x in asyncio.run(many()))


def test_tuning_from_env_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from equiv.errors import InputError
    from equiv.llm.runner import Tuning

    t = Tuning.from_env({"EQUIV_BACKOFF_BASE_S": "0.01", "EQUIV_BREAKER_MIN_CALLS": "7"})
    assert t.backoff_base_s == 0.01 and t.breaker_min_calls == 7 and t.breaker_window_s == 60.0
    with pytest.raises(InputError, match="EQUIV_BREAKER_FAILURE_RATE"):
        Tuning.from_env({"EQUIV_BREAKER_FAILURE_RATE": "lots"})


def test_a_call_cancelled_after_it_was_sent_is_still_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []

    async def slow(spec: ModelSpec, messages: Any, params: Any, api_key: Any) -> Completion:
        sent.append(1)
        await asyncio.sleep(0.05)
        return Completion(model=spec.name, output="late", prompt_tokens=1, completion_tokens=1, cost_usd=0.01)

    monkeypatch.setattr(client, "acomplete", slow)
    r = runner(tmp_path)

    async def abort_midway() -> int:
        task = asyncio.ensure_future(r.call(SPEC, MSG, {}))
        await asyncio.sleep(0.01)
        task.cancel()  # an abort elsewhere (spend cap, breaker, Ctrl-C) cancels the caller
        with pytest.raises(asyncio.CancelledError):
            await task
        return await r.settle(1.0)

    assert asyncio.run(abort_midway()) == 0
    sent_params = client.with_output_limit({}, r.default_max_tokens)  # keyed by the params as sent
    assert len(sent) == 1 and r.cache.get(call_key(SPEC.call_model, None, MSG, sent_params, 0)) is not None
    assert r.spent == pytest.approx(0.01)  # paid for, and counted against the cap


# -- the spend cap is hard ----------------------------------------------------------------------------------


def recording(
    monkeypatch: pytest.MonkeyPatch,
    *,
    prompt_tokens: Any = 10,
    cost: float | None = None,
    error: CallError | None = None,
) -> list[dict[str, Any]]:
    """acomplete replaced by a provider that bills the output limit it is sent (and `prompt_tokens`)."""
    sent: list[dict[str, Any]] = []

    async def fake_acomplete(spec: ModelSpec, messages: Any, params: Any, api_key: Any) -> Completion:
        sent.append(dict(params))
        if error is not None:
            raise error
        await asyncio.sleep(0.001)
        pt = prompt_tokens(messages) if callable(prompt_tokens) else prompt_tokens
        ct = params.get("max_tokens") or params.get("max_completion_tokens") or 1000  # no limit: it rambles
        return Completion(
            model=spec.name,
            output="x",
            prompt_tokens=pt,
            completion_tokens=ct,
            cost_usd=spec.cost(pt, ct) if cost is None else cost,
        )

    monkeypatch.setattr(client, "acomplete", fake_acomplete)
    return sent


def test_a_call_with_no_output_limit_is_sent_with_the_one_it_was_reserved_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = recording(monkeypatch)
    r = runner(tmp_path, default_max_tokens=77)
    asyncio.run(r.call(SPEC, MSG, {"temperature": 0}))
    asyncio.run(r.call(SPEC, MSG, {"temperature": 0, "max_tokens": None}))  # None is no limit either
    asyncio.run(r.call(SPEC, MSG, {"temperature": 0, "max_tokens": 500}))  # the traffic's own limit is kept
    asyncio.run(r.call(SPEC, MSG, {"temperature": 0, "max_completion_tokens": 300}))  # ... in its own name
    assert sent == [
        {"temperature": 0, "max_tokens": 77},
        {"temperature": 0, "max_tokens": 500},
        {"temperature": 0, "max_completion_tokens": 300},
    ]  # the 2nd call was the 1st one again
    assert r._worst_case(SPEC, MSG, sent[0]) >= SPEC.cost(0, 77)


def test_the_reservation_bounds_non_ascii_prompts_schemas_and_n(tmp_path: Path) -> None:
    r = runner(tmp_path, default_max_tokens=100)
    cjk = [{"role": "user", "content": "请把这张发票的重复扣款退还给我们的年度订阅账户" * 50}]
    n_chars = len(cjk[0]["content"])
    # a CJK character is 1 token or more (up to 3 bytes): the old chars // 3 bound was a third of it
    assert r._worst_case(SPEC, cjk, {"max_tokens": 100}) >= SPEC.cost(3 * n_chars, 100)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "refund",
                "description": "refund a charge " * 40,
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    plain = r._worst_case(SPEC, MSG, {"max_tokens": 100})
    assert r._worst_case(SPEC, MSG, {"max_tokens": 100, "tools": tools}) >= plain + SPEC.cost(len(str(tools)), 0)
    assert r._worst_case(SPEC, MSG, {"max_tokens": 100, "n": 3}) == pytest.approx(plain + SPEC.cost(0, 200))


def test_spend_stays_under_the_cap_when_every_character_is_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider billing 1.5 tokens per character (CJK, emoji): reserved as the old estimate (chars // 3),
    80 calls in flight overshot the cap by far."""
    recording(monkeypatch, prompt_tokens=lambda messages: int(1.5 * len(messages[0]["content"])))
    cap = 0.05
    r = runner(tmp_path, max_spend_usd=cap, concurrency=16, default_max_tokens=100)
    prompt = "重复扣款退款" * 500

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(r.call(SPEC, [{"role": "user", "content": f"{i} {prompt}"}], {}) for i in range(80)),
            return_exceptions=True,
        )

    results = asyncio.run(many())
    assert any(isinstance(x, SpendCapReached) for x in results)
    assert r.spent <= cap and r.cache.total_cost() <= cap


def test_a_call_that_costs_more_than_reserved_stops_all_buying_past_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = recording(monkeypatch, cost=5.0)  # a provider that ignored the limit: $5 against a $1 cap
    events: list[str] = []
    r = runner(tmp_path, max_spend_usd=1.0, concurrency=1, on_event=lambda kind, data: events.append(kind))

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(r.call(SPEC, [{"role": "user", "content": f"q{i}"}], {}) for i in range(10)), return_exceptions=True
        )

    results = asyncio.run(many())
    assert len(sent) == 1 and isinstance(results[0], Completion)
    assert all(isinstance(x, SpendCapReached) for x in results[1:])
    assert r.stats.over_reservation == 1 and "over_reservation" in events


def test_a_call_that_timed_out_counts_its_reservation_as_spent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request sent and never answered may still be generated and billed: the cap counts it."""
    recording(monkeypatch, error=CallError("transient", "Timeout: read timed out", maybe_billed=True))
    r = runner(tmp_path, max_retries=2, default_max_tokens=100)
    with pytest.raises(CallError):
        asyncio.run(r.call(SPEC, MSG, {}))
    worst = r._worst_case(SPEC, MSG, {"max_tokens": 100})
    assert r.spent == pytest.approx(3 * worst) and r.stats.unanswered_usd == pytest.approx(3 * worst)
    assert r.cache.total_cost() == 0  # what the run knows it bought: nothing


def test_an_answer_quoting_a_key_is_masked_before_it_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "AIzaSy" + "Zx81kLmN0pQrStUvWxYz12345678abcd"
    monkeypatch.setenv("GEMINI_API_KEY", key)
    scripted(monkeypatch, [f"my config says key={key} ok"])
    r = runner(tmp_path)
    out = asyncio.run(r.call(SPEC, MSG, {}))
    assert key not in out.output and "***" in out.output
    r.cache.close()
    assert key not in (tmp_path / "calls.jsonl").read_text()
