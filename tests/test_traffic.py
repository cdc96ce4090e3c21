"""equiv.traffic: every supported shape loads exactly; every bad input is an InputError naming file:line."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, file_digest, read_traffic

DATA = Path(__file__).parent / "data"
GOOD = DATA / "traffic"
BAD = DATA / "bad"


def read_all(path: str | Path, **kw: object) -> list[TrafficRecord]:
    return list(read_traffic(path, **kw))  # type: ignore[arg-type]


def error_of(path: str | Path, **kw: object) -> str:
    with pytest.raises(InputError) as info:
        read_all(path, **kw)
    return info.value.message


# ------------------------------------------------------------------------------------ native JSONL


def test_native_fields_are_read_and_normalised() -> None:
    recs = read_all(GOOD / "native.jsonl")
    by_src = {r.source.rsplit(":", 1)[1]: r for r in recs}
    assert list(by_src) == ["1", "2", "4", "5", "6", "7", "8", "9"]  # line 3 is blank: skipped, still counted
    first = by_src["1"]
    assert first.id == "t-1" and first.prompt_type == "ticket-triage"
    assert first.messages == [{"role": "user", "content": "Classify: my card was charged twice"}]
    assert first.response == "billing" and first.model == "gpt-4o"
    assert first.usage is not None and (first.usage.prompt_tokens, first.usage.completion_tokens) == (12, 1)
    assert first.params == {"temperature": 0, "max_tokens": 5}
    assert first.timestamp == datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert first.metadata == {"tenant": "acme"}
    assert first.source == f"{GOOD / 'native.jsonl'}:1"


def test_integer_id_unknown_fields_and_unix_seconds() -> None:
    rec = read_all(GOOD / "native.jsonl")[1]
    assert rec.id == "2"
    assert rec.metadata == {"latency_ms": 812, "tenant": "globex"}  # unknown top-level fields kept
    assert rec.timestamp == datetime(2024, 5, 2, 9, tzinfo=UTC)
    assert rec.messages[1]["content"] == [{"type": "text", "text": "Draft a reply to: where is my parcel?"}]


def test_tool_calls_unix_milliseconds_and_default_type() -> None:
    rec = read_all(GOOD / "native.jsonl")[2]
    assert rec.prompt_type == "default"
    assert [m["role"] for m in rec.messages] == ["user", "assistant", "tool"]
    assert rec.messages[1]["content"] is None
    assert rec.timestamp == datetime(2024, 5, 3, 9, tzinfo=UTC)


def test_final_assistant_message_becomes_the_logged_response() -> None:
    rec = read_all(GOOD / "native.jsonl")[3]
    assert rec.messages == [{"role": "user", "content": "Say hi"}]
    assert rec.response == "Hi!"


def test_timestamps_are_utc_and_naive_means_utc() -> None:
    recs = read_all(GOOD / "native.jsonl")
    assert recs[4].timestamp == datetime(2024, 5, 3, 7, tzinfo=UTC)  # +02:00 converted
    assert recs[5].timestamp == datetime(2024, 5, 4, 9, tzinfo=UTC)  # no zone: UTC
    assert all(r.timestamp is None or r.timestamp.utcoffset().total_seconds() == 0 for r in recs)  # type: ignore[union-attr]


def test_system_field_surrogates_and_numeric_prompt_type() -> None:
    recs = read_all(GOOD / "native.jsonl")
    assert recs[6].messages == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Good morning"},
    ]
    assert recs[7].messages[0]["content"] == "emoji cut in half: \ufffd"
    assert recs[7].prompt_type == "7"


def test_missing_id_is_a_stable_hash_of_the_messages_and_repeats_are_kept() -> None:
    recs = read_all(GOOD / "native.jsonl")
    canonical = json.dumps(recs[4].messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert recs[4].id == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert read_all(GOOD / "native.jsonl")[4].id == recs[4].id
    # the reader keeps repeated ids as they are; stratified_sample makes its sample's ids unique
    assert [r.id for r in recs].count("t-1") == 2


def test_prompt_type_field_dotted_path_and_metadata_fallback(tmp_path: Path) -> None:
    recs = read_all(GOOD / "native.jsonl", prompt_type_field="metadata.feature")
    assert [r.prompt_type for r in recs][3] == "greeting"
    assert {r.prompt_type for r in recs} == {"greeting", "default"}
    # a plain field name is also looked up inside metadata
    assert read_all(GOOD / "native.jsonl", prompt_type_field="feature")[3].prompt_type == "greeting"
    assert read_all(GOOD / "native.jsonl", prompt_type_field="tenant")[0].prompt_type == "acme"
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "a", "metadata": {"feature": null}}\n{"prompt": "b", "metadata": {"feature": ""}}\n')
    assert [r.prompt_type for r in read_all(f, prompt_type_field="metadata.feature")] == [
        "default",
        "default",
    ]


@pytest.mark.parametrize("field", ["", "metadata.", ".x", "a..b"])
def test_bad_prompt_type_field_is_refused_at_once(field: str) -> None:
    with pytest.raises(InputError, match="prompt_type_field"):
        read_traffic(GOOD / "native.jsonl", prompt_type_field=field)


def test_bom_and_crlf(tmp_path: Path) -> None:
    recs = read_all(GOOD / "bom_crlf.jsonl")
    assert [r.messages[0]["content"] for r in recs] == ["bom and crlf", "second"]
    assert [r.source.rsplit(":", 1)[1] for r in recs] == ["1", "3"]


def test_gzip_jsonl(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl.gz"
    f.write_bytes(gzip.compress((GOOD / "native.jsonl").read_bytes()))
    plain = read_all(GOOD / "native.jsonl")
    zipped = read_all(f)
    assert [r.model_dump(exclude={"source"}) for r in zipped] == [r.model_dump(exclude={"source"}) for r in plain]


def test_reading_is_lazy(tmp_path: Path) -> None:
    """Errors far down the file come only when reached: records before them are already usable."""
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "a"}\n' * 3 + "oops\n")
    it = read_traffic(f)
    assert next(it).messages[0]["content"] == "a"
    with pytest.raises(InputError, match=":4: invalid JSON"):
        list(it)


# ------------------------------------------------------------------------------------ OpenAI logs


def test_openai_chat_completion_logs() -> None:
    recs = read_all(GOOD / "openai_logs.jsonl")
    a, b, c, d = recs
    assert a.id == "chatcmpl-abc" and a.prompt_type == "ticket-triage"  # from request.metadata
    assert a.messages[0] == {"role": "system", "content": "Triage tickets."}
    assert a.response == '{"queue": "account"}'
    assert a.model == "gpt-4o-2024-08-06"  # response.model wins over request.model
    assert a.params == {"temperature": 0.2, "max_tokens": 20, "response_format": {"type": "json_object"}}
    assert "n" not in a.params and "user" not in a.params
    assert a.usage is not None and (a.usage.prompt_tokens, a.usage.completion_tokens) == (21, 7)
    assert a.timestamp == datetime.fromtimestamp(1714560000, tz=UTC)
    assert a.metadata["latency_ms"] == 640
    # a tool-call-only answer is the call, rendered as the judge sees a candidate's (not a missing answer)
    assert b.response == "[tool call] weather\narguments: {}" and b.prompt_type == "tools" and "tools" in b.params
    assert c.response == "Meeting now at 3pm." and c.prompt_type == "summarise"  # Batch API body
    assert c.params == {"seed": 7} and c.metadata["custom_id"] == "req-3"
    assert d.response is None and d.model == "gpt-4o" and d.metadata == {"error": "timeout"}
    assert d.timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_openai_log_prompt_type_field_looks_in_request_metadata(tmp_path: Path) -> None:
    f = tmp_path / "logs.jsonl"
    row = {
        "request": {
            "model": "m",
            "messages": [{"role": "user", "content": "q"}],
            "metadata": {"feature": "f"},
        },
        "response": {"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": "a"}]}}]},
    }
    f.write_text(json.dumps(row) + "\n")
    rec = read_all(f, prompt_type_field="feature")[0]
    assert rec.prompt_type == "f" and rec.response == "a" and rec.model == "m"


# ------------------------------------------------------------------------------------ other formats


def test_csv_cells_stay_text_and_json_cells_are_parsed() -> None:
    recs = read_all(GOOD / "traffic.csv")
    first, second, third = recs
    assert first.id == "007"  # not the number 7
    assert first.messages == [{"role": "user", "content": "NA"}]  # not a missing value
    assert first.response == "None"
    assert first.usage is not None and first.usage.prompt_tokens == 5
    assert first.metadata == {"tenant": "acme", "metadata.feature": "f1"}
    assert second.messages[0]["content"] == "A prompt\nover two lines, with a comma"
    assert second.prompt_type == "default" and second.timestamp == datetime.fromtimestamp(1714640400, tz=UTC)
    assert third.messages == [{"role": "user", "content": "from messages"}]
    # errors and sources name the row's first line in the file (the 2nd row spans lines 3-4)
    assert [r.source.rsplit(":", 1)[1] for r in recs] == ["2", "3", "5"]
    assert read_all(GOOD / "traffic.csv", prompt_type_field="metadata.feature")[0].prompt_type == "f1"


def test_json_array_object_with_data_and_lines() -> None:
    arr = read_all(GOOD / "array.json")
    assert [(r.messages[0]["content"], r.prompt_type, r.source.rsplit(":", 1)[1]) for r in arr] == [
        ("first", "a", "2"),
        ("second", "b", "4"),
        ("third", "a", "9"),
    ]
    assert arr[1].response == "r2"
    data = read_all(GOOD / "data_field.json")
    assert [r.messages[0]["content"] for r in data] == ["alpha", "beta"]
    assert data[0].source.endswith("data_field.json:data[1]")
    lines = read_all(GOOD / "lines.json")
    assert [r.prompt_type for r in lines] == ["a", "b"]


def test_json_array_keeps_mixed_content_shapes(tmp_path: Path) -> None:
    """The case datasets' JSON loader gets wrong: content as text in one record and parts in another."""
    f = tmp_path / "t.json"
    rows = [
        {"messages": [{"role": "user", "content": "plain"}], "metadata": {"a": 1}},
        {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}],
            "metadata": {"b": "x"},
        },
    ]
    f.write_text(json.dumps(rows))
    recs = read_all(f)
    assert [r.messages for r in recs] == [row["messages"] for row in rows]
    assert [r.metadata for r in recs] == [{"a": 1}, {"b": "x"}]


