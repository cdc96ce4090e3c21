"""Format ``helicone``: Helicone's request export with bodies.  [pure]

The rows Helicone's export tool writes (``npx @helicone/export --include-body``, JSON/JSONL/CSV) and its
REST API returns (``POST /v1/request/query-clickhouse``, ``POST /v1/request/query``): Helicone's
``HeliconeRequest`` (``packages/llm-mapper/types.ts`` and ``valhalla/jawn/src/lib/stores/request`` in
github.com/Helicone/helicone) with ``request_id``, ``request_created_at``, ``request_body`` (the request
the client sent), ``response_body`` (the provider's answer), ``response_status``, ``request_model`` /
``response_model`` / ``model``, ``prompt_tokens``, ``completion_tokens``, ``request_properties`` (the
custom properties), ``request_user_id``, ``request_path`` / ``target_url``, ``provider`` ...

What a row becomes:

- Skipped (always, counted by reason): a ``response_status`` other than 200 (``"helicone: status
  429"``), a row with no status (``"helicone: no response"``), an embeddings call (a ``request_path`` or
  ``target_url`` naming ``embeddings``, or an embeddings response: ``"helicone: embeddings request"``),
  any other request without ``messages`` (the Responses API, legacy completions: ``"helicone: not a
  chat request"``), a 200 whose body is an error (``"helicone: error response"``) and a response that is
  not an OpenAI chat completion (an Anthropic message body: ``"helicone: not an OpenAI chat
  completion"``).
- Refused (the user's error names the line): a body Helicone did not include — the export without
  ``--include-body`` writes ``{"helicone_message": "fetching body from signed_url..."}`` in its place.
- ``messages`` are ``request_body.messages``; ``response`` is rendered from ``response_body`` as for
  ``openai-log`` (a tool-call answer is its faithful rendering). Bodies stored as JSON text (a CSV cell,
  a ClickHouse row) are parsed.
- ``params``: the request's sampling params, with exactly ``openai-log``'s policy: keys that do not
  shape the answer (``stream``, ``user``, ``metadata`` ...) are ignored, a key that would steer the call
  or cannot be replayed (``functions``, ``api_base`` ...) and ``n`` > 1 refuse the row.
- ``usage`` is Helicone's own ``prompt_tokens`` / ``completion_tokens`` columns, else the response
  body's ``usage``. ``model``: ``response_model``, else ``model``, ``request_model``, then the bodies'
  ``model``. ``timestamp``: ``request_created_at``. ``id``: ``request_id`` (else ``response_id``).
- ``prompt_type`` (default source): the ``prompt_type`` custom property. Helicone stores a
  ``Helicone-Property-<Name>`` header under ``<Name>`` as the header reached it: through the proxy
  (a Cloudflare worker, whose header names are lower-cased) ``Helicone-Property-Prompt-Type`` becomes
  ``request_properties["prompt-type"]``, through a logging SDK it may stay ``"Prompt-Type"``. So the key
  is matched without regard to case, ``-`` or ``_`` (``prompt-type``, ``Prompt_Type``, ``prompt_type``),
  in ``request_properties`` and then ``properties``. With ``prompt_type_field`` set, the dotted path is
  looked up in the row as Helicone wrote it (e.g. ``request_properties.feature``).
- ``metadata``: the custom properties, plus (without overriding them) ``user_id``, ``provider``,
  ``request_path``, ``target_url``, ``country_code`` and ``prompt_id`` where Helicone gives them.
"""

from __future__ import annotations

import json
from typing import Any

