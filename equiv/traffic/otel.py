"""Format ``otel-genai``: OpenTelemetry GenAI spans as OTLP/JSON lines.  [pure]

Read as the OpenTelemetry Collector's file exporter writes traces: one OTLP/JSON export object per line,
``{"resourceSpans": [{"resource": {...}, "scopeSpans": [{"scope": {...}, "spans": [...]}]}]}``, each
holding many spans; ``_spans_of`` (the format's ``expand``) flattens a line into its spans, each carrying
its ``resource`` and ``scope``, and each span is then one row. A line that is one span object is read too
(the pre-1.0 ``instrumentationLibrarySpans`` key of old collectors as well). OTLP/JSON (opentelemetry-proto
docs/specification.md "JSON Protobuf Encoding"): attributes are lists of ``{"key", "value": AnyValue}``,
64-bit integers (``intValue``, ``startTimeUnixNano``) are decimal strings (numbers are accepted), enums
(``status.code``) integers, ids hex.

What a span means follows the GenAI semantic conventions (open-telemetry/semantic-conventions
docs/gen-ai/, read at v1.27.0, v1.28.0, v1.36.0, v1.37.0 and v1.40.0):

- Only chat completions are traffic: ``gen_ai.operation.name`` ``chat`` (or ``generate_content``,
  Gemini's chat call). Other operations (``embeddings``, ``execute_tool``, ``invoke_agent``,
  ``create_agent``, ``text_completion``, ``retrieval`` ...) are skipped as ``"otel-genai: <op> span"``;
  a span with no ``gen_ai.*`` attribute as ``"otel-genai: not a GenAI span"``; a failed call (status
  code 2 = ERROR, or an ``error.type`` attribute) as ``"otel-genai: status error"``; an answer whose
  finish reason is ``error`` as ``"otel-genai: finish_reason error"``. Semconv 1.26 had no operation
  name: such a span counts as a chat call when it carries a prompt, else it is skipped as
  ``"otel-genai: no gen_ai.operation.name"``.
- Content, newest layout first: the attributes ``gen_ai.system_instructions`` (a leading system
  message), ``gen_ai.input.messages`` and ``gen_ai.output.messages`` (v1.37+, JSON strings or
  structured values of the parts-based messages: ``role`` + ``parts`` of ``text``, ``tool_call``,
  ``tool_call_response``, ``reasoning``, ``uri``/``blob`` images); the same attributes on a
  ``gen_ai.client.inference.operation.details`` span event; the v1.28-v1.36 events
  ``gen_ai.system.message``, ``gen_ai.user.message``, ``gen_ai.assistant.message``,
  ``gen_ai.tool.message`` and ``gen_ai.choice`` (span events have no body, so the body is the JSON
  string attribute ``gen_ai.event.content``, as Azure's SDKs write it, else the event's own attributes
  ``content``, ``role``, ``tool_calls``, ``id``, ``message``, ``finish_reason``); the v1.27 events
  ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` with ``gen_ai.prompt`` / ``gen_ai.completion``
  (OpenAI messages as JSON; a plain string is one user message). A chat span without any of them (content
  capture is off by default) is a bad record: there is no prompt to replay.
- Sampling params: ``gen_ai.request.temperature``, ``top_p``, ``top_k``, ``max_tokens``, ``seed``,
  ``stop_sequences`` (-> ``stop``), and ``gen_ai.tool.definitions`` (-> ``tools``). Other
  ``gen_ai.request.*`` (penalties, encoding formats) are not replayed. ``gen_ai.request.choice.count``
  other than 1, or several output messages / choices, is refused like openai-log's ``n`` > 1.
- ``usage`` from ``gen_ai.usage.input_tokens`` / ``output_tokens`` (1.26's ``prompt_tokens`` /
  ``completion_tokens`` too); ``model`` is ``gen_ai.response.model``, else ``gen_ai.request.model``;
  ``timestamp`` is ``startTimeUnixNano``; ``id`` the span id (lower-case hex).
- Prompt-type by default: a ``prompt_type`` span attribute, else ``gen_ai.agent.name``, else the span name.
  A ``prompt_type_field`` is looked up in the span's attributes, then its resource's attributes (both by
  their full dotted key, e.g. ``service.name``), then the span object as written (``name``, ``scope.name``).
- ``metadata``: the resource's attributes (``telemetry.*`` SDK details aside), the span's attributes
  other than content, params, usage and models, and ``trace_id``, ``span_id``, ``span_name``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from equiv.traffic.fields import (
    ROLES,
    _Bad,
    _check_messages,
    _params,
    _prompt_type,
    _record_id,
    _short,
    _Skip,
    _timestamp,
    _type_name,
    _usage,
)
from equiv.traffic.openai_log import _response_text

_KEYS = frozenset({"resourceSpans", "spanId"})  # an OTLP export object, or one span

_CHAT_OPERATIONS = frozenset({"chat", "generate_content"})
_STATUS_ERROR = (2, "STATUS_CODE_ERROR")

# span attributes read into the record's own fields (never kept in metadata)
_CONTENT_ATTRS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.operation.name",
        "gen_ai.response.model",
    }
)
_MAPPED_PREFIXES = ("gen_ai.request.", "gen_ai.usage.", "gen_ai.prompt.", "gen_ai.completion.")

_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"

_NO_CONTENT_FIX = (
    "enable content capture in the instrumentation (e.g. OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true) "
    "so that spans carry gen_ai.input.messages or gen_ai.*.message events"
)
_EXPORT_FIX = "give the OTLP/JSON the collector's file exporter writes, unchanged"

_MISSING = object()


# ------------------------------------------------------------------------------------------------ lines


def _is_otel(row: dict[str, Any]) -> bool:
    """An OTLP/JSON export object (``resourceSpans``), or one span (``traceId``, ``spanId`` and a start time
    or attributes list); never a row holding a native record's or an OpenAI log's keys."""
    if any(k in row for k in ("messages", "prompt", "request")):
        return False
    if isinstance(row.get("resourceSpans"), list):
        return True
    return (
        isinstance(row.get("spanId"), str)
        and isinstance(row.get("traceId"), str)
        and ("startTimeUnixNano" in row or isinstance(row.get("attributes"), list))
    )


def _spans_of(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The spans of one line (the format's ``expand``): each span of an export object, as written, with its
    ``resource`` and ``scope`` added; a line that is one span is that span."""
    if "resourceSpans" not in obj:
        if "spanId" in obj or "traceId" in obj:
            yield obj
            return
        raise _Bad(
            "invalid record",
            "not an OTLP/JSON export object (no resourceSpans) or span (no spanId)",
            _EXPORT_FIX,
        )
    for i, rs in enumerate(_list(obj, "resourceSpans", "resourceSpans")):
        at = f"resourceSpans[{i}]"
        if not isinstance(rs, dict):
            raise _Bad("invalid record", f"{at} must be an object, got {_type_name(rs)}", _EXPORT_FIX)
        resource = _object(rs, "resource", f"{at}.resource")
        key = "scopeSpans" if "scopeSpans" in rs else "instrumentationLibrarySpans"
        for j, ss in enumerate(_list(rs, key, f"{at}.{key}")):
            sat = f"{at}.{key}[{j}]"
            if not isinstance(ss, dict):
                raise _Bad("invalid record", f"{sat} must be an object, got {_type_name(ss)}", _EXPORT_FIX)
            scope = _object(ss, "scope" if "scope" in ss else "instrumentationLibrary", f"{sat}.scope")
            for k, span in enumerate(_list(ss, "spans", f"{sat}.spans")):
                if not isinstance(span, dict):
                    raise _Bad(
                        "invalid record", f"{sat}.spans[{k}] must be an object, got {_type_name(span)}", _EXPORT_FIX
                    )
                yield {**span, "resource": resource, "scope": scope}


