"""Format ``langfuse``: Langfuse observations, ``GENERATION`` rows only.  [pure]

Two layouts of the same observation are read (SPEC "Where traffic lives — contract"):

- the public API's JSON pages, ``GET /api/public/observations`` (``{"data": [...], "meta": {...}}``, the
  ``.json`` reader unwraps ``data``) and ``GET /api/public/v2/observations``: camelCase keys ``id``,
  ``traceId``, ``type``, ``name``, ``startTime``, ``model`` (v1) / ``providedModelName`` (v2),
  ``modelParameters``, ``input``, ``output``, ``usageDetails`` (and v1's deprecated ``usage`` /
  ``promptTokens`` / ``completionTokens``), ``level``, ``promptName``, ``traceName`` (v2's
  ``trace_context`` group), ``metadata``, ``userId``, ``sessionId`` ...;
- the blob-storage export's enriched ``observations_v2/`` lines (JSON/JSONL/CSV): snake_case ``id``,
  ``trace_id``, ``type``, ``name``, ``start_time`` (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC),
  ``provided_model_name``, ``model_parameters`` (JSON text), ``input``/``output`` (text: JSON or plain,
  ``""`` when unset), ``usage_details``, ``prompt_name``, ``trace_name``, ``level``, ``metadata`` ...

Field names follow Langfuse's own definitions: the public API types in ``fern/apis/server/definition``
(``commons.yml``: ``Observation``, ``ObservationsView``, ``ObservationV2``) and the export field reference
(langfuse.com/docs/api-and-data-platform/features/blob-storage-export-fields).

What a row becomes:

- Only ``type == "GENERATION"`` rows are LLM calls; every other type (``SPAN``, ``EVENT``, ``TOOL``,
  ``EMBEDDING`` ...) is skipped as ``"langfuse: <TYPE> observation"``, and a generation with
  ``level == "ERROR"`` as ``"langfuse: level ERROR"`` (a failed call has no answer to compare).
- ``messages``: ``input`` as a list of chat messages, or ``{"messages": [...]}`` (the shape Langfuse's
  OpenAI integration logs when the call had tools; its ``tools``/``tool_choice`` are replayed, its
  ``functions`` cannot be and refuse the row as for ``openai-log``), or a plain string (one user message).
  Text that holds JSON (the export's ``input`` column, a CSV cell) is parsed first.
- ``response``: ``output`` as an assistant message object, a choices-like object (``{"choices": [...]}``)
  or a list of messages (the last one), rendered like an ``openai-log`` response (a tool-call answer is
  the faithful rendering of ``equiv.llm.answer``); plain text as written. Text holding JSON that is not
  message-shaped (a JSON answer stored as text, e.g. ``{"vendor": ...}``) is kept as the text itself; an
  API page returns such JSON parsed, and it is written back as compact-free JSON (``json.dumps``).
- ``usage``: Langfuse's own ``usageDetails`` / ``usage_details``: prompt tokens are the sum of the keys
  containing ``input`` and completion tokens the sum of those containing ``output``, as Langfuse itself
  aggregates them (``input_cached_tokens`` is part of the prompt; a key that is absent counts 0). Else
  v1's deprecated ``usage`` ``{input, output}`` when it is not all zeros, else ``promptTokens`` /
  ``completionTokens``; else none.
- ``params``: the sampling params found in ``modelParameters`` / ``model_parameters`` (an object or JSON
  text). Langfuse holds whatever an integration put there, often as text (``"0.7"``) and with keys that
  are not sampling params (``maxSteps``, ``service_tier``, ``stream`` ...): those not in
  ``REPLAYED_PARAMS`` are ignored, numbers written as text are read as numbers, JSON text is parsed for
  ``stop``/``response_format``/``tools``/``tool_choice``/``logit_bias``, and an unbounded
  ``max_tokens`` (``inf``, the old Python SDK's "not set") is dropped. The Vercel AI SDK's ``maxTokens``
  and ``topP`` are read as ``max_tokens`` and ``top_p``. ``n`` > 1 refuses the row (its usage counts every
  answer), as for ``openai-log``.
- ``model``: ``model`` (v1) or ``providedModelName`` / ``provided_model_name``.
- ``timestamp``: ``startTime`` / ``start_time``.
- ``prompt_type`` (default source): ``promptName`` / ``prompt_name`` (the Langfuse prompt the call used),
  else the trace name (``traceName`` / ``trace_name``), else the observation's own ``name``. The v1 API
  page holds only ``traceId``, not the trace's name, so there the observation name is what names the
  call site (the OpenAI integration names a generation after the ``name=`` it was given). With
  ``prompt_type_field`` set, the dotted path is looked up in the row as Langfuse wrote it (e.g.
  ``metadata.feature``).
- ``metadata``: the observation's own ``metadata`` object, plus (without overriding its keys)
  ``trace_id``, ``trace_name``, ``observation_name``, ``user_id``, ``session_id``, ``tags``,
  ``environment``, ``release``, ``version``, ``prompt_name``, ``prompt_version`` and
  ``parent_observation_id`` where Langfuse gives them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from equiv.traffic.fields import (
    REPLAYED_PARAMS,
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

_KEYS = frozenset({"traceId", "trace_id"})  # a row holding one of these may be a Langfuse observation

# the keys that always come with an observation (the export's "core" field group; the API's required fields)
_API_MARK = ("id", "traceId", "startTime", "type")
_EXPORT_MARK = ("id", "trace_id", "start_time", "type")

_NUMERIC_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_completion_tokens",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    }
)
_INT_PARAMS = frozenset({"top_k", "max_tokens", "max_completion_tokens", "seed"})
_JSON_PARAMS = frozenset({"stop", "response_format", "tools", "tool_choice", "logit_bias"})
_PARAM_ALIASES = {"maxTokens": "max_tokens", "topP": "top_p"}  # Vercel AI SDK spans
_UNBOUNDED = frozenset({"inf", "+inf", "infinity", "+infinity", "nan", "none", "null"})
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_MESSAGE_KEYS = ("role", "tool_calls", "function_call")


def _is_langfuse(row: dict[str, Any]) -> bool:
    """An observation: ``id``, ``type`` (text) and its trace id and start time, camelCase (API) or
    snake_case (export); never a row holding ``messages``, ``prompt`` or ``request`` (native, openai-log)."""
    if any(k in row for k in ("messages", "prompt", "request")) or not isinstance(row.get("type"), str):
        return False
    return all(k in row for k in _API_MARK) or all(k in row for k in _EXPORT_MARK)


def _from_langfuse(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    api = "traceId" in row or "startTime" in row  # the API's camelCase layout, else the export's snake_case

    def key(camel: str, snake: str) -> str:
        return camel if api else snake

    kind = row.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise _Bad(
            "invalid record",
            "no observation 'type'" if kind is None else f"type must be text, got {_type_name(kind)}",
            "give Langfuse observations as the API or the blob-storage export writes them",
        )
    if kind.strip().upper() != "GENERATION":
        raise _Skip(f"langfuse: {kind.strip().upper()} observation")
    if row.get("level") == "ERROR":
        raise _Skip("langfuse: level ERROR")

    messages, extras = _input_messages(row.get("input"))
    start = key("startTime", "start_time")
    if row.get(start) is None:
        raise _Bad("invalid record", f"no '{start}'", "give the observation's start time")
    return {
        "id": _record_id(row.get("id"), messages),
        "prompt_type": _langfuse_prompt_type(row, api, pt_field, pt_path),
        "messages": messages,
        "response": _output_text(row.get("output")),
        "model": _model(row, api),
        "usage": _langfuse_usage(row, api),
        "params": _langfuse_params(
            row.get(key("modelParameters", "model_parameters")), key("modelParameters", "model_parameters"), extras
        ),
        "timestamp": _timestamp(row.get(start)),
        "metadata": _metadata(row, api),
    }


def _parse_json_text(value: str) -> Any:
    """JSON text -> its value; anything else (plain text, broken JSON) -> the text itself."""
    text = value.strip()
    if not text or text[0] not in '[{"':
        return value
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return value


def _input_messages(value: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The chat messages of ``input``, and the other keys of a ``{"messages": [...], "tools": ...}`` input."""
    if isinstance(value, str):
        value = _parse_json_text(value)
    fix = 'log the generation\'s input as chat messages ([{"role": "user", "content": "..."}])'
    if value is None or value == "" or value == []:
        raise _Bad("no messages or prompt", "the generation has no input", fix)
    if isinstance(value, str):
        if not value.strip():
            raise _Bad("no messages or prompt", "the generation's input is empty", fix)
        return [{"role": "user", "content": value}], {}
    if isinstance(value, list):
        return _check_messages(value, "input"), {}
    if isinstance(value, dict):
        if "messages" not in value:
            raise _Bad("invalid messages", "input is an object without 'messages'", fix)
        extras = {k: v for k, v in value.items() if k != "messages"}
        return _check_messages(value["messages"], "input.messages"), extras
    raise _Bad("invalid messages", f"input must be chat messages or text, got {_type_name(value)}", fix)


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in _MESSAGE_KEYS)


