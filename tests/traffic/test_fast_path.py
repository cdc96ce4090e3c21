"""The reader's fast check and the sampler's light loop (issue 14) give exactly what the full path gives.

``native._fast_native`` may vouch for a row only if the full path (``_from_native`` + ``TrafficRecord``)
accepts it, and then with the values that path gives; ``stratified_sample(read_traffic(..))``, which reads
through ``_Traffic._light`` and builds only the records it keeps, must give the same sample, counts,
clusters, skipped counts and errors as sampling the validated records one by one.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equiv.errors import InputError
from equiv.sampling import _canonical_json, stratified_sample
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, read_traffic
from equiv.traffic.fields import _Bad
from equiv.traffic.jsontext import _parse_json_line
from equiv.traffic.native import _fast_native, _from_native

# ---------------------------------------------------------------------------------------------- strategies

text = st.one_of(
    st.sampled_from(["hello", "", " ", "café", "日本語", "😀 ok", "a\nb", "\u2028", "x" * 50]),
    st.text(max_size=12),
)
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([2**63, 2**64 + 1, -(2**70), 10**30, 1.5, -0.0, 1e-7, 1e20, 3.0]),
    text,
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["a", "type"]), st.integers(0, 3), max_size=2),
)
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(text, odd)}),
    st.fixed_dictionaries({"type": st.sampled_from(["image_url", 3]), "image_url": odd}),
    odd,
)
_role = st.one_of(st.sampled_from(["system", "user", "assistant", "tool", "developer", "function"]), odd)
_message_extras = {
    "name": st.one_of(text, odd),
    "tool_calls": st.one_of(text, st.lists(st.just({"id": "1", "type": "function"}), max_size=1), odd),
    "extra": odd,
}
message = st.one_of(
    st.fixed_dictionaries(
        {"role": _role, "content": st.one_of(text, text, text, st.lists(part, max_size=2), odd)},
        optional=_message_extras,
    ),
    st.fixed_dictionaries({"role": _role}, optional=_message_extras),
)
valid_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": text},
    optional={"tool_calls": st.sampled_from(["", "x"]), "name": text},
)
messages = st.one_of(
    st.lists(valid_message, min_size=1, max_size=4),
    st.lists(valid_message, min_size=1, max_size=4),
    st.lists(message, min_size=1, max_size=3),
    st.lists(message, max_size=3),
    odd,
)
number = st.one_of(st.integers(-3, 3000), st.sampled_from([0.0, 0.2, 0.7, 1.0, 1.5, 1e-5, 2**64, -1]), odd)
params = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"temperature": number},
        optional={"max_tokens": number, "top_p": number, "stop": st.one_of(text, st.lists(odd, max_size=2))},
    ),
    st.dictionaries(
        st.sampled_from(
            ["temperature", "max_tokens", "top_p", "seed", "stop", "response_format", "logit_bias", "n", "api_base"]
        ),
        st.one_of(number, text, st.lists(text, max_size=2), st.just({"type": "json_object"}), st.none()),
        max_size=4,
    ),
    odd,
)
tokens = st.one_of(st.integers(-3, 10), st.sampled_from([-1, 2**64, 10**30, 1.0, 2.5, "12", True, None]))
_usage_near = st.fixed_dictionaries(
    {"prompt_tokens": tokens, "completion_tokens": tokens},
    optional={"total_tokens": odd, "input_tokens": tokens, "output_tokens": tokens, "model_config": odd},
)
usage = st.one_of(
    _usage_near,
    _usage_near,
    st.none(),
    st.fixed_dictionaries(
        {"prompt_tokens": tokens, "completion_tokens": tokens},
        optional={"total_tokens": odd, "input_tokens": tokens, "output_tokens": tokens, "model_config": odd},
    ),
    st.dictionaries(
        st.sampled_from(
            ["prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "total_tokens", "model_config"]
        ),
        st.one_of(st.integers(-2, 10**6), st.sampled_from([2**64, 1.0, 2.5, "12", "x", True]), st.none(), odd),
        max_size=5,
    ),
    st.just({"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, "details": {"cached": 1}}),
    odd,
)
timestamp = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2025-03-01T10:00:00.000Z",
            "2025-03-01T10:00:00+02:00",
            "2025-03-01T10:00:00",
            " 2025-03-01T10:00:00Z ",
            "2025-03-01 10:00:00",
            "2025-03-01",
            "20250301",
            "1714560000",
            "1714560000123",
            "Tuesday",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2025-03-01T10:00:00.123456+00:00",
            "10:00",
            "2025-13-01T00:00:00Z",
            "T",
            "",
            "  ",
        ]
    ),
    st.integers(0, 2 * 10**18),
    st.floats(allow_nan=False, allow_infinity=False),
    odd,
)
row_keys = {
    "messages": messages,
    "prompt_type": st.one_of(st.sampled_from(["a", "b", "c", ""]), odd),
    "id": st.one_of(st.sampled_from(["r1", "r2", "", " "]), st.integers(0, 3), odd),
    "response": st.one_of(text, st.none(), odd),
    "model": st.one_of(st.just("gpt"), odd),
    "usage": usage,
    "params": params,
    "timestamp": timestamp,
    "metadata": st.one_of(st.none(), st.just({"feature": "f1", "tenant": "t"}), st.just({"feature": 7}), odd),
    "reference": st.one_of(text, st.none(), odd),
    "system": st.one_of(text, odd),
    "prompt": st.one_of(text, odd),
    "extra_field": odd,
}


@st.composite
def rows(draw: Any) -> dict[str, Any]:
    """A native-like row: usually well-formed (so that rows reach every check), often with a few odd fields."""
    row: dict[str, Any] = {
        "messages": draw(
            st.one_of(
                st.builds(lambda t: [{"role": "system", "content": "You help."}, {"role": "user", "content": t}], text),
                st.lists(valid_message, min_size=1, max_size=4),
            )
        ),
        "prompt_type": draw(st.sampled_from(["a", "b", "c"])),
        "timestamp": draw(st.sampled_from(["2025-03-01T10:00:00.000Z", "2025-03-02T10:00:00Z", None])),
        "response": draw(st.one_of(st.none(), text)),
        "params": draw(st.sampled_from([{"temperature": 0.2}, {"temperature": 0, "max_tokens": 256}, None])),
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }
    for key in draw(
        st.lists(st.sampled_from(sorted(row_keys)), max_size=draw(st.sampled_from([1, 1, 2, 4])), unique=True)
    ):
        if draw(st.booleans()) and key in row:
            del row[key]
        else:
            row[key] = draw(row_keys[key])
    return row


def as_json_row(row: dict[str, Any]) -> Any:
    """The row as the reader gets it from a line of JSON text."""
    return _parse_json_line(json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")


def full_path(row: dict[str, Any], pt_field: str = "prompt_type") -> TrafficRecord | _Bad:
    from equiv.traffic.read import _NATIVE, _Options, _to_record

    o = _Options(pt_field, pt_field.split("."), False, None, None, [], None)
    try:
        return _to_record(row, "f.jsonl:1", _NATIVE, o)
    except _Bad as bad:
        return bad


# ---------------------------------------------------------------------------------------------- the check


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows(), st.sampled_from(["prompt_type", "metadata.feature", "feature"]))
def test_fast_check_vouches_only_for_what_the_full_path_accepts(raw: dict[str, Any], pt_field: str) -> None:
    row = as_json_row(raw)
    if not isinstance(row, dict):
        return
    fast = _fast_native(row, pt_field, pt_field.split("."))
    if fast is None:
        return
    record = full_path(row, pt_field)
    assert isinstance(record, TrafficRecord), f"fast check vouched for a row the full path refuses: {record}"
    prompt_type, ts, response, msgs, prm, params_json = fast
    assert (prompt_type, ts, response, msgs, prm) == (
        record.prompt_type,
        record.timestamp,
        record.response,
        record.messages,
        record.params,
    )
    assert type(ts) is type(record.timestamp)
    if ts is not None:
        assert ts.tzinfo is UTC and record.timestamp is not None and record.timestamp.tzinfo is UTC
    if params_json is not None:  # the sampler writes the cluster key from its parts
        key = b'{"m":' + orjson.dumps(msgs, option=orjson.OPT_SORT_KEYS) + b',"p":' + params_json + b"}"
        assert key == _canonical_json({"m": record.messages, "p": record.params}, str)


USUAL_ROW = {
    "id": "r1",
    "prompt_type": "support",
    "timestamp": "2025-03-01T10:00:00.000Z",
    "model": "gpt-4o",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi é 😀"}],
    "params": {"temperature": 0.2, "max_tokens": 256, "seed": None},
    "response": "Hello",
    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    "metadata": {"tenant": "t1", "tags": ["a"]},
}


def test_fast_check_takes_the_usual_row() -> None:
    fast = _fast_native(as_json_row(USUAL_ROW), "prompt_type", ["prompt_type"])
    assert fast is not None
    assert fast[0] == "support" and fast[1] == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert fast[4] == {"temperature": 0.2, "max_tokens": 256}  # the null dropped, as the full path does
    assert fast[5] == b'{"max_tokens":256,"temperature":0.2}'


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"api_base": "http://evil"}},  # a transport key: the full path refuses it
        {"params": {"temperature": "hot"}},
        {"params": {"max_tokens": True}},
        {"usage": {"prompt_tokens": -1, "completion_tokens": 2}},
        {"usage": {"prompt_tokens": 1.0, "completion_tokens": 2}},
        {"timestamp": "Tuesday"},
        {"id": True},
        {"messages": [{"role": "user", "content": None}]},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
        {"system": "s"},
        {"prompt": "p"},
        {"extra": 1},
        {"prompt_type": ["a"]},
        {"metadata": []},
    ],
)
def test_fast_check_leaves_the_unusual_to_the_full_path(change: dict[str, Any]) -> None:
    row = {"messages": [{"role": "user", "content": "hi"}], "prompt_type": "a", **change}
    assert _fast_native(as_json_row(row), "prompt_type", ["prompt_type"]) is None


# ---------------------------------------------------------------------------------------------- end to end

_BAD_LINES = [
    b"{not json\n",
    b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}\n',
    b'{"messages": [{"role": "user", "content": "a"}], "messages": [{"role": "user", "content": "dup"}]}\n',
    b'{"messages": [{"role": "user", "content": "big"}], "params": {"seed": 123456789012345678901234}}\n',
    b'{"messages": [{"role": "user", "content": "\\ud83d lone"}], "prompt_type": "a"}\n',
    b"[1, 2]\n",
    b"\n",
    b'{"messages": [{"role": "user", "content": "caf\xc3\xa9"}], "prompt_type": "b", "id": 5}\n',
    b'{"messages": [{"role": "user", "content": "x"}], "params": {"api_key": "k"}}\n',
    b'{"request": {"messages": [{"role": "user", "content": "log"}]}, "response": {"choices": []}}\n',
]


def _sample_both(path: Path, **kw: Any) -> tuple[Any, Any]:
    """(light sample, stats) and (record-by-record sample, stats), or the InputError each raised."""
    sample_kw = {k: kw.pop(k) for k in ("per_type", "types", "require_response", "per_type_of", "seed") if k in kw}
    sample_kw.setdefault("per_type", 2)
    sample_kw.setdefault("seed", 0)
    out = []
    for light in (True, False):
        stats = ReadStats()
        records = read_traffic(path, stats=stats, **kw)
        source = records if light else (r for r in records)  # a generator: no _light, records one by one
        try:
            sample = stratified_sample(source, **sample_kw)
        except InputError as e:
            out.append(("error", str(e), stats))
            continue
        dumped = {t: [r.model_dump() for r in recs] for t, recs in sample.records.items()}
        out.append((sample, dumped, sample.monthly_volume(), stats))
    return out[0], out[1]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.one_of(rows(), rows(), rows(), st.sampled_from(_BAD_LINES)), min_size=1, max_size=25),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, ["a"], ["a", "c", "zz"]]),
    st.sampled_from([None, datetime(2025, 3, 2, tzinfo=UTC)]),
    st.sampled_from(["prompt_type", "metadata.feature"]),
    st.integers(1, 3),
)
def test_light_sampling_is_record_by_record_sampling(
    tmp_path_factory: Any,
    lines: list[Any],
    skip_invalid: bool,
    require_response: bool,
    types: list[str] | None,
    since: datetime | None,
    pt_field: str,
    per_type: int,
) -> None:
    path = tmp_path_factory.mktemp("fast") / "t.jsonl"
    with path.open("wb") as f:
        for line in lines:
            if isinstance(line, bytes):
                f.write(line)
            else:
                f.write(json.dumps(line, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
    light, full = _sample_both(
        path,
        skip_invalid=skip_invalid,
        since=since,
        prompt_type_field=pt_field,
        per_type=per_type,
        types=types,
        require_response=require_response,
    )
    assert light == full


def _usual_rows(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        row: dict[str, Any] = {
            "prompt_type": "abc"[i % 3],
            "timestamp": f"2025-03-{1 + i % 28:02d}T10:00:00.000Z",
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": f"q{i % 40} é"}],
            "params": {"temperature": [0, 0.2, 1.0][i % 3], "max_tokens": 256},
            "response": None if i % 17 == 0 else f"a{i}",
            "usage": {"prompt_tokens": i, "completion_tokens": 1},
        }
        if i % 5:
            row["id"] = f"r{i % 30}"  # repeated ids: made unique in the sample
        out.append(row)
    return out


@pytest.mark.parametrize("per_type", [1, 5, 50])
def test_light_sampling_of_usual_traffic(tmp_path: Path, per_type: int) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _usual_rows(600)))
    light, full = _sample_both(path, per_type=per_type, require_response=True)
    assert light == full
    sample = light[0]
    assert sum(sample.weight.values()) <= 600 and sample.n_records == min(per_type, 40) * 3
    assert all(not math.isnan(v or 0.0) for v in light[2].values())


def test_light_sampling_names_the_first_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [json.dumps(r) for r in _usual_rows(50)]
    lines[30] = json.dumps({"messages": [{"role": "user", "content": "x"}], "params": {"api_base": "http://h"}})
    lines[40] = "{oops"
    path.write_text("\n".join(lines) + "\n")
    light, full = _sample_both(path)
    assert light == full
    assert light[0] == "error" and f"{path}:31: params.api_base is not a sampling parameter" in light[1]
    light, full = _sample_both(path, skip_invalid=True)
    assert light == full
    assert dict(light[3].skipped) == {"non-sampling params": 1, "invalid JSON": 1}


def test_records_are_still_an_iterator_of_records(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _usual_rows(5)))
    records = read_traffic(path)
    first = next(records)
    assert isinstance(first, TrafficRecord) and first.source == f"{path}:1"
    assert records._light() is None  # iteration started: the sampler reads the records themselves
    assert len(list(records)) == 4
    light = read_traffic(path)._light()
    assert light is not None
    items, build = light
    assert next(items) == first  # a file's first row decides its format: the full path
    item = next(items)
    assert type(item) is tuple and build(item[6], item[7]) == list(read_traffic(path))[1]
    assert read_traffic(path, where=["model=x"])._light() is None
    assert read_traffic(path, format="openai-log")._light() is None


def test_fast_check_matches_full_path_on_the_usual_rows() -> None:
    for raw in _usual_rows(60):
        row = as_json_row(raw)
        fast = _fast_native(row, "prompt_type", ["prompt_type"])
        assert fast is not None
        data = _from_native(row, "prompt_type", ["prompt_type"])
        assert fast[0] == data["prompt_type"] and fast[3] == data["messages"]


def _old_timestamp(value: Any) -> datetime | None:
    """fields._timestamp before its ISO shortcut."""
    import re

    if value is None:
        return None
    fix = "write ISO 8601 (2024-05-01T12:00:00Z) or unix seconds"
    if isinstance(value, bool) or not isinstance(value, (int, float, str, datetime)):
        raise _Bad("invalid record", "type", fix)
    if isinstance(value, str) and not value.strip():
        return None
    try:
        if isinstance(value, datetime):
            dt = value
        elif not isinstance(value, str) or re.fullmatch(r"[+-]?\d+(\.\d*)?", value.strip()):
            seconds = float(value)
            for _ in range(3):
                if abs(seconds) < 1e11:
                    break
                seconds /= 1000
            dt = datetime.fromtimestamp(seconds, tz=UTC)
        else:
            dt = datetime.fromisoformat(value.strip())
        return dt.astimezone(UTC) if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise _Bad("invalid record", "bad", fix) from None


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        timestamp,
        st.text(alphabet="0123456789-:+TZ. tz", max_size=32),
        st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat()),
        st.from_regex(r"\A\s?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?\s?\Z"),
    )
)
def test_timestamp_shortcut_is_the_general_path(value: Any) -> None:
    from equiv.traffic.fields import _timestamp

    def outcome(fn: Any) -> Any:
        try:
            dt = fn(value)
        except _Bad:
            return "bad"
        return (dt, dt.tzinfo is UTC) if dt is not None else None

    assert outcome(_timestamp) == outcome(_old_timestamp)