def test_parquet_via_datasets(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        {
            "id": 1,
            "messages": [{"role": "user", "content": "hi"}],
            "prompt_type": "a",
            "metadata": {"tenant": "x"},
            "params": {"temperature": 0.5},
            "timestamp": datetime(2024, 1, 1),
        },
        {
            "id": 2,
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
                {"role": "tool", "content": "r"},
            ],
            "prompt_type": None,
            "metadata": {"feature": "f"},
            "params": None,
            "timestamp": None,
        },
    ]
    f = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist(rows), f)
    a, b = read_all(f)
    assert a.id == "1" and a.prompt_type == "a" and a.messages == [{"role": "user", "content": "hi"}]
    assert a.metadata == {"tenant": "x"}  # Arrow's unified None keys are dropped
    assert a.params == {"temperature": 0.5} and a.timestamp == datetime(2024, 1, 1, tzinfo=UTC)
    assert b.prompt_type == "default" and b.params == {}
    assert b.messages[1] == {"role": "assistant", "tool_calls": [{"id": "c"}]}
    assert a.source.endswith("t.parquet:row 1") and b.source.endswith("t.parquet:row 2")
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "ok"}, {"prompt": "   "}]), bad)
    assert "bad.parquet:row 2: prompt is empty" in error_of(bad)


