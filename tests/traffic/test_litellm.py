"""Formats litellm-spendlogs and litellm-payload (SPEC "Where traffic lives — contract").

The fixtures follow litellm's own published schema and writers (litellm 1.106, github.com/BerriAI/litellm):
- litellm_spendlogs.json: a ``GET /spend/logs`` export of ``LiteLLM_SpendLogs`` rows — the table in
  litellm/proxy/schema.prisma (model LiteLLM_SpendLogs), each row as get_logging_payload writes it
  (litellm/proxy/spend_tracking/spend_tracking_utils.py) with ``store_prompts_in_spend_logs`` on: the
  request body in ``proxy_server_request``, ``messages`` ``{}``, the response object in ``response``, the
  ``SpendLogsMetadata`` in ``metadata``, ``request_tags`` with litellm's ``User-Agent: ...`` tags appended.
  Newest first, as the endpoint orders them; some rows carry their JSON columns as JSON text.
- litellm_payload.jsonl: ``StandardLoggingPayload`` lines (litellm/types/utils.py), as
  get_standard_logging_object_payload (litellm/litellm_core_utils/litellm_logging.py) builds them for
  the S3/GCS/custom-logger callbacks: ``startTime`` in unix seconds, ``model_parameters``,
  ``StandardLoggingMetadata``.
Both hold the 36 calls of native.jsonl plus rows that are skipped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, read_traffic
from equiv.traffic import litellm as ll
from equiv.traffic.detect import detect_format
from equiv.traffic.fields import _Bad, _Skip

DATA = Path(__file__).parent.parent / "data" / "traffic_formats"
NATIVE = DATA / "native.jsonl"
SPENDLOGS = DATA / "litellm_spendlogs.json"
PAYLOAD = DATA / "litellm_payload.jsonl"
PT = ["prompt_type"]


def _read(path: Path, **kw: Any) -> list[TrafficRecord]:
    return list(read_traffic(path, **kw))


def _key(r: TrafficRecord) -> tuple[Any, ...]:
    return (r.timestamp, r.prompt_type, r.messages, r.response, r.usage, r.params)


def _spend_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(SPENDLOGS.read_text())
    return rows


def _payload_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAYLOAD.read_text().splitlines()]


def _chat_spend_row() -> dict[str, Any]:
    return next(
        r for r in _spend_rows() if isinstance(r["metadata"], dict) and r["status"] == "success" and r["response"]
    )


def _chat_payload_row() -> dict[str, Any]:
    return _payload_rows()[0]


# ------------------------------------------------------------------------ the same 36 calls as native


@pytest.mark.parametrize("path", [SPENDLOGS, PAYLOAD], ids=["spendlogs", "payload"])
def test_fixture_reads_as_the_native_calls(path: Path) -> None:
    native = _read(NATIVE)
    recs = _read(path)
    assert len(recs) == len(native) == 36
    assert sorted(map(_key, recs), key=repr) == sorted(map(_key, native), key=repr)
    by_time = {r.timestamp: r for r in native}
    for r in recs:  # the tenant the client put in spend_logs_metadata is kept, as native's metadata.tenant
        assert r.metadata["tenant"] == by_time[r.timestamp].metadata["tenant"]
        assert r.model == "gpt-4o" and r.metadata["model_group"] == "gpt-4o"


def test_spendlogs_fields() -> None:
    recs = _read(SPENDLOGS)
    rec = recs[-1]  # the export is newest first: the oldest call is last
    assert rec.id.startswith("chatcmpl-") and rec.source == f"{SPENDLOGS}:42"  # line 1 is "["
    assert rec.timestamp == datetime(2025, 6, 1, tzinfo=UTC)
    assert rec.params == {"temperature": 0, "max_tokens": 8}  # the body's model/metadata are not params
    meta = rec.metadata
    assert meta["user"] == "svc-globex" and meta["team_id"] == "team-globex"
    assert meta["user_api_key_alias"] == "globex-prod" and meta["custom_llm_provider"] == "openai"
    assert meta["request_tags"][0] == "ticket-triage" and meta["spend"] > 0


def test_payload_fields() -> None:
    rec = _read(PAYLOAD)[0]
    assert rec.timestamp == datetime(2025, 6, 1, tzinfo=UTC)  # startTime: unix seconds
    assert rec.params == {"temperature": 0, "max_tokens": 8}  # model_parameters' stream/extra_body are ignored
    assert rec.metadata["trace_id"] and rec.metadata["user_api_key_team_alias"] == "globex"
    assert rec.metadata["response_cost"] > 0


# ------------------------------------------------------------------------ skipped rows, counted by reason


def test_spendlogs_skips_are_counted_by_reason() -> None:
    stats = ReadStats()
    assert len(_read(SPENDLOGS, stats=stats)) == 36
    assert stats.by_category("not traffic") == {
        "litellm-spendlogs: call_type aembedding is not a chat completion": 1,
        "litellm-spendlogs: call_type aimage_generation is not a chat completion": 1,
        "litellm-spendlogs: messages not stored (store_prompts_in_spend_logs is off)": 1,
        "litellm-spendlogs: prompt or answer truncated by litellm (MAX_STRING_LENGTH_PROMPT_IN_DB)": 1,
        "litellm-spendlogs: status failure": 1,
    }
    assert stats.invalid == 0 and stats.rows == 41


def test_payload_skips_are_counted_by_reason() -> None:
    stats = ReadStats()
    assert len(_read(PAYLOAD, stats=stats)) == 36
    assert stats.by_category("not traffic") == {
        "litellm-payload: call_type aembedding is not a chat completion": 1,
        "litellm-payload: call_type amoderation is not a chat completion": 1,
        "litellm-payload: messages redacted (turn_off_message_logging is on)": 1,
        "litellm-payload: status failure": 1,
    }
    assert stats.invalid == 0 and stats.rows == 40


def test_other_skips() -> None:
    row = _chat_spend_row()
    failed_in_metadata = {**row, "status": None, "metadata": {**row["metadata"], "status": "failure"}}
    with pytest.raises(_Skip, match="status failure"):
        ll._from_spendlog(failed_in_metadata, "prompt_type", PT)  # rows older than the status column
    redacted = {**row, "proxy_server_request": {"messages": [{"role": "user", "content": "redacted-by-litellm"}]}}
    with pytest.raises(_Skip, match="messages redacted"):
        ll._from_spendlog(redacted, "prompt_type", PT)
    p = _chat_payload_row()
    with pytest.raises(_Skip, match="call_type anthropic_messages is not a chat completion"):
        ll._from_payload({**p, "call_type": "anthropic_messages"}, "prompt_type", PT)
    with pytest.raises(_Skip, match="litellm-payload: messages not logged"):
        ll._from_payload({**p, "messages": None}, "prompt_type", PT)
    image = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,[base64_data truncated: 2.1MB]"}}
            ],
        }
    ]
    with pytest.raises(_Skip, match="MAX_BASE64_LENGTH_FOR_LOGGING"):
        ll._from_payload({**p, "messages": image}, "prompt_type", PT)


# ------------------------------------------------------------------------ prompt-type


def test_prompt_type_field_override_on_a_dotted_path_of_the_raw_row() -> None:
    native = {r.timestamp: r.metadata["tenant"] for r in _read(NATIVE)}
    for path, field in (
        (SPENDLOGS, "metadata.spend_logs_metadata.tenant"),  # some rows hold metadata as JSON text: parsed first
        (SPENDLOGS, "proxy_server_request.metadata.spend_logs_metadata.tenant"),
        (PAYLOAD, "metadata.requester_metadata.spend_logs_metadata.tenant"),
        (PAYLOAD, "metadata.user_api_key_team_alias"),
    ):
        recs = _read(path, prompt_type_field=field)
        assert {r.timestamp: r.prompt_type for r in recs} == native, field
    recs = _read(SPENDLOGS, prompt_type_field="model_group")
    assert {r.prompt_type for r in recs} == {"gpt-4o"}


def test_default_prompt_type_passes_over_litellm_user_agent_tags() -> None:
    row = _chat_spend_row()
    only_ua = {**row, "request_tags": ["User-Agent: OpenAI", "User-Agent: OpenAI/Python 1.82.0"]}
    meta = {**row["metadata"], "spend_logs_metadata": {"prompt_type": "from-metadata"}}
    assert ll._from_spendlog({**only_ua, "metadata": meta}, "prompt_type", PT)["prompt_type"] == "from-metadata"
    assert ll._from_spendlog({**only_ua, "metadata": {}}, "prompt_type", PT)["prompt_type"] == "default"
    p = _chat_payload_row()
    assert (
        ll._from_payload({**p, "request_tags": only_ua["request_tags"]}, "prompt_type", PT)["prompt_type"] == "default"
    )
    with pytest.raises(_Bad, match="request_tags must be a list of texts"):
        ll._from_payload({**p, "request_tags": [{"tag": "x"}]}, "prompt_type", PT)


# ------------------------------------------------------------------------ other shapes of the same rows


def test_postgresql_rows_parsed_columns_and_datetimes() -> None:
    # what the postgresql:// source hands over: Json columns parsed by psycopg, timestamp(3) as naive UTC datetimes
    row = _chat_spend_row()
    pg = {**row, "startTime": datetime(2025, 6, 1, 9, 30, 0, 123000), "endTime": datetime(2025, 6, 1, 9, 30, 1)}
    out = ll._from_spendlog(pg, "prompt_type", PT)
    assert out["timestamp"] == datetime(2025, 6, 1, 9, 30, 0, 123000, tzinfo=UTC)
    as_text = {
        **pg,
        **{k: json.dumps(row[k]) for k in ("metadata", "request_tags", "response", "proxy_server_request")},
    }
    assert ll._from_spendlog(as_text, "prompt_type", PT) == out
    double = {**pg, "metadata": json.dumps(json.dumps(row["metadata"]))}  # a JSON column holding JSON text
    assert ll._from_spendlog(double, "prompt_type", PT) == out


def test_prompt_from_the_messages_column() -> None:
    # rows of versions that stored the prompt in ``messages`` (a list, or {"messages": [...]}), body not stored
    row = _chat_spend_row()
    msgs = row["proxy_server_request"]["messages"]
    for logged in (msgs, {"messages": msgs}, json.dumps(msgs)):
        out = ll._from_spendlog({**row, "proxy_server_request": {}, "messages": logged}, "prompt_type", PT)
        assert out["messages"] == msgs and out["params"] == {}


def test_spend_logs_v2_page(tmp_path: Path) -> None:
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"data": _spend_rows(), "total": 41, "page": 1, "page_size": 50, "total_pages": 1}))
    assert sorted(map(_key, _read(page)), key=repr) == sorted(map(_key, _read(SPENDLOGS)), key=repr)


def test_tool_call_answer_and_string_response() -> None:
    row = _chat_spend_row()
    call = {"id": "call_1", "type": "function", "function": {"name": "route", "arguments": '{"label": "billing"}'}}
    resp = {
        **row["response"],
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            }
        ],
    }
    text = ll._from_spendlog({**row, "response": resp}, "prompt_type", PT)["response"]
    assert "route" in text and "billing" in text
    assert ll._from_spendlog({**row, "response": "plain text"}, "prompt_type", PT)["response"] == "plain text"
    assert ll._from_spendlog({**row, "response": {}}, "prompt_type", PT)["response"] is None


def test_forced_format() -> None:
    assert len(_read(SPENDLOGS, format="litellm-spendlogs")) == 36
    assert len(_read(PAYLOAD, format="litellm-payload")) == 36


# ------------------------------------------------------------------------ malformed rows: exit-2 InputError


def _bad(tmp_path: Path, rows: list[dict[str, Any]], i: int, **change: Any) -> Path:
    rows[i] = {**rows[i], **change}
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"prompt_tokens": "lots"}, "prompt_tokens must be a whole number >= 0, got 'lots'"),
        ({"startTime": "yesterday"}, "startTime 'yesterday' is not a date and time"),
        ({"metadata": "{not json"}, "metadata is text but not JSON"),
        ({"request_tags": {"a": 1}}, "request_tags must be a list, got an object"),
        ({"call_type": 7}, "call_type must be text, got a number"),
        ({"proxy_server_request": {"messages": [{"role": "robot", "content": "hi"}]}}, "is not a chat role"),
        (
            {"proxy_server_request": {"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}},
            "proxy_server_request.temperature must be a number >= 0",
        ),
        (
            {"proxy_server_request": {"messages": [{"role": "user", "content": "hi"}], "n": 3}},
            "proxy_server_request.n is 3",
        ),
        ({"proxy_server_request": {"model": "gpt-4o"}}, "has no 'messages'"),
    ],
)
def test_malformed_spendlog_row_names_the_line(tmp_path: Path, change: dict[str, Any], says: str) -> None:
    path = _bad(tmp_path, _spend_rows(), 2, **change)
    with pytest.raises(InputError) as info:
        _read(path)
    assert f"{path}:3: " in info.value.message and says in info.value.message
    assert "--skip-invalid" in info.value.message
    stats = ReadStats()
    assert len(_read(path, skip_invalid=True, stats=stats)) == 35 and stats.invalid == 1


def test_malformed_payload_row_names_the_line(tmp_path: Path) -> None:
    path = _bad(tmp_path, _payload_rows(), 4, model_parameters={"temperature": 0, "top_p": 3})
    with pytest.raises(InputError) as info:
        _read(path)
    assert f"{path}:5: model_parameters.top_p must be a number from 0 to 1" in info.value.message
    path = _bad(tmp_path, _payload_rows(), 0, messages="not json")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: messages is text but not JSON"):
        _read(path)


def test_malformed_row_in_the_json_array_names_its_line(tmp_path: Path) -> None:
    rows = _spend_rows()
    rows[5]["completion_tokens"] = -1
    path = tmp_path / "export.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    with pytest.raises(InputError, match=r"export\.json:7: completion_tokens must be a whole number"):
        _read(path)


# ------------------------------------------------------------------------ detection


def test_detection_claims_only_its_own_rows() -> None:
    native = [json.loads(line) for line in NATIVE.read_text().splitlines()]
    openai_log = {
        "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": "hello"}}]},
    }
    for row in [*native, openai_log]:
        assert not ll._is_spendlog(row) and not ll._is_payload(row)
    assert {detect_format(r).name for r in native} == {"native"}
    assert detect_format(openai_log).name == "openai-log"
    spend, payload = _spend_rows(), _payload_rows()
    assert all(ll._is_spendlog(r) and not ll._is_payload(r) for r in spend)
    assert all(ll._is_payload(r) and not ll._is_spendlog(r) for r in payload)
    assert {detect_format(r).name for r in spend} == {"litellm-spendlogs"}
    assert {detect_format(r).name for r in payload} == {"litellm-payload"}
    assert [r.id for r in _read(NATIVE)] == [r["id"] for r in native]  # the native fixture still reads as native
