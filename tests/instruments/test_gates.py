"""Gates: each answer alone, pass or fail, with a short reason when it fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from equiv.instruments import compile_schema
from equiv.instruments.gates import run_gate, tool_call_gate
from tests.instruments.helpers import check

INVOICE = {
    "type": "object",
    "required": ["total", "items"],
    "properties": {
        "total": {"type": "number"},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
    "additionalProperties": False,
}


def gate(kind: str, text: str, **settings: Any) -> tuple[bool, str | None]:
    return run_gate(check(kind, **settings), text)


# json


@pytest.mark.parametrize("text", ['{"a": 1}', '```json\n{"a": 1}\n```', "```\n[]\n```", "true"])
def test_json_passes(text: str) -> None:
    assert gate("json", text) == (True, None)


@pytest.mark.parametrize("text", ["", '{"a": 1} done', "```json\n{}\n```\n```json\n{}\n```", "{'a': 1}"])
def test_json_fails_with_reason(text: str) -> None:
    ok, why = gate("json", text)
    assert not ok
    assert why is not None and why.startswith("not JSON")


# json_schema


def test_json_schema_passes_fenced() -> None:
    text = '```json\n{"total": 12.5, "items": [{"sku": "A1"}]}\n```'
    assert gate("json_schema", text, schema=INVOICE) == (True, None)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"total": "12.5", "items": []}', "'12.5' is not of type 'number' at $.total"),
        ('{"items": []}', "'total' is a required property at $"),
        ('{"total": 1, "items": [{"sku": "A"}, {}]}', "'sku' is a required property at $.items[1]"),
        ('{"total": 1, "items": [], "x": 0}', "Additional properties are not allowed"),
        ("[1]", "is not of type 'object' at $"),
    ],
)
def test_json_schema_failure_reason(text: str, fragment: str) -> None:
    ok, why = gate("json_schema", text, schema=INVOICE)
    assert not ok
    assert why is not None and why.startswith("schema: ")
    assert fragment in why


def test_json_schema_not_json_says_so() -> None:
    ok, why = gate("json_schema", "total: 12", schema=INVOICE)
    assert not ok and why is not None and why.startswith("not JSON")


def test_json_schema_reason_is_short() -> None:
    big = json.dumps({"total": "x" * 5000, "items": []})
    ok, why = gate("json_schema", big, schema=INVOICE)
    assert not ok and why is not None and len(why) < 250


def test_json_schema_unloaded_path_raises() -> None:
    with pytest.raises(ValueError, match="not loaded"):
        gate("json_schema", "{}", schema="schemas/invoice.json")


def test_json_schema_invalid_schema_raises() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        gate("json_schema", "{}", schema={"type": "no-such-type"})


def test_json_schema_draft_from_dollar_schema() -> None:
    # draft-04 exclusiveMaximum is a boolean; the same schema under 2020-12 would be invalid
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 10, "exclusiveMaximum": True}
    assert gate("json_schema", "9", schema=schema) == (True, None)
    assert not gate("json_schema", "10", schema=schema)[0]


def test_compiled_validator_is_cached_per_schema_content() -> None:
    a = compile_schema({"type": "object", "required": ["x"]})
    b = compile_schema({"required": ["x"], "type": "object"})  # same schema, other key order
    assert a is b
    assert compile_schema({"type": "array"}) is not a


# regex


def test_regex_search_anywhere() -> None:
    assert gate("regex", "Order #123 shipped", pattern=r"#\d+") == (True, None)
    assert gate("regex", "first line\nsecond", pattern=r"^second") == (False, "no match for /^second/")
    assert gate("regex", "first line\nsecond", pattern=r"(?m)^second")[0]


def test_regex_ignore_case() -> None:
    assert not gate("regex", "BILLING", pattern="billing")[0]
    assert gate("regex", "BILLING", pattern="billing", ignore_case=True)[0]


# max_chars


@pytest.mark.parametrize(("text", "ok"), [("x" * 10, True), ("x" * 11, False), ("", True), (" " * 9 + "x ", False)])
def test_max_chars_boundary(text: str, ok: bool) -> None:
    passed, why = gate("max_chars", text, value=10)
    assert passed is ok
    assert (why is None) is ok
    if not ok:
        assert why == "11 characters > 10"


# tool_call

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
PING = {"type": "function", "function": {"name": "ping"}}  # no parameters: any object


def call(name: str, arguments: str, id_: str = "call_1") -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tool_call_valid() -> None:
    assert tool_call_gate([call("get_weather", '{"city": "Paris", "unit": "c"}')], [WEATHER, PING]) == (True, None)
    assert tool_call_gate([call("ping", '{"anything": [1]}')], [WEATHER, PING]) == (True, None)
    assert tool_call_gate([call("ping", "{}"), call("get_weather", '{"city": "Oslo"}', "c2")], [WEATHER, PING])[0]


def test_tool_call_wrong_name() -> None:
    ok, why = tool_call_gate([call("get_wether", '{"city": "Paris"}')], [WEATHER])
    assert not ok and why == "calls 'get_wether', not one of the request's tools"


def test_tool_call_arguments_not_json() -> None:
    ok, why = tool_call_gate([call("get_weather", '{"city": "Paris"')], [WEATHER])
    assert not ok and why is not None and why.startswith("get_weather: arguments not JSON")
    ok, why = tool_call_gate([call("ping", '["not", "an", "object"]')], [PING])
    assert not ok and why == "ping: arguments are not a JSON object"


def test_tool_call_arguments_violate_schema() -> None:
    ok, why = tool_call_gate([call("get_weather", '{"unit": "k"}')], [WEATHER])
    assert not ok and why is not None
    assert why.startswith("get_weather: arguments ") and "at $" in why


def test_tool_call_second_call_named_in_reason() -> None:
    ok, why = tool_call_gate([call("ping", "{}"), call("nope", "{}", "c2")], [WEATHER, PING])
    assert not ok and why is not None and why.startswith("call 2: ")


def test_tool_call_no_call() -> None:
    assert tool_call_gate([], [WEATHER]) == (False, "no tool call")


@pytest.mark.parametrize("tools", [None, []])
def test_tool_call_request_without_tools(tools: list[dict[str, Any]] | None) -> None:
    assert tool_call_gate([call("ping", "{}")], tools) == (False, "the request has no tools")


def test_tool_call_invalid_parameters_schema_fails_the_gate() -> None:
    broken = {"type": "function", "function": {"name": "x", "parameters": {"type": 12}}}
    ok, why = tool_call_gate([call("x", "{}")], [broken])
    assert not ok and why is not None and "not a valid JSON Schema" in why


def test_tool_call_via_run_gate() -> None:
    assert run_gate(check("tool_call"), "", [call("ping", "{}")], [PING]) == (True, None)