def _list(obj: dict[str, Any], key: str, name: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad("invalid record", f"{name} must be an array, got {_type_name(value)}", _EXPORT_FIX)
    return value


def _object(obj: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad("invalid record", f"{name} must be an object, got {_type_name(value)}", _EXPORT_FIX)
    return value


# ------------------------------------------------------------------------------------------------ spans


def _from_otel(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    span_id = row.get("spanId")
    if span_id is not None and not isinstance(span_id, str):
        raise _Bad("invalid record", f"spanId must be text, got {_type_name(span_id)}", "give the span id as hex")
    try:
        return _read_span(row, pt_field, pt_path)
    except _Bad as bad:
        if span_id:
            bad.detail = f"span {span_id}: {bad.detail}"
        raise


def _read_span(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    attrs = _attributes(row.get("attributes"), "attributes")
    resource = row.get("resource")
    res_attrs = _attributes(resource.get("attributes"), "resource.attributes") if isinstance(resource, dict) else {}
    events = _events(row.get("events"))
    if not any(k.startswith("gen_ai.") for k in attrs) and not any(e[0].startswith("gen_ai.") for e in events):
        raise _Skip("otel-genai: not a GenAI span")
    op = _str_attr(attrs, "gen_ai.operation.name")
    if op is not None and op not in _CHAT_OPERATIONS:
        raise _Skip(f"otel-genai: {op[:40]} span")
    if _status_code(row) in _STATUS_ERROR or attrs.get("error.type") not in (None, ""):
        raise _Skip("otel-genai: status error")
    content = _content(attrs, events)
    if content is None:
        if op is None:
            raise _Skip("otel-genai: no gen_ai.operation.name")
        raise _Bad(
            "no messages or prompt",
            f"the {op} span {_short(row.get('name'))} holds no prompt: no gen_ai.input.messages attribute "
            "and no gen_ai.*.message or gen_ai.content.prompt events",
            _NO_CONTENT_FIX,
        )
    messages, output, n_choices, label = content
    finish = _finish_reason(attrs, output)
    if finish == "error":
        raise _Skip("otel-genai: finish_reason error")
    choices = _int_attr(attrs, "gen_ai.request.choice.count")
    if n_choices > 1 or (choices is not None and choices != 1):
        count = n_choices if n_choices > 1 else choices
        raise _Bad(
            "non-sampling params",
            f"the call returned or asked for {_short(count)} answers, and its usage counts them all",
            "log calls made with one choice: equiv compares one answer per call, at its own cost",
        )
    messages = _check_messages(messages, label)
    response = None
    if output is not None:
        response = _response_text({"choices": [{"message": output, "finish_reason": finish}]})
    name = row.get("name")
    if name is not None and not isinstance(name, str):
        raise _Bad("invalid record", f"name must be text, got {_type_name(name)}", "give the span name as text")
    if pt_field == "prompt_type":
        prompt_type = _prompt_type(
            [attrs, {"prompt_type": attrs.get("gen_ai.agent.name")}, {"prompt_type": name}], pt_field, pt_path
        )
    else:
        prompt_type = _prompt_type([attrs, res_attrs, row], pt_field, pt_path)
    return {
        "id": _record_id(row["spanId"].lower() if row.get("spanId") else None, messages),  # hex, any case
        "prompt_type": prompt_type,
        "messages": messages,
        "response": response,
        "model": _str_attr(attrs, "gen_ai.response.model") or _str_attr(attrs, "gen_ai.request.model"),
        "usage": _span_usage(attrs),
        "params": _span_params(attrs),
        "timestamp": _timestamp(_start_time(row.get("startTimeUnixNano"))),
        "metadata": _metadata(row, attrs, res_attrs, pt_field),
    }


def _status_code(row: dict[str, Any]) -> Any:
    status = row.get("status")
    if status is None:
        return None
    if not isinstance(status, dict):
        raise _Bad("invalid record", f"status must be an object, got {_type_name(status)}", _EXPORT_FIX)
    code = status.get("code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, (int, str))):
        raise _Bad("invalid record", f"status.code must be an integer, got {_type_name(code)}", _EXPORT_FIX)
    return code


def _start_time(value: Any) -> datetime | None:
    """``startTimeUnixNano`` to the microsecond (nanoseconds as a float would lose it); 0 means unset."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(
            "invalid record",
            f"startTimeUnixNano must be nanoseconds since the epoch as a decimal string, got {_short(value)}",
            _EXPORT_FIX,
        )
    if value == 0:
        return None
    try:
        return datetime.fromtimestamp(value // 10**9, tz=UTC) + timedelta(microseconds=value % 10**9 // 1000)
    except (OverflowError, OSError, ValueError):
        raise _Bad("invalid record", f"startTimeUnixNano {value} is not a date and time", _EXPORT_FIX) from None


def _metadata(row: dict[str, Any], attrs: dict[str, Any], res_attrs: dict[str, Any], pt_field: str) -> dict[str, Any]:
    meta = {k: v for k, v in res_attrs.items() if not k.startswith("telemetry.")}
    for k, v in attrs.items():
        if k in _CONTENT_ATTRS or k.startswith(_MAPPED_PREFIXES) or (k == "prompt_type" and pt_field == k):
            continue
        meta[k] = v
    for key, field in (("trace_id", "traceId"), ("span_id", "spanId"), ("span_name", "name")):
        value = row.get(field)
        if isinstance(value, str) and value:
            meta[key] = value.lower() if field != "name" else value
    return meta


# ------------------------------------------------------------------------------------------ attributes


def _attributes(value: Any, name: str) -> dict[str, Any]:
    """OTLP ``[{"key", "value": AnyValue}]`` -> ``{key: python value}``."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _Bad(
            "invalid record", f"{name} must be an array of key/value pairs, got {_type_name(value)}", _EXPORT_FIX
        )
    out: dict[str, Any] = {}
    for i, kv in enumerate(value):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise _Bad("invalid record", f"{name}[{i}] must be an object with a text 'key'", _EXPORT_FIX)
        out[kv["key"]] = _any_value(kv.get("value"), f"{name}[{kv['key']!r}]")
    return out


def _any_value(value: Any, name: str) -> Any:
    """An OTLP ``AnyValue`` as a Python value (an empty one is None)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad("invalid record", f"{name} must be an AnyValue object, got {_type_name(value)}", _EXPORT_FIX)
    if not value:
        return None
    kind, v = next(iter(value.items()))
    ok: bool
    if kind in ("stringValue", "bytesValue"):
        ok = isinstance(v, str)
    elif kind == "boolValue":
        ok = isinstance(v, bool)
    elif kind == "intValue":
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            return int(v)
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif kind == "doubleValue":
        if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
            return float(v)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)  # kept as written: 0 stays 0
    elif kind == "arrayValue":
        items = v.get("values") if isinstance(v, dict) else _MISSING
        if items is None:
            return []
        if not isinstance(items, list):
            raise _Bad("invalid record", f"{name}.arrayValue must hold a list of values", _EXPORT_FIX)
        return [_any_value(x, f"{name}[{i}]") for i, x in enumerate(items)]
    elif kind == "kvlistValue":
        items = v.get("values") if isinstance(v, dict) else _MISSING
        if items is _MISSING:
            raise _Bad("invalid record", f"{name}.kvlistValue must hold a list of key/value pairs", _EXPORT_FIX)
        return _attributes(items, name)
    else:
        raise _Bad("invalid record", f"{name} has an unknown value type {kind!r}", _EXPORT_FIX)
    if not ok:
        raise _Bad("invalid record", f"{name}.{kind} has the wrong type ({_type_name(v)})", _EXPORT_FIX)
    return v


def _str_attr(attrs: dict[str, Any], key: str) -> str | None:
    value = attrs.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _Bad("invalid record", f"attribute {key} must be text, got {_type_name(value)}", "record it as a string")


def _int_attr(attrs: dict[str, Any], key: str) -> int | None:
    value = attrs.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)  # top_k is a double in the conventions
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(
            "invalid record", f"attribute {key} must be an integer, got {_short(value)}", "record it as an intValue"
        )
    return value


def _num_attr(attrs: dict[str, Any], key: str) -> float | int | None:
    value = attrs.get(key)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise _Bad(
        "invalid record", f"attribute {key} must be a number, got {_type_name(value)}", "record it as a doubleValue"
    )


def _json_attr(attrs: dict[str, Any], key: str) -> Any:
    """A content attribute: a structured value, or (on spans, usually) a JSON string of it."""
    value = attrs.get(key)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise _Bad(
            "invalid record",
            f"attribute {key} is not valid JSON ({_short(value)})",
            "record the content as the conventions' JSON; a truncated attribute cannot be read",
        ) from None


def _span_usage(attrs: dict[str, Any]) -> dict[str, Any] | None:
    usage = {
        "prompt_tokens": _first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
        "completion_tokens": _first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    }
    if all(v is None for v in usage.values()):
        return None
    return _usage(usage, "gen_ai.usage")


def _first(attrs: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = _int_attr(attrs, key)
        if value is not None:
            return value
    return None


def _span_params(attrs: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "temperature": _num_attr(attrs, "gen_ai.request.temperature"),
        "top_p": _num_attr(attrs, "gen_ai.request.top_p"),
        "top_k": _int_attr(attrs, "gen_ai.request.top_k"),
        "max_tokens": _int_attr(attrs, "gen_ai.request.max_tokens"),
        "seed": _int_attr(attrs, "gen_ai.request.seed"),
    }
    stop = attrs.get("gen_ai.request.stop_sequences")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _Bad(
                "invalid record",
                f"attribute gen_ai.request.stop_sequences must be a list of texts, got {_short(stop)}",
                "record it as an arrayValue of strings",
            )
        params["stop"] = stop or None
    tools = _json_attr(attrs, "gen_ai.tool.definitions")
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise _Bad(
                "invalid record",
                f"attribute gen_ai.tool.definitions must be a list of tool objects, got {_type_name(tools)}",
                "record the tool definitions the model was given",
            )
        params["tools"] = [_tool(t) for t in tools] or None
    return _params(params, "gen_ai.request")


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool definition in chat-completions shape (a flat ``{"type": "function", "name", ...}`` is wrapped)."""
    if "function" in tool or "name" not in tool:
        return tool
    fn = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": tool.get("type") or "function", "function": fn}


# --------------------------------------------------------------------------------------------- content

# (chat messages, the output as an assistant message or None, how many answers the span holds, where the
# messages came from: names them in errors)
_Content = tuple[list[dict[str, Any]], dict[str, Any] | None, int, str]
_Event = tuple[str, dict[str, Any]]


def _events(value: Any) -> list[_Event]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad("invalid record", f"events must be an array, got {_type_name(value)}", _EXPORT_FIX)
    out: list[_Event] = []
    for i, ev in enumerate(value):
        if not isinstance(ev, dict) or not isinstance(ev.get("name"), str):
            raise _Bad("invalid record", f"events[{i}] must be an object with a text 'name'", _EXPORT_FIX)
        out.append((ev["name"], _attributes(ev.get("attributes"), f"events[{i}].attributes")))
    return out


def _content(attrs: dict[str, Any], events: list[_Event]) -> _Content | None:
    """The conversation and the answer, from the first layout the span uses (see the module docstring)."""
    for source in (attrs, *(a for name, a in events if name == _DETAILS_EVENT)):
        if "gen_ai.input.messages" in source:
            return _from_content_attributes(source)
    if any(name in _EVENT_ROLES for name, _ in events):
        return _from_message_events(events)
    prompt = next((a for name, a in events if name == "gen_ai.content.prompt" and "gen_ai.prompt" in a), None)
    if prompt is not None:
        return _from_prompt_events(prompt, events)
    return None


def _from_content_attributes(attrs: dict[str, Any]) -> _Content:
    messages: list[dict[str, Any]] = []
    system = _json_attr(attrs, "gen_ai.system_instructions")
    if system is not None:
        if isinstance(system, str):
            system = [{"type": "text", "content": system}]
        if not isinstance(system, list):
            raise _Bad(
                "invalid record",
                f"gen_ai.system_instructions must be a list of parts, got {_type_name(system)}",
                'record [{"type": "text", "content": "..."}]',
            )
        messages += _chat_messages({"role": "system", "parts": system}, "gen_ai.system_instructions")
    inputs = _json_attr(attrs, "gen_ai.input.messages")
    if not isinstance(inputs, list):
        raise _Bad(
            "invalid messages",
            f"gen_ai.input.messages must be a list of messages, got {_type_name(inputs)}",
            'record [{"role": "user", "parts": [{"type": "text", "content": "..."}]}]',
        )
    for i, m in enumerate(inputs):
        messages += _chat_messages(m, f"gen_ai.input.messages[{i}]")
    outputs = _json_attr(attrs, "gen_ai.output.messages")
    if outputs is None:
        return messages, None, 0, "messages"
    if not isinstance(outputs, list):
        raise _Bad(
            "invalid messages",
            f"gen_ai.output.messages must be a list of messages, got {_type_name(outputs)}",
            'record [{"role": "assistant", "parts": [...], "finish_reason": "stop"}]',
        )
    if not outputs:
        return messages, None, 0, "messages"
    first = _output_message(outputs[0], "gen_ai.output.messages[0]")
    return messages, first, len(outputs), "messages"


def _parts(message: Any, at: str) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(message, dict):
        raise _Bad("invalid messages", f"{at} must be an object, got {_type_name(message)}", 'record {"role", "parts"}')
    role, parts = message.get("role"), message.get("parts")
    if not isinstance(role, str):
        raise _Bad("invalid messages", f"{at}.role must be text, got {_type_name(role)}", "give the message's role")
    if parts is None:
        parts = []
    if not isinstance(parts, list) or not all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in parts):
        raise _Bad(
            "invalid messages",
            f"{at}.parts must be a list of parts with a 'type'",
            'record [{"type": "text", "content": "..."}]',
        )
    return role, parts


def _chat_messages(message: Any, at: str) -> list[dict[str, Any]]:
    """One parts-based message -> chat messages: a tool call's result becomes a ``tool`` message of its own."""
    role, parts = _parts(message, at)
    content: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        kind = part["type"]
        if kind == "tool_call_response":
            result = part.get("response", part.get("result"))
            results.append({"role": "tool", "tool_call_id": part.get("id"), "content": _as_text(result)})
        elif kind == "tool_call":
            calls.append(_tool_call(part, f"{at}.parts[{j}]"))
        elif kind != "reasoning":  # the model's thinking is not part of what is replayed
            content.append(_openai_part(part, f"{at}.parts[{j}]"))
    out: list[dict[str, Any]] = results  # a tool result answers the call before it: it comes first
    if content or calls or not results:
        msg: dict[str, Any] = {"role": role, "content": _joined(content, none_if_empty=bool(calls))}
        if calls:
            msg["tool_calls"] = calls
        if isinstance(message.get("name"), str):
            msg["name"] = message["name"]
        out.append(msg)
    return out


def _output_message(message: Any, at: str) -> dict[str, Any]:
    role, parts = _parts(message, at)
    text = [_openai_part(p, f"{at}.parts[{j}]") for j, p in enumerate(parts) if p["type"] == "text"]
    calls = [_tool_call(p, f"{at}.parts[{j}]") for j, p in enumerate(parts) if p["type"] == "tool_call"]
    out: dict[str, Any] = {"role": role, "content": _joined(text, none_if_empty=bool(calls))}
    if calls:
        out["tool_calls"] = calls
    if isinstance(message.get("finish_reason"), str):
        out["finish_reason"] = message["finish_reason"]
    return out


def _openai_part(part: dict[str, Any], at: str) -> dict[str, Any]:
    kind = part["type"]
    if kind == "text":
        text = part.get("content")
        if not isinstance(text, str):
            raise _Bad("invalid messages", f"{at} is a text part without text content", 'add "content": "..."')
        return {"type": "text", "text": text}
    if kind in ("uri", "blob") and part.get("modality") == "image":
        if kind == "uri" and isinstance(part.get("uri"), str):
            return {"type": "image_url", "image_url": {"url": part["uri"]}}
        if kind == "blob" and isinstance(part.get("content"), str):
            mime = part.get("mime_type") or "image/png"
            return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{part['content']}"}}
    raise _Bad(
        "invalid messages",
        f"{at} is a {kind!r} part{' of modality ' + repr(part.get('modality')) if 'modality' in part else ''}, "
        "which equiv cannot replay",
        "keep text and image parts only, or leave such calls out of the traffic",
    )


def _joined(parts: list[dict[str, Any]], *, none_if_empty: bool) -> Any:
    """One text part -> its text; several or images -> the list of parts; none -> "" (None beside tool calls)."""
    if not parts:
        return None if none_if_empty else ""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _tool_call(part: dict[str, Any], at: str) -> dict[str, Any]:
    name = part.get("name")
    if not isinstance(name, str):
        raise _Bad("invalid messages", f"{at} is a tool_call part without a name", 'add "name": "..."')
    args = part.get("arguments")
    return {
        "id": part.get("id"),
        "type": "function",
        "function": {"name": name, "arguments": args if isinstance(args, str) or args is None else _as_text(args)},
    }


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _finish_reason(attrs: dict[str, Any], output: dict[str, Any] | None) -> str | None:
    if output is not None and isinstance(output.get("finish_reason"), str):
        return str(output.pop("finish_reason"))
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, str):
        return reasons
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], str):
        return reasons[0]
    return None