def test_datasets_save_to_disk_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "ds"
    datasets.Dataset.from_list([{"prompt": "a", "prompt_type": "x"}, {"prompt": "b", "prompt_type": "y"}]).save_to_disk(
        str(folder)
    )
    assert [r.prompt_type for r in read_all(folder)] == ["x", "y"]
    assert file_digest(folder) == file_digest(folder)


# ------------------------------------------------------------------------------------ bad inputs

BAD_CASES = [
    # file, line (None: the whole file), text the message must contain
    (
        "malformed_json.jsonl",
        3,
        "invalid JSON (Expecting ',' delimiter at column 16) — each line must be one JSON object",
    ),
    ("truncated_last_line.jsonl", 2, "invalid JSON (the line is truncated: it ends"),
    (
        "truncated_line.jsonl",
        2,
        "invalid JSON (the line is truncated: it ends inside a string that starts at column 43)",
    ),
    ("control_character.jsonl", 2, "invalid JSON (a raw control character U+0009 inside a string at column 14)"),
    ("non_object_array.jsonl", 2, "expected a JSON object, got an array"),
    ("non_object_string.jsonl", 2, "expected a JSON object, got text"),
    ("non_object_null.jsonl", 2, "expected a JSON object, got null"),
    ("missing_prompt.jsonl", 2, "no 'messages' or 'prompt'"),
    ("empty_messages.jsonl", 2, "messages is an empty list — give at least one message"),
    ("messages_not_list.jsonl", 2, "messages must be a list of chat messages, got text"),
    (
        "unknown_role.jsonl",
        2,
        "messages[0].role 'human' is not a chat role — use one of system, user, assistant",
    ),
    ("user_without_content.jsonl", 2, "messages[1] (user) has no content"),
    ("user_null_content.jsonl", 2, "messages[0] (user) has null content"),
    ("assistant_without_content.jsonl", 2, "messages[1] (assistant) has no content"),
    ("content_wrong_type.jsonl", 2, "messages[0].content must be text or a list of parts, got a number"),
    ("part_without_type.jsonl", 2, "messages[0].content[0] must be an object with a 'type'"),
    ("message_not_object.jsonl", 2, "messages[0] must be an object, got text"),
    ("prompt_wrong_type.jsonl", 2, "prompt must be a string, got a number"),
    ("empty_prompt.jsonl", 2, "prompt is empty"),
    ("response_wrong_type.jsonl", 2, "response must be text, got an object"),
    ("model_wrong_type.jsonl", 2, "model must be text, got a number"),
    ("usage_missing_tokens.jsonl", 2, "usage has no prompt_tokens or completion_tokens"),
    ("usage_negative.jsonl", 2, "usage.prompt_tokens: Input should be greater than or equal to 0"),
    ("usage_not_number.jsonl", 2, "usage.prompt_tokens: Input should be a valid integer"),
    ("params_wrong_type.jsonl", 2, "params must be an object, got an array"),
    ("params_api_base.jsonl", 2, "params.api_base is not a sampling parameter"),
    ("params_mock_response.jsonl", 2, "params.mock_response is not a sampling parameter"),
    ("params_bad_value.jsonl", 2, "params.temperature must be a number >= 0 (got 'hot')"),
    ("openai_log_transport_key.jsonl", 2, "request.extra_headers is not a sampling parameter"),
    ("openai_log_n_choices.jsonl", 2, "request.n is 3"),
    ("metadata_wrong_type.jsonl", 2, "metadata must be an object, got text"),
    ("bad_timestamp.jsonl", 2, "timestamp 'yesterday' is not a date and time — write ISO 8601"),
    ("timestamp_out_of_range.jsonl", 2, "timestamp 1e+300 is not a date and time"),
    ("id_wrong_type.jsonl", 2, "id must be text or an integer, got an object"),
    (
        "prompt_type_wrong_type.jsonl",
        2,
        "prompt_type must be text to be used as the prompt-type, got an array",
    ),
    ("nan_value.jsonl", 2, "invalid JSON (NaN is not valid JSON)"),
    ("system_conflict.jsonl", 2, "both a 'system' field and a system message"),
    ("openai_log_no_messages.jsonl", 2, "request has no 'messages'"),
    ("openai_log_bad_choices.jsonl", 2, "response.choices must be a list of objects"),
    ("invalid_utf8.jsonl", 2, "invalid UTF-8 (byte 0xe9 at byte 16) — save the file as UTF-8"),
    ("binary_garbage.jsonl", 2, "binary data (NUL bytes), not JSON text"),
    ("pretty_printed.jsonl", 1, "pretty-printed JSON?"),
    ("empty.jsonl", None, "no records — the file is empty"),
    ("blank_lines_only.jsonl", None, "no records"),
    ("gzip_named_jsonl.jsonl", None, "the file is gzip-compressed — name it .jsonl.gz"),
    ("utf16.jsonl", None, "the file is UTF-16 encoded — save it as UTF-8"),
    ("not_gzip.jsonl.gz", 1, "the gzip data is corrupt or truncated"),
    ("truncated.jsonl.gz", 1, "the gzip data is corrupt or truncated"),
    ("unsupported.txt", None, "unsupported file type '.txt' — use one of .jsonl"),
    ("broken_array.json", 2, "invalid JSON (Expecting value at column 13)"),
    ("array_missing_comma.json", 2, "expected ',' or ']' after a record"),
    ("array_bad_record.json", 3, "messages[0].role 'robot' is not a chat role"),
    ("not_records.json", None, "not a traffic file — a .json file must hold a JSON array of records"),
    ("no_prompt_column.csv", 1, "no 'messages' or 'prompt' column (columns: question, answer)"),
    ("csv_extra_cells.csv", 3, "row has 4 cells but the header has 2 — quote cells that contain commas"),
    ("csv_bad_json_cell.csv", 3, "column messages: invalid JSON"),
    ("csv_invalid_utf8.csv", 3, "invalid UTF-8 in this row"),
    ("not_parquet.parquet", None, "not a Parquet file"),
    ("corrupt.parquet", None, "cannot be read as Parquet"),
]


