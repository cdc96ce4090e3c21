"""detect_format's shortcut for plain native records decides as every detector would."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from equiv.traffic.detect import _detect, detect_format
from equiv.traffic.native import _NATIVE_FIELDS
from equiv.traffic.registry import FORMATS

_VALUES: dict[str, Any] = {
    "messages": [{"role": "user", "content": "hi"}],
    "prompt": "hi",
    "system": "be brief",
    "prompt_type": "t",
    "id": "x",
    "response": "ok",
    "model": "m",
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    "params": {"temperature": 0},
    "timestamp": "2024-05-01T12:00:00Z",
    "metadata": {"type": "generation", "traceId": "t"},
    "reference": "ok",
}


def test_no_tool_claims_a_row_of_native_fields() -> None:
    native = FORMATS["native"]
    others = [f for f in FORMATS.values() if f.name != "native"]
    fields = sorted(_NATIVE_FIELDS)
    for n in range(1, len(fields) + 1):
        for keys in itertools.combinations(fields, n):
            row = {k: _VALUES[k] for k in keys}
            if "messages" not in row and "prompt" not in row:
                continue
            assert not any(f.detect(row) for f in others), keys
            assert detect_format(row) is native is _detect(row)


# every key any format's detector looks at, with values of the types they look for
_KEYS = sorted(
    _NATIVE_FIELDS
    | {"request", "custom_id", "body", "url", "error", "resourceSpans", "spanId", "traceId", "startTimeUnixNano",
       "attributes", "trace_id", "start_time", "startTime", "type", "request_id", "call_type", "spend",
       "model_parameters", "response_cost", "request_created_at", "request_body", "response_id", "response_status"}
)  # fmt: skip
_VALUE = st.sampled_from([None, "x", 1, [], [{"role": "user", "content": "hi"}], {}, {"messages": []}])


@settings(max_examples=3000, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUE))
def test_detect_format_is_every_detector(row: dict[str, Any]) -> None:
    assert detect_format(row) is _detect(row)
