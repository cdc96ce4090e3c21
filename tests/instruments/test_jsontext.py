"""Reading an answer as JSON: one fence around the whole answer is accepted, anything else around it is not."""

from __future__ import annotations

import pytest

from equiv.instruments import parse_json


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  \n{"a": 1}\n ', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```JSON\n{"a": 1}\n```', {"a": 1}),
        ("```\n[1, 2]\n```", [1, 2]),
        ('\n\n  ```json\n{"a": 1}\n```  \n', {"a": 1}),
        ('```json {"a": 1} ```', {"a": 1}),
        ('"just a string"', "just a string"),  # any JSON value, like promptfoo's is-json
        ("42", 42),
        ("null", None),
        ('{"code": "```"}', {"code": "```"}),  # a fence inside a string is not a fence
    ],
)
def test_parses(text: str, value: object) -> None:
    parsed = parse_json(text)
    assert parsed.ok, parsed.why
    assert parsed.value == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("```json\n```", "empty"),
        ('{"a": 1} Hope this helps!', "Extra data"),
        ('Here it is: {"a": 1}', "Expecting value"),
        ('Here it is:\n```json\n{"a": 1}\n```', "Expecting value"),
        ('```json\n{"a": 1}\n```\nThat is all.', "not JSON"),
        ('```json\n{"a": 1}\n```\n```json\n{"b": 2}\n```', "not JSON"),  # two fences
        ('{"a": 1,}', "Expecting property name"),
        ('{"a": 1 "b": 2}', "Expecting ',' delimiter at line 1 column 9"),
        ('{"a": NaN}', "NaN"),
        ("Infinity", "Infinity"),
        ("```python\nx = 1\n```", "not JSON"),
    ],
)
def test_not_json(text: str, why: str) -> None:
    parsed = parse_json(text)
    assert not parsed.ok
    assert parsed.why is not None and parsed.why.startswith("not JSON")
    assert why in parsed.why


def test_too_deep_is_not_json_not_a_crash() -> None:
    parsed = parse_json("[" * 100_000 + "]" * 100_000)
    assert not parsed.ok