from equiv.traffic.fields import (
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
from equiv.traffic.openai_log import _LOG_REQUEST_IGNORED, _response_text

_KEYS = frozenset({"request_created_at", "request_body"})  # a row holding one of these may be a Helicone row

_BODY_FIX = (
    "export with the bodies: npx @helicone/export --include-body (or fetch each row's signed_body_url), "
    "then read that file"
)


def _is_helicone(row: dict[str, Any]) -> bool:
    """A Helicone request row: ``request_created_at``, a request or response id, and its body or status;
    never a row holding ``messages``, ``prompt`` or ``request`` (native, openai-log)."""
    if any(k in row for k in ("messages", "prompt", "request")):
        return False
    return (
        "request_created_at" in row
        and ("request_id" in row or "response_id" in row)
        and ("request_body" in row or "response_status" in row)
    )


def _from_helicone(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    if "response_status" not in row:
        raise _Bad("invalid record", "no 'response_status'", "give Helicone's rows as its export writes them")
    status = _status(row["response_status"])
    if status is None:
        raise _Skip("helicone: no response")
    if status != 200:
        raise _Skip(f"helicone: status {status}")
    path = " ".join(str(row.get(k) or "") for k in ("request_path", "target_url")).lower()
    if "embeddings" in path:
        raise _Skip("helicone: embeddings request")
    req = _body(row, "request_body")
    if req is None:
        raise _Bad("no messages or prompt", "no request_body", _BODY_FIX)
    resp = _body(row, "response_body")
    if resp is not None and resp.get("object") == "list":
        raise _Skip("helicone: embeddings request")
    if "messages" not in req:
        raise _Skip("helicone: not a chat request")
    messages = _check_messages(req["messages"], "request_body.messages")
    text = None
    if resp is not None:
        if "choices" not in resp:
            if resp.get("error") is not None:
                raise _Skip("helicone: error response")
            raise _Skip("helicone: not an OpenAI chat completion")
        text = _response_text(resp)
    properties = _properties(row)
    return {
        "id": _record_id(row.get("request_id") or row.get("response_id"), messages),
        "prompt_type": _helicone_prompt_type(row, properties, pt_field, pt_path),
        "messages": messages,
        "response": text,
        "model": _model(row, req, resp),
        "usage": _helicone_usage(row, resp),
        "params": _request_params(req),
        "timestamp": _timestamp(row.get("request_created_at")),
        "metadata": _metadata(row, properties),
    }


def _status(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad("invalid record", f"response_status must be a number, got {_type_name(value)}", "give the code")
    try:
        return int(float(value))
    except ValueError:
        raise _Bad("invalid record", f"response_status {_short(value)} is not a status code", "give the code") from None


def _body(row: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A request/response body: an object, or JSON text holding one; the export's placeholder is refused."""
    value = row.get(name)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise _Bad(
                "invalid JSON", f"{name} is not valid JSON text ({_short(value)})", f"write {name} as JSON"
            ) from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad("invalid record", f"{name} must be an object, got {_type_name(value)}", "export the row unchanged")
    if "helicone_message" in value and len(value) == 1:
        raise _Bad("no request body", f"{name} was not exported ({_short(value['helicone_message'])})", _BODY_FIX)
    return value


def _request_params(req: dict[str, Any]) -> dict[str, Any]:
    """The request's sampling params, with ``openai-log``'s policy (``openai_log._log_params``)."""
    n = req.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise _Bad(
            "non-sampling params",
            f"request_body.n is {_short(n)}: the logged call asked for several answers, and its usage counts them all",
            "log calls made with n = 1: equiv compares one answer per call, at its own cost",
        )
    return _params({k: v for k, v in req.items() if k not in _LOG_REQUEST_IGNORED and k != "n"}, "request_body")


def _properties(row: dict[str, Any]) -> dict[str, Any]:
    """The custom properties: ``request_properties``, else ``properties`` (JSON text is parsed)."""
    for name in ("request_properties", "properties"):
        value = row.get(name)
        if isinstance(value, str):
            if not value.strip():
                continue
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise _Bad(
                    "invalid JSON", f"{name} is not valid JSON text ({_short(value)})", f"write {name} as JSON"
                ) from None
        if value is None:
            continue
        if not isinstance(value, dict):
            raise _Bad(
                "invalid record", f"{name} must be an object, got {_type_name(value)}", "export the row unchanged"
            )
        if value:
            return value
    return {}


def _normal(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def _helicone_prompt_type(row: dict[str, Any], properties: dict[str, Any], pt_field: str, pt_path: list[str]) -> str:
    if pt_field != "prompt_type":
        return _prompt_type([row], pt_field, pt_path)
    for key, value in properties.items():
        if _normal(str(key)) != "prompt-type" or value is None or value == "":
            continue
        name = f"request_properties.{key}"  # the shared text check, naming the property as Helicone stores it
        return _prompt_type([{name: value}], name, [name])
    return "default"


def _model(row: dict[str, Any], req: dict[str, Any], resp: dict[str, Any] | None) -> str | None:
    for name, value in (
        ("response_model", row.get("response_model")),
        ("model", row.get("model")),
        ("request_model", row.get("request_model")),
        ("response_body.model", (resp or {}).get("model")),
        ("request_body.model", req.get("model")),
    ):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise _Bad("invalid record", f"{name} must be text, got {_type_name(value)}", "give the model name")
        return value
    return None


def _helicone_usage(row: dict[str, Any], resp: dict[str, Any] | None) -> dict[str, Any] | None:
    prompt, completion = row.get("prompt_tokens"), row.get("completion_tokens")
    if prompt not in (None, "") or completion not in (None, ""):
        return _usage(
            {
                "prompt_tokens": prompt if prompt != "" else None,
                "completion_tokens": completion if completion != "" else None,
            },
            "prompt_tokens/completion_tokens",
        )
    if resp is not None:
        return _usage(resp.get("usage"), "response_body.usage")
    return None


def _metadata(row: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    meta = dict(properties)
    for ours, theirs in (
        ("user_id", "request_user_id"),
        ("provider", "provider"),
        ("request_path", "request_path"),
        ("target_url", "target_url"),
        ("country_code", "country_code"),
        ("prompt_id", "prompt_id"),
    ):
        value = row.get(theirs)
        if value not in (None, ""):
            meta.setdefault(ours, value)
    return meta
