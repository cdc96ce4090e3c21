"""Format otel-genai: OpenTelemetry GenAI spans as OTLP/JSON lines (equiv.traffic.otel).

The fixtures hold the 36 calls of native.jsonl as the OpenTelemetry Collector's file exporter writes them
(one OTLP/JSON export object per line, many spans each), following:
- OTLP/JSON: https://github.com/open-telemetry/opentelemetry-proto/blob/main/docs/specification.md
  ("JSON Protobuf Encoding": hex ids, integer enums, 64-bit integers as decimal strings) and its
  examples/trace.json;
- the GenAI semantic conventions, https://github.com/open-telemetry/semantic-conventions docs/gen-ai/
  (gen-ai-spans.md, gen-ai-input-messages.json, gen-ai-output-messages.json,
  gen-ai-system-instructions.json at v1.37.0-v1.40.0; gen-ai-events.md at v1.28.0; the
  gen_ai.content.prompt / gen_ai.content.completion events of gen-ai-spans.md at v1.27.0).
otel_genai.jsonl uses the content attributes (gen_ai.input.messages, gen_ai.output.messages,
gen_ai.system_instructions); otel_genai_events.jsonl the older span events (v1.28 gen_ai.*.message /
gen_ai.choice with the body in gen_ai.event.content or as the event's attributes, and v1.27
gen_ai.content.prompt / gen_ai.content.completion). The prompt-type comes from a prompt_type attribute
(ticket-triage), gen_ai.agent.name (summary) or the span name (invoice-extraction).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import InputError
from equiv.llm import answer
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, read_traffic
from equiv.traffic import otel as mod
from equiv.traffic.detect import detect_format
from equiv.traffic.fields import _Bad, _Skip
from equiv.traffic.registry import FORMATS

DATA = Path(__file__).parent.parent / "data" / "traffic_formats"
NATIVE = DATA / "native.jsonl"
CONTENT = DATA / "otel_genai.jsonl"
EVENTS = DATA / "otel_genai_events.jsonl"
COMPARED = ("prompt_type", "messages", "response", "usage", "timestamp", "params")


def read_all(path: Path, **kw: Any) -> list[TrafficRecord]:
    return list(read_traffic(path, **kw))


def error_of(path: Path, **kw: Any) -> str:
    with pytest.raises(InputError) as info:
        read_all(path, **kw)
    return info.value.message


# ------------------------------------------------------------------------------------------ helpers


def s(v: str) -> dict[str, Any]:
    return {"stringValue": v}


def i(v: int) -> dict[str, Any]:
    return {"intValue": str(v)}


def attrs(**kw: Any) -> list[dict[str, Any]]:
    """``gen_ai__request__model=s("x")`` -> OTLP attributes (``__`` stands for a dot)."""
    return [{"key": k.replace("__", "."), "value": v} for k, v in kw.items()]


def parts(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def span(extra: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    """A successful chat span with content attributes; ``extra`` attributes and top-level ``kw`` added."""
    base = attrs(
        gen_ai__operation__name=s("chat"),
        gen_ai__request__model=s("gpt-4o"),
        gen_ai__input__messages=s(json.dumps([parts("user", "Hi")])),
        gen_ai__output__messages=s(
            json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}]
            )
        ),
    )
    row = {
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": "1544712660123456789",
        "attributes": base + (extra or []),
    }
    row.update(kw)
    return row


def replace_attr(row: dict[str, Any], key: str, value: dict[str, Any] | None) -> dict[str, Any]:
    kept = [a for a in row["attributes"] if a["key"] != key]
    row["attributes"] = kept + ([{"key": key, "value": value}] if value is not None else [])
    return row


def one(row: dict[str, Any], pt_field: str = "prompt_type") -> dict[str, Any]:
    """The record fields of a line holding one span (through the format's expand, as read_traffic does)."""
    (item,) = list(mod._spans_of(row))
    return mod._from_otel(item, pt_field, pt_field.split("."))


def write(tmp_path: Path, *rows: Any) -> Path:
    p = tmp_path / "spans.jsonl"
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return p


def export(*spans: dict[str, Any]) -> dict[str, Any]:
    resource = {"attributes": attrs(service__name=s("svc"))}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "lib"}, "spans": list(spans)}]}]}


# ---------------------------------------------------------------------------- the fixtures, end to end