def _output_text(value: Any) -> str | None:
    """The answer the generation logged (``None`` when it logged none)."""
    raw = value
    if isinstance(value, str):
        if not value.strip():
            return None
        value = _parse_json_text(value)
        if isinstance(value, str):
            return value
        if not (_is_message(value) or _is_choices(value) or _is_message_list(value)):
            return raw  # a JSON answer stored as text: the text is the answer
    if value is None:
        return None
    if _is_choices(value):
        return _response_text(value)
    if _is_message(value):
        return _message_text(value)
    if _is_message_list(value):
        return _message_text(value[-1])
    if isinstance(value, (dict, list, int, float, bool)):
        return json.dumps(value, ensure_ascii=False)
    raise _Bad("invalid record", f"output must be text or an object, got {_type_name(value)}", "log the answer")


def _is_choices(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("choices"), list)


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_message(m) for m in value)


def _message_text(message: dict[str, Any]) -> str | None:
    finish = message.get("finish_reason")
    return _response_text({"choices": [{"message": message, "finish_reason": finish}]})


def _model(row: dict[str, Any], api: bool) -> str | None:
    names = ("model", "providedModelName") if api else ("provided_model_name", "model")
    for name in names:
        value = row.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise _Bad("invalid record", f"{name} must be text, got {_type_name(value)}", "give the model name")
        return value
    return None


