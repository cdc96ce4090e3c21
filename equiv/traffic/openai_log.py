"""Format ``openai-log``: OpenAI chat-completion logs ``{"request": {...}, "response": {...}}``.  [pure]

Messages and the sampling parameters that shape the output (``REPLAYED_PARAMS``) come from the request;
the text, usage, model and ``created`` time from the response (a Batch API ``{"body": ...}`` wrapper is
unwrapped). The id is the top-level ``id``, else the response's ``id``. The prompt-type is looked up at
the top level, in ``metadata``, then inside ``request`` and ``request.metadata``.

A logged OpenAI request legitimately holds more than sampling params. Its ``model``, ``messages`` (or
``prompt``) and ``metadata`` are read as above; keys that do not shape the answer are ignored and never
replayed: who asked (``user``, ``safety_identifier``), transport and storage (``stream``,
``stream_options``, ``store``, ``service_tier``, ``prompt_cache_key``), ``logprobs``/``top_logprobs``,
``n`` = 1, and the key the prompt-type is read from. Everything else must be a sampling param, exactly as
for native ``params``: a request that also holds ``api_base``, ``mock_response``, ``extra_headers`` ...
(or a key equiv does not replay, such as ``functions``) is refused, because it cannot be replayed safely
or faithfully; so is ``n`` > 1, whose logged usage counts every answer and would inflate the baseline's
cost (the saving) n-fold.
"""

from __future__ import annotations

from typing import Any

from equiv.llm import answer
from equiv.traffic.fields import (
    _Bad,
    _check_messages,
    _opt_dict,
    _params,
    _prompt_type,
    _record_id,
    _short,
    _timestamp,
    _type_name,
    _usage,
)

_KEYS = frozenset({"request"})  # a row holding one of these (and no messages or prompt) is a log line


# Keys of a logged OpenAI request that are read elsewhere (model, messages, metadata) or that do not shape
# the answer (who asked, streaming, storage, caching, logprobs, service tier): never replayed, never refused.
_LOG_REQUEST_IGNORED = frozenset(
    {
        "model",
        "messages",
        "prompt",
        "metadata",
        "prompt_type",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "store",
        "service_tier",
        "stream",
        "stream_options",
        "logprobs",
        "top_logprobs",
    }
)


_LOG_FIELDS = frozenset({"request", "response", "id", "metadata", "timestamp", "prompt_type"})


def _from_openai_log(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    req: dict[str, Any] = row["request"]
    if "messages" in req:
        messages = _check_messages(req["messages"], "request.messages")
    elif isinstance(req.get("prompt"), str) and req["prompt"].strip():
        messages = [{"role": "user", "content": req["prompt"]}]
    else:
        raise _Bad("no messages or prompt", "request has no 'messages'", "log the chat request's messages")
    resp = row.get("response")
    if isinstance(resp, dict) and isinstance(resp.get("body"), dict):
        resp = resp["body"]  # Batch API output line
    if resp is not None and not isinstance(resp, (dict, str)):
        raise _Bad(
            "invalid record",
            f"response must be an object or text, got {_type_name(resp)}",
            "log the API response",
        )
    text = resp if isinstance(resp, str) else _response_text(resp) if resp else None
    resp_d: dict[str, Any] = resp if isinstance(resp, dict) else {}
    ts = row.get("timestamp") if row.get("timestamp") is not None else resp_d.get("created")
    rid = row.get("id") if row.get("id") not in (None, "") else resp_d.get("id")
    model = resp_d.get("model") or req.get("model")
    if model is not None and not isinstance(model, str):
        raise _Bad("invalid record", f"model must be a string, got {_type_name(model)}", "log the model name")
    req_meta: dict[str, Any] = req["metadata"] if isinstance(req.get("metadata"), dict) else {}
    extras = {k: v for k, v in row.items() if k not in _LOG_FIELDS}
    if pt_field != "prompt_type" and "prompt_type" in row:
        extras["prompt_type"] = row["prompt_type"]
    return {
        "id": _record_id(rid, messages),
        "prompt_type": _prompt_type([row, row.get("metadata"), req, req_meta], pt_field, pt_path),
        "messages": messages,
        "response": text,
        "model": model,
        "usage": _usage(resp_d.get("usage"), "response.usage"),
        "params": _log_params(req, pt_field, pt_path),
        "timestamp": _timestamp(ts),
        "metadata": {**extras, **req_meta, **_opt_dict(row, "metadata")},
    }


def _log_params(req: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    """What a logged request replays: its sampling params. A request that also holds a key which steers
    the call (``api_base``, ``mock_response``, ``extra_headers`` ...) or asked for several answers is refused,
    like a native record's params: it cannot be replayed safely or faithfully."""
    n = req.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise _Bad(
            "non-sampling params",
            f"request.n is {_short(n)}: the logged call asked for several answers, and its usage counts them all",
            "log calls made with n = 1: equiv compares one answer per call, at its own cost",
        )
    ignored = _LOG_REQUEST_IGNORED | {pt_field, pt_path[0], "n"}  # the prompt-type may be read from here
    return _params({k: v for k, v in req.items() if k not in ignored}, "request")


def _response_text(resp: dict[str, Any]) -> str | None:
    choices = resp.get("choices")
    if choices is None or choices == []:
        return None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise _Bad("invalid record", "response.choices must be a list of objects", "log the API response unchanged")
    first = choices[0]
    message = first.get("message")
    content = message.get("content") if isinstance(message, dict) else first.get("text")
    finish = first.get("finish_reason")
    if isinstance(message, dict) and (
        message.get("tool_calls")
        or message.get("function_call")
        or isinstance(message.get("refusal"), str)
        or finish == answer.CONTENT_FILTER
    ):
        # what the user got is not (only) text: the baseline is judged on the same faithful rendering as a
        # candidate's answer (equiv.llm.answer), never on its text part alone or skipped as unanswered
        try:
            return answer.render_message(message, finish if isinstance(finish, str) else None)
        except TypeError:
            pass  # content of another type: refused below
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise _Bad(
        "invalid record",
        f"response content must be text, got {_type_name(content)}",
        "log the API response unchanged",
    )


def _is_openai_log(row: dict[str, Any]) -> bool:
    """A ``request`` object and no ``messages`` or ``prompt`` of its own (those make it a native record)."""
    return isinstance(row.get("request"), dict) and "messages" not in row and "prompt" not in row