@pytest.mark.parametrize("fixture", [CONTENT, EVENTS], ids=["content-attributes", "events"])
def test_fixture_reads_the_same_calls_as_native(fixture: Path) -> None:
    got, want = read_all(fixture), read_all(NATIVE)
    assert len(got) == len(want) == 36
    for g, w in zip(got, want, strict=True):
        for field in COMPARED:
            assert getattr(g, field) == getattr(w, field), (g.source, field)
        assert g.metadata["tenant"] == w.metadata["tenant"]
        assert g.model == "gpt-4o-2024-08-06"  # gen_ai.response.model wins over gen_ai.request.model
        assert g.id == g.metadata["span_id"] and len(g.id) == 16
        assert g.metadata["service.name"] == "support-assistant"
    assert got[0].params == {"temperature": 0, "max_tokens": 8}
    assert got[0].source == f"{fixture}:1#1"  # line 1, its first span
    assert {r.source.split(":")[-1].split("#")[0] for r in got} == {
        str(n) for n in range(1, 7 if fixture == CONTENT else 5)
    }


def test_content_fixture_keeps_metadata_and_drops_content_from_it() -> None:
    rec = read_all(CONTENT)[12]  # summary: instructions apart from the history, agent name
    assert rec.prompt_type == "summary" and rec.messages[0]["role"] == "system"
    meta = rec.metadata
    assert meta["gen_ai.agent.name"] == "summary" and meta["gen_ai.provider.name"] == "openai"
    assert meta["server.port"] == 443 and meta["gen_ai.response.finish_reasons"] == ["stop"]
    assert meta["trace_id"] == meta["trace_id"].lower() and meta["span_name"] == "chat gpt-4o"
    assert not [k for k in meta if k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.request", "gen_ai.usage"))]
    assert "gen_ai.system_instructions" not in meta and "telemetry.sdk.name" not in meta
    assert "prompt_type" not in read_all(CONTENT)[0].metadata  # it is the prompt-type, not metadata


def test_skipped_spans_are_counted_by_reason() -> None:
    stats = ReadStats()
    assert len(read_all(CONTENT, stats=stats)) == 36
    expected = {
        "otel-genai: embeddings span": 1,
        "otel-genai: execute_tool span": 1,
        "otel-genai: invoke_agent span": 1,
        "otel-genai: not a GenAI span": 1,
        "otel-genai: status error": 1,
    }
    assert stats.by_category("not traffic") == expected
    assert stats.invalid == 0 and stats.rows == 6
    stats = ReadStats()
    read_all(EVENTS, stats=stats)
    assert stats.by_category("not traffic") == {k: 1 for k in expected if "invoke_agent" not in k}


def test_prompt_type_field_looks_in_attributes_resource_and_the_span() -> None:
    tenants = [r.metadata["tenant"] for r in read_all(NATIVE)]
    assert [r.prompt_type for r in read_all(CONTENT, prompt_type_field="tenant")] == tenants
    assert {r.prompt_type for r in read_all(CONTENT, prompt_type_field="service.name")} == {"support-assistant"}
    by_path = read_all(CONTENT, prompt_type_field="scope.name")  # a dotted path into the span as written
    assert {r.prompt_type for r in by_path} == {"opentelemetry.instrumentation.openai_v2"}
    assert {r.prompt_type for r in read_all(EVENTS, prompt_type_field="gen_ai.request.model")} == {"gpt-4o"}
    named = read_all(CONTENT, prompt_type_field="name")
    assert named[0].prompt_type == "chat gpt-4o" and named[0].metadata["prompt_type"] == "ticket-triage"
    assert {r.prompt_type for r in read_all(CONTENT, prompt_type_field="no.such.field")} == {"default"}


def test_default_prompt_type_order() -> None:
    agent = attrs(gen_ai__agent__name=s("triage-agent"))
    assert one(span(agent + attrs(prompt_type=s("pt"))))["prompt_type"] == "pt"
    assert one(span(agent))["prompt_type"] == "triage-agent"
    assert one(span())["prompt_type"] == "chat gpt-4o"
    assert one(span(name=None))["prompt_type"] == "default"


# --------------------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        (span(attributes={"gen_ai.operation.name": "chat"}), "attributes must be an array of key/value pairs"),
        (span(attrs(gen_ai__request__max_tokens={"intValue": "lots"})), "intValue has the wrong type"),
        (span(attrs(gen_ai__request__temperature=s("hot"))), "gen_ai.request.temperature must be a number"),
        (span(attrs(gen_ai__request__top_p={"doubleValue": 3})), "gen_ai.request.top_p must be a number from 0 to 1"),
        (replace_attr(span(), "gen_ai.input.messages", s('[{"role": "user", "parts": [')), "is not valid JSON"),
        (replace_attr(span(), "gen_ai.input.messages", None), "holds no prompt"),
        (span(startTimeUnixNano="yesterday"), "startTimeUnixNano must be nanoseconds"),
        ({"resourceSpans": [{"scopeSpans": {"spans": []}}]}, "resourceSpans[0].scopeSpans must be an array"),
        (export(span(attrs(gen_ai__request__choice__count=i(3)))), "asked for 3 answers"),
    ],
)
def test_a_malformed_row_names_its_line(tmp_path: Path, row: dict[str, Any], needle: str) -> None:
    good = export(span())
    path = write(tmp_path, good, row)
    msg = error_of(path)
    assert msg.startswith(f"{path}:2") and needle in msg, msg
    assert "--skip-invalid" in msg
    stats = ReadStats()
    assert len(read_all(path, skip_invalid=True, stats=stats)) == 1 and stats.invalid == 1


