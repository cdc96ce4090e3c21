"""Format ``openai-batch``: an OpenAI Batch API job's input JSONL and output JSONL, joined on ``custom_id``.  [I/O]

SPEC "Where traffic lives — contract". The two files, as OpenAI documents them
(platform.openai.com/docs/guides/batch and the API reference's "The request input object" / "The request
output object"):

- input (the file uploaded for the batch): ``{"custom_id", "method": "POST", "url":
  "/v1/chat/completions", "body": {model, messages, temperature, max_tokens, ...}}``;
- output (the batch's ``output_file_id``, and its ``error_file_id``): ``{"id", "custom_id", "response":
  {"status_code", "request_id", "body": <a chat.completion>}, "error": null | {"code", "message"}}``; in
  any order, not necessarily the input's.

They are given together: their folder, a glob matching both, or both paths (``sources`` recognises the
files by their first line: ``batch_side``). The input side is held in memory keyed by ``custom_id``
(OpenAI caps a batch at 50,000 requests); the output side is streamed, and records come in its order.
A joined row is the two lines merged as written (``custom_id``, ``method``, ``url``, ``body`` from the
input; ``id``, ``response``, ``error`` from the output): ``prompt_type_field`` and ``--where`` take dotted
paths into it (``body.metadata.feature``, ``response.body.model``). Its locator names both lines
(``input.jsonl:3 (output.jsonl:7)``).

A record: messages and params from the request ``body`` (sampling params only, as for ``openai-log``: a
body that also holds ``api_base``, ``mock_response``, ... or ``n`` > 1 is refused); answer, model, usage and
time (``created``) from the response body; ``custom_id`` is the id; the prompt-type is the part of
``custom_id`` before the first ``:`` (``"ticket-triage:0042"`` -> ``ticket-triage``; no ``:`` ->
``"default"``), or what ``prompt_type_field`` names (looked up in the joined row, then the body, then the
body's ``metadata``); ``metadata`` is the body's ``metadata``.

Skipped and counted (``_Skip``): a request to another endpoint (``/v1/embeddings``, ``/v1/responses``,
``/v1/completions`` ...), an output line with an ``error``, a response whose ``status_code`` is not 200
(by code), and an input line with no output line (``"not yet run"``: the batch is still running, expired
or was cancelled). An output line with no input line, or a ``custom_id`` repeated on one side, is an
invalid record (the files do not belong together).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from equiv.errors import InputError
from equiv.traffic.fields import (
    _Bad,
    _check_messages,
    _opt_dict,
    _params,
    _prompt_type,
    _record_id,
    _Row,
    _short,
    _Skip,
    _timestamp,
    _type_name,
    _usage,
)
from equiv.traffic.openai_log import _LOG_REQUEST_IGNORED, _response_text

NAME = "openai-batch"
CHAT_URL = "/v1/chat/completions"
_KEYS = frozenset({"custom_id"})  # a row holding this (and a body or response) is a Batch line
_COLUMNS = frozenset({"custom_id", "method", "url", "body", "id", "response", "error"})
_FIX_FILES = "give the batch's input and output files together (their folder, a glob matching both, or both paths)"


def batch_side(row: Any) -> str | None:
    """``"input"`` / ``"output"`` for the first line of a Batch input / output file, else None."""
    if not isinstance(row, dict) or "custom_id" not in row:
        return None
    if isinstance(row.get("body"), dict) and "url" in row:
        return "input"
    if "body" not in row and ("response" in row or "error" in row):
        return "output"
    return None


def _is_openai_batch(row: dict[str, Any]) -> bool:
    """A ``custom_id`` with a request ``body`` or a ``response``/``error``, and none of the keys of the
    other formats' rows."""
    return (
        "custom_id" in row
        and ("body" in row or "response" in row or "error" in row)
        and not any(k in row for k in ("messages", "prompt", "request"))
    )


def _batch_rows(
    files: Sequence[Any], sides: Sequence[str], readers: Sequence[Callable[[], Iterator[_Row]]]
) -> Iterator[_Row]:
    """The joined rows of a batch's files (``sides[i]`` is ``files[i]``'s), output order, then the inputs not run."""
    inputs = [r for r, s in zip(readers, sides, strict=True) if s == "input"]
    outputs = [r for r, s in zip(readers, sides, strict=True) if s == "output"]
    names = ", ".join(f.display for f in files)
    if not outputs:
        raise InputError(f"{names}: OpenAI Batch input but no output file — {_FIX_FILES}")
    if not inputs:
        raise InputError(f"{names}: OpenAI Batch output but no input file — {_FIX_FILES}")
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    for rows in inputs:
        for where, row, table in rows():
            if not isinstance(row, dict):
                yield where, row, table  # the reader reports it (invalid JSON, not an object ...)
                continue
            cid = row.get("custom_id")
            if not isinstance(cid, str) or not cid:
                yield where, _bad_custom_id(cid), table
            elif cid in pending:
                yield where, _repeated(cid, pending[cid][0]), table
            else:
                pending[cid] = (where, row)
    done: dict[str, str] = {}
    for rows in outputs:
        for where, row, table in rows():
            if not isinstance(row, dict):
                yield where, row, table
                continue
            cid = row.get("custom_id")
            if not isinstance(cid, str) or not cid:
                yield where, _bad_custom_id(cid), table
                continue
            if cid in done:
                yield where, _repeated(cid, done[cid]), table
                continue
            done[cid] = where
            got = pending.pop(cid, None)
            if got is None:
                yield where, row, table  # an output line alone: skipped if it failed, else invalid (no input)
                continue
            in_where, request = got
            joined = {**request, "response": row.get("response"), "error": row.get("error")}
            joined.update((k, v) for k, v in row.items() if k != "custom_id")
            yield f"{in_where} ({where})", joined, table
    for where, request in pending.values():
        yield where, request, False  # never run: counted as such