# ------------------------------------------------------------------------------- older event layouts


def _event_body(attrs: dict[str, Any], name: str) -> dict[str, Any]:
    """A v1.28 event's body: the JSON of ``gen_ai.event.content``, else the event's own attributes."""
    if "gen_ai.event.content" not in attrs:
        return attrs
    body = _json_attr(attrs, "gen_ai.event.content")
    if not isinstance(body, dict):
        raise _Bad(
            "invalid record",
            f"the {name} event's gen_ai.event.content must be a JSON object, got {_type_name(body)}",
            'record the event body, e.g. {"content": "..."}',
        )
    return body


def _from_message_events(events: list[_Event]) -> _Content:
    messages: list[dict[str, Any]] = []
    output: dict[str, Any] | None = None
    n_choices = 0
    for name, attrs in events:
        if name in _EVENT_ROLES:
            body = _event_body(attrs, name)
            role = body.get("role") if body.get("role") in ROLES else _EVENT_ROLES[name]
            msg: dict[str, Any] = {"role": role, "content": _event_content(body.get("content"))}
            calls = _event_tool_calls(body.get("tool_calls"), name)
            if calls:
                msg["tool_calls"] = calls
                if msg["content"] == "":
                    msg["content"] = None
            if role == "tool":
                msg["tool_call_id"] = body.get("id")
            messages.append(msg)
        elif name == "gen_ai.choice":
            body = _event_body(attrs, name)
            n_choices += 1
            if output is None or body.get("index") in (0, "0"):
                output = _choice_message(body)
    return messages, output, n_choices, "messages (from the gen_ai.*.message events)"


