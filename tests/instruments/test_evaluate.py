"""evaluate(): gates on each side, agreement on the pair, and when the judge is not needed."""

from __future__ import annotations

from typing import Any

import pytest

from equiv.instruments import Answer, check_names, evaluate
from tests.instruments.helpers import check


def call(name: str, arguments: str, id_: str) -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


PING = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}


def test_identical_after_stripping() -> None:
    r = evaluate([], Answer("  Paris\n"), Answer("Paris"))
    assert r.identical and r.agreed and r.decided_by == "identical"
    assert r.gates == () and r.agreements == ()


def test_identical_needs_the_same_tool_calls_but_not_the_same_ids() -> None:
    a = Answer("", (call("ping", '{"a": 1, "b": 2}', "call_x"),))
    assert evaluate([], a, Answer("", (call("ping", '{"b":2,"a":1}', "call_y"),))).identical
    assert not evaluate([], a, Answer("", (call("ping", '{"a": 2}', "call_x"),))).identical
    assert not evaluate([], a, Answer("")).identical
    assert not evaluate([], a, Answer("", (a.tool_calls[0], a.tool_calls[0]))).identical


def test_no_agreement_checks_only_identical_decides() -> None:
    r = evaluate([check("json")], Answer('{"a": 1}'), Answer('{"a": 2}'))
    assert not r.identical and not r.agreed and r.decided_by is None
    assert r.gates[0].baseline and r.gates[0].candidate


def test_gates_never_decide() -> None:
    r = evaluate([check("json"), check("label")], Answer("billing"), Answer("Billing."))
    assert r.agreed and r.decided_by == "agreement"
    gate = r.gates[0]
    assert (gate.name, gate.kind, gate.baseline, gate.candidate) == ("json", "json", False, False)
    assert gate.baseline_why is not None and gate.baseline_why.startswith("not JSON")
    r = evaluate([check("json"), check("label")], Answer("billing"), Answer("bug"))
    assert not r.agreed and r.decided_by is None


def test_every_agreement_check_must_agree() -> None:
    checks = [check("fields", tolerance=0.01), check("fields", fields=["id"])]
    agree = evaluate(checks, Answer('{"id": "A", "total": 100}'), Answer('{"id": "A", "total": 100.5}'))
    assert agree.decided_by == "agreement"
    assert [a.name for a in agree.agreements] == ["fields", "fields #2"]
    one_off = evaluate(checks, Answer('{"id": "A", "total": 100}'), Answer('{"id": "A", "total": 102}'))
    assert [a.agree for a in one_off.agreements] == [False, True]
    assert one_off.agreements[0].fields == {"id": True, "total": False}
    assert not one_off.agreed and one_off.decided_by is None


def test_identical_wins_over_disagreeing_checks() -> None:
    r = evaluate([check("fields")], Answer("not json"), Answer("not json "))
    assert not r.agreements[0].agree
    assert r.agreed and r.decided_by == "identical"


def test_gate_outcome_per_side_with_reasons() -> None:
    checks = [check("max_chars", value=5), check("regex", pattern=r"\d", name="has digit")]
    r = evaluate(checks, Answer("12345"), Answer("abcdef"))
    size, digit = r.gates
    assert (size.baseline, size.candidate, size.baseline_why, size.candidate_why) == (
        True,
        False,
        None,
        "6 characters > 5",
    )
    assert (digit.name, digit.kind, digit.baseline, digit.candidate) == ("has digit", "regex", True, False)


def test_tool_call_gate_uses_the_request_tools() -> None:
    a = Answer("", (call("ping", "{}", "1"),))
    b = Answer("", (call("pong", "{}", "2"),))
    g = evaluate([check("tool_call")], a, b, tools=[PING]).gates[0]
    assert g.baseline and not g.candidate and g.candidate_why is not None and "'pong'" in g.candidate_why
    g = evaluate([check("tool_call")], a, b).gates[0]
    assert g.baseline_why == g.candidate_why == "the request has no tools"


def test_unloaded_schema_raises() -> None:
    with pytest.raises(ValueError):
        evaluate([check("json_schema", schema="invoice.json")], Answer("{}"), Answer("{}"))


def test_check_names() -> None:
    checks = [
        check("json"),
        check("regex", pattern="a"),
        check("json"),
        check("regex", pattern="b", name="digits"),
        check("json"),
        check("regex", pattern="c", name="digits"),
    ]
    assert check_names(checks) == ["json", "regex", "json #2", "digits", "json #3", "digits #2"]
    clash = [check("json"), check("json", name="json #2"), check("json")]
    names = check_names(clash)
    assert len(set(names)) == 3 and names[:2] == ["json", "json #2"]