def _bad_custom_id(value: Any) -> _Bad:
    return _Bad(
        "invalid record",
        f"custom_id must be non-empty text, got {_short(value)}",
        "give every Batch request a custom_id",
    )


def _repeated(cid: str, first: str) -> _Bad:
    return _Bad(
        "invalid record",
        f"custom_id {_short(cid)} repeats the line {first}",
        "each request of a batch has its own custom_id; give one batch's files together",
    )


def _from_openai_batch(row: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    cid = row.get("custom_id")
    if not isinstance(cid, str) or not cid:
        raise _bad_custom_id(cid)
    body = row.get("body")
    ran = "response" in row or "error" in row
    if body is None:
        if ran:
            _check_outcome(row)  # a failed request is skipped even without its input line
        raise _Bad(
            "openai-batch: no input line",
            f"no Batch input line has custom_id {_short(cid)}",
            _FIX_FILES,
        )
    if not isinstance(body, dict):
        raise _Bad("invalid record", f"body must be an object, got {_type_name(body)}", "give the request body")
    url = row.get("url")
    if url != CHAT_URL:
        if isinstance(url, str) and url.rstrip("/").endswith("/embeddings"):
            raise _Skip(f"{NAME}: embeddings request")
        raise _Skip(f"{NAME}: {str(url)[:40]} request")
    if not ran:
        raise _Skip(f"{NAME}: not yet run")
    resp = _check_outcome(row)
    if "messages" not in body:
        raise _Bad("no messages or prompt", "body has no 'messages'", "a chat completion request has messages")
    messages = _check_messages(body["messages"], "body.messages")
    model = resp.get("model") or body.get("model")
    if model is not None and not isinstance(model, str):
        raise _Bad("invalid record", f"model must be a string, got {_type_name(model)}", "give the model name")
    body_meta = _opt_dict(body, "metadata")
    if pt_field == "prompt_type":
        prefix, colon, _ = cid.partition(":")
        prompt_type = prefix if colon and prefix else "default"
    else:
        prompt_type = _prompt_type([row, body, body_meta], pt_field, pt_path)
    return {
        "id": _record_id(cid, messages),
        "prompt_type": prompt_type,
        "messages": messages,
        "response": _response_text(resp),
        "model": model,
        "usage": _usage(resp.get("usage"), "response.body.usage"),
        "params": _body_params(body, pt_field, pt_path),
        "timestamp": _timestamp(resp.get("created")),
        "metadata": dict(body_meta),
    }


def _check_outcome(row: dict[str, Any]) -> dict[str, Any]:
    """The chat.completion of a successful output line; ``_Skip`` for an error or a non-200 status."""
    if row.get("error") is not None:
        raise _Skip(f"{NAME}: error")
    response = row.get("response")
    if not isinstance(response, dict):
        raise _Bad(
            "invalid record",
            f"response must be an object, got {_type_name(response)} (and error is null)",
            "give the output line as the Batch API wrote it",
        )
    status = response.get("status_code")
    if status != 200:
        raise _Skip(f"{NAME}: status {_short(status)}")
    body = response.get("body")
    if not isinstance(body, dict):
        raise _Bad(
            "invalid record",
            f"response.body must be a chat.completion object, got {_type_name(body)}",
            "give the output line as the Batch API wrote it",
        )
    return body


def _body_params(body: dict[str, Any], pt_field: str, pt_path: list[str]) -> dict[str, Any]:
    """The request body's sampling params, as ``openai_log._log_params`` reads a logged request."""
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise _Bad(
            "non-sampling params",
            f"body.n is {_short(n)}: the call asked for several answers, and its usage counts them all",
            "give calls made with n = 1: equiv compares one answer per call, at its own cost",
        )
    ignored = _LOG_REQUEST_IGNORED | {pt_field, pt_path[0], "n"}
    return _params({k: v for k, v in body.items() if k not in ignored}, "body")
