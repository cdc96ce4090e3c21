"""The strict field checks every traffic format shares, and the record-level error ``_Bad``.  [pure]

A format module (``native``, ``openai_log`` ...) turns one row into ``TrafficRecord`` fields with these
checks, so that the same mistake gets the same message and fix whatever tool wrote the row.

Params: traffic cannot steer a call (SPEC "Traffic record" ``params``). A native record's ``params`` may
hold sampling params only (``equiv.schema.SamplingParams``, strictly typed: ``temperature: "hot"``,
``max_tokens: -5`` or ``true`` are refused, naming the key). Any other key, in particular what would move
the call or make its answer up (``api_base``, ``base_url``, ``api_key``, ``mock_response``,
``extra_headers``, ``extra_body``, ``custom_llm_provider``, ``timeout``, ``n``, ``stream``, ``metadata``,
``user``, ``logprobs`` ...), refuses the record (reason ``"non-sampling params"``): with the user's key in
hand, a traffic file could otherwise send it to any host, or write the candidate's answer itself and forge
a GO. Where a model is called, and with which key, is set in equiv.toml only. A null value is an absent
param (it is never sent) and is dropped. Replayed values are kept as written (``0`` stays ``0``), so the
call cache keyed on them is stable.

Decisions (documented because users will meet them):

- ``prompt_type`` is looked up with ``prompt_type_field`` (a literal key or a dotted path such as
  ``metadata.feature``) in the roots a format gives (for native records the top level, then
  ``metadata``). Missing, null or empty -> ``"default"``; numbers are turned into text; any other type
  is an error.
- A missing ``id`` is the first 16 hex digits of the sha256 of the canonical JSON of the messages, so
  the same prompt gets the same id in every run. The reader does NOT make repeated ids unique: that
  needs memory proportional to the file, and streaming files of any size matters more.
  ``equiv.sampling.stratified_sample`` makes the ids of its sample unique (``"<id>#2"``, ...).
- ``timestamp``: ISO 8601, or unix time as a number or digit string (seconds; milliseconds,
  microseconds and nanoseconds are recognised by their size). A time without a zone is taken as UTC;
  every timestamp is returned in UTC.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from equiv.errors import InputError
from equiv.sampling import _canonical_json, _plain
from equiv.schema import SAMPLING_PARAMS, describe_params_error, sampling_params

ROLES = ("system", "user", "assistant", "tool", "developer", "function")

REPLAYED_PARAMS = SAMPLING_PARAMS  # the only params a record may carry, replayed for both models

_PARAMS_FIX = (
    "remove it from the record: traffic may set only sampling params ("
    + ", ".join(SAMPLING_PARAMS)
    + "); a model's api_base and key belong in equiv.toml's [models] table"
)

_SKIP_HINT = " (--skip-invalid skips and counts such records)"

_ONE_OBJECT = "each line must be one JSON object"

_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


class _Bad(Exception):
    """One record is bad: ``reason`` is the counting key, ``detail`` and ``fix`` make the message."""

    def __init__(self, reason: str, detail: str, fix: str, *, skip_hint: bool = True) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.fix = reason, detail, fix
        self.skip_hint = skip_hint  # False where skipping cannot help (the whole file has the wrong layout)

    def message(self, where: str) -> str:
        """The user's message; a record --skip-invalid could skip says so (issue 14)."""
        return f"{where}: {self.detail} — {self.fix}" + (_SKIP_HINT if self.skip_hint else "")


