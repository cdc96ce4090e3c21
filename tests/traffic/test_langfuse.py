"""Format langfuse (SPEC "Where traffic lives — contract").

The fixtures follow Langfuse's own published schema (github.com/langfuse/langfuse, langfuse-docs):
- langfuse_api.json: one page of ``GET /api/public/observations`` — ``{"data": [ObservationsView ...],
  "meta": {page, limit, totalItems, totalPages}}``, the types in fern/apis/server/definition/commons.yml
  (``Observation``, ``ObservationsView``, ``Usage``) and legacy/observations-v1.yml. Inputs and outputs are
  shaped as Langfuse's OpenAI integration logs them (langfuse-python langfuse/openai.py: the messages list,
  ``{"messages": ...}``, the assistant message, or the streamed text).
- langfuse_observations_v2.jsonl: blob-storage export lines of the enriched ``observations_v2/`` file, as
  the field reference lists them (content/docs/api-and-data-platform/features/blob-storage-export-fields.mdx;
  the columns of EVENTS_FIELDS in packages/shared/src/server/queries/clickhouse-sql/event-query-builder.ts):
  ``start_time`` as ``YYYY-MM-DD HH:MM:SS.ffffff``, ``input``/``output``/``model_parameters`` as JSON text,
  ``prompt_name``/``trace_name`` as ``""`` when unset.
Both hold the 36 calls of native.jsonl plus observations that are skipped (spans, an event, an embedding,
a generation with level ERROR).
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
from equiv.traffic import langfuse as lf
from equiv.traffic.detect import detect_format
from equiv.traffic.fields import _Bad, _Skip
from equiv.traffic.openai_log import _response_text

DATA = Path(__file__).parent.parent / "data" / "traffic_formats"
NATIVE = DATA / "native.jsonl"
API = DATA / "langfuse_api.json"
EXPORT = DATA / "langfuse_observations_v2.jsonl"
PT = ["prompt_type"]


def _read(path: Path, **kw: Any) -> list[TrafficRecord]:
    return list(read_traffic(path, **kw))


def _key(r: TrafficRecord) -> tuple[Any, ...]:
    return (r.timestamp, r.prompt_type, r.messages, r.response, r.usage, r.params)


def _api_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(API.read_text())["data"]
    return rows


def _export_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXPORT.read_text().splitlines()]


def _generation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(next(r for r in rows if r["type"] == "GENERATION" and r["level"] != "ERROR"))


def _fields(row: dict[str, Any], pt_field: str = "prompt_type") -> dict[str, Any]:
    return lf._from_langfuse(row, pt_field, pt_field.split("."))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------ the same 36 calls as native


@pytest.mark.parametrize("path", [API, EXPORT], ids=["api-page", "export-v2"])
def test_fixture_reads_as_the_native_calls(path: Path) -> None:
    native = _read(NATIVE)
    recs = _read(path)
    assert len(recs) == len(native) == 36
    assert [_key(r) for r in recs] == [_key(r) for r in native]  # same calls, same order
    for r, n in zip(recs, native, strict=True):
        assert r.model == "gpt-4o"
        assert r.metadata["tenant"] == n.metadata["tenant"]  # the observation's own metadata is kept
        assert r.metadata["trace_id"]


def test_api_page_locators_name_the_data_element() -> None:
    recs = _read(API)
    assert recs[0].source == f"{API}:data[2]"  # data[1] is a SPAN, skipped
    assert recs[0].id == _api_rows()[1]["id"]


# ------------------------------------------------------------------------ skipped rows, by reason


def test_api_page_skips_spans_events_and_errors_by_reason() -> None:
    stats = ReadStats()
    assert len(_read(API, stats=stats)) == 36
    assert stats.by_category("not traffic") == {
        "langfuse: EVENT observation": 1,
        "langfuse: SPAN observation": 2,
        "langfuse: level ERROR": 1,
    }
    assert stats.invalid == 0 and stats.rows == 40


def test_export_skips_spans_embeddings_and_errors_by_reason() -> None:
    stats = ReadStats()
    assert len(_read(EXPORT, stats=stats)) == 36
    assert stats.by_category("not traffic") == {
        "langfuse: EMBEDDING observation": 1,
        "langfuse: SPAN observation": 1,
        "langfuse: level ERROR": 1,
    }
    assert stats.invalid == 0


def test_other_observation_types_are_skipped_and_generation_case_does_not_matter() -> None:
    row = _generation(_export_rows())
    for kind in ("TOOL", "AGENT", "chain", "RETRIEVER"):
        with pytest.raises(_Skip) as info:
            _fields({**row, "type": kind})
        assert info.value.reason == f"langfuse: {kind.upper()} observation"
    assert _fields({**row, "type": "generation"})["response"] == "billing"


# ------------------------------------------------------------------------ prompt-type


def test_default_prompt_type_is_prompt_name_else_trace_name_else_observation_name() -> None:
    rows = _export_rows()
    gen = _generation(rows)
    assert gen["prompt_name"] == "ticket-triage"
    assert _fields(gen)["prompt_type"] == "ticket-triage"
    assert _fields({**gen, "prompt_name": ""})["prompt_type"] == gen["trace_name"] == "support-ticket"
    assert _fields({**gen, "prompt_name": "", "trace_name": ""})["prompt_type"] == gen["name"]
    assert _fields({**gen, "prompt_name": None, "trace_name": None, "name": None})["prompt_type"] == "default"
    api = _generation(_api_rows())
    # a v1 API page has no trace name: the observation name is used; a v2 API row's traceName is
    assert _fields({**api, "promptName": None})["prompt_type"] == api["name"]
    assert _fields({**api, "promptName": None, "traceName": "support-ticket"})["prompt_type"] == "support-ticket"


def test_prompt_type_of_a_wrong_type_is_refused() -> None:
    with pytest.raises(_Bad, match="promptName must be text"):
        _fields({**_generation(_api_rows()), "promptName": ["x"]})


@pytest.mark.parametrize("path", [API, EXPORT], ids=["api-page", "export-v2"])
def test_prompt_type_field_is_a_dotted_path_into_the_row(path: Path) -> None:
    native = _read(NATIVE)
    recs = _read(path, prompt_type_field="metadata.tenant")
    assert [r.prompt_type for r in recs] == [n.metadata["tenant"] for n in native]
    env = _read(path, prompt_type_field="environment")
    assert {r.prompt_type for r in env} == {"production"}


def test_prompt_type_field_can_name_the_trace_name_column() -> None:
    recs = _read(EXPORT, prompt_type_field="trace_name")
    assert {r.prompt_type for r in recs} == {"support-ticket", "summary", "invoice-extraction", "default"}


# ------------------------------------------------------------------------ malformed rows name the line


def test_a_malformed_export_line_is_an_input_error_naming_the_line(tmp_path: Path) -> None:
    good = _generation(_export_rows())
    path = _write_jsonl(tmp_path / "obs.jsonl", [good, {**good, "input": 42}])
    with pytest.raises(InputError) as info:
        _read(path)
    assert f"{path}:2:" in info.value.message and "input must be chat messages" in info.value.message
    assert "--skip-invalid" in info.value.message
    stats = ReadStats()
    assert len(_read(path, skip_invalid=True, stats=stats)) == 1
    assert stats.invalid == 1


def test_a_malformed_api_element_names_its_place_in_data(tmp_path: Path) -> None:
    rows = _api_rows()
    bad = {**_generation(rows), "usageDetails": {"input": "many", "output": 1}}
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"data": [rows[1], bad], "meta": {"page": 1}}, indent=2))
    with pytest.raises(InputError) as info:
        _read(path)
    assert f"{path}:data[2]:" in info.value.message and "usageDetails.input" in info.value.message


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"input": ""}, "has no input"),
        ({"input": '{"prompt": "hi"}'}, "without 'messages'"),
        ({"input": '[{"role": "robot", "content": "hi"}]'}, "is not a chat role"),
        ({"model_parameters": "{temperature"}, "model_parameters is not valid JSON"),
        ({"model_parameters": '{"temperature": "hot"}'}, "model_parameters.temperature must be a number"),
        ({"model_parameters": '{"n": 2}'}, "several answers"),
        ({"input": '{"messages": [{"role": "user", "content": "x"}], "functions": []}'}, "functions"),
        ({"provided_model_name": 4}, "provided_model_name must be text"),
        ({"usage_details": {"input": -3}}, "usage_details.input must be a token count"),
        ({"start_time": "yesterday"}, "is not a date and time"),
        ({"start_time": None}, "no 'start_time'"),
        ({"type": None}, "no observation 'type'"),
    ],
)
def test_malformed_fields_are_refused_naming_the_field(change: dict[str, Any], text: str) -> None:
    with pytest.raises(_Bad) as info:
        _fields({**_generation(_export_rows()), **change})
    assert text in info.value.detail


# ------------------------------------------------------------------------ what a generation becomes


def test_output_shapes_render_like_openai_log() -> None:
    row = _generation(_api_rows())
    call = {"id": "c1", "type": "function", "function": {"name": "route", "arguments": '{"label": "billing"}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    expected = _response_text({"choices": [{"message": message, "finish_reason": "tool_calls"}]})
    assert _fields({**row, "output": {**message, "finish_reason": "tool_calls"}})["response"] == expected
    assert (
        _fields({**row, "output": {"choices": [{"message": message, "finish_reason": "tool_calls"}]}})["response"]
        == expected
    )
    assert (
        _fields({**row, "output": [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]})[
            "response"
        ]
        == "b"
    )
    assert _fields({**row, "output": "plain text"})["response"] == "plain text"
    assert _fields({**row, "output": {"vendor": "Acme", "total": 3}})["response"] == '{"vendor": "Acme", "total": 3}'
    assert _fields({**row, "output": None})["response"] is None
    export = _generation(_export_rows())
    assert _fields({**export, "output": '{"vendor":"Acme"}'})["response"] == '{"vendor":"Acme"}'  # text as written
    assert _fields({**export, "output": '"quoted"'})["response"] == "quoted"
    assert _fields({**export, "output": ""})["response"] is None


def test_input_as_plain_text_is_one_user_message() -> None:
    f = _fields({**_generation(_export_rows()), "input": "Say hi"})
    assert f["messages"] == [{"role": "user", "content": "Say hi"}]


def test_usage_sums_langfuse_input_and_output_keys() -> None:
    row = _generation(_export_rows())
    f = _fields({**row, "usage_details": {"input": "30", "input_cached_tokens": 10, "output": 5, "total": 45}})
    assert f["usage"] == {"prompt_tokens": 40, "completion_tokens": 5}
    assert _fields({**row, "usage_details": {"input": 7}})["usage"] == {"prompt_tokens": 7, "completion_tokens": 0}
    assert _fields({**row, "usage_details": {}})["usage"] is None
    api = _generation(_api_rows())
    legacy = {**api, "usageDetails": {}, "usage": {"input": 12, "output": 3, "total": 15, "unit": "TOKENS"}}
    assert _fields(legacy)["usage"] == {"prompt_tokens": 12, "completion_tokens": 3}
    old = {**api, "usageDetails": None, "usage": None, "promptTokens": 9, "completionTokens": 2}
    assert _fields(old)["usage"] == {"prompt_tokens": 9, "completion_tokens": 2}


def test_model_parameters_keep_sampling_params_only() -> None:
    row = _generation(_api_rows())
    mp = {
        "temperature": "0.7",
        "max_tokens": "Infinity",
        "top_p": 1,
        "stop": '["\\n"]',
        "stream": False,
        "service_tier": "default",
        "maxSteps": "5",
        "seed": "42",
        "n": 1,
    }
    assert _fields({**row, "modelParameters": mp})["params"] == {
        "temperature": 0.7,
        "top_p": 1,
        "stop": ["\n"],
        "seed": 42,
    }
    assert _fields({**row, "modelParameters": {"maxTokens": "64", "topP": 0.9}})["params"] == {
        "max_tokens": 64,
        "top_p": 0.9,
    }
    tools = [{"type": "function", "function": {"name": "route", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "Route: my card was charged twice"}]
    f = _fields({**row, "input": {"messages": messages, "tools": tools, "tool_choice": "auto"}})
    assert f["params"] == {**row["modelParameters"], "tools": tools, "tool_choice": "auto"}


def test_export_metadata_keeps_trace_context() -> None:
    f = _fields(_generation(_export_rows()))
    meta = f["metadata"]
    assert meta["tenant"] == "globex" and meta["trace_name"] == "support-ticket" and meta["user_id"] == "user-0"
    assert meta["tags"] == ["prod"] and meta["prompt_name"] == "ticket-triage" and "session_id" not in meta


def test_export_as_csv_reads_its_json_text_cells(tmp_path: Path) -> None:
    rows = _export_rows()
    cols = list(rows[0])
    path = tmp_path / "observations_v2.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow(
                {k: json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else v) for k, v in r.items()}
            )
    assert [_key(r) for r in _read(path)] == [_key(r) for r in _read(NATIVE)]


# ------------------------------------------------------------------------ detection


def test_detection_claims_only_langfuse_observations() -> None:
    for row in _api_rows() + _export_rows():
        assert lf._is_langfuse(row)
        assert detect_format(row).name == "langfuse"
    for line in NATIVE.read_text().splitlines():
        row = json.loads(line)
        assert not lf._is_langfuse(row) and detect_format(row).name == "native"
    log = {"request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, "response": {}}
    assert not lf._is_langfuse(log) and detect_format(log).name == "openai-log"
    for line in (DATA / "helicone.jsonl").read_text().splitlines():
        assert not lf._is_langfuse(json.loads(line))
    # an observation that also holds native or openai-log keys is theirs, never langfuse's
    gen = _generation(_export_rows())
    assert not lf._is_langfuse({**gen, "messages": []}) and not lf._is_langfuse({**gen, "request": {}})


def test_native_fixture_is_refused_when_forced_as_langfuse() -> None:
    with pytest.raises(InputError, match="not a langfuse record"):
        _read(NATIVE, format="langfuse")
    assert len(_read(EXPORT, format="langfuse")) == 36
