"""The usual native line checked as it is decoded: msgspec's typed JSON decoder.  [pure]

``native._fast_native`` checks a row that orjson has already turned into dicts and lists; for most lines of
a large native file this does both at once, in C: ``msgspec`` decodes the line straight into the shape below
(the native fields, each message only a chat role and its text, the usage counts non-negative integers) and
refuses anything else. ``_typed_native`` then gives what ``_fast_native`` gives for that line, with the
messages' part of the cluster key already written (msgspec writes the messages' two keys in sorted order,
byte for byte as orjson does with sorted keys).

Exact in one direction, as ``_fast_native``: it returns values only for a line that the full path certainly
accepts, and the values that path gives; any other line (a message with a name or parts, a ``system`` field,
a lone surrogate, a long integer in the params, invalid UTF-8 ...) gives None and is parsed and checked as
before. What msgspec skips without looking (the params and metadata, kept raw; the usage's other keys) is
covered by checking the whole line's UTF-8 and the raw parts' type; the params are parsed as the reader
parses a line (``_parse_json_line``) and checked once per distinct text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from equiv.traffic.fields import _Bad, _timestamp
from equiv.traffic.jsontext import _parse_json_line
from equiv.traffic.native import _STR_MAX, _checked_params  # longer strings take the full path


class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # fields in sorted order: msgspec writes them in this order, which is the cluster key's (sorted keys)
    content: Annotated[str, msgspec.Meta(max_length=_STR_MAX)]
    role: Literal["system", "user", "assistant", "tool", "developer", "function"]  # fields.ROLES


class _Usage(msgspec.Struct, gc=False):  # other keys (total_tokens, details ...) are allowed
    prompt_tokens: Annotated[int, msgspec.Meta(ge=0)]
    completion_tokens: Annotated[int, msgspec.Meta(ge=0)]


_NULL = msgspec.Raw(b"null")


class _Line(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A native record holding only native fields, ``messages`` among them (no ``prompt``, no ``system``)."""

    messages: Annotated[list[_Message], msgspec.Meta(min_length=1)]
    prompt_type: str | None = None
    id: str | int | None = None
    response: str | None = None
    model: str | None = None
    usage: _Usage | None = None
    params: msgspec.Raw = _NULL
    timestamp: str | int | float | None = None
    metadata: msgspec.Raw = _NULL
    reference: str | None = None


_decode = msgspec.json.Decoder(_Line).decode
_encode = msgspec.json.Encoder().encode

# a line's raw params -> (the params SamplingParams accepted, nulls dropped; their canonical JSON), or
# _REFUSED where the full path would refuse them or orjson would not write the cluster key as json.dumps does
_PARAMS: dict[bytes, tuple[dict[str, Any], bytes]] = {}
_REFUSED: tuple[dict[str, Any], bytes] = ({}, b"")
_PARAMS_MAX = 4096

# what ``_typed_native`` gives: as ``native._Fast``, but with the messages' canonical JSON in place of the
# messages, and the params' canonical JSON always there
Typed = tuple[str, Any, str | None, bytes, dict[str, Any], bytes]


def _typed_native(line: bytes) -> Typed | None:
    """``native._fast_native(_parse_json_line(line), "prompt_type", ["prompt_type"])`` for the usual line."""
    try:
        row = _decode(line)
    except (msgspec.DecodeError, RecursionError):
        return None
    pt = row.prompt_type
    if not pt:  # missing or "": the prompt-type is looked for in the metadata (the full path)
        return None
    if not line.isascii():  # msgspec does not look inside what it keeps raw or skips
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return None
    metadata = bytes(row.metadata)
    if metadata[:1] != b"{" and metadata != b"null":
        return None
    raw = bytes(row.params)
    checked = _PARAMS.get(raw)
    if checked is None:
        if len(_PARAMS) >= _PARAMS_MAX:
            _PARAMS.clear()
        checked = _PARAMS[raw] = _check_params(raw) or _REFUSED
    if checked is _REFUSED:
        return None
    try:
        timestamp = _timestamp(row.timestamp)
    except _Bad:
        return None
    messages, response = row.messages, row.response
    if response is None and len(messages) > 1 and messages[-1].role == "assistant":
        response, messages = messages[-1].content, messages[:-1]  # a final assistant message is the response
    return pt, timestamp, response, _encode(messages), checked[0], checked[1]


def _check_params(raw: bytes) -> tuple[dict[str, Any], bytes] | None:
    if raw == b"null":
        params: Any = {}
    else:
        params = _parse_json_line(raw)
        if type(params) is not dict:
            return None
    return _checked_params(params)
