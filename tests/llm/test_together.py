"""Calls made side by side stop side by side: an abort in one cancels the others, and the runner keeps
the answer of each one already sent (a call left running after its run stopped was answered, paid for
and forgotten, then bought again by the resumed run)."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import AuthError
from equiv.judging.pairwise import Judge
from equiv.llm import client
from equiv.llm.client import CallError, ModelSpec
from equiv.llm.together import together
from equiv.schema import Completion
from tests.llm.test_runner import SPEC, runner


def test_results_come_in_argument_order() -> None:
    async def after(s: float, v: int) -> int:
        await asyncio.sleep(s)
        return v

    assert asyncio.run(together(after(0.02, 1), after(0.0, 2), after(0.01, 3))) == [1, 2, 3]


def test_one_error_cancels_the_others_and_waits_for_them() -> None:
    seen: list[str] = []

    async def slow() -> int:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # cleaning up takes a moment: together waits for it
            seen.append("cancelled, cleaned up")
            raise
        return 1

    async def fails() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    async def main() -> None:
        with pytest.raises(ValueError, match="boom"):
            await together(slow(), fails(), slow())
        assert seen == ["cancelled, cleaned up"] * 2  # before the error reached the caller

    asyncio.run(main())


def test_a_call_error_lets_the_others_finish_then_is_raised() -> None:
    finished: list[int] = []

    async def slow(i: int) -> int:
        await asyncio.sleep(0.02)
        finished.append(i)
        return i

    async def fails() -> int:
        raise CallError("fatal", "400 context too long")

    with pytest.raises(CallError, match="context too long"):
        asyncio.run(together(fails(), slow(1), slow(2)))
    assert sorted(finished) == [1, 2]  # paid for once sent: not cut off


def test_an_abort_after_a_call_error_still_stops_the_rest() -> None:
    seen: list[str] = []

    async def fails() -> int:
        raise CallError("fatal", "400")

    async def aborts() -> int:
        await asyncio.sleep(0.01)
        raise AuthError("bad key")

    async def slow() -> int:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return 1

    with pytest.raises(AuthError):  # the run stops: that error wins over the pair's own failure
        asyncio.run(together(fails(), aborts(), slow()))
    assert seen == ["cancelled"]


def test_a_call_shared_with_another_pair_is_not_cut_off_when_its_sibling_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair's baseline call is shared in flight with its judge check's identical call; the pair's
    candidate is refused (400). The check still gets the baseline answer, bought once."""
    sent: list[str] = []

    async def provider(spec: ModelSpec, messages: Any, params: Any, api_key: Any) -> Completion:
        text = messages[-1]["content"]
        sent.append(text)
        if text == "candidate":
            raise CallError("fatal", "400 context too long")
        await asyncio.sleep(0.03)
        return Completion(model=spec.name, output="base", prompt_tokens=1, completion_tokens=1, cost_usd=0.01)

    monkeypatch.setattr(client, "acomplete", provider)
    r = runner(tmp_path)
    base = [{"role": "user", "content": "baseline"}]

    async def main() -> str:
        pair = asyncio.ensure_future(
            together(r.call(SPEC, base, {}), r.call(SPEC, [{"role": "user", "content": "candidate"}], {}))
        )
        await asyncio.sleep(0)
        check = asyncio.ensure_future(r.call(SPEC, base, {}))  # the judge check's baseline: shared
        with pytest.raises(CallError):
            await pair
        return (await check).output

    assert asyncio.run(main()) == "base"
    assert sent.count("baseline") == 1


def test_the_first_error_in_argument_order_is_raised() -> None:
    async def fails(msg: str) -> int:
        raise ValueError(msg)

    with pytest.raises(ValueError, match="first"):
        asyncio.run(together(fails("first"), fails("second")))


def test_cancelling_the_caller_cancels_every_call_and_waits() -> None:
    seen: list[str] = []

    async def slow(i: int) -> int:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)
            seen.append(f"{i} stopped")
            raise
        return i

    async def main() -> None:
        task = asyncio.ensure_future(together(slow(1), slow(2)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(seen) == ["1 stopped", "2 stopped"]

    asyncio.run(main())


def test_a_judge_order_in_flight_when_the_other_aborts_the_run_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair's first order is refused (a bad key: the run stops at once) while its second is on its way:
    once the run has settled, the second order's answer is in the cache, so a resumed run does not buy it."""
    answered: list[str] = []

    async def provider(spec: ModelSpec, messages: Any, params: Any, api_key: Any) -> Completion:
        text = messages[-1]["content"]
        if text.startswith("A: first answer"):  # order AB: the first answer is shown as A
            raise CallError("auth", "401 invalid api key")
        await asyncio.sleep(0.05)
        answered.append(text)
        return Completion(
            model=spec.name,
            output='{"winner": "A", "reason": "r"}',
            prompt_tokens=9,
            completion_tokens=9,
            cost_usd=0.01,
        )

    monkeypatch.setattr(client, "acomplete", provider)
    r = runner(tmp_path)
    judge = Judge(runner=r, spec=SPEC, template=TEMPLATE, retries=0, params={})
    messages = [{"role": "user", "content": "question"}]

    async def main() -> int:
        with pytest.raises(AuthError):
            await judge.both_orders(messages, "first answer", "second answer", ("AB", "BA"))
        return await r.settle(1.0)

    assert asyncio.run(main()) == 0
    assert len(answered) == 1  # the BA order was sent and answered
    assert r.stats.calls == 1 and len(r.cache) == 1 and r.spent == pytest.approx(0.01)  # kept and counted


TEMPLATE = "A: {{ answer_a }}\nB: {{ answer_b }}\n{{ conversation }}"
