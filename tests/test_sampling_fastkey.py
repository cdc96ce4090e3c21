"""The fast cluster key (orjson) is byte for byte the old one (json.dumps), and the orjson line parser gives
what json gives, for arbitrary JSON-like values (equiv.sampling._canonical_json, equiv.traffic.jsontext)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from equiv.sampling import _canonical_json, cluster_id, stratified_sample
from equiv.schema import TrafficRecord
from equiv.traffic.fields import _ACCEPTED_PARAMS, _Bad, _params, _record_id
from equiv.traffic.jsontext import _parse_json_line, _parse_json_line_slow


def old_cluster_id(messages: Any, params: Any) -> str:
    """cluster_id as it was: json.dumps only."""
    blob = json.dumps(
        {"m": messages, "p": params}, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return "c-" + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def old_canonical(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogatepass")


floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.floats(min_value=1e14, max_value=1e17),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 5e-324, 0.1, 1.0, 2.5]),
)
ints = st.one_of(
    st.integers(),
    st.integers(min_value=2**62, max_value=2**66),
    st.integers(min_value=-(2**66), max_value=-(2**62)),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]),
)
text = st.one_of(st.text(), st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F)), st.just("\ud83d"))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, text)
keys = st.one_of(text, st.sampled_from(["role", "content", "Role", "é", "😀", "a\x00", "\u2028"]))
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=20
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.one_of(text, json_like)},
    optional={"name": text, "extra": json_like},
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(message, max_size=4), st.dictionaries(keys, json_like, max_size=5))
def test_fast_cluster_key_is_the_old_key(messages: list[dict[str, Any]], params: dict[str, Any]) -> None:
    assert cluster_id(messages, params) == old_cluster_id(messages, params)


@settings(max_examples=1500, deadline=None)
@given(json_like)
def test_canonical_json_is_json_dumps(value: Any) -> None:
    assert _canonical_json(value, str) == old_canonical_default(value)
    try:
        expected = old_canonical(value)
    except (TypeError, ValueError) as e:  # what json.dumps refuses is refused the same way
        try:
            _canonical_json(value)
        except type(e) as again:
            assert str(again) == str(e)
        else:
            raise AssertionError("refused by json.dumps, accepted by _canonical_json") from None
        return
    assert _canonical_json(value) == expected


def old_canonical_default(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8", "surrogatepass")


def test_canonical_json_odd_values() -> None:
    class S(str):
        pass

    for value in (
        {1: "a"},  # non-str keys: json.dumps turns them into text
        {"a": (1, 2)},
        {"t": 1e-5, "u": 1e16, "v": float("nan"), "w": float("inf")},
        {"big": 2**64, "neg": -(2**63) - 1},
        {"s": S("x")},
        {"lone": "\udc00"},
        ["x" * (1 << 21)],  # long strings go to json.dumps
    ):
        assert _canonical_json(value, str) == old_canonical_default(value), value
    assert _canonical_json([[]] * 1, str) == b"[[]]"
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    assert _canonical_json(deep) == old_canonical(deep)


@settings(max_examples=300, deadline=None)
@given(st.lists(message, min_size=1, max_size=3))
def test_record_id_is_the_old_id(messages: list[dict[str, Any]]) -> None:
    try:
        expected = hashlib.sha256(old_canonical(messages)).hexdigest()[:16]
    except (TypeError, ValueError):
        return
    assert _record_id(None, messages) == expected


# ------------------------------------------------------------------------------------ parsing


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types (1, 1.0 and True differ) and the same key order: repr says it all."""
    if isinstance(a, _Bad) or isinstance(b, _Bad):
        return (
            isinstance(a, _Bad) and isinstance(b, _Bad) and (a.reason, a.detail, a.fix) == (b.reason, b.detail, b.fix)
        )
    return repr(a) == repr(b)


