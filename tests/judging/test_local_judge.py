"""The local judge's protocol: a prefilled reply, a grammar for the verdict word, and a prefix-friendly template."""

from __future__ import annotations

import asyncio
import os

from equiv.judging.pairwise import LOCAL_JUDGE_CLOSE, LOCAL_JUDGE_PREFILL, Judge
from equiv.judging.prompt import find_template, render
from tests.judging.test_hostile import SPEC, ScriptedRunner

LOCAL_TEMPLATE = find_template("judges/pairwise-local.md").read_text(encoding="utf-8")
CONV = [{"role": "user", "content": "Route this ticket. Labels: billing, login.\n\nTicket: charged twice"}]


def _judge(replies: list[str]) -> tuple[Judge, ScriptedRunner]:
    runner = ScriptedRunner(replies)
    judge = Judge(
        runner=runner,
        spec=SPEC,
        template=LOCAL_TEMPLATE,
        retries=1,
        params={},  # type: ignore[arg-type]
        sequential=True,
        prefill=LOCAL_JUDGE_PREFILL,
        close=LOCAL_JUDGE_CLOSE,
    )
    return judge, runner


def test_the_reply_is_prefilled_as_the_assistants_own_words() -> None:
    judge, runner = _judge(['{"winner": "B"}', '{"winner": "A"}'])
    orders = ("baseline_first", "candidate_first")
    judgments, failures = asyncio.run(judge.both_orders(CONV, "billing", "login", orders))
    assert not failures and [j.winner for j in judgments] == ["B", "A"]
    for prompt in runner.prompts:
        assert prompt[-1] == {"role": "assistant", "content": LOCAL_JUDGE_PREFILL}
        assert prompt[0]["role"] == "user" and "<answer_a>" in prompt[0]["content"]


def test_every_way_a_server_may_return_the_verdict_word_parses() -> None:
    """llama.cpp echoes the prefill and stops after the word; others return the word only, or the rest."""
    replies = ['{"winner": "tie', "B", 'A"}', '{"winner": "B"}']
    judge, _ = _judge(replies)
    for expected in (["tie", "B"], ["A", "B"]):
        judgments, failures = asyncio.run(judge.both_orders(CONV, "billing", "login", ("x", "y")))
        assert not failures and [j.winner for j in judgments] == expected


def test_a_reply_that_is_no_verdict_even_with_the_prefill_is_a_failure_never_a_guess() -> None:
    judge, runner = _judge(["maybe", '{"winner": "Aardvark', "A", "A"])
    judgments, failures = asyncio.run(judge.both_orders(CONV, "billing", "login", ("x", "y")))
    assert [f.order for f in failures] == ["x"] and "unparseable" in failures[0].error
    assert [j.winner for j in judgments] == ["A"] and len(runner.prompts) == 3  # 2 tries for x, 1 for y


def test_local_template_shares_everything_but_the_answers_across_orders() -> None:
    """Both orders are one prefix (rules + conversation) then the answers; nothing else follows them."""
    first = render(LOCAL_TEMPLATE, CONV, "billing", "login")[0]["content"]
    second = render(LOCAL_TEMPLATE, CONV, "login", "billing")[0]["content"]
    shared = os.path.commonprefix([first, second])
    assert shared.endswith("<answer_a>\n") and "charged twice" in shared
    assert first.rstrip().endswith("login\n</answer_b>") and second.rstrip().endswith("billing\n</answer_b>")
    # the SPEC's instructions are all there: ignore length and order, the JSON reply, tie
    for needed in ("Ignore the length", "Ignore the order", '{"winner": "A" | "B" | "tie"', '"tie"'):
        assert needed in shared, needed
    assert "{#" not in first and "#}" not in first  # the template's own comment is not sent to the judge


def test_no_other_judge_call_comes_between_a_pairs_two_orders() -> None:
    """Many pairs judged at once: the local judge still sends each pair's orders back to back."""

    class SlowRunner(ScriptedRunner):
        async def call(self, spec, messages, params, sample=0):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.001)
            return await super().call(spec, messages, params, sample)

    runner = SlowRunner(['{"winner": "A"}'] * 40)
    judge = Judge(
        runner=runner,
        spec=SPEC,
        template=LOCAL_TEMPLATE,
        retries=0,
        params={},  # type: ignore[arg-type]
        sequential=True,
        prefill=LOCAL_JUDGE_PREFILL,
    )

    async def main() -> None:
        await asyncio.gather(
            *(
                judge.both_orders([{"role": "user", "content": f"ticket {i}"}], "x", "y", ("o1", "o2"))
                for i in range(20)
            )
        )

    asyncio.run(main())
    seen = [next(t for t in (f"ticket {i}" for i in range(20)) if t + "\n" in p[0]["content"]) for p in runner.prompts]
    assert len(seen) == 40 and all(seen[i] == seen[i + 1] for i in range(0, 40, 2)), seen


def test_the_verdict_words_logprobs_are_recorded_with_the_judgment() -> None:
    from equiv.schema import Completion

    class LogprobRunner(ScriptedRunner):
        async def call(self, spec, messages, params, sample=0):  # type: ignore[no-untyped-def]
            comp = await super().call(spec, messages, params, sample)
            return comp.model_copy(update={"first_token_logprobs": {"A": -0.1, "B": -2.5, "T": -7.0}})

    runner = LogprobRunner(['{"winner": "A"}', '{"winner": "A"}'])
    judge = Judge(
        runner=runner,
        spec=SPEC,
        template=LOCAL_TEMPLATE,
        retries=0,
        params={},  # type: ignore[arg-type]
        sequential=True,
        prefill=LOCAL_JUDGE_PREFILL,
    )
    judgments, _ = asyncio.run(judge.both_orders(CONV, "billing", "login", ("baseline_first", "candidate_first")))
    assert [j.logprobs for j in judgments] == [{"A": -0.1, "B": -2.5, "tie": -7.0}] * 2

    class WholeObjectRunner(LogprobRunner):  # ignored the prefill: wrote the object, "{" decoded first
        async def call(self, spec, messages, params, sample=0):  # type: ignore[no-untyped-def]
            comp = await super().call(spec, messages, params, sample)
            return comp.model_copy(update={"completion_tokens": 7})

    judge.runner = WholeObjectRunner(['{"winner": "A"}', '{"winner": "B"}'])  # type: ignore[assignment]
    judgments, _ = asyncio.run(judge.both_orders(CONV, "billing", "login", ("baseline_first", "candidate_first")))
    assert [j.winner for j in judgments] == ["A", "B"] and [j.logprobs for j in judgments] == [None, None]
    plain = Completion(model="m", output="", prompt_tokens=0, completion_tokens=0, cost_usd=0)
    assert plain.first_token_logprobs is None