def test_error_names_the_span_and_its_place_in_the_line(tmp_path: Path) -> None:
    bad = replace_attr(span(spanId="00f067aa0ba902b7"), "gen_ai.input.messages", None)
    path = write(tmp_path, export(span(), bad))
    msg = error_of(path)
    assert msg.startswith(f"{path}:1#2: span 00f067aa0ba902b7: the chat span 'chat gpt-4o' holds no prompt"), msg
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" in msg


def test_a_line_that_is_not_otlp_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, export(span()), {"foo": 1})
    msg = error_of(path)  # the first line decides the format; the second is not OTLP
    assert msg.startswith(f"{path}:2: not an OTLP/JSON export object (no resourceSpans) or span"), msg
    assert error_of(path, format="otel-genai").startswith(f"{path}:2: this row is not a otel-genai record")


# ---------------------------------------------------------------------------------------- detection


def test_detection_claims_only_otlp_lines() -> None:
    fmt = FORMATS["otel-genai"]
    for line in NATIVE.read_text().splitlines():
        row = json.loads(line)
        assert not mod._is_otel(row) and detect_format(row).name == "native"
    log = {"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, "response": {}}
    assert not mod._is_otel(log) and detect_format(log).name == "openai-log"
    assert not mod._is_otel({"messages": [], "spanId": "a", "traceId": "b", "startTimeUnixNano": "1"})
    assert not mod._is_otel({"id": "obs-1", "traceId": "t", "type": "GENERATION"})  # e.g. a Langfuse observation
    for fixture in (CONTENT, EVENTS):
        for line in fixture.read_text().splitlines():
            row = json.loads(line)
            assert detect_format(row) is fmt
            assert [f.name for f in FORMATS.values() if f.detect(row)] == ["otel-genai"]
            for item in mod._spans_of(row):  # a line holding one span is claimed too, by this format only
                assert [f.name for f in FORMATS.values() if f.detect(item)] == ["otel-genai"]


def test_a_line_may_be_one_span(tmp_path: Path) -> None:
    path = write(tmp_path, span(), span(spanId="00f067aa0ba902b7"))
    recs = read_all(path)
    assert [r.id for r in recs] == ["eee19b7ec3c1b174", "00f067aa0ba902b7"]  # hex ids are case-insensitive
    assert recs[0].source == f"{path}:1#1"


def test_an_export_without_spans_holds_no_records(tmp_path: Path) -> None:
    path = write(tmp_path, {"resourceSpans": []}, export(span()))
    assert len(read_all(path)) == 1


# ----------------------------------------------------------------------------------------- mapping


def test_fields_of_a_span() -> None:
    extra = attrs(
        gen_ai__request__temperature={"doubleValue": 0.2},
        gen_ai__request__top_p={"doubleValue": 0.9},
        gen_ai__request__top_k={"doubleValue": 40.0},
        gen_ai__request__max_tokens=i(100),
        gen_ai__request__seed=i(7),
        gen_ai__request__stop_sequences={"arrayValue": {"values": [s("\n\n"), s("END")]}},
        gen_ai__request__frequency_penalty={"doubleValue": 0.5},  # not replayed
        gen_ai__usage__input_tokens=i(12),
        gen_ai__usage__output_tokens=i(3),
        gen_ai__response__model=s("gpt-4o-2024-08-06"),
        user__id=s("u-9"),
    )
    got = one(span(extra))
    assert got["params"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 100,
        "seed": 7,
        "stop": ["\n\n", "END"],
    }
    assert got["usage"] == {"prompt_tokens": 12, "completion_tokens": 3}
    assert got["model"] == "gpt-4o-2024-08-06"
    assert got["messages"] == [{"role": "user", "content": "Hi"}] and got["response"] == "Hello"
    assert got["timestamp"] == datetime(2018, 12, 13, 14, 51, 0, 123456, tzinfo=UTC)  # to the microsecond
    assert got["metadata"]["user.id"] == "u-9" and got["metadata"]["span_id"] == "eee19b7ec3c1b174"


def test_semconv_1_26_usage_names() -> None:
    got = one(span(attrs(gen_ai__usage__prompt_tokens=i(5), gen_ai__usage__completion_tokens=i(2))))
    assert got["usage"] == {"prompt_tokens": 5, "completion_tokens": 2}


def test_structured_content_tool_calls_and_results() -> None:
    """Content recorded as structured values (not JSON strings); a tool call and its result; the answer is a
    tool call, rendered as openai-log renders one."""
    inputs = [
        parts("user", "Weather in Paris?"),
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "rainy, 57°F"}]},
    ]
    output = [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "I should call it again."},
                {"type": "tool_call", "id": "call_2", "name": "get_weather", "arguments": {"city": "Lyon"}},
            ],
            "finish_reason": "tool_call",
        }
    ]
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    row = span()
    row["attributes"] = attrs(
        gen_ai__operation__name=s("chat"),
        gen_ai__system_instructions=s(json.dumps([{"type": "text", "content": "Be brief."}])),
        gen_ai__input__messages=_structured(inputs),
        gen_ai__output__messages=_structured(output),
        gen_ai__tool__definitions=s(json.dumps(tools)),
    )
    got = one(row)
    assert got["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rainy, 57°F"},
    ]
    assert got["response"] == f'{answer.TOOL_CALL} get_weather\narguments: {{"city": "Lyon"}}'
    assert got["params"]["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]


def _structured(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP AnyValue (kvlistValue / arrayValue), as structured attributes record it."""
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _structured(v)} for k, v in value.items()]}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_structured(v) for v in value]}}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": value}


def test_images_and_unreplayable_parts() -> None:
    image = {
        "role": "user",
        "parts": [
            {"type": "text", "content": "What is it?"},
            {"type": "uri", "modality": "image", "uri": "https://x/cat.png"},
        ],
    }
    got = one(replace_attr(span(), "gen_ai.input.messages", s(json.dumps([image]))))
    assert got["messages"][0]["content"] == [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
    ]
    audio = {"role": "user", "parts": [{"type": "blob", "modality": "audio", "content": "AAAA"}]}
    with pytest.raises(_Bad, match="'blob' part of modality 'audio', which equiv cannot replay"):
        one(replace_attr(span(), "gen_ai.input.messages", s(json.dumps([audio]))))


def test_content_filter_and_several_answers() -> None:
    out = [{"role": "assistant", "parts": [], "finish_reason": "content_filter"}]
    got = one(replace_attr(span(), "gen_ai.output.messages", s(json.dumps(out))))
    assert got["response"] == answer.BLOCKED
    two = [{"role": "assistant", "parts": [{"type": "text", "content": t}], "finish_reason": "stop"} for t in "ab"]
    with pytest.raises(_Bad, match="2 answers"):
        one(replace_attr(span(), "gen_ai.output.messages", s(json.dumps(two))))
    assert one(replace_attr(span(), "gen_ai.output.messages", None))["response"] is None  # output not captured


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (replace_attr(span(), "gen_ai.operation.name", s("text_completion")), "otel-genai: text_completion span"),
        (replace_attr(span(), "gen_ai.operation.name", s("create_agent")), "otel-genai: create_agent span"),
        (span(status={"code": 2, "message": "boom"}), "otel-genai: status error"),
        (span(status={"code": "STATUS_CODE_ERROR"}), "otel-genai: status error"),
        (span(attrs(error__type=s("timeout"))), "otel-genai: status error"),
        (
            replace_attr(
                span(),
                "gen_ai.output.messages",
                s(json.dumps([{"role": "assistant", "parts": [], "finish_reason": "error"}])),
            ),
            "otel-genai: finish_reason error",
        ),
        ({**span(), "attributes": attrs(http__route=s("/x"))}, "otel-genai: not a GenAI span"),
        ({**span(), "attributes": attrs(gen_ai__system=s("openai"))}, "otel-genai: no gen_ai.operation.name"),
    ],
)
def test_spans_that_are_not_chat_completions_are_skipped(row: dict[str, Any], reason: str) -> None:
    with pytest.raises(_Skip) as info:
        one(row)
    assert info.value.reason == reason


def test_generate_content_and_a_semconv_1_26_span_are_chat_calls() -> None:
    assert one(replace_attr(span(), "gen_ai.operation.name", s("generate_content")))["response"] == "Hello"
    assert one(replace_attr(span(), "gen_ai.operation.name", None))["messages"] == [{"role": "user", "content": "Hi"}]


# ------------------------------------------------------------------------------- older event layouts


def event(name: str, **kw: Any) -> dict[str, Any]:
    return {"timeUnixNano": "1544712660123456789", "name": name, "attributes": attrs(**kw)}


def events_span(*events: dict[str, Any]) -> dict[str, Any]:
    row = span()
    row["attributes"] = attrs(gen_ai__operation__name=s("chat"), gen_ai__system=s("openai"))
    row["events"] = list(events)
    return row


def test_v1_28_events_with_tool_calls() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": {"q": "x"}}}
    row = events_span(
        event("gen_ai.user.message", gen_ai__event__content=s(json.dumps({"content": "Find x"}))),
        event("gen_ai.assistant.message", gen_ai__event__content=s(json.dumps({"tool_calls": [call]}))),
        event("gen_ai.tool.message", gen_ai__event__content=s(json.dumps({"content": "x is 1", "id": "call_1"}))),
        event(
            "gen_ai.choice",
            gen_ai__event__content=s(
                json.dumps({"index": 0, "finish_reason": "stop", "message": {"content": "x is 1."}})
            ),
        ),
    )
    got = one(row)
    assert got["messages"] == [
        {"role": "user", "content": "Find x"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
            ],
        },
        {"role": "tool", "content": "x is 1", "tool_call_id": "call_1"},
    ]
    assert got["response"] == "x is 1."


def test_v1_28_several_choices_are_refused_and_an_error_choice_skipped() -> None:
    user = event("gen_ai.user.message", content=s("Hi"))
    choices = [
        event("gen_ai.choice", index=i(n), finish_reason=s("stop"), message=_structured({"content": "a"}))
        for n in (0, 1)
    ]
    with pytest.raises(_Bad, match="2 answers"):
        one(events_span(user, *choices))
    with pytest.raises(_Skip, match="finish_reason error"):
        one(events_span(user, event("gen_ai.choice", index=i(0), finish_reason=s("error"))))


def test_v1_27_prompt_events() -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    row = events_span(
        event("gen_ai.content.prompt", gen_ai__prompt=s(json.dumps(msgs))),
        event(
            "gen_ai.content.completion", gen_ai__completion=s(json.dumps([{"role": "assistant", "content": "Hello"}]))
        ),
    )
    got = one(row)
    assert got["messages"] == msgs and got["response"] == "Hello"
    plain = events_span(event("gen_ai.content.prompt", gen_ai__prompt=s("Say hi")))
    assert one(plain)["messages"] == [{"role": "user", "content": "Say hi"}] and one(plain)["response"] is None


def test_operation_details_event_carries_the_content_attributes() -> None:
    details = event(
        "gen_ai.client.inference.operation.details",
        gen_ai__input__messages=_structured([parts("user", "Hi")]),
        gen_ai__output__messages=_structured(
            [{"role": "assistant", "parts": [{"type": "text", "content": "Yo"}], "finish_reason": "stop"}]
        ),
    )
    got = one(events_span(details))
    assert got["messages"] == [{"role": "user", "content": "Hi"}] and got["response"] == "Yo"


def test_a_pretty_printed_json_export(tmp_path: Path) -> None:
    """One OTLP/JSON export object in a .json file (an OTLP/HTTP request body saved as is)."""
    path = tmp_path / "export.json"
    path.write_text(json.dumps(json.loads(CONTENT.read_text().splitlines()[0]), indent=2))
    recs = read_all(path)
    assert [r.messages for r in recs] == [r.messages for r in read_all(NATIVE)[:6]]