def _event_content(content: Any) -> Any:
    """An event's ``content`` (AnyValue): text, a list of chat content parts, or a JSON value shown as text."""
    if content is None:
        return ""
    if isinstance(content, str) or (isinstance(content, list) and all(isinstance(p, dict) for p in content)):
        return content
    return _as_text(content)


def _event_tool_calls(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise _Bad(
            "invalid messages",
            f"the {name} event's tool_calls must be a list of calls",
            'record [{"id", "type": "function", "function": {"name", "arguments"}}]',
        )
    calls = []
    for call in value:
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        args = fn.get("arguments")
        calls.append(
            {
                "id": call.get("id"),
                "type": call.get("type") or "function",
                "function": {
                    "name": fn.get("name"),
                    "arguments": args if isinstance(args, str) or args is None else _as_text(args),
                },
            }
        )
    return calls


def _choice_message(body: dict[str, Any]) -> dict[str, Any]:
    message = body.get("message")
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            message = {"content": message}
    if message is None:
        message = {}
    if not isinstance(message, dict):
        raise _Bad(
            "invalid record",
            f"the gen_ai.choice event's message must be an object, got {_type_name(message)}",
            'record {"index": 0, "finish_reason": "stop", "message": {"content": "..."}}',
        )
    out: dict[str, Any] = {"role": "assistant", "content": _event_content(message.get("content"))}
    calls = _event_tool_calls(message.get("tool_calls"), "gen_ai.choice")
    if calls:
        out["tool_calls"] = calls
        if out["content"] == "":
            out["content"] = None
    if isinstance(body.get("finish_reason"), str):
        out["finish_reason"] = body["finish_reason"]
    return out


def _from_prompt_events(prompt: dict[str, Any], events: list[_Event]) -> _Content:
    """v1.27: ``gen_ai.prompt`` / ``gen_ai.completion``, OpenAI messages as JSON (a plain string: one message)."""
    messages = _legacy_messages(prompt.get("gen_ai.prompt"), "gen_ai.prompt", "user")
    completion = next(
        (a for name, a in events if name == "gen_ai.content.completion" and "gen_ai.completion" in a), None
    )
    if completion is None:
        return messages, None, 0, "gen_ai.prompt"
    answers = _legacy_messages(completion.get("gen_ai.completion"), "gen_ai.completion", "assistant")
    if answers and not isinstance(answers[0], dict):
        raise _Bad(
            "invalid messages",
            f"gen_ai.completion[0] must be a message object, got {_type_name(answers[0])}",
            'record [{"role": "assistant", "content": "..."}]',
        )
    return messages, (dict(answers[0]) if answers else None), len(answers), "gen_ai.prompt"


def _legacy_messages(value: Any, name: str, role: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [{"role": role, "content": value}]
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if not isinstance(value, list):
        raise _Bad(
            "invalid messages",
            f"{name} must be a JSON list of chat messages, got {_type_name(value)}",
            'record [{"role": "user", "content": "..."}]',
        )
    return value
