"""The typed check (``equiv.traffic.typed``, issue 14) vouches only for lines the full path accepts, with its values.

A line that ``_typed_native`` vouches for must be one that ``native._fast_native`` (itself checked against the
full path in test_fast_path.py) and the full path accept, with the same prompt-type, timestamp, response and
cluster key; and sampling a file through the reader must give what sampling its records one by one gives,
whichever lines the typed check takes or leaves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equiv.sampling import _canonical_json
from equiv.schema import TrafficRecord
from equiv.traffic.fields import ROLES
from equiv.traffic.jsontext import _parse_json_line
from equiv.traffic.native import _fast_native
from equiv.traffic.typed import _Message, _typed_native
from tests.traffic.test_fast_path import USUAL_ROW, _sample_both, full_path, rows


def _line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


def _agrees(line: bytes) -> bool:
    """Whether the typed check vouched for the line; if it did, that the dict path and full path agree."""
    typed = _typed_native(line)
    if typed is None:
        return False
    row = _parse_json_line(line)
    assert isinstance(row, dict), line
    fast = _fast_native(row, "prompt_type", ["prompt_type"])
    assert fast is not None, f"typed check vouched for a line the fast check refuses: {line!r}"
    record = full_path(row)
    assert isinstance(record, TrafficRecord), f"typed check vouched for a line the full path refuses: {record}"
    pt, ts, response, m_json, params, p_json = typed
    assert (pt, ts, response, params) == (record.prompt_type, record.timestamp, record.response, record.params)
    assert type(ts) is type(record.timestamp)
    assert b'{"m":' + m_json + b',"p":' + p_json + b"}" == _canonical_json(
        {"m": record.messages, "p": record.params}, str
    )
    return True


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_typed_check_vouches_only_for_what_the_full_path_accepts(raw: dict[str, Any]) -> None:
    try:
        line = _line(raw)
    except (ValueError, TypeError):
        return
    _agrees(line)


def test_typed_check_takes_the_usual_line() -> None:
    row = {
        **USUAL_ROW,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": 'Hi é 😀\n"q"'}],
    }
    assert _agrees(_line(row))
    with_answer = {**row, "response": None, "messages": [*row["messages"], {"role": "assistant", "content": "A"}]}
    assert _agrees(_line(with_answer))


_LEFT = [
    # msgspec skips the raw metadata without looking at its UTF-8: the whole line is checked
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","metadata":{"x":"caf\xc3"}}',
    b'{"messages":[{"role":"user","content":"\\ud83d lone"}],"prompt_type":"a"}',  # repaired by the full path
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","params":{"seed":12345678901234567890123}}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","params":{"api_base":"http://x"}}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","metadata":"text"}',
    b'{"messages":[{"role":"user","content":"a","name":"n"}],"prompt_type":"a"}',
    b'{"messages":[],"prompt_type":"a"}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":""}',
    b'{"messages":[{"role":"user","content":"a"}]}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","usage":{"prompt_tokens":1.0,"completion_tokens":2}}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","timestamp":"Tuesday"}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","system":"s"}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","metadata":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a","metadata":{"x":NaN}}',
    b'{"messages":[{"role":"user","content":"a"}],"prompt_type":"a"} trailing',
]


def test_typed_check_leaves_the_unusual_to_the_dict_path() -> None:
    for line in _LEFT:
        assert _typed_native(line) is None, line


def test_duplicate_keys_read_as_the_dict_path_reads_them() -> None:
    line = (
        b'{"messages":[{"role":"user","content":"first"}],"prompt_type":"a",'
        b'"messages":[{"role":"user","content":"last","content":"really last"}]}'
    )
    assert _agrees(line)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(st.text(), st.sampled_from(sorted(ROLES))), min_size=1, max_size=3))
def test_msgspec_writes_the_messages_as_orjson_with_sorted_keys(messages: list[tuple[str, str]]) -> None:
    structs = [_Message(content=c, role=r) for c, r in messages]  # type: ignore[arg-type]
    dicts = [{"role": r, "content": c} for c, r in messages]
    try:
        expected = orjson.dumps(dicts, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # a lone surrogate: such text never reaches the typed check (see _LEFT)
        return
    assert msgspec.json.encode(structs) == expected


def test_the_message_roles_are_the_native_roles() -> None:
    role = msgspec.json.Decoder(_Message)
    for r in ROLES:
        assert role.decode(json.dumps({"role": r, "content": "x"})).role == r
    assert _typed_native(b'{"messages":[{"role":"robot","content":"x"}],"prompt_type":"a"}') is None


def test_a_file_mixing_typed_and_left_lines_samples_as_its_records_do(tmp_path: Path) -> None:
    usual = [
        _line({"messages": [{"role": "user", "content": f"q{i % 7}"}], "prompt_type": "ab"[i % 2], "response": "r"})
        for i in range(60)
    ]
    lines = [usual[0], *(x for pair in zip(usual[1:], _LEFT * 4, strict=False) for x in pair)]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(x if x.endswith(b"\n") else x + b"\n" for x in lines))
    light, plain = _sample_both(path, skip_invalid=True, per_type=3)
    assert light == plain
    assert len(light[0].records["a"]) == len(light[0].records["b"]) == 3 and light[3].invalid > 0


def test_lines_the_typed_check_mostly_misses_are_read_the_same(tmp_path: Path) -> None:
    # a message name on every line: the typed check misses, gives up, and the dict path reads the rest
    lines = [
        _line(
            {"messages": [{"role": "user", "content": f"q{i % 9}", "name": "n"}], "prompt_type": "a", "response": "r"}
        )
        for i in range(300)
    ]
    path = tmp_path / "named.jsonl"
    path.write_bytes(b"".join(lines))
    light, plain = _sample_both(path, per_type=4)
    assert light == plain and light[0].n_records == 4 and light[0].records_seen == {"a": 300}