@settings(max_examples=1500, deadline=None)
@given(json_like, st.booleans(), st.sampled_from(["\n", "\r\n", "", " \n"]))
def test_orjson_line_parsing_is_json(value: Any, ascii_only: bool, end: str) -> None:
    line = (json.dumps({"v": value}, ensure_ascii=ascii_only) + end).encode("utf-8", "surrogatepass")
    assert _same(_parse_json_line(line), _parse_json_line_slow(line))


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=40),
        st.lists(
            st.sampled_from(
                [
                    b"{",
                    b"}",
                    b"[",
                    b"]",
                    b",",
                    b":",
                    b'"',
                    b"\\u",
                    b"d83d",
                    b"dc00",
                    b"\\",
                    b"n",
                    b"1",
                    b"e400",
                    b"-",
                    b"0",
                    b".5",
                    b"NaN",
                    b"Infinity",
                    b"true",
                    b"null",
                    b" ",
                    b"\t",
                    b"\n",
                    b"\r",
                    b"\x00",
                    b"\xff",
                    b"\xed\xa0\x80",
                    b"\xc3\xa9",
                    b"\xef\xbb\xbf",
                    b"12345678901234567890",
                    b'"a"',
                    b"\x1f",
                ]
            ),
            max_size=12,
        ).map(b"".join),
    )
)
def test_orjson_line_parsing_errors_are_json_s(line: bytes) -> None:
    assert _same(_parse_json_line(line), _parse_json_line_slow(line))


def test_line_parsing_cases() -> None:
    for line in (
        b'{"n": 123456789012345678901234567890}\n',  # orjson would give a float
        b'{"n": 18446744073709551616, "m": -9223372036854775809}\n',
        b'{"n": 1e400}\n',  # inf, as json reads it
        b'{"n": NaN}\n',
        b'{"s": "\\ud83d"}\n',  # a lone surrogate: U+FFFD
        b'{"s": "\\ud83d\\ude00", "t": "\\u00e9"}\n',
        b'{"a": 1, "a": 2, "b": 3}\n',
        b'{"s": "\xed\xa0\x80"}\n',
        b'{"s": "cut\n',
        b"[" * 2000 + b"]" * 2000 + b"\n",
        b'{"big": "' + b"x" * (2 << 20) + b'"}\n',
    ):
        assert _same(_parse_json_line(line), _parse_json_line_slow(line)), line[:60]
    assert _parse_json_line(b'{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert _parse_json_line(b'{"s": "\\ud83d"}') == {"s": "\ufffd"}


# ------------------------------------------------------------------------------------ params, distinct counts


def test_params_checked_once_give_what_they_gave() -> None:
    _ACCEPTED_PARAMS.clear()
    p = {"temperature": 0.2, "max_tokens": 10, "stop": ["x"], "seed": None}
    first, again = _params(p, "params"), _params(dict(p), "params")
    assert first == again == {"temperature": 0.2, "max_tokens": 10, "stop": ["x"]}
    assert first is not again and again is not p
    for bad in ({"temperature": 0.2, "max_tokens": True, "stop": ["x"]}, {"temperature": "0.2"}, {"api_base": "x"}):
        try:
            _params(bad, "params")
        except _Bad as e:
            assert e.detail and e.reason in ("invalid params", "non-sampling params")
        else:
            raise AssertionError(bad)
    # {"max_tokens": 10} was accepted: 10.0 and true are other values (their own canonical text), checked again
    _params({"max_tokens": 10}, "params")
    for other in ({"max_tokens": 10.0}, {"max_tokens": True}):
        try:
            _params(other, "params")
        except _Bad as e:
            assert e.detail.startswith("params.max_tokens must be")
        else:
            raise AssertionError(other)


def _rec(i: int, content: str, response: str | None = "r") -> TrafficRecord:
    return TrafficRecord(id=str(i), messages=[{"role": "user", "content": content}], response=response)


def test_distinct_counts_are_the_distinct_cluster_ids() -> None:
    contents = [f"q{i % 37}" for i in range(500)] + ["é", "😀", "\ud83d"]
    recs = [_rec(i, c) for i, c in enumerate(contents)]
    s = stratified_sample(recs, per_type=5, seed=3)
    assert s.clusters_seen == {"default": len({cluster_id(r.messages, r.params) for r in recs})}
    assert s.records_seen == {"default": len(recs)}