def _langfuse_usage(row: dict[str, Any], api: bool) -> dict[str, Any] | None:
    name = "usageDetails" if api else "usage_details"
    details = row.get(name)
    if isinstance(details, str):
        details = _structured(details, name)
    if details is not None and not isinstance(details, dict):
        raise _Bad("invalid record", f"{name} must be an object, got {_type_name(details)}", "give {input, output}")
    if details:
        prompt = _sum_tokens(details, name, "input")
        completion = _sum_tokens(details, name, "output")
        if prompt is None and completion is None:  # OpenAI-style names, if an integration kept them
            prompt = _sum_tokens(details, name, "prompt_tokens")
            completion = _sum_tokens(details, name, "completion_tokens")
        if prompt is not None or completion is not None:
            return _usage({"prompt_tokens": prompt or 0, "completion_tokens": completion or 0}, name)
    if api:
        legacy = row.get("usage")
        if isinstance(legacy, dict) and (legacy.get("input") or legacy.get("output")):
            return _usage(
                {"prompt_tokens": legacy.get("input") or 0, "completion_tokens": legacy.get("output") or 0}, "usage"
            )
        if row.get("promptTokens") or row.get("completionTokens"):
            return _usage(
                {"prompt_tokens": row.get("promptTokens") or 0, "completion_tokens": row.get("completionTokens") or 0},
                "promptTokens/completionTokens",
            )
    return None


