"""Format ``native``: SPEC's traffic record (SPEC "Traffic record — contract").  [pure]

``messages`` (OpenAI chat messages) or ``prompt`` (a string, taken as one user message), plus the
optional ``prompt_type``, ``id``, ``response``, ``model``, ``usage``, ``params``, ``timestamp``,
``metadata``, ``reference``. A top-level ``system`` string (Anthropic-style logs) becomes a leading
system message. If there is no ``response`` and the conversation ends with an assistant message holding
text, that message is taken as the logged response (the shape of chat datasets). Unknown top-level
fields are kept in ``metadata`` (an explicit ``metadata`` key wins on a name clash).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from equiv.sampling import _plain
from equiv.traffic.fields import (
    ROLES,
    _Bad,
    _check_messages,
    _opt_dict,
    _opt_str,
    _params,
    _prompt_type,
    _record_id,
    _timestamp,
    _type_name,
    _usage,
)

_KEYS = frozenset({"messages", "prompt"})  # a row holding one of these is a native record


_NATIVE_FIELDS = frozenset(
    {
        "messages",
        "prompt",
        "system",
        "prompt_type",
        "id",
        "response",
        "model",
        "usage",
        "params",
        "timestamp",
        "metadata",
        "reference",
    }
)


def _from_native(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    response = _opt_str(row, "response")
    if "messages" in row:
        messages = _check_messages(row["messages"], "messages")
    elif "prompt" in row:
        prompt = row["prompt"]
        if not isinstance(prompt, str):
            raise _Bad(
                "invalid record",
                f"prompt must be a string, got {_type_name(prompt)}",
                "give the text, or name a list of chat messages 'messages'",
            )
        if not prompt.strip():
            raise _Bad("invalid record", "prompt is empty", "give the prompt text")
        messages = [{"role": "user", "content": prompt}]
    else:
        raise _Bad(
            "no messages or prompt",
            "no 'messages' or 'prompt'",
            'give "messages": [{"role": "user", "content": "..."}] or "prompt": "..."',
        )
    system = row.get("system")
    if system is not None:
        messages = _prepend_system(messages, system)
    if response is None and len(messages) > 1:
        last = messages[-1]
        if last["role"] == "assistant" and isinstance(last.get("content"), str) and not last.get("tool_calls"):
            response, messages = last["content"], messages[:-1]
    metadata = _opt_dict(row, "metadata")
    extras = {k: v for k, v in row.items() if k not in _NATIVE_FIELDS}
    if "prompt" in row and "messages" in row:
        extras["prompt"] = row["prompt"]
    if pt_field != "prompt_type" and "prompt_type" in row:
        extras["prompt_type"] = row["prompt_type"]  # not the decision unit here, but worth keeping
    return {
        "id": _record_id(row.get("id"), messages),
        "prompt_type": _prompt_type([row, row.get("metadata")], pt_field, pt_path),
        "messages": messages,
        "response": response,
        "model": _opt_str(row, "model"),
        "usage": _usage(row.get("usage"), "usage"),
        "params": _params(_opt_dict(row, "params"), "params"),
        "timestamp": _timestamp(row.get("timestamp")),
        "metadata": {**extras, **metadata},
        "reference": _opt_str(row, "reference"),
    }


def _prepend_system(messages: list[dict[str, Any]], system: Any) -> list[dict[str, Any]]:
    if isinstance(system, list):
        system = _check_messages([{"role": "system", "content": system}], "system")[0]["content"]
    elif not isinstance(system, str):
        raise _Bad(
            "invalid record",
            f"system must be text, got {_type_name(system)}",
            "give the system prompt as text",
        )
    if messages[0]["role"] in ("system", "developer"):
        if messages[0].get("content") == system:
            return messages
        raise _Bad(
            "invalid record",
            "both a 'system' field and a system message",
            "keep one of them",
        )
    return [{"role": "system", "content": system}, *messages]


def _is_native(row: dict[str, Any]) -> bool:
    """A row with ``messages`` or ``prompt`` (any other row that no format claims is read as native too)."""
    return any(k in row for k in _KEYS)


# ---------------------------------------------------------------------------------------------- fast check

# the top-level keys of a row the fast check handles: no `prompt`, no `system`, no extra field (those rows
# take the full path); `messages` must be there
_FAST_KEYS = _NATIVE_FIELDS - {"prompt", "system"}
_FAST_ROLES = frozenset(ROLES)
_STR_MAX = 1 << 20  # equiv.sampling._MAX_STR: longer strings make the cluster key json.dumps's
# a row's raw params (orjson's canonical bytes) -> the canonical bytes of the params SamplingParams accepted
# (nulls dropped), or b"" where orjson would not write the cluster key as json.dumps does; and whether nulls
# were dropped. Only for rows decoded from JSON text, whose values are JSON's own types: for those the bytes
# name one value (1, 1.0 and true differ), so equal bytes are equally accepted
_FAST_PARAMS: dict[bytes, tuple[bytes, bool]] = {}
_FAST_PARAMS_MAX = 4096
_SORT = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


# what sampling needs of a row the fast check vouched for, as the full path gives it: prompt-type, timestamp,
# response, messages, params, and the canonical JSON of the params when orjson writes the cluster key of these
# messages and params as json.dumps does (else None). A plain tuple: one is made for every record
_Fast = tuple[str, datetime | None, str | None, list[dict[str, Any]], dict[str, Any], bytes | None]


def _fast_native(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> _Fast | None:
    """``_from_native`` + ``TrafficRecord`` validation for the usual native row of JSON text, cheaply.

    Exact in one direction: it returns values only for a row that the full path (``_from_native``, then
    ``TrafficRecord.model_validate``) certainly accepts, and then the values that path gives; for anything
    unusual it returns None and the caller takes the full path, which accepts or names the mistake. ``row``
    must come from JSON text (JSON's own types only).
    """
    if "messages" not in row or not row.keys() <= _FAST_KEYS:
        return None
    messages = row["messages"]
    if type(messages) is not list or not messages:
        return None
    for m in messages:  # each message: a chat role and text, any other key text too (so _plain holds)
        if type(m) is not dict or type(role := m.get("role")) is not str or role not in _FAST_ROLES:
            return None
        content = m.get("content")
        if type(content) is not str or len(content) > _STR_MAX:
            return None
        if len(m) != 2:
            for k, v in m.items():
                if type(v) is not str or len(v) > _STR_MAX or len(k) > _STR_MAX:
                    return None
    response = row.get("response")
    if response is not None and type(response) is not str:
        return None
    for name in ("model", "reference"):
        v = row.get(name)
        if v is not None and type(v) is not str:
            return None
    v = row.get("id")
    if v is not None and type(v) is not str and type(v) is not int:
        return None
    metadata = row.get("metadata")
    if metadata is not None and type(metadata) is not dict:
        return None
    usage = row.get("usage")
    if usage is not None:
        if type(usage) is not dict:
            return None
        for k in ("prompt_tokens", "completion_tokens"):
            n = usage.get(k)
            if type(n) is not int or n < 0:
                return None
    params = row.get("params")
    if params is None:
        params = {}
    elif type(params) is not dict:
        return None
    memo = _params_memo(params)
    if memo is None:
        return None
    p_json, nulls = memo
    if nulls:
        params = {k: v for k, v in params.items() if v is not None}
    if pt_field == "prompt_type" and type(pt := row.get("prompt_type")) is str and pt:
        prompt_type = pt
    else:
        try:
            prompt_type = _prompt_type([row, metadata], pt_field, pt_path)
        except _Bad:
            return None
    try:
        timestamp = _timestamp(row.get("timestamp"))
    except _Bad:
        return None
    if response is None and len(messages) > 1:  # as _from_native: a final assistant message is the response
        last = messages[-1]
        if last["role"] == "assistant" and not last.get("tool_calls"):
            response, messages = last["content"], messages[:-1]
    return prompt_type, timestamp, response, messages, params, p_json or None


def _params_memo(params: dict[str, Any]) -> tuple[bytes, bool] | None:
    """The canonical JSON of the params ``SamplingParams`` accepts (b"" where orjson would not write the
    cluster key as json.dumps does) and whether nulls were dropped; None where the full path refuses them.
    ``params`` holds JSON's own types (decoded from JSON text)."""
    try:
        key = orjson.dumps(params, option=_SORT)
    except orjson.JSONEncodeError:
        return None
    memo = _FAST_PARAMS.get(key)
    if memo is None:
        try:
            present = _params(params, "params")
        except _Bad:
            return None
        p_json = b""
        if _plain(present, 1):  # at the depth it has in the cluster key
            try:
                p_json = orjson.dumps(present, option=_SORT)
            except orjson.JSONEncodeError:
                pass
        memo = (p_json, len(present) != len(params))
        if len(_FAST_PARAMS) >= _FAST_PARAMS_MAX:
            _FAST_PARAMS.clear()
        _FAST_PARAMS[key] = memo
    return memo


def _checked_params(params: dict[str, Any]) -> tuple[dict[str, Any], bytes] | None:
    """The params as the full path keeps them (nulls dropped) and their canonical JSON, for params of JSON
    text (``equiv.traffic.typed``); None where the full path refuses them or orjson cannot write the key."""
    memo = _params_memo(params)
    if memo is None or not memo[0]:
        return None
    if memo[1]:
        params = {k: v for k, v in params.items() if v is not None}
    return params, memo[0]