class _Skip(Exception):
    """A well-formed row that is not traffic to compare: an error, an embedding, a non-200 response, a span
    that is not a chat completion. Always skipped (no --skip-invalid needed) and counted by ``reason``,
    e.g. ``"litellm-spendlogs: status failure"``; the reasons reach the run's notes and run.json."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A source yields (locator, raw row or _Bad, whether the row came from an Arrow/CSV table).
_Row = tuple[str, "dict[str, Any] | Any | _Bad", bool]


class Rows(Protocol):
    """A source of rows. Asked for ``raw`` rows, a JSON Lines file gives each line as its bytes instead, for
    the reader to decode (``equiv.traffic.read._records``); every other source gives the same rows."""

    def __call__(self, *, raw: bool = False) -> Iterator[_Row]: ...


def _io_error(display: str, e: BaseException, line: int | None = None) -> InputError:
    where = f"{display}:{line}" if line else display
    if isinstance(e, (gzip.BadGzipFile, EOFError, zlib.error)):
        return InputError(f"{where}: the gzip data is corrupt or truncated ({e}) — re-compress or re-export the file")
    msg = getattr(e, "strerror", None) or str(e)
    return InputError(f"{where}: cannot be read ({msg}) — check the file and its permissions")


# the params SamplingParams accepted, by their canonical JSON (orjson's: one text per value and type, as
# 1, 1.0 and true differ), so that a file's few distinct params are checked once each, not on every record
_ACCEPTED_PARAMS: set[bytes] = set()
_ACCEPTED_MAX = 4096  # cleared when full: a file with more distinct params is checked as before


def _params(value: dict[str, Any], name: str) -> dict[str, Any]:
    """Sampling params only, strictly typed (``SamplingParams``); nulls dropped; values kept as written."""
    key = None
    if _plain(value):
        try:
            key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate
            pass
    if key is not None and key in _ACCEPTED_PARAMS:
        return {k: v for k, v in value.items() if v is not None}  # what sampling_params returns: a new dict
    try:
        present = sampling_params(value)
    except ValidationError as e:
        detail = describe_params_error(e, value, name)
        if any(err["type"] == "extra_forbidden" for err in e.errors()):
            raise _Bad("non-sampling params", detail, _PARAMS_FIX) from None
        raise _Bad("invalid params", detail, "fix the value, or remove the param") from None
    if key is not None:
        if len(_ACCEPTED_PARAMS) >= _ACCEPTED_MAX:
            _ACCEPTED_PARAMS.clear()
        _ACCEPTED_PARAMS.add(key)
    return present


def _check_messages(value: Any, name: str) -> list[dict[str, Any]]:
    """OpenAI chat messages, checked here so that every mistake gets its own message and fix."""
    if not isinstance(value, list):
        raise _Bad(
            "invalid messages",
            f"{name} must be a list of chat messages, got {_type_name(value)}",
            'write "messages": [{"role": "user", "content": "..."}]',
        )
    if not value:
        raise _Bad("invalid messages", f"{name} is an empty list", "give at least one message")
    for i, m in enumerate(value):
        at = f"{name}[{i}]"
        if not isinstance(m, dict):
            raise _Bad(
                "invalid messages",
                f"{at} must be an object, got {_type_name(m)}",
                'write {"role": ..., "content": ...}',
            )
        role = m.get("role")
        if role not in ROLES:
            raise _Bad(
                "invalid messages",
                f"{at}.role {_short(role)} is not a chat role",
                f"use one of {', '.join(ROLES)}",
            )
        if "content" not in m or m["content"] is None:
            if role == "assistant" and (m.get("tool_calls") or m.get("function_call")):
                continue
            state = "no content" if "content" not in m else "null content"
            raise _Bad(
                "invalid messages",
                f"{at} ({role}) has {state}",
                'give "content": "..." (text or a list of parts)',
            )
        content = m["content"]
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _Bad(
                "invalid messages",
                f"{at}.content must be text or a list of parts, got {_type_name(content)}",
                'write "content": "..." or [{"type": "text", "text": "..."}]',
            )
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise _Bad(
                    "invalid messages",
                    f"{at}.content[{j}] must be an object with a 'type'",
                    'write {"type": "text", "text": "..."}',
                )
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise _Bad("invalid messages", f"{at}.content[{j}] is a text part without text", 'add "text": "..."')
    return value


def _record_id(value: Any, messages: list[dict[str, Any]]) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
        raise _Bad(
            "invalid record",
            f"id must be text or an integer, got {_type_name(value)}",
            "fix the id, or remove it",
        )
    if value is not None and str(value).strip():
        return str(value)
    return hashlib.sha256(_canonical_json(messages)).hexdigest()[:16]


_MISSING = object()


def _prompt_type(roots: list[Any], dotted: str, path: list[str]) -> str:
    """The first non-empty value found at ``dotted`` in the roots, as text; else "default"."""
    for root in roots:
        value = _lookup(root, dotted, path) if isinstance(root, dict) else _MISSING
        if value is _MISSING or value is None or value == "":
            continue
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Bad(
            "invalid record",
            f"{dotted} must be text to be used as the prompt-type, got {_type_name(value)}",
            "fix the value, or choose another field with prompt_type_field",
        )
    return "default"


def _lookup(root: dict[str, Any], dotted: str, path: list[str]) -> Any:
    """A literal key first (a CSV column may be named "metadata.feature"), then the dotted path."""
    if dotted in root:
        return root[dotted]
    node: Any = root
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _usage(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad(
            "invalid record",
            f"{name} must be an object, got {_type_name(value)}",
            "give {prompt_tokens, completion_tokens}",
        )
    usage = dict(value)
    for ours, theirs in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
        if usage.get(ours) is None and usage.get(theirs) is not None:
            usage[ours] = usage[theirs]
    missing = [k for k in ("prompt_tokens", "completion_tokens") if usage.get(k) is None]
    if missing:
        raise _Bad(
            "invalid record",
            f"{name} has no {' or '.join(missing)}",
            "give both prompt_tokens and completion_tokens, or remove usage",
        )
    for k in ("prompt_tokens", "completion_tokens"):
        if isinstance(usage[k], bool) or not isinstance(usage[k], (int, float, str)):
            raise _Bad(
                "invalid record",
                f"{name}.{k} must be an integer, got {_type_name(usage[k])}",
                "fix the count",
            )
    return usage


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if type(value) is str and ("T" in value or ":" in value):  # ISO 8601 (never a number: see _NUMBER)
        try:
            dt = datetime.fromisoformat(value.strip())
            tz = dt.tzinfo
            return dt if tz is UTC else dt.astimezone(UTC) if tz is not None else dt.replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            pass  # the general path below names the mistake
    fix = "write ISO 8601 (2024-05-01T12:00:00Z) or unix seconds"
    if isinstance(value, bool) or not isinstance(value, (int, float, str, datetime)):
        raise _Bad("invalid record", f"timestamp must be text or a number, got {_type_name(value)}", fix)
    if isinstance(value, str) and not value.strip():
        return None
    try:
        if isinstance(value, datetime):
            dt = value
        elif not isinstance(value, str) or _NUMBER.fullmatch(value.strip()):
            seconds = float(value)
            for _ in range(3):  # ms, us, ns since the epoch
                if abs(seconds) < 1e11:
                    break
                seconds /= 1000
            dt = datetime.fromtimestamp(seconds, tz=UTC)
        else:
            dt = datetime.fromisoformat(value.strip())
        return dt.astimezone(UTC) if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise _Bad("invalid record", f"timestamp {_short(value)} is not a date and time", fix) from None


def _opt_str(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _Bad("invalid record", f"{key} must be text, got {_type_name(value)}", f"give {key} as a string")


def _opt_dict(row: dict[str, Any], key: str) -> dict[str, Any]:
    value = row.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _Bad(
        "invalid record",
        f"{key} must be an object, got {_type_name(value)}",
        f'give {key} as {{"name": value, ...}}',
    )


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