def _sum_tokens(details: dict[str, Any], name: str, part: str) -> int | None:
    total: int | None = None
    for k, v in details.items():
        if part not in str(k).lower() or v is None:
            continue
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)  # ClickHouse writes 64-bit integers as text
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
            raise _Bad("invalid record", f"{name}.{k} must be a token count, got {_short(v)}", "fix the count")
        total = (total or 0) + int(v)
    return total


def _structured(text: str, name: str) -> Any:
    """A field that holds JSON text (the export's ``model_parameters``, a CSV cell): its value."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise _Bad(
            "invalid JSON", f"{name} is not valid JSON text ({_short(text)})", f"write {name} as a JSON object"
        ) from None


def _langfuse_params(value: Any, name: str, extras: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, str):
        value = _structured(value, name)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _Bad("invalid record", f"{name} must be an object, got {_type_name(value)}", "give {temperature, ...}")
    n = value.get("n")
    if n is not None and str(n).strip() not in ("1", "1.0", ""):
        raise _Bad(
            "non-sampling params",
            f"{name}.n is {_short(n)}: the logged call asked for several answers, and its usage counts them all",
            "log calls made with n = 1: equiv compares one answer per call, at its own cost",
        )
    params: dict[str, Any] = {}
    for raw_key, raw in value.items():
        k = _PARAM_ALIASES.get(raw_key, raw_key)
        if k not in REPLAYED_PARAMS or k in params:
            continue
        v = _param_value(k, raw)
        if v is not None:
            params[k] = v
    if "functions" in extras or "function_call" in extras:
        raise _Bad(
            "non-sampling params",
            "input.functions is not a sampling parameter, so it cannot be replayed",
            "log calls made with tools instead of the deprecated functions",
        )
    for k in ("tools", "tool_choice"):
        if extras.get(k) is not None and k not in params:
            params[k] = _param_value(k, extras[k])
    return _params(params, name)


def _param_value(k: str, v: Any) -> Any:
    """One model parameter as Langfuse holds it -> the value to replay (``None``: not set)."""
    if isinstance(v, str):
        text = v.strip()
        if not text:
            return None
        if k in _NUMERIC_PARAMS:
            if text.lower() in _UNBOUNDED:
                return None
            if _NUMBER.fullmatch(text):
                number = float(text)
                return int(number) if (k in _INT_PARAMS or "." not in text) and number == int(number) else number
            return v  # refused by the params check, naming the key
        if k in _JSON_PARAMS and text[0] in "[{":
            return _structured(text, k)
        if k == "parallel_tool_calls" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        return v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _langfuse_prompt_type(row: dict[str, Any], api: bool, pt_field: str, pt_path: list[str]) -> str:
    if pt_field != "prompt_type":
        return _prompt_type([row], pt_field, pt_path)
    names = ("promptName", "traceName", "name") if api else ("prompt_name", "trace_name", "name")
    for name in names:
        value = row.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise _Bad(
                "invalid record",
                f"{name} must be text to be used as the prompt-type, got {_type_name(value)}",
                "fix the value, or choose another field with prompt_type_field",
            )
        return value
    return "default"


_META_FIELDS = (
    ("trace_id", "traceId", "trace_id"),
    ("trace_name", "traceName", "trace_name"),
    ("observation_name", "name", "name"),
    ("user_id", "userId", "user_id"),
    ("session_id", "sessionId", "session_id"),
    ("tags", "tags", "tags"),
    ("environment", "environment", "environment"),
    ("release", "release", "release"),
    ("version", "version", "version"),
    ("prompt_name", "promptName", "prompt_name"),
    ("prompt_version", "promptVersion", "prompt_version"),
    ("parent_observation_id", "parentObservationId", "parent_observation_id"),
)


def _metadata(row: dict[str, Any], api: bool) -> dict[str, Any]:
    own = row.get("metadata")
    if isinstance(own, str):
        own = _parse_json_text(own)
    meta: dict[str, Any] = {}
    if isinstance(own, dict):
        meta.update(own)
    elif own not in (None, "", [], {}):
        meta["metadata"] = own
    for ours, camel, snake in _META_FIELDS:
        value = row.get(camel if api else snake)
        if value not in (None, "", []):
            meta.setdefault(ours, value)
    return meta