def test_every_bad_file_has_a_case() -> None:
    on_disk = {p.name for p in BAD.iterdir() if p.name != "README.md"}
    assert on_disk == {name for name, _, _ in BAD_CASES}


@pytest.mark.parametrize(("name", "line", "text"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input(name: str, line: int | None, text: str) -> None:
    path = BAD / name
    msg = error_of(path)
    where = f"{path}:{line}: " if line is not None else f"{path}"
    assert msg.startswith(where), msg
    assert text in msg, msg
    assert "—" in msg, msg  # every message says what to do


@pytest.mark.parametrize(("name", "line", "text"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_with_skip_invalid(name: str, line: int | None, text: str) -> None:
    """Skipping never hides a whole-file problem, and a file of only bad records is still an error."""
    path = BAD / name
    stats = ReadStats()
    try:
        recs = read_all(path, skip_invalid=True, stats=stats)
    except InputError as e:
        assert e.message.startswith(str(path)), e.message
        return
    # the case's one bad record was skipped; the good line 1 was read
    assert stats.invalid == 1 and len(recs) == stats.read == 1, stats
    assert stats.skipped_lines[0].startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(("name", "line", "text"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_skippable_errors_say_skip_invalid_and_file_errors_do_not(name: str, line: int | None, text: str) -> None:
    """A record --skip-invalid can skip says so; a whole-file problem (which it cannot skip) does not."""
    path = BAD / name
    msg = error_of(path)
    try:
        read_all(path, skip_invalid=True, stats=ReadStats())
        skippable = True
    except InputError:
        skippable = False
    assert ("--skip-invalid" in msg) == skippable, msg


def test_malformed_line_messages_are_plain() -> None:
    """Issue 14: 'at at column', a truncated line blamed on a control character, no word of --skip-invalid."""
    for name in ("truncated_line.jsonl", "truncated_last_line.jsonl"):
        msg = error_of(BAD / name)
        assert "truncated" in msg and "control character" not in msg, msg
        assert " at at " not in msg and "--skip-invalid skips and counts" in msg, msg
    msg = error_of(BAD / "control_character.jsonl")
    assert " at at " not in msg and "truncated" not in msg and "escape it" in msg, msg


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ('{"messages": [{"role": "user", "content": "hi', "truncated"),
        ('{"messages": [{"role": "user", "content": "hi"}', "truncated"),
        ('{"prompt": "a",', "truncated"),
        ('{"prompt": "a" ', "truncated"),
        ('{"prompt": "a\\q"}', "Invalid \\escape at column 14"),
        ('{"prompt": "a"} {"prompt": "b"}', "Extra data at column 17"),
    ],
)
def test_json_line_errors(tmp_path: Path, line: str, text: str) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "ok"}\n' + line + "\r\n")
    msg = error_of(f)
    assert msg.startswith(f"{f}:2: invalid JSON (") and text in msg, msg
    assert " at at " not in msg and "control character" not in msg, msg


def test_truncated_csv_json_cell_says_so(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text('prompt,params\nok,\nq,"{""temperature"": 0.5"\n')
    msg = error_of(f)
    assert msg.startswith(f"{f}:3: column params: invalid JSON (the text is truncated") and " at at " not in msg


# ------------------------------------------------------------------------------------ params

NON_SAMPLING = [
    ("api_base", "http://127.0.0.1:9/v1"),
    ("base_url", "http://127.0.0.1:9/v1"),
    ("api_key", "sk-stolen"),
    ("mock_response", "The candidate is perfect."),
    ("extra_headers", {"Authorization": "Bearer x"}),
    ("extra_body", {"anything": 1}),
    ("n", 1),
    ("n", 5),
    ("stream", True),
    ("stream", False),
    ("custom_llm_provider", "openai"),
    ("api_version", "2024-01-01"),
    ("organization", "org-1"),
    ("timeout", 1),
    ("num_retries", 100),
    ("metadata", {"a": 1}),
    ("user", "u-1"),
    ("logprobs", True),
    ("callbacks", ["x"]),
    ("model", "gpt-4o"),
    ("messages", []),
    ("input_cost_per_token", 0),
]


@pytest.mark.parametrize(("key", "value"), NON_SAMPLING, ids=[f"{k}={v!r}"[:40] for k, v in NON_SAMPLING])
def test_non_sampling_params_are_refused_naming_key_file_and_line(tmp_path: Path, key: str, value: object) -> None:
    f = tmp_path / "t.jsonl"
    bad = {"prompt": "q", "params": {"temperature": 0, key: value}}
    f.write_text('{"prompt": "ok"}\n' + json.dumps(bad) + '\n{"prompt": "after"}\n')
    msg = error_of(f)
    assert msg.startswith(f"{f}:2: params.{key} is not a sampling parameter"), msg
    assert "--skip-invalid" in msg
    stats = ReadStats()
    recs = read_all(f, skip_invalid=True, stats=stats)
    assert [r.messages[0]["content"] for r in recs] == ["ok", "after"]
    assert stats.skipped == {"non-sampling params": 1} and stats.invalid == 1
    assert stats.skipped_lines == [f"{f}:2: params.{key} is not a sampling parameter, so it is never sent"]


def test_several_non_sampling_params_are_all_named(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"prompt": "q", "params": {"mock_response": "x", "api_base": "h", "seed": 1}}) + "\n")
    assert "params api_base, mock_response are not sampling parameters" in error_of(f)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"temperature": -1}, "temperature"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_tokens": 10.5}, "max_tokens"),
        ({"max_completion_tokens": False}, "max_completion_tokens"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"stop": 3}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        ({"response_format": "json"}, "response_format"),
        ({"tools": "all"}, "tools"),
        ({"tools": ["x"]}, "tools"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"logit_bias": {"50256": "no"}}, "logit_bias"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
def test_sampling_params_of_the_wrong_type_are_refused_naming_the_key(
    tmp_path: Path, params: dict[str, object], key: str
) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "ok"}\n' + json.dumps({"prompt": "q", "params": params}) + "\n")
    msg = error_of(f)
    assert msg.startswith(f"{f}:2: params.{key} must be "), msg
    assert "--skip-invalid" in msg
    stats = ReadStats()
    assert len(read_all(f, skip_invalid=True, stats=stats)) == 1 and stats.skipped == {"invalid params": 1}


