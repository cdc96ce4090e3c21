"""Answers and prompts that are not plain text: each is judged on a faithful rendering or fails with its reason.

Never a silent "": a tool call is shown as the call, a filtered reply as what the user got, an empty answer
as empty, and a prompt with an image (which a text judge cannot see) is not judged at all.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from equiv.judging.pairwise import Judge
from equiv.judging.prompt import find_template, render, render_conversation, unjudgeable
from equiv.llm import answer, fake
from equiv.llm.client import ModelSpec
from equiv.schema import Completion, JudgeFailure, Judgment

TEMPLATE = find_template("judges/pairwise.md").read_text(encoding="utf-8")
LOCAL_TEMPLATE = find_template("judges/pairwise-local.md").read_text(encoding="utf-8")
CONV = [{"role": "user", "content": "Where is my order A-1234? It was charged twice."}]
SPEC = ModelSpec(
    name="judge",
    call_model="fake/judge",
    api_base=None,
    api_key_env=None,
    input_per_token=0.0,
    output_per_token=0.0,
    timeout_s=5,
)
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


class Replies:
    """Stands in for the Runner: returns the completions given, records the prompts sent."""

    def __init__(self, replies: list[Completion]) -> None:
        self.replies = replies
        self.prompts: list[Any] = []

    async def call(self, spec: ModelSpec, messages: Any, params: Any, sample: int = 0) -> Completion:
        self.prompts.append(messages)
        return self.replies.pop(0)


def _comp(output: str, finish: str | None = "stop") -> Completion:
    return Completion(
        model="judge", output=output, prompt_tokens=1, completion_tokens=1, cost_usd=0.0, finish_reason=finish
    )


def _judge(replies: list[Completion], template: str = TEMPLATE) -> tuple[Judge, Replies]:
    runner = Replies(replies)
    return Judge(runner=runner, spec=SPEC, template=template, retries=2, params={}), runner  # type: ignore[arg-type]


# -- what an answer shows ---------------------------------------------------------------------------------------


def test_a_tool_call_is_rendered_as_the_call_marked_as_one_after_any_text() -> None:
    msg = {
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order_id": "A-1234"}'},
            },
            {"id": "c2", "type": "function", "function": {"name": "refund", "arguments": '{"order_id": "A-1234",'}},
        ],
    }
    text = answer.render_message(msg, "tool_calls")
    assert text == (
        '[tool call] lookup_order\narguments: {"order_id": "A-1234"}\n\n'
        '[tool call] refund\narguments: {"order_id": "A-1234",'
    )  # malformed arguments shown as written
    with_text = answer.render_message({**msg, "content": "Let me check."}, "tool_calls")
    assert with_text.startswith("Let me check.\n\n[tool call] lookup_order")
    legacy = answer.render_message({"content": None, "function_call": {"name": "f", "arguments": {"x": 1}}})
    assert legacy == '[tool call] f\narguments: {"x": 1}'
    assert answer.tool_calls_of(msg)[0] == msg["tool_calls"][0]


def test_a_content_filter_shows_what_the_user_received() -> None:
    assert answer.render_message({"content": None}, "content_filter") == answer.BLOCKED
    assert answer.render_message({"content": ""}, "content_filter") == answer.BLOCKED
    cut = answer.render_message({"content": "Your order ships"}, "content_filter")
    assert cut == "Your order ships\n\n" + answer.CUT
    assert (
        answer.render_message({"content": None, "refusal": "I can't help with that."})
        == "[refusal] I can't help with that."
    )
    assert answer.render_message({"content": None}, "stop") == ""  # a genuine empty answer stays empty...
    assert answer.render_message({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}) == "a\nb"


def test_an_empty_answer_is_shown_to_the_judge_as_empty() -> None:
    """...and the judge is told so, rather than reading a blank it could take for a rendering fault."""
    for template in (TEMPLATE, LOCAL_TEMPLATE):
        prompt = render(template, CONV, "  \n", "Order A-1234 ships today.")[0]["content"]
        inside_a = prompt.split("<answer_a>\n", 1)[1].split("\n</answer_a>", 1)[0]
        assert inside_a == answer.EMPTY


def test_the_templates_tell_the_judge_how_to_read_tool_calls_and_notices() -> None:
    for template in (TEMPLATE, LOCAL_TEMPLATE):
        rules = template.split("<conversation>", 1)[0]  # fixed text, before the data (a local server reuses it)
        assert "[tool call]" in rules and "content filter" in rules and "empty" in rules


def test_the_simulated_judge_reads_a_tool_call_by_its_arguments_and_a_notice_as_no_facts() -> None:
    conv = [{"role": "user", "content": "refund duplicate invoice charge"}]
    good = answer.render_message(
        {
            "content": None,
            "tool_calls": [
                {
                    "type": "function",
                    "function": {
                        "name": "refund",
                        "arguments": json.dumps({"answer": "refund the duplicate invoice charge"}),
                    },
                }
            ],
        }
    )
    verdict = json.loads(fake.judge("fake/judge", render(TEMPLATE, conv, answer.BLOCKED, good)))
    assert verdict["winner"] == "B"
    blocked_vs_empty = json.loads(fake.judge("fake/judge", render(TEMPLATE, conv, answer.BLOCKED, "")))
    assert blocked_vs_empty["winner"] == "tie"


# -- the conversation -------------------------------------------------------------------------------------------


def test_the_conversation_shows_tool_calls_and_their_results() -> None:
    """Agent traffic: an assistant turn that only called a tool is not rendered as an empty turn."""
    conv = [
        {"role": "user", "content": "Where is order A-1234?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": "A-1234"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
        {"role": "user", "content": [{"type": "text", "text": "And when"}, {"type": "text", "text": "will it come?"}]},
    ]
    text = render_conversation(conv)
    assert '[assistant]\n[tool call] lookup_order\narguments: {"id": "A-1234"}' in text
    assert '[tool result (c1)]\n{"status": "shipped"}' in text
    assert "[user]\nAnd when\nwill it come?" in text
    assert unjudgeable(conv) is None


def test_a_prompt_with_image_parts_is_not_judgeable_and_says_why() -> None:
    conv = [{"role": "user", "content": [{"type": "text", "text": "What is wrong in this screenshot?"}, IMAGE]}]
    reason = unjudgeable(conv)
    assert reason == "not judged: the prompt has image parts (image_url) and the judge sees text only"
    audio = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]
    assert "non-text parts (input_audio)" in (unjudgeable(audio) or "")
    # if it is rendered anyway, the judge is told that something is missing rather than shown nothing
    assert "[image_url part: not shown to the judge]" in render_conversation(conv)


def test_the_judge_does_not_judge_a_prompt_it_cannot_see() -> None:
    """Before: the image part was dropped and the judge compared two answers about a picture it never saw."""
    conv = [{"role": "user", "content": [{"type": "text", "text": "Describe this"}, IMAGE]}]
    judge, runner = _judge([])
    judgments, failures = asyncio.run(judge.both_orders(conv, "a cat", "a dog", ("baseline_first", "candidate_first")))
    assert judgments == [] and runner.prompts == []  # no call bought
    assert [f.order for f in failures] == ["baseline_first", "candidate_first"]
    assert all("image parts" in f.error and "text only" in f.error for f in failures)


# -- the judge's own reply --------------------------------------------------------------------------------------


def test_a_judge_reply_cut_by_the_content_filter_is_a_failure_with_its_reason() -> None:
    """Never read as a verdict (the filter kept part of it), never retried blindly as 'unparseable'."""
    judge, runner = _judge([_comp('{"winner": "A", "reason": "', "content_filter")])
    out = asyncio.run(judge.one("baseline_first", CONV, "x", "y"))
    assert isinstance(out, JudgeFailure) and out.error == "judge reply blocked by the provider's content filter"
    assert len(runner.prompts) == 1
    judge, _ = _judge([_comp('{"winner": "B", "reason": "ok"}', "stop")])
    assert isinstance(asyncio.run(judge.one("baseline_first", CONV, "x", "y")), Judgment)


@pytest.mark.parametrize("behaviour", ["tools", "filtered", "filtercut", "empty"])
def test_behaviour_suffixes_change_the_shape_not_the_text(behaviour: str) -> None:
    tools = [{"type": "function", "function": {"name": "lookup_order"}}]
    for i in range(8):
        msgs = [{"role": "user", "content": f"Refund {i} duplicate invoice charge annual subscription"}]
        text, _, _ = fake.reply(f"fake/skill-80-{behaviour}", msgs)
        assert text == fake.reply("fake/skill-80", msgs)[0]
        message, finish = fake.shape(f"fake/skill-80-{behaviour}", msgs, text, tools)
        if behaviour == "tools":
            assert finish == "tool_calls" and message["content"] is None
            assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"answer": text}
            assert fake.shape("fake/skill-80-tools", msgs, text, None) == (
                {"role": "assistant", "content": text},
                "stop",
            )
        elif not fake.hit(f"fake/skill-80-{behaviour}", msgs):
            assert (message["content"], finish) == (text, "stop")
        else:
            expected = {"filtered": (None, "content_filter"), "empty": ("", "stop")}.get(behaviour)
            if expected is None:
                assert finish == "content_filter" and text.startswith(message["content"]) and message["content"]
            else:
                assert (message["content"], finish) == expected
