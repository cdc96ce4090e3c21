"""Decoding JSON text (a line, a cell, a file) with errors in plain words.  [pure]

- ``NaN``/``Infinity`` are rejected (not JSON). JSON text escapes that leave a lone UTF-16 surrogate
  (a truncated emoji) are replaced by U+FFFD rather than failing the record (``_fix_surrogates``): every
  reader (JSONL, .json, CSV/Parquet JSON cells) repairs them the same way, so a record always fits in
  ``pairs.jsonl``.
- A malformed JSON line is described in plain words: a line cut short (it ends inside a string, or
  before its object closes) says it is truncated, and is decoded without its line break so that the
  break is not blamed as a control character inside the string.
- Lines are parsed with orjson where it gives what ``json`` gives; any line orjson refuses (malformed JSON,
  ``NaN``, lone surrogates, invalid UTF-8, deep nesting, a number beyond a double) is decoded again by
  ``json``, which makes the message and the repairs above. orjson reads an integer beyond 64 bits as a
  float, so a line holding a run of 19 digits or more is left to ``json`` from the start, as is a line over
  1 MiB (orjson's working memory is about 12 times the line).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from equiv.traffic.fields import _ONE_OBJECT, _Bad

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

_SURROGATE_ESCAPE_STR = re.compile(r"\\u[dD][89a-fA-F]")


# digits -> "0", any other byte -> " ": a run of 19 "0"s is an integer orjson may turn into a float
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19
_ORJSON_MAX_LINE = 1 << 20  # orjson takes about 12 bytes of memory per byte of a line: longer ones go to json


def _parse_json_line(line: bytes) -> Any:
    if len(line) <= _ORJSON_MAX_LINE and _LONG_NUMBER not in line.translate(_DIGITS):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass  # json decodes it again: its message, NaN refused, lone surrogates repaired
    return _parse_json_line_slow(line)


def _parse_json_line_slow(line: bytes) -> Any:
    """``json``'s decoding of one line (``_parse_json_line`` without orjson)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        if b"\x00" in line:
            return _Bad("binary data", "binary data (NUL bytes), not JSON text", "is this really a JSON Lines file?")
        return _Bad(
            "invalid UTF-8",
            f"invalid UTF-8 (byte 0x{line[e.start]:02x} at byte {e.start + 1})",
            "save the file as UTF-8",
        )
    # without its line break: a line cut inside a string would otherwise be blamed on the "\n" ending it
    text = text.rstrip("\r\n")
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        if "\x00" in text:
            return _Bad("binary data", "binary data (NUL bytes), not JSON text", "is this really a JSON Lines file?")
        stripped = text.strip()
        if stripped in ("{", "["):
            return _Bad(
                "invalid JSON",
                f"invalid JSON (a lone {stripped!r}: pretty-printed JSON?)",
                "a .jsonl file needs one whole object per line; name a JSON array file .json",
                skip_hint=False,
            )
        if _truncated(e):
            fix = "re-export the file: each line must hold one whole JSON object"
        elif _control_character(e):
            fix = "escape it in the string (\\n, \\t or \\u00XX)"
        else:
            fix = _ONE_OBJECT
        return _Bad("invalid JSON", f"invalid JSON ({_json_error(e, 'line')})", fix)
    except ValueError as e:  # NaN / Infinity
        return _Bad("invalid JSON", f"invalid JSON ({e})", "write null or a number instead")
    except RecursionError:
        return _Bad("invalid JSON", "invalid JSON (nested too deeply)", _ONE_OBJECT)
    if _SURROGATE_ESCAPE.search(line):
        obj = _fix_surrogates(obj)
    return obj


def _truncated(e: json.JSONDecodeError) -> bool:
    """The text ended while a string, array or object was still open (a cut line or cell)."""
    return e.msg.startswith("Unterminated string") or e.pos >= len(e.doc.rstrip())


def _control_character(e: json.JSONDecodeError) -> bool:
    return e.msg.startswith("Invalid control character") and e.pos < len(e.doc)


def _json_error(e: json.JSONDecodeError, whole: str, lines: bool = False) -> str:
    """json's message in plain words: "Unterminated string starting at" + " at column 5" read "at at"."""
    where = f"line {e.lineno} column {e.colno}" if lines else f"column {e.colno}"
    what = f"{e.msg} {where}" if e.msg.endswith(" at") else f"{e.msg} at {where}"
    if _truncated(e):
        if e.msg.startswith("Unterminated string"):
            return f"the {whole} is truncated: it ends inside a string that starts at {where}"
        return f"the {whole} is truncated: it ends before the JSON is complete"
    if _control_character(e):
        return f"a raw control character U+{ord(e.doc[e.pos]):04X} inside a string at {where}"
    return what


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _identity(obj: Any) -> Any:
    return obj


def _fix_surrogates(obj: Any) -> Any:
    """Replace lone surrogates (from escapes like ``\\ud83d`` without their pair) by U+FFFD."""
    if isinstance(obj, str):
        return obj.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(obj, list):
        return [_fix_surrogates(x) for x in obj]
    if isinstance(obj, dict):
        return {_fix_surrogates(k): _fix_surrogates(v) for k, v in obj.items()}
    return obj