def test_sampling_params_are_kept_verbatim_and_nulls_dropped(tmp_path: Path) -> None:
    params = {
        "temperature": 0,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 64,
        "max_completion_tokens": 80,
        "stop": ["\n\n", "END"],
        "seed": 7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "presence_penalty": -0.5,
        "frequency_penalty": 1,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
    }
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"prompt": "q", "params": {**params, "stop": "END"}}) + "\n")
    f.write_text(
        f.read_text() + json.dumps({"prompt": "q", "params": {**params, "seed": None, "tool_choice": "auto"}}) + "\n"
    )
    a, b = read_all(f)
    assert a.params == {**params, "stop": "END"}
    assert isinstance(a.params["temperature"], int)  # replayed as written (call keys do not move)
    assert b.params == {**{k: v for k, v in params.items() if k != "seed"}, "tool_choice": "auto"}
    # a null is an absent param, whatever its name: nothing is sent, so there is nothing to refuse
    f.write_text(json.dumps({"prompt": "q", "params": {"api_base": None, "seed": 1}}) + "\n")
    assert read_all(f)[0].params == {"seed": 1}


def test_traffic_record_itself_refuses_non_sampling_params() -> None:
    """Records built elsewhere (other readers, the Python API) go through the same gate."""
    from pydantic import ValidationError

    msgs = [{"role": "user", "content": "q"}]
    with pytest.raises(ValidationError, match="api_base"):
        TrafficRecord(id="1", messages=msgs, params={"api_base": "http://evil"})
    with pytest.raises(ValidationError, match="max_tokens"):
        TrafficRecord(id="1", messages=msgs, params={"max_tokens": True})
    assert TrafficRecord(id="1", messages=msgs, params={"seed": 1, "stop": None}).params == {"seed": 1}


