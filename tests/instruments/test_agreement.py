"""Agreement checks: label, exact and fields compare a pair's two answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from equiv.instruments import normalize_label, values_agree
from equiv.instruments.agreement import fields_agree, run_agreement
from tests.instruments.helpers import check

# label


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Billing.", "billing"),
        ("**billing**", "billing"),
        ("  BILLING!\n", "billing"),
        ('"billing"', "billing"),
        ("`billing`.", "billing"),
        ("**Billing.**", "billing"),
        ("'Billing'?", "billing"),
        ("Technical   support", "technical support"),
        ("Straße", "STRASSE"),  # case folding, not lower()
    ],
)
def test_label_agrees(a: str, b: str) -> None:
    assert run_agreement(check("label"), a, b).agree
    assert run_agreement(check("label", labels=["billing", "bug"]), a, b).agree


@pytest.mark.parametrize(
    ("a", "b"),
    [("billing", "bug"), ("billing", "billing issue"), ("Category: billing", "billing"), ("bill-ing", "billing")],
)
def test_label_disagrees(a: str, b: str) -> None:
    assert not run_agreement(check("label"), a, b).agree


def test_normalize_label() -> None:
    assert normalize_label('  **"Needs Info"**.  ') == "needs info"
    assert normalize_label("v1.2") == "v1.2"  # only trailing punctuation goes
    assert normalize_label("...") == ""


@given(st.text(), st.text())
def test_label_agreement_is_symmetric(a: str, b: str) -> None:
    assert run_agreement(check("label"), a, b).agree == run_agreement(check("label"), b, a).agree


@given(st.text())
def test_normalize_label_is_idempotent(a: str) -> None:
    assert normalize_label(normalize_label(a)) == normalize_label(a)


# exact


def test_exact() -> None:
    assert run_agreement(check("exact"), "  The answer is 4.\n", "The answer is 4.").agree
    assert not run_agreement(check("exact"), "The answer is 4.", "the answer is 4.").agree
    assert not run_agreement(check("exact"), "a  b", "a b").agree


# fields


def fields(a: Any, b: Any, **settings: Any) -> tuple[bool, dict[str, bool] | None]:
    a_text = a if isinstance(a, str) else json.dumps(a)
    b_text = b if isinstance(b, str) else json.dumps(b)
    r = fields_agree(check("fields", **settings), a_text, b_text)
    return r.agree, None if r.fields is None else dict(r.fields)


def test_fields_relative_tolerance() -> None:
    assert fields({"total": 100}, {"total": 100.5}, tolerance=0.01) == (True, {"total": True})
    assert fields({"total": 100}, {"total": 102}, tolerance=0.01) == (False, {"total": False})
    assert fields({"total": 100}, {"total": 101}, tolerance=0.01)[0]  # |a-b| <= t * max(|a|, |b|)
    assert fields({"total": -100}, {"total": -100.5}, tolerance=0.01)[0]
    assert not fields({"total": 0}, {"total": 0.001}, tolerance=0.01)[0]  # relative: nothing is close to 0


def test_fields_tolerance_zero_is_equality() -> None:
    assert fields({"n": 1}, {"n": 1.0}) == (True, {"n": True})
    assert not fields({"n": 1}, {"n": 1.0000001})[0]


def test_fields_bool_is_not_a_number() -> None:
    assert fields({"paid": True}, {"paid": 1}, tolerance=0.5) == (False, {"paid": False})
    assert fields({"paid": False}, {"paid": 0}) == (False, {"paid": False})
    assert fields({"paid": True}, {"paid": True}) == (True, {"paid": True})


def test_fields_strings_strip_but_keep_case() -> None:
    assert fields({"id": " AB-1 "}, {"id": "AB-1"})[0]
    assert not fields({"id": "ab-1"}, {"id": "AB-1"})[0]
    assert not fields({"n": "100"}, {"n": 100})[0]  # a numeric string is not a number


def test_fields_missing_and_extra() -> None:
    assert fields({"a": 1, "b": 2}, {"a": 1}) == (False, {"a": True, "b": False})
    assert fields({"a": 1}, {"a": 1, "c": None}) == (False, {"a": True, "c": False})
    assert fields({"a": None}, {"a": None}) == (True, {"a": True})


def test_fields_nested() -> None:
    a = {"customer": {"name": "Ada", "total": 100}, "items": [{"sku": "A", "qty": 2}, 3.0]}
    close = {"customer": {"name": "Ada", "total": 100.4}, "items": [{"sku": "A", "qty": 2}, 3]}
    assert fields(a, close, tolerance=0.01) == (True, {"customer": True, "items": True})
    other_sku = {**a, "items": [{"sku": "B", "qty": 2}, 3.0]}
    assert fields(a, other_sku, tolerance=0.01) == (False, {"customer": True, "items": False})
    assert not fields({"x": [1, 2]}, {"x": [1, 2, 3]})[0]
    assert not fields({"x": {"a": 1}}, {"x": {"a": 1, "b": 2}})[0]  # nested extra key
    assert not fields({"x": [1, 2]}, {"x": [2, 1]})[0]  # lists are ordered


def test_fields_subset() -> None:
    a, b = {"total": 10, "note": "thanks"}, {"total": 10, "note": "cheers"}
    assert fields(a, b) == (False, {"total": True, "note": False})
    assert fields(a, b, fields=["total"]) == (True, {"total": True})
    assert fields(a, b, fields=["total", "due"]) == (True, {"total": True, "due": True})  # absent on both
    assert fields(a, {"total": 10}, fields=["total", "note"]) == (False, {"total": True, "note": False})


def test_fields_fenced_answers() -> None:
    assert fields('```json\n{"a": 1}\n```', '{"a": 1}') == (True, {"a": True})


def test_fields_side_not_an_object() -> None:
    r = fields_agree(check("fields"), '{"a": 1, "b": 2}', "[1, 2]")
    assert not r.agree and r.fields == {"a": False, "b": False} and r.why == "candidate is not a JSON object"
    r = fields_agree(check("fields"), "not json", '{"a": 1}')
    assert not r.agree and r.fields == {"a": False} and r.why == "baseline is not a JSON object"
    r = fields_agree(check("fields"), "nope", "nope")
    assert not r.agree and r.fields == {} and r.why == "baseline and candidate are not JSON objects"
    r = fields_agree(check("fields", fields=["total"]), "nope", "nope")
    assert r.fields == {"total": False}


def test_fields_empty_objects_agree() -> None:
    assert fields({}, {}) == (True, {})


def test_fields_huge_numbers() -> None:
    assert fields('{"n": 1e400}', '{"n": 1e400}')[0]  # both inf
    assert not fields({"n": 10**400}, {"n": 10**400 + 1}, tolerance=0.01)[0]  # beyond float: equal only if equal
    assert fields({"n": 10**400}, {"n": 10**400})[0]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, json_values, st.sampled_from([0.0, 0.01, 0.5]))
def test_values_agree_is_symmetric(a: Any, b: Any, tolerance: float) -> None:
    assert values_agree(a, b, tolerance) == values_agree(b, a, tolerance)


@given(json_values, st.sampled_from([0.0, 0.01, 0.5]))
def test_values_agree_is_reflexive(a: Any, tolerance: float) -> None:
    assert values_agree(a, a, tolerance)


@given(st.dictionaries(st.text(max_size=3), json_values, max_size=4), st.dictionaries(st.text(max_size=3), json_values))
def test_fields_agreement_is_symmetric(a: dict[str, Any], b: dict[str, Any]) -> None:
    ab, ba = fields(a, b, tolerance=0.01), fields(b, a, tolerance=0.01)
    assert ab[0] == ba[0] and ab[1] == ba[1]
