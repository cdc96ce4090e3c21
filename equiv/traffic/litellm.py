"""Formats ``litellm-spendlogs`` and ``litellm-payload``: what the LiteLLM proxy logs.  [pure]

SPEC "Where traffic lives — contract". Both follow litellm's own code (1.106, the installed package):

``litellm-spendlogs``: rows of the proxy's ``LiteLLM_SpendLogs`` table (``proxy/schema.prisma``), as
``GET /spend/logs`` returns them (a JSON array; ``/spend/logs/v2``'s ``{"data": [...]}`` page; JSON Lines),
or as the ``postgresql://`` source reads them from the table (JSON columns parsed, timestamps as
``datetime``): ``_from_spendlog`` is that source's reader too. ``get_logging_payload``
(``proxy/spend_tracking/spend_tracking_utils.py``) writes a row:

- ``proxy_server_request``: the request body the client sent (``messages``, sampling params,
  ``metadata``), ``messages``: the request's messages in older versions (now ``{}`` for chat calls),
  ``response``: the response object (``choices``). All three are ``{}`` unless the proxy runs with
  ``store_prompts_in_spend_logs``: such a row is skipped, saying so. The prompt is read from
  ``proxy_server_request.messages``, else from ``messages`` (a list, or ``{"messages": [...]}``).
- ``metadata`` (``SpendLogsMetadata``: key/team/user, ``spend_logs_metadata``, ``status``, ``error_information``
  ...) and ``request_tags`` (the request's tags, then the ``User-Agent: ...`` tags litellm adds): JSON
  columns. Each JSON column is accepted parsed or as JSON text (as an exporter, a CSV or the JSON column
  of another version writes it).
- usage from ``prompt_tokens``/``completion_tokens``, the time from ``startTime`` (ISO text or a
  ``datetime``), the model from ``model`` (else the response's), ``request_id`` as the id.
- prompt-type: the first of ``request_tags`` (the tags litellm adds itself, ``User-Agent: ...``, are
  passed over), else ``metadata.spend_logs_metadata.prompt_type``.

``litellm-payload``: ``StandardLoggingPayload`` lines (``types/utils.py``), what litellm's S3/GCS buckets and
custom loggers write: ``messages`` (the request's), ``response`` (the response object), ``model_parameters``
(the call's optional params), ``prompt_tokens``/``completion_tokens``, ``startTime`` (unix seconds),
``model``, ``id``, ``metadata`` (``StandardLoggingMetadata``), ``request_tags``. Prompt-type: the first
of ``request_tags`` (passing over ``User-Agent: ...``). Note: ``model_parameters`` are the params litellm
sent the provider: for an OpenAI-compatible provider they are the request's; for another one they may be
renamed (Anthropic's ``stop_sequences``): only the ones with OpenAI names are replayed.

Both: params are the sampling params (``REPLAYED_PARAMS``) of the request; its other keys (``stream``,
``user``, ``metadata``, ``extra_body`` ...) are ignored and never replayed; ``n`` > 1 is refused as for
``openai-log`` (its usage counts every answer). A tool-call answer is rendered as ``openai-log`` does.
The record's ``metadata`` keeps the client's own metadata (``spend_logs_metadata``, the request's
``metadata``), then litellm's: user, team, key alias, ``model_group``, provider, ``request_tags``,
session/trace id, cache hit and cost, for ``--where``.

Skipped and counted (``_Skip``), in this order: ``status`` failure; a ``call_type`` other than a chat
completion (``completion``, ``acompletion``: embeddings, images, moderation, text completions, Anthropic
``/v1/messages``, Responses API ...); prompts not stored; prompts and answers the proxy redacted
(``turn_off_message_logging``: ``redacted-by-litellm``); prompts, answers or params litellm cut for the
database (``MAX_STRING_LENGTH_PROMPT_IN_DB``, 2048 characters by default) or whose images it cut
(``[base64_data truncated: ...]``): replaying a cut prompt, or judging a cut answer, would compare
something the user never sent or got.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from equiv.traffic.fields import (
    REPLAYED_PARAMS,
    _Bad,
    _check_messages,
    _opt_str,
    _params,
    _prompt_type,
    _record_id,
    _short,
    _Skip,
    _timestamp,
    _type_name,
)
from equiv.traffic.jsontext import _DECODER, _SURROGATE_ESCAPE_STR, _fix_surrogates
from equiv.traffic.openai_log import _response_text

SPENDLOGS = "litellm-spendlogs"
PAYLOAD = "litellm-payload"

_SPENDLOG_KEYS = frozenset({"request_id", "call_type"})  # a CSV header / .json object holding one is traffic
_PAYLOAD_KEYS = frozenset({"call_type", "model_parameters"})

# what a row must hold to be claimed: the table's own column names (no other format has them together)
_SPENDLOG_MARKS = frozenset({"request_id", "call_type", "startTime", "spend"})
_PAYLOAD_MARKS = frozenset({"id", "call_type", "startTime", "model_parameters", "response_cost"})

_CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})  # litellm.types.utils.CallTypes
_USER_AGENT_TAG = "User-Agent: "  # the tags litellm adds to request_tags itself
_REDACTED = "redacted-by-litellm"  # litellm.constants.REDACTED_BY_LITELLM
_TRUNCATED = (  # litellm's marks in a text it cut, and the setting that cuts it
    ("(litellm_truncated skipped ", "MAX_STRING_LENGTH_PROMPT_IN_DB"),
    (";base64,[base64_data truncated:", "MAX_BASE64_LENGTH_FOR_LOGGING"),
)
_NOT_STORED = f"{SPENDLOGS}: messages not stored (store_prompts_in_spend_logs is off)"

# litellm's own columns/fields kept in the record's metadata (when not empty)
_SPENDLOG_META = (
    "user",
    "team_id",
    "organization_id",
    "end_user",
    "session_id",
    "model_group",
    "model_id",
    "custom_llm_provider",
    "cache_hit",
    "spend",
    "litellm_call_id",
)
_PAYLOAD_META = (
    "trace_id",
    "session_id",
    "end_user",
    "model_group",
    "model_id",
    "custom_llm_provider",
    "cache_hit",
    "response_cost",
    "litellm_call_id",
)
_KEY_META = (
    "user_api_key_alias",
    "user_api_key_user_id",
    "user_api_key_team_id",
    "user_api_key_team_alias",
    "user_api_key_org_id",
    "user_api_key_end_user_id",
)


def _is_spendlog(row: dict[str, Any]) -> bool:
    """A ``LiteLLM_SpendLogs`` row: ``request_id``, ``call_type``, ``startTime`` and ``spend``."""
    return _SPENDLOG_MARKS <= row.keys() and "model_parameters" not in row


def _is_payload(row: dict[str, Any]) -> bool:
    """A ``StandardLoggingPayload``: ``id``, ``call_type``, ``startTime``, ``model_parameters``, ``response_cost``."""
    return _PAYLOAD_MARKS <= row.keys() and "request_id" not in row


def _from_spendlog(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    """One ``LiteLLM_SpendLogs`` row (JSON export, or the table's row as a dict) -> ``TrafficRecord`` fields."""
    meta = _object(row, "metadata")
    _chat_only(SPENDLOGS, row, meta.get("status"))
    tags = _list(row, "request_tags")
    body = _object(row, "proxy_server_request")
    logged = _json(row, "messages")
    if body.get("messages") is not None:
        raw, name = body["messages"], "proxy_server_request.messages"
    elif isinstance(logged, dict) and logged.get("messages") is not None:
        raw, name = logged["messages"], "messages.messages"
    elif logged not in (None, {}, []):
        raw, name = logged, "messages"
    elif body:
        raise _Bad(
            "no messages or prompt",
            "proxy_server_request (the request body) has no 'messages'",
            "export the row as the proxy stored it",
        )
    else:
        raise _Skip(_NOT_STORED)
    response = _json(row, "response", text_ok=True)
    text, response_model = _answer(response)
    params = _replayed(body, "proxy_server_request")
    _content_checks(SPENDLOGS, raw, text, params)
    messages = _check_messages(raw, name)
    parsed = {**row, "metadata": meta, "request_tags": tags, "proxy_server_request": body, "messages": logged}
    parsed["response"] = response
    if pt_field == "prompt_type":
        prompt_type = _first_tag(tags) or _prompt_type(
            [parsed], "metadata.spend_logs_metadata.prompt_type", ["metadata", "spend_logs_metadata", "prompt_type"]
        )
    else:
        prompt_type = _prompt_type([parsed], pt_field, pt_path)
    return {
        "id": _record_id(row.get("request_id"), messages),
        "prompt_type": prompt_type,
        "messages": messages,
        "response": text,
        "model": _opt_str(row, "model") or response_model,
        "usage": _usage(row),
        "params": params,
        "timestamp": _start(row),
        "metadata": _metadata(row, meta, tags, body.get("metadata"), _SPENDLOG_META),
    }


def _from_payload(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    """One ``StandardLoggingPayload`` -> ``TrafficRecord`` fields."""
    meta = _object(row, "metadata")
    _chat_only(PAYLOAD, row, None)
    tags = _list(row, "request_tags")
    raw = _json(row, "messages")
    if raw in (None, {}, []):
        raise _Skip(f"{PAYLOAD}: messages not logged")
    response = _json(row, "response", text_ok=True)
    text, response_model = _answer(response)
    params = _replayed(_object(row, "model_parameters"), "model_parameters")
    _content_checks(PAYLOAD, raw, text, params)
    messages = _check_messages(raw, "messages")
    if pt_field == "prompt_type":
        prompt_type = _first_tag(tags) or "default"
    else:
        parsed = {**row, "metadata": meta, "request_tags": tags, "messages": raw, "response": response}
        prompt_type = _prompt_type([parsed], pt_field, pt_path)
    return {
        "id": _record_id(row.get("id"), messages),
        "prompt_type": prompt_type,
        "messages": messages,
        "response": text,
        "model": _opt_str(row, "model") or response_model,
        "usage": _usage(row),
        "params": params,
        "timestamp": _start(row),
        "metadata": _metadata(row, meta, tags, meta.get("requester_metadata"), _PAYLOAD_META),
    }


def _chat_only(fmt: str, row: dict[str, Any], meta_status: Any) -> None:
    """Skip a failed call, and any call that is not a chat completion."""
    status = _opt_str(row, "status")
    if status == "failure" or meta_status == "failure":
        raise _Skip(f"{fmt}: status failure")
    call_type = row.get("call_type")
    if not isinstance(call_type, str):
        raise _Bad(
            "invalid record",
            f"call_type must be text, got {_type_name(call_type)}",
            "export the row as litellm wrote it",
        )
    if call_type not in _CHAT_CALL_TYPES:
        raise _Skip(f"{fmt}: call_type {call_type or '(empty)'} is not a chat completion")


def _content_checks(fmt: str, messages: Any, text: str | None, params: dict[str, Any]) -> None:
    """Skip what litellm redacted or cut: it is not what the user sent or got."""
    if messages == [{"role": "user", "content": _REDACTED}] or text == _REDACTED:
        raise _Skip(f"{fmt}: messages redacted (turn_off_message_logging is on)")
    for mark, setting in _TRUNCATED:
        if any(mark in s for s in _texts([messages, text, params])):
            raise _Skip(f"{fmt}: prompt or answer truncated by litellm ({setting})")


def _texts(value: Any) -> list[str]:
    """Every string inside a JSON value (iteratively: a deep value cannot overflow the stack)."""
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


def _answer(response: Any) -> tuple[str | None, str | None]:
    """The logged answer's text (a tool call rendered as for openai-log) and the model the response names."""
    if response is None or response == {} or response == []:
        return None, None  # not stored
    if isinstance(response, str):
        return response, None
    if not isinstance(response, dict):
        raise _Bad(
            "invalid record",
            f"response must be the response object, got {_type_name(response)}",
            "export the row as litellm wrote it",
        )
    model = response.get("model")
    return _response_text(response), model if isinstance(model, str) and model else None


def _replayed(source: dict[str, Any], name: str) -> dict[str, Any]:
    """The request's sampling params; ``n`` > 1 is refused (its usage counts every answer)."""
    n = source.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise _Bad(
            "non-sampling params",
            f"{name}.n is {_short(n)}: the logged call asked for several answers, and its usage counts them all",
            "log calls made with n = 1: equiv compares one answer per call, at its own cost",
        )
    return _params({k: source[k] for k in REPLAYED_PARAMS if k in source}, name)


def _first_tag(tags: list[Any]) -> str | None:
    """The first request tag the caller set (litellm's own ``User-Agent: ...`` tags are passed over)."""
    for tag in tags:
        if isinstance(tag, (int, float)) and not isinstance(tag, bool):
            return str(tag)
        if not isinstance(tag, str):
            raise _Bad(
                "invalid record",
                f"request_tags must be a list of texts, got an item that is {_type_name(tag)}",
                "fix the tags, or choose another field with prompt_type_field",
            )
        if tag.strip() and not tag.startswith(_USER_AGENT_TAG):
            return tag
    return None


def _metadata(
    row: dict[str, Any], meta: dict[str, Any], tags: list[Any], client: Any, columns: tuple[str, ...]
) -> dict[str, Any]:
    """The client's own metadata, then litellm's fields worth filtering on (empty ones left out)."""
    out: dict[str, Any] = {}
    if isinstance(client, dict):
        out.update({k: v for k, v in client.items() if k not in ("tags", "spend_logs_metadata")})
    if isinstance(meta.get("spend_logs_metadata"), dict):
        out.update(meta["spend_logs_metadata"])
    for key in _KEY_META:
        if meta.get(key) not in (None, ""):
            out[key] = meta[key]
    for key in columns:
        if row.get(key) not in (None, ""):
            out[key] = row[key]
    if tags:
        out["request_tags"] = tags
    return out


def _usage(row: dict[str, Any]) -> dict[str, int] | None:
    prompt, completion = _tokens(row, "prompt_tokens"), _tokens(row, "completion_tokens")
    if prompt is None and completion is None:
        return None
    return {"prompt_tokens": prompt or 0, "completion_tokens": completion or 0}


def _tokens(row: dict[str, Any], key: str) -> int | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():  # a CSV cell
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _Bad("invalid record", f"{key} must be a whole number >= 0, got {_short(value)}", "fix the count")


def _start(row: dict[str, Any]) -> datetime | None:
    """``startTime``: ISO text, unix seconds, or a ``datetime`` (a PostgreSQL row)."""
    try:
        return _timestamp(row.get("startTime"))
    except _Bad as bad:
        raise _Bad(bad.reason, bad.detail.replace("timestamp", "startTime", 1), bad.fix) from None


def _json(row: dict[str, Any], key: str, *, text_ok: bool = False) -> Any:
    """A JSON column, parsed or as JSON text (once or, double-encoded, twice); blank text is null.
    With ``text_ok`` (``response``), text that is not JSON is the answer's text itself."""
    value = row.get(key)
    for _ in range(2):
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None
        try:
            decoded = _DECODER.decode(text)
        except (ValueError, RecursionError):
            if text_ok:
                return value
            raise _Bad(
                "invalid record",
                f"{key} is text but not JSON (got {_short(value)})",
                f"export {key} as litellm stores it: a JSON value, or JSON text",
            ) from None
        if _SURROGATE_ESCAPE_STR.search(text):
            decoded = _fix_surrogates(decoded)
        if text_ok and not isinstance(decoded, (dict, list, str)):
            return value  # "42": an answer, not a response object
        value = decoded
    return value


def _object(row: dict[str, Any], key: str) -> dict[str, Any]:
    value = _json(row, key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _Bad(
        "invalid record",
        f"{key} must be an object, got {_type_name(value)}",
        "export the row as litellm wrote it",
    )


def _list(row: dict[str, Any], key: str) -> list[Any]:
    value = _json(row, key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _Bad(
        "invalid record",
        f"{key} must be a list, got {_type_name(value)}",
        "export the row as litellm wrote it",
    )
