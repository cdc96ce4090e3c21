"""labels_from_prompt: the label set a classification prompt lists, or None."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from equiv.judging.labels import labels_from_prompt

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo" / "traffic.jsonl"
TRIAGE = ["billing", "login", "bug", "shipping", "feature_request", "account"]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def demo_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_demo_ticket_triage_prompt_gives_its_labels() -> None:
    triage = [r for r in demo_records() if r["prompt_type"] == "ticket-triage"]
    assert triage
    for r in triage:
        assert labels_from_prompt(r["messages"]) == TRIAGE


def test_demo_prompts_that_are_not_classifications_give_none() -> None:
    others = [r for r in demo_records() if r["prompt_type"] != "ticket-triage"]
    assert {r["prompt_type"] for r in others} >= {"summary", "invoice-extraction"}
    for r in others:
        assert labels_from_prompt(r["messages"]) is None, r["id"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (
            "Answer with exactly one label from: billing, login, bug. Reply with the label only.",
            ["billing", "login", "bug"],
        ),
        ("Categories: spam | ham | unsure\n\nMail: win a prize", ["spam", "ham", "unsure"]),
        ("Pick one of [spam, ham, unsure] for this mail.", ["spam", "ham", "unsure"]),
        ("Respond with one of: positive, negative or neutral.", ["positive", "negative", "neutral"]),
        ("Options: positive, negative, or neutral.", ["positive", "negative", "neutral"]),
        (
            "Classify the ticket.\nLabels:\n- billing: payments and refunds\n- login\n- bug\n\nTicket: hi",
            ["billing", "login", "bug"],
        ),
        (
            "Choose one of the following categories:\n1. Sports\n2. Politics\n3) Tech\n\nText: ...",
            ["Sports", "Politics", "Tech"],
        ),
        ('Intent: one of ("greeting", "complaint", "question")', ["greeting", "complaint", "question"]),
        ("Answer either yes or no.", ["yes", "no"]),
        ("Tag it with one of these tags - urgent, normal, low", ["urgent", "normal", "low"]),
        ("Classes: `cat`, `dog`, `cat`", ["cat", "dog"]),  # in order, each once
        (
            'Labels: **billing**, "login", __bug__, feature_, _private',
            ["billing", "login", "bug", "feature_", "_private"],
        ),
    ],
)
def test_phrasings(prompt: str, expected: list[str]) -> None:
    assert labels_from_prompt(user(prompt)) == expected


@pytest.mark.parametrize(
    "prompt",
    [
        "Summarize the following message in one sentence.\n\nHi team, the office is closed on Friday.",
        "This is one of the best products I own, I love it, really.",
        "one of us, ok",
        "Reply with the label only.",
        "Labels: billing",  # one label is not a set
        "Categories: the customer is asking about a refund for a duplicate payment, or something else",
        'Extract the fields and reply with JSON: {"vendor": string, "total": number}. Allowed values: {"a": 1}',
        "Options:\nnone of these lines is a bullet\nso nothing is listed",
        "",
    ],
)
def test_nothing_convincing_gives_none(prompt: str) -> None:
    assert labels_from_prompt(user(prompt)) is None


def test_system_message_first_then_users() -> None:
    msgs = [
        {"role": "user", "content": "Categories: x, y, z"},
        {"role": "system", "content": "Labels: billing, login"},
        {"role": "assistant", "content": "Categories: p, q"},
    ]
    assert labels_from_prompt(msgs) == ["billing", "login"]
    assert labels_from_prompt(msgs[:1] + msgs[2:]) == ["x", "y", "z"]  # never read from an assistant turn
    assert labels_from_prompt([msgs[2]]) is None


def test_content_parts_and_odd_messages() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "Labels: a, b"}, {"type": "image_url"}]}]
    assert labels_from_prompt(parts) == ["a", "b"]
    odd: list[Any] = ["not a message", {"role": "user", "content": None}, {"content": "Labels: c, d"}]
    assert labels_from_prompt(odd) == ["c", "d"]
    assert labels_from_prompt([]) is None


def test_items_longer_than_40_chars_are_not_labels() -> None:
    long = "x" * 41
    assert labels_from_prompt(user(f"Labels: {long}, short")) is None
    assert labels_from_prompt(user(f"Labels: {'x' * 40}, short")) == ["x" * 40, "short"]


@given(st.lists(st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True), min_size=2, max_size=8, unique=True))
def test_any_listed_label_set_is_read_back(labels: list[str]) -> None:
    assert labels_from_prompt(user(f"Answer with one label from: {', '.join(labels)}.\n\nInput: hello")) == labels


@given(st.text(max_size=300))
def test_never_raises_and_labels_are_short(text: str) -> None:
    found = labels_from_prompt(user(text))
    assert found is None or (len(found) >= 2 and all(0 < len(x) <= 40 for x in found))
