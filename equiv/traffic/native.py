"""Format ``native``: SPEC's traffic record (SPEC "Traffic record — contract").  [pure]

``messages`` (OpenAI chat messages) or ``prompt`` (a string, taken as one user message), plus the
optional ``prompt_type``, ``id``, ``response``, ``model``, ``usage``, ``params``, ``timestamp``,
``metadata``, ``reference``. A top-level ``system`` string (Anthropic-style logs) becomes a leading
system message. If there is no ``response`` and the conversation ends with an assistant message holding
text, that message is taken as the logged response (the shape of chat datasets). Unknown top-level
fields are kept in ``metadata`` (an explicit ``metadata`` key wins on a name clash).
"""

from __future__ import annotations

from typing import Any

from equiv.traffic.fields import (
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
