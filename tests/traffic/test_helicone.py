"""Format helicone (SPEC "Where traffic lives — contract").

The fixture follows Helicone's own published schema (github.com/Helicone/helicone):
- helicone.jsonl: the lines ``npx @helicone/export --include-body`` writes (examples/export/typescript/
  index.ts: one ``POST /v1/request/query-clickhouse`` row per line, ``request_body``/``response_body``
  replaced by the bodies fetched from ``signed_body_url``). Each row has the columns that query selects
  (valhalla/jawn/src/lib/stores/request/request.ts, ``getRequestsClickhouse``) and the ``HeliconeRequest``
  type (packages/llm-mapper/types.ts): ``request_created_at`` as ClickHouse's ``YYYY-MM-DD HH:MM:SS.mmm``,
  ``response_status``, ``prompt_tokens``/``completion_tokens``, ``request_properties`` keyed as the
  worker stores ``Helicone-Property-*`` headers (worker/src/lib/models/HeliconeHeaders.ts,
  ``getHeliconeProperties``: the header name less its prefix, lower-cased by the proxy's runtime, so
  ``Helicone-Property-Prompt-Type`` -> ``prompt-type``; a few rows keep ``Prompt-Type`` as a logging SDK
  may). The bodies are OpenAI chat-completion requests and responses.
It holds the 36 calls of native.jsonl plus rows that are skipped: a 429, a 500, an embeddings call and a
Responses API call (no ``messages``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, read_traffic
from equiv.traffic import helicone as hc
from equiv.traffic.detect import detect_format
from equiv.traffic.fields import _Bad, _Skip
from equiv.traffic.openai_log import _response_text

DATA = Path(__file__).parent.parent / "data" / "traffic_formats"
NATIVE = DATA / "native.jsonl"
HELICONE = DATA / "helicone.jsonl"


def _read(path: Path, **kw: Any) -> list[TrafficRecord]:
    return list(read_traffic(path, **kw))


def _key(r: TrafficRecord) -> tuple[Any, ...]:
    return (r.timestamp, r.prompt_type, r.messages, r.response, r.usage, r.params)


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in HELICONE.read_text().splitlines()]


def _chat_row() -> dict[str, Any]:
    return dict(_rows()[0])


def _fields(row: dict[str, Any], pt_field: str = "prompt_type") -> dict[str, Any]:
    return hc._from_helicone(row, pt_field, pt_field.split("."))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------ the same 36 calls as native


def test_fixture_reads_as_the_native_calls() -> None:
    native = _read(NATIVE)
    recs = _read(HELICONE)
    assert len(recs) == len(native) == 36
    assert [_key(r) for r in recs] == [_key(r) for r in native]  # same calls, same order
    for r, n in zip(recs, native, strict=True):
        assert r.model == "gpt-4o"
        assert r.metadata["tenant"] == n.metadata["tenant"]  # custom properties are kept
        assert r.metadata["provider"] == "OPENAI" and r.metadata["user_id"].startswith("user-")
    assert recs[0].id == _rows()[0]["request_id"]


# ------------------------------------------------------------------------ skipped rows, by reason


def test_non_200_embeddings_and_non_chat_rows_are_skipped_by_reason() -> None:
    stats = ReadStats()
    assert len(_read(HELICONE, stats=stats)) == 36
    assert stats.by_category("not traffic") == {
        "helicone: embeddings request": 1,
        "helicone: not a chat request": 1,
        "helicone: status 429": 1,
        "helicone: status 500": 1,
    }
    assert stats.invalid == 0 and stats.rows == 40


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"response_status": None}, "helicone: no response"),
        ({"response_status": "404"}, "helicone: status 404"),
        ({"response_status": -1}, "helicone: status -1"),
        ({"request_path": "/v1/embeddings", "request_body": {"input": "x"}}, "helicone: embeddings request"),
        # an embeddings row exported without bodies is still an embeddings row, not a missing body
        (
            {"target_url": "https://api.openai.com/v1/embeddings", "request_body": {"helicone_message": "omitted"}},
            "helicone: embeddings request",
        ),
        ({"request_body": {"model": "gpt-4o", "prompt": "Say hi"}}, "helicone: not a chat request"),
        ({"response_body": {"error": {"message": "overloaded"}}}, "helicone: error response"),
        (
            {"response_body": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}]}},
            "helicone: not an OpenAI chat completion",
        ),
    ],
)
def test_rows_that_are_not_successful_chat_completions_are_skipped(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(_Skip) as info:
        _fields({**_chat_row(), **change})
    assert info.value.reason == reason


# ------------------------------------------------------------------------ prompt-type


@pytest.mark.parametrize("key", ["prompt-type", "Prompt-Type", "prompt_type", "PROMPT_TYPE", "Prompt_Type"])
def test_prompt_type_property_is_matched_whatever_its_casing(key: str) -> None:
    row = {**_chat_row(), "request_properties": {key: "summary", "tenant": "acme"}}
    assert _fields(row)["prompt_type"] == "summary"


def test_prompt_type_falls_back_to_properties_then_default() -> None:
    row = {**_chat_row(), "request_properties": None, "properties": {"prompt-type": "summary"}}
    assert _fields(row)["prompt_type"] == "summary"
    assert _fields({**_chat_row(), "request_properties": {}, "properties": {}})["prompt_type"] == "default"
    with pytest.raises(_Bad, match="must be text to be used as the prompt-type"):
        _fields({**_chat_row(), "request_properties": {"prompt-type": ["a"]}})


def test_prompt_type_field_is_a_dotted_path_into_the_row() -> None:
    native = _read(NATIVE)
    recs = _read(HELICONE, prompt_type_field="request_properties.tenant")
    assert [r.prompt_type for r in recs] == [n.metadata["tenant"] for n in native]
    users = _read(HELICONE, prompt_type_field="request_user_id")
    assert {r.prompt_type for r in users} == {f"user-{i}" for i in range(5)}
    assert {r.prompt_type for r in _read(HELICONE, prompt_type_field="request_body.model")} == {"gpt-4o"}


# ------------------------------------------------------------------------ malformed rows name the line


def test_a_row_exported_without_bodies_names_the_line_and_the_fix(tmp_path: Path) -> None:
    placeholder = {"helicone_message": "fetching body from signed_url... contact engineering@helicone.ai"}
    path = _write_jsonl(tmp_path / "export.jsonl", [_chat_row(), {**_chat_row(), "request_body": placeholder}])
    with pytest.raises(InputError) as info:
        _read(path)
    msg = info.value.message
    assert f"{path}:2:" in msg and "request_body was not exported" in msg and "--include-body" in msg


def test_a_malformed_row_is_an_input_error_naming_the_line(tmp_path: Path) -> None:
    bad = {**_chat_row(), "request_body": {"model": "gpt-4o", "messages": "hello"}}
    path = _write_jsonl(tmp_path / "export.jsonl", [_chat_row(), _chat_row(), bad])
    with pytest.raises(InputError) as info:
        _read(path)
    assert f"{path}:3:" in info.value.message and "request_body.messages must be a list" in info.value.message
    stats = ReadStats()
    assert len(_read(path, skip_invalid=True, stats=stats)) == 2 and stats.invalid == 1


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"response_status": "ok"}, "is not a status code"),
        ({"request_body": "{not json"}, "request_body is not valid JSON"),
        ({"request_body": ["x"]}, "request_body must be an object"),
        ({"request_properties": "[1]"}, "request_properties must be an object"),
        ({"prompt_tokens": "lots"}, "usage.prompt_tokens: Input should be a valid integer"),
        ({"request_created_at": "soon"}, "is not a date and time"),
        ({"model": 5}, "model must be text"),
    ],
)
def test_malformed_fields_are_refused_naming_the_field(tmp_path: Path, change: dict[str, Any], text: str) -> None:
    path = _write_jsonl(tmp_path / "export.jsonl", [{**_chat_row(), **change}])
    with pytest.raises(InputError) as info:
        _read(path)
    assert f"{path}:1:" in info.value.message and text in info.value.message


def test_request_params_follow_openai_log_policy() -> None:
    row = _chat_row()
    body = {**row["request_body"], "stream": True, "stream_options": {"include_usage": True}, "user": "u", "seed": 7}
    assert _fields({**row, "request_body": body})["params"] == {"temperature": 0, "max_tokens": 8, "seed": 7}
    with pytest.raises(_Bad, match="request_body.n is 2"):
        _fields({**row, "request_body": {**body, "n": 2}})
    with pytest.raises(_Bad, match="request_body.functions is not a sampling parameter"):
        _fields({**row, "request_body": {**body, "functions": []}})


# ------------------------------------------------------------------------ what a row becomes


def test_tool_call_answer_renders_like_openai_log() -> None:
    row = _chat_row()
    call = {"id": "c1", "type": "function", "function": {"name": "route", "arguments": '{"label": "billing"}'}}
    resp = {
        **row["response_body"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    assert _fields({**row, "response_body": resp})["response"] == _response_text(resp)


def test_usage_is_helicones_own_columns_else_the_response_usage() -> None:
    row = _chat_row()
    assert _fields({**row, "prompt_tokens": 99, "completion_tokens": 3})["usage"] == {
        "prompt_tokens": 99,
        "completion_tokens": 3,
    }
    no_columns = {**row, "prompt_tokens": None, "completion_tokens": None}
    usage = _fields(no_columns)["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (52, 1)
    assert _fields({**no_columns, "response_body": None})["usage"] is None
    assert _fields({**no_columns, "response_body": None})["response"] is None  # Helicone-Omit-Response


def test_csv_with_json_cells_is_read(tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "helicone.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow(
                {k: json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else v) for k, v in r.items()}
            )
    assert [_key(r) for r in _read(path)] == [_key(r) for r in _read(NATIVE)]


# ------------------------------------------------------------------------ detection


def test_detection_claims_only_helicone_rows() -> None:
    for row in _rows():
        assert hc._is_helicone(row) and detect_format(row).name == "helicone"
    for line in NATIVE.read_text().splitlines():
        row = json.loads(line)
        assert not hc._is_helicone(row) and detect_format(row).name == "native"
    log = {"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, "response": {}}
    assert not hc._is_helicone(log) and detect_format(log).name == "openai-log"
    for path in (DATA / "langfuse_observations_v2.jsonl",):
        for line in path.read_text().splitlines():
            assert not hc._is_helicone(json.loads(line))
    assert not hc._is_helicone({**_chat_row(), "messages": []})


def test_native_fixture_is_refused_when_forced_as_helicone() -> None:
    with pytest.raises(InputError, match="not a helicone record"):
        _read(NATIVE, format="helicone")
    assert len(_read(HELICONE, format="helicone")) == 36
