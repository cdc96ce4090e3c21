"""Both orders for every pair, and the judge check (baseline vs a degraded copy of itself)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from equiv.judging.parse import parse_reply
from equiv.judging.prompt import render, unjudgeable
from equiv.llm.answer import CONTENT_FILTER
from equiv.llm.client import CallError, ModelSpec
from equiv.llm.runner import Runner
from equiv.llm.together import together
from equiv.schema import JudgeFailure, Judgment

JUDGE_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"winner": {"type": "string", "enum": ["A", "B", "tie"]}, "reason": {"type": "string"}},
            "required": ["winner", "reason"],
            "additionalProperties": False,
        },
    },
}


@dataclass
class Judge:
    runner: Runner
    spec: ModelSpec
    template: str
    retries: int
    params: dict[str, Any]
    # local judges: a pair's two orders run back to back and no other judge call comes between them, so the
    # server's slot still holds the first order's prompt when the second arrives and reads only the answers
    # again (with other pairs' calls in between, llama.cpp re-read the whole conversation for the second order)
    sequential: bool = False
    # the start of the reply, sent as the assistant's own words (local judges): the model writes only the
    # verdict word that follows, and `close` ends the object; servers that echo the prefill and servers that
    # return only the word both parse, and so does a server that ignores both and writes the whole object
    prefill: str = ""
    close: str = ""
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def one(
        self,
        order: str,
        messages: list[dict[str, Any]],
        a: str,
        b: str,
        template: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Judgment | JudgeFailure:
        """One order: call, parse; an unparseable reply is retried, then recorded as a failure.

        `template` (default: this judge's) and `extra` (labels, reference, rubric) pick the type's judge prompt."""
        prompt = render(template if template is not None else self.template, messages, a, b, **(extra or {}))
        if self.prefill:
            prompt = [*prompt, {"role": "assistant", "content": self.prefill}]
        last = ""
        for attempt in range(self.retries + 1):
            try:
                comp = await self.runner.call(self.spec, prompt, self.params, sample=attempt)
            except CallError as err:
                return JudgeFailure(order=order, judge=self.spec.name, error=f"judge call failed: {err.message}")
            if comp.finish_reason == CONTENT_FILTER:  # what came back is not the judge's whole reply: never read it
                return JudgeFailure(
                    order=order,
                    judge=self.spec.name,
                    error="judge reply blocked by the provider's content filter",
                    raw=comp.output[:500],
                )
            winner, reason = parse_reply(comp.output)
            if winner is None and self.prefill:
                rest = comp.output.removeprefix(self.prefill)
                winner, reason = parse_reply(self.prefill + rest + self.close)
            if winner is not None:
                # logprobs only when the verdict word was all the model wrote (at most 2 tokens: "t" "ie"),
                # so its first token was the verdict; a server that ignored the prefill and wrote the whole
                # object decoded "{" first, and those alternatives say nothing about A or B
                spoke = bool(self.prefill) and comp.completion_tokens <= 2
                return Judgment(
                    order=order,
                    winner=winner,
                    judge=self.spec.name,
                    reason=reason,
                    logprobs=verdict_logprobs(comp.first_token_logprobs) if spoke else None,
                )
            last = comp.output
        return JudgeFailure(
            order=order,
            judge=self.spec.name,
            error=f"unparseable judge reply after {self.retries + 1} tries",
            raw=last[:500],
        )

    async def both_orders(
        self,
        messages: list[dict[str, Any]],
        first: str,
        second: str,
        orders: tuple[str, str],
        template: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[list[Judgment], list[JudgeFailure]]:
        """`first` is shown as A in orders[0] and as B in orders[1].

        A conversation the judge cannot see (image parts: see `unjudgeable`) is not judged: both orders are
        failures with the reason, and no call is made.
        """
        blind = unjudgeable(messages)
        if blind is not None:
            return [], [JudgeFailure(order=o, judge=self.spec.name, error=blind) for o in orders]
        if self.sequential:
            async with self._turn:
                results = [
                    await self.one(orders[0], messages, first, second, template, extra),
                    await self.one(orders[1], messages, second, first, template, extra),
                ]
        else:
            results = await together(
                self.one(orders[0], messages, first, second, template, extra),
                self.one(orders[1], messages, second, first, template, extra),
            )
        judgments = [r for r in results if isinstance(r, Judgment)]
        failures = [r for r in results if isinstance(r, JudgeFailure)]
        return judgments, failures


@dataclass
class Panel:
    """Several judges (SPEC "Judges": Panel): each judges both orders; the pair score is the mean of all."""

    judges: list[Judge]

    async def both_orders(
        self,
        messages: list[dict[str, Any]],
        first: str,
        second: str,
        orders: tuple[str, str],
        template: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[list[Judgment], list[JudgeFailure]]:
        results = await together(
            *(j.both_orders(messages, first, second, orders, template, extra) for j in self.judges)
        )
        return [x for r in results for x in r[0]], [x for r in results for x in r[1]]


# A local judge on CPU: each forward pass of the 1.5B model costs ~40 ms on 2 cores, and a small model
# decides before it explains, so a reason adds seconds per call and nothing to the verdict. The reply's
# opening `{"winner": "` is prefilled (read with the prompt: ~16 ms a token here) and llama.cpp's grammar
# admits only the verdict word, so the model's first token (sampled from the prompt's own last pass) is
# the verdict and at most one more pass ends it; equiv closes the object with `"}`. Every reply parses
# and no reason is recorded.
LOCAL_JUDGE_PREFILL = '{"winner": "'
LOCAL_JUDGE_CLOSE = '"}'
LOCAL_JUDGE_GRAMMAR = 'root ::= "A" | "B" | "tie"'
# The verdict token's alternatives come back with it (top 20: "A", "B" and "tie" are nearly always among
# them); the analysis may use them to correct the judge's position preference (judge_calibration).
LOCAL_JUDGE_PARAMS: dict[str, Any] = {
    "max_tokens": 2,
    "logprobs": True,
    "top_logprobs": 20,
    "extra_body": {"grammar": LOCAL_JUDGE_GRAMMAR},
}
VERDICT_WORDS = ("A", "B", "tie")


def verdict_logprobs(alternatives: dict[str, float] | None) -> dict[str, float] | None:
    """The judge's log-probabilities of writing each verdict word, from its first token's alternatives.

    The server reports the model's own distribution (before the grammar): a verdict word missing from the
    top alternatives is less likely than all of them: "tie" then gets the smallest listed value (an upper
    bound). None unless both "A" and "B" are listed (e.g. a server that returns only the chosen token):
    their difference is what calibration reads, and a floor there would be invented, not read.
    """
    if not alternatives or "A" not in alternatives or "B" not in alternatives:
        return None
    floor = min(alternatives.values())
    return {w: round(alternatives.get(w, floor), 6) for w in VERDICT_WORDS}


def make_judge(runner: Runner, spec: ModelSpec, settings: Any, template: str = "") -> Judge:
    """One judge as a run calls it: JSON-schema replies where the provider takes them; a local judge gets
    the prefilled verdict word, its grammar and logprobs, and its two orders back to back."""
    from equiv.llm.client import supports_json_schema
    from equiv.local import is_local

    local = is_local(spec.name)
    return Judge(
        runner=runner,
        spec=spec,
        template=template,
        retries=settings.judge_retries,
        params=judge_params(supports_json_schema(spec) and not local, LOCAL_JUDGE_PARAMS if local else None),
        sequential=local,
        prefill=LOCAL_JUDGE_PREFILL if local else "",
        close=LOCAL_JUDGE_CLOSE if local else "",
    )


def judge_params(spec_supports_schema: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"temperature": 0, "max_tokens": 400}
    if spec_supports_schema:
        params["response_format"] = JUDGE_SCHEMA
    params.update(extra or {})
    return params


def degrade(text: str) -> str:
    """The judge check's control: the answer's first third, cut at a word boundary (SPEC)."""
    cut = len(text) // 3
    head = text[:cut]
    space = max(head.rfind(" "), head.rfind("\n"))
    if space > 0:
        head = head[:space]
    return head.rstrip()