def test_csv_and_parquet_params_go_through_the_same_gate(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text('prompt,params\nok,"{""temperature"": 0.5}"\nq,"{""mock_response"": ""yes""}"\n')
    assert error_of(f).startswith(f"{f}:3: params.mock_response is not a sampling parameter")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    g = tmp_path / "t.parquet"
    rows = [{"prompt": "ok", "params": {"temperature": 0.5}}, {"prompt": "q", "params": {"api_key": "sk-x"}}]
    pq.write_table(pa.Table.from_pylist(rows), g)
    assert error_of(g).startswith(f"{g}:row 2: params.api_key is not a sampling parameter")


def _log_line(request: dict[str, object]) -> str:
    row = {
        "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}], **request},
        "response": {"choices": [{"message": {"role": "assistant", "content": "a"}}]},
    }
    return json.dumps(row) + "\n"


@pytest.mark.parametrize(
    ("request_keys", "named"),
    [
        ({"api_base": "http://127.0.0.1:9/v1"}, "request.api_base"),
        ({"base_url": "http://127.0.0.1:9/v1"}, "request.base_url"),
        ({"api_key": "sk-x"}, "request.api_key"),
        ({"mock_response": "forged"}, "request.mock_response"),
        ({"extra_headers": {"a": "b"}}, "request.extra_headers"),
        ({"extra_body": {"a": "b"}}, "request.extra_body"),
        ({"custom_llm_provider": "openai"}, "request.custom_llm_provider"),
        ({"functions": [{"name": "f"}]}, "request.functions"),
        ({"n": 2}, "request.n is 2"),
        ({"n": "1"}, "request.n is '1'"),
        ({"temperature": "hot"}, "request.temperature must be a number"),
        ({"max_tokens": True}, "request.max_tokens must be a whole number >= 1 (got true)"),
    ],
)
def test_openai_log_requests_that_cannot_be_replayed_are_refused(
    tmp_path: Path, request_keys: dict[str, object], named: str
) -> None:
    f = tmp_path / "logs.jsonl"
    f.write_text(_log_line({}) + _log_line(request_keys))
    msg = error_of(f)
    assert msg.startswith(f"{f}:2: {named}"), msg
    assert "--skip-invalid" in msg
    stats = ReadStats()
    assert len(read_all(f, skip_invalid=True, stats=stats)) == 1 and stats.invalid == 1


def test_openai_log_request_keys_that_do_not_shape_the_answer_are_ignored(tmp_path: Path) -> None:
    f = tmp_path / "logs.jsonl"
    ignored = {
        "metadata": {"prompt_type": "t"},
        "user": "u-1",
        "n": 1,
        "stream": False,
        "stream_options": None,
        "store": True,
        "logprobs": True,
        "top_logprobs": 2,
        "service_tier": "auto",
        "prompt_cache_key": "k",
        "safety_identifier": "s",
        "prompt_type": "t",
        "frequency_penalty": None,  # an SDK that dumps every field as null
    }
    f.write_text(_log_line({**ignored, "temperature": 0.3, "seed": 2}))
    rec = read_all(f)[0]
    assert rec.params == {"temperature": 0.3, "seed": 2} and rec.prompt_type == "t"
    g = tmp_path / "feature.jsonl"
    g.write_text(_log_line({"feature": "billing"}))
    assert read_all(g, prompt_type_field="feature")[0].prompt_type == "billing"  # the prompt-type field


def test_missing_file_directory_and_unreadable(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.jsonl") == f"{tmp_path / 'nope.jsonl'}: file not found — check the path"
    assert "is a directory — give a traffic file" in error_of(tmp_path)
    with pytest.raises(InputError, match="file not found"):
        read_traffic(tmp_path / "nope.jsonl")  # raised at the call, before iterating
    if os.geteuid() != 0:  # root reads everything
        f = tmp_path / "locked.jsonl"
        f.write_text('{"prompt": "a"}\n')
        f.chmod(0)
        assert "cannot be read" in error_of(f)


def test_uppercase_extension_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "T.JSONL"
    f.write_text('{"prompt": "a"}\n')
    assert len(read_all(f)) == 1


def test_deeply_nested_line_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "deep.jsonl"
    f.write_text('{"prompt": "a", "metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}\n")
    assert "nested too deeply" in error_of(f)


def test_all_invalid_with_skip_invalid_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text("nope\n[1]\n")
    stats = ReadStats()
    msg = error_of(f, skip_invalid=True, stats=stats)
    assert "no valid records: all 2 were invalid" in msg
    assert stats.skipped == {"invalid JSON": 1, "not a JSON object": 1}


def test_skip_invalid_counts_by_reason() -> None:
    stats = ReadStats()
    recs = read_all(GOOD / "mixed.jsonl", skip_invalid=True, stats=stats)
    assert [r.messages[0]["content"] for r in recs] == ["good 1", "good 2", "good 3"]
    assert stats.read == 3 and stats.rows == 8 and stats.invalid == 5 == stats.skipped_total()
    assert stats.skipped == {
        "invalid JSON": 1,
        "not a JSON object": 1,
        "invalid messages": 2,
        "invalid record": 1,
    }
    path = GOOD / "mixed.jsonl"
    assert stats.skipped_lines[0].startswith(f"{path}:2: invalid JSON")
    assert [s.split(": ", 1)[0].rsplit(":", 1)[1] for s in stats.skipped_lines] == ["2", "4", "5", "6", "8"]
    assert stats.summary().startswith("read 3 records; skipped 5 (")
    # without skip_invalid the first bad line stops the read
    assert error_of(path).startswith(f"{path}:2: invalid JSON")


def test_skipped_examples_are_capped(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "ok"}\n' + "x\n" * 50)
    stats = ReadStats(max_examples=3)
    read_all(f, skip_invalid=True, stats=stats)
    assert stats.skipped["invalid JSON"] == 50 and len(stats.skipped_lines) == 3


# ------------------------------------------------------------------------------------ big lines


def test_a_50_mb_line_over_the_limit_is_skipped_over_without_loading_it(tmp_path: Path) -> None:
    f = tmp_path / "big.jsonl"
    with f.open("wb") as fh:
        fh.write(b'{"prompt": "before"}\n{"prompt": "')
        block = b"x" * 2**20
        for _ in range(50):
            fh.write(block)
        fh.write(b'"}\n{"prompt": "after"}\n')
    tracemalloc.start()
    try:
        msg = error_of(f, max_line_bytes=2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # read in 1 MiB pieces, never whole
    assert msg.startswith(f"{f}:2: line is 50.0 MiB, over the 1 MiB limit per record — ")
    stats = ReadStats()
    recs = read_all(f, skip_invalid=True, stats=stats, max_line_bytes=2**20)
    assert [r.messages[0]["content"] for r in recs] == ["before", "after"]
    assert [r.source.rsplit(":", 1)[1] for r in recs] == ["1", "3"]  # line numbering survives the skip
    assert stats.skipped == {"line too long": 1}


def test_a_50_mb_line_is_read_when_the_limit_allows_it(tmp_path: Path) -> None:
    f = tmp_path / "big.jsonl"
    text = "y" * (50 * 2**20)
    f.write_text(json.dumps({"prompt": text, "prompt_type": "huge"}) + "\n" + '{"prompt": "next"}\n')
    del text
    assert "over the 32 MiB limit" in error_of(f)  # the default limit
    tracemalloc.start()
    try:
        recs = read_traffic(f, max_line_bytes=64 * 2**20)
        first = next(recs)
        assert first.prompt_type == "huge" and len(first.messages[0]["content"]) == 50 * 2**20
        del first
        assert next(recs).messages[0]["content"] == "next"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the line, its decoded text, the parsed string and the id hash input: a few copies of 50 MB
    print(f"peak while reading a 50 MB line: {peak / 2**20:.0f} MiB")
    assert peak < 6 * 50 * 2**20, peak


# ------------------------------------------------------------------------------------ since


def test_since_drops_older_and_undated_records() -> None:
    stats = ReadStats()
    recs = read_all(GOOD / "native.jsonl", since=datetime(2024, 5, 3, 8, tzinfo=UTC), stats=stats)
    assert [r.timestamp for r in recs] == [
        datetime(2024, 5, 3, 9, tzinfo=UTC),
        datetime(2024, 5, 4, 9, tzinfo=UTC),
    ]
    assert stats.skipped == {"before since": 3, "no timestamp": 3}
    assert stats.invalid == 0 and stats.skipped_total() == 6
    naive = read_all(GOOD / "native.jsonl", since=datetime(2024, 5, 3, 8))  # taken as UTC
    assert [r.source for r in naive] == [r.source for r in recs]


def test_since_filtering_everything_is_not_a_file_error() -> None:
    stats = ReadStats()
    assert read_all(GOOD / "native.jsonl", since=datetime(2030, 1, 1, tzinfo=UTC), stats=stats) == []
    assert stats.read == 0 and stats.invalid == 0


# ------------------------------------------------------------------------------------ digest


def test_file_digest_is_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = GOOD / "native.jsonl"
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    copy = tmp_path / "renamed.jsonl"
    shutil.copy(path, copy)
    assert file_digest(copy) == file_digest(path)  # the content, not the name, keys the run
    copy.write_bytes(copy.read_bytes() + b"\n")
    assert file_digest(copy) != file_digest(path)
    with pytest.raises(InputError, match="file not found"):
        file_digest(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------------------------ properties


_TEXT = st.text(alphabet=st.characters(codec=None, categories=("L", "N", "P", "S", "Z", "Cc", "Cs", "Co")), max_size=12)
_SCALAR = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | _TEXT
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_ROLE = st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "human", "", "USER"])
_PART = st.fixed_dictionaries({}, optional={"type": st.sampled_from(["text", "image_url"]) | _JSON, "text": _JSON})
_CONTENT = _TEXT | st.none() | st.lists(_PART | _JSON, max_size=3) | _JSON
_MESSAGE = (
    st.fixed_dictionaries({}, optional={"role": _ROLE, "content": _CONTENT, "tool_calls": _JSON, "name": _TEXT}) | _JSON
)
_MESSAGES = st.lists(_MESSAGE, max_size=4) | _JSON
_TIMESTAMP = (
    st.datetimes().map(lambda d: d.isoformat())
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | _TEXT
    | _JSON
)
_USAGE = (
    st.fixed_dictionaries(
        {}, optional={"prompt_tokens": _SCALAR, "completion_tokens": _SCALAR, "input_tokens": _SCALAR}
    )
    | _JSON
)
_NATIVE = st.fixed_dictionaries(
    {},
    optional={
        "messages": _MESSAGES,
        "prompt": _TEXT | _JSON,
        "system": _TEXT | _JSON,
        "prompt_type": _SCALAR | _JSON,
        "id": _SCALAR | _JSON,
        "response": _TEXT | _JSON,
        "model": _SCALAR,
        "usage": _USAGE,
        "params": _JSON,
        "timestamp": _TIMESTAMP,
        "metadata": _JSON,
        "extra": _JSON,
    },
)
_LOG = st.fixed_dictionaries(
    {
        "request": st.fixed_dictionaries(
            {},
            optional={
                "messages": _MESSAGES,
                "model": _SCALAR,
                "temperature": _JSON,
                "metadata": _JSON,
                "prompt": _TEXT | _JSON,
            },
        )
        | _JSON
    },
    optional={
        "response": st.fixed_dictionaries(
            {},
            optional={
                "choices": st.lists(
                    st.fixed_dictionaries({}, optional={"message": _MESSAGE, "text": _JSON}) | _JSON,
                    max_size=2,
                )
                | _JSON,
                "usage": _USAGE,
                "model": _SCALAR,
                "created": _TIMESTAMP,
                "id": _SCALAR,
                "body": _JSON,
            },
        )
        | _JSON,
        "id": _SCALAR,
        "timestamp": _TIMESTAMP,
        "metadata": _JSON,
        "prompt_type": _JSON,
    },
)
_OK_TEXT = _TEXT.filter(lambda t: t.strip() != "")
_OK_MESSAGE = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(["system", "user", "assistant", "tool", "developer"]),
    _TEXT | st.lists(st.builds(lambda t: {"type": "text", "text": t}, _TEXT), min_size=1, max_size=2),
)
_OK_NATIVE = st.fixed_dictionaries(
    {"messages": st.lists(_OK_MESSAGE, min_size=1, max_size=3)} | {},
    optional={
        "prompt_type": _TEXT | st.integers(),
        "id": _TEXT | st.integers(),
        "response": _TEXT,
        "model": _TEXT,
        "usage": st.fixed_dictionaries(
            {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 99)}
        ),
        "params": st.dictionaries(_TEXT, _JSON, max_size=2),
        "timestamp": st.datetimes().map(lambda d: d.isoformat()) | st.integers(0, 2 * 10**12),
        "metadata": st.dictionaries(_TEXT, _JSON, max_size=3),
        "extra": _JSON,
        "system": _OK_TEXT,
    },
) | st.fixed_dictionaries({"prompt": _OK_TEXT}, optional={"prompt_type": _TEXT, "response": _TEXT})
_OK_LOG = st.fixed_dictionaries(
    {
        "request": st.fixed_dictionaries(
            {"messages": st.lists(_OK_MESSAGE, min_size=1, max_size=3)},
            optional={"model": _TEXT, "temperature": st.floats(0, 2), "n": st.integers()},
        )
    },
    optional={
        "response": st.fixed_dictionaries(
            {"choices": st.lists(st.fixed_dictionaries({"message": _OK_MESSAGE}), max_size=1)},
            optional={"created": st.integers(0, 2 * 10**9), "id": _TEXT},
        )
    },
)
_RECORD = _OK_NATIVE | _OK_LOG | _NATIVE | _LOG | _JSON
_PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read_only_input_errors(path: Path, **kw: object) -> None:
    """The property: reading ends normally or with an InputError naming the file; never another exception."""
    for skip in (False, True):
        stats = ReadStats()
        try:
            recs = read_all(path, skip_invalid=skip, stats=stats, **kw)
        except InputError as e:
            assert e.message.startswith(str(path)), e.message
            continue
        for rec in recs:
            assert rec.messages and isinstance(rec.id, str) and rec.id and isinstance(rec.prompt_type, str)
            rec.model_dump_json()  # pairs.jsonl must be able to hold it
        if skip:
            assert stats.read + stats.invalid == stats.rows


@_PROPS
@given(lines=st.lists(_RECORD.map(lambda r: json.dumps(r).encode()) | st.binary(max_size=40), max_size=6))
def test_property_random_jsonl_only_raises_input_error(lines: list[bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.jsonl"
        f.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
        _read_only_input_errors(f, prompt_type_field="metadata.feature")
        _read_only_input_errors(f)


@_PROPS
@given(records=st.lists(_RECORD, max_size=5), ascii_only=st.booleans())
def test_property_random_json_array_only_raises_input_error(records: list[object], ascii_only: bool) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.json"
        f.write_text(json.dumps(records, indent=1, ensure_ascii=ascii_only), encoding="utf-8", errors="surrogatepass")
        _read_only_input_errors(f)


_CELL = st.one_of(_TEXT, _JSON.map(json.dumps)).map(lambda s: s.encode("utf-8", "surrogatepass"))


@_PROPS
@given(
    header=st.lists(
        st.sampled_from(
            [
                "messages",
                "prompt",
                "prompt_type",
                "id",
                "response",
                "usage",
                "params",
                "metadata",
                "timestamp",
                "model",
                "x",
                "",
            ]
        ),
        min_size=1,
        max_size=6,
    ),
    rows=st.lists(st.lists(_CELL, max_size=7), max_size=4),
)
def test_property_random_csv_only_raises_input_error(header: list[str], rows: list[list[bytes]]) -> None:
    import csv as csv_mod
    import io
    import tempfile

    out = io.StringIO()
    w = csv_mod.writer(out)
    w.writerow(header)
    for row in rows:
        w.writerow([c.decode("utf-8", "surrogateescape") for c in row])
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.csv"
        f.write_bytes(out.getvalue().encode("utf-8", "surrogateescape"))
        _read_only_input_errors(f)


def test_json_minified_array_on_one_line_and_empty_json(tmp_path: Path) -> None:
    f = tmp_path / "min.json"
    f.write_text(json.dumps([{"prompt": "a"}, {"prompt": "b", "prompt_type": "t"}]))
    assert [(r.prompt_type, r.source.rsplit(":", 1)[1]) for r in read_all(f)] == [
        ("default", "1"),
        ("t", "1"),
    ]
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    assert "no records" in error_of(empty)
    nothing = tmp_path / "nothing.json"
    nothing.write_text("[]")
    assert "no records" in error_of(nothing)


def test_one_stats_object_can_follow_several_files(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text('{"prompt": "a"}\n')
    bad.write_text("x\n")
    stats = ReadStats()
    assert len(read_all(good, stats=stats)) == 1
    assert "no valid records: all 1 were invalid" in error_of(bad, skip_invalid=True, stats=stats)
    assert stats.read == 1 and stats.rows == 2 and stats.invalid == 1


def test_prompt_type_is_kept_in_metadata_when_another_field_decides(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "a", "prompt_type": "old", "metadata": {"feature": "new"}}\n')
    rec = read_all(f, prompt_type_field="metadata.feature")[0]
    assert rec.prompt_type == "new" and rec.metadata == {"prompt_type": "old", "feature": "new"}


def test_a_logged_tool_call_response_is_the_baseline_answer_not_a_missing_one(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "refund", "arguments": '{"order": 42}'}}
    rows = [
        {
            "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "refund order 42"}]},
            "response": {
                "choices": [
                    {
                        "finish_reason": "tool_calls",
                        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                    }
                ]
            },
        },
        {
            "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "say something bad"}]},
            "response": {
                "choices": [{"finish_reason": "content_filter", "message": {"role": "assistant", "content": ""}}]
            },
        },
    ]
    f = tmp_path / "logs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, second = read_traffic(f)
    assert first.response is not None and "[tool call] refund" in first.response and '{"order": 42}' in first.response
    assert second.response is not None and "content filter" in second.response


def test_csv_json_cell_with_a_lone_surrogate_escape_is_replaced_as_in_jsonl(tmp_path: Path) -> None:
    """hypothesis found it: a metadata cell `{"a": "\\ud800"}` gave a record pairs.jsonl could not hold."""
    f = tmp_path / "t.csv"
    f.write_text('prompt,metadata\nhi,"{""a"": ""\\ud800""}"\n', encoding="utf-8")
    (rec,) = read_all(f)
    assert rec.metadata["a"] == "\ufffd"
    rec.model_dump_json()
