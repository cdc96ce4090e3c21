"""``.json`` files: a JSON array of records, ``{"data": [...]}``, one record, or JSON Lines.  [I/O]

The object ``{"data": [...]}`` is the layout ``datasets`` reads with ``field="data"``; JSON Lines under a
``.json`` name is streamed as JSONL. Arrays are parsed element by element so errors name the element's
line, but the file text is held in memory: use JSONL for big files. ``.json.gz`` / ``.json.zst`` are
read through ``equiv.traffic.compression`` (the opener hands out decompressed bytes).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from equiv.errors import InputError
from equiv.traffic.compression import CorruptData
from equiv.traffic.fields import _io_error, _Row
from equiv.traffic.jsonl import _jsonl_rows, _sniff
from equiv.traffic.jsontext import (
    _DECODER,
    _SURROGATE_ESCAPE_STR,
    _fix_surrogates,
    _identity,
    _json_error,
    _parse_json_line,
)
from equiv.traffic.registry import RECORD_KEYS


def _json_rows(display: str, opener: Callable[[], IO[bytes]], limit: int, compressed: bool = False) -> Iterator[_Row]:
    """A .json file: JSON Lines under a .json name (streamed), else an array or {"data": [...]}.

    ``opener`` gives the file's (decompressed) bytes; it is called again for each pass over them."""
    try:
        with opener() as f:
            start = f.read(4096)
        stripped = start.lstrip(b"\xef\xbb\xbf \t\r\n")
        head = b""
        if stripped.startswith(b"{"):  # one record per line, or one object holding the records?
            with opener() as f:  # from the start again (a decompressed stream cannot seek back)
                head = f.readline(limit + 1)
                while head and not head.strip():
                    head = f.readline(limit + 1)
    except (CorruptData, OSError, EOFError, zlib.error) as e:
        raise _read_error(display, e) from None
    _sniff(stripped[:4], display, compressed)
    first = _parse_json_line(head.removeprefix(b"\xef\xbb\xbf")) if head.strip() else None
    if isinstance(first, dict) and not _is_container(first):
        yield from _jsonl_rows(display, opener, limit, compressed)
        return
    try:
        with opener() as f:
            raw = f.read()
    except (CorruptData, OSError, EOFError, zlib.error) as e:
        raise _read_error(display, e) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise InputError(
            f"{display}:{line}: invalid UTF-8 (byte 0x{raw[e.start]:02x}) — save the file as UTF-8"
        ) from None
    del raw
    fix = _fix_surrogates if _SURROGATE_ESCAPE_STR.search(text) else _identity
    pos = _skip_ws(text, 0)
    if pos == len(text):
        return
    if text[pos] == "[":
        yield from _json_array(text, pos, display, fix)
        return
    try:
        whole = _DECODER.decode(text)
    except (ValueError, RecursionError) as e:
        detail = _json_error(e, "file", lines=True) if isinstance(e, json.JSONDecodeError) else str(e)
        raise InputError(f"{display}: invalid JSON ({detail}) — fix the JSON, or export JSON Lines (.jsonl)") from None
    data = whole.get("data") if isinstance(whole, dict) else None
    if isinstance(data, list):
        for i, item in enumerate(data, 1):
            yield f"{display}:data[{i}]", fix(item), False
    elif isinstance(whole, dict) and _looks_like_record(whole):
        yield f"{display}:1", fix(whole), False
    else:
        raise InputError(
            f"{display}: not a traffic file — a .json file must hold a JSON array of records, "
            'an object {"data": [...]}, or one record per line'
        )


def _read_error(display: str, e: BaseException) -> InputError:
    return InputError(e.message(display)) if isinstance(e, CorruptData) else _io_error(display, e)


def _is_container(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("data"), list) and not _looks_like_record(obj)


def _looks_like_record(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in RECORD_KEYS)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _json_array(text: str, pos: int, display: str, fix: Callable[[Any], Any]) -> Iterator[_Row]:
    """Decode a JSON array element by element, so each record knows its line."""
    line, counted = 1, 0

    def line_at(i: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, i)
        counted = i
        return line

    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            obj, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise InputError(
                f"{display}:{e.lineno}: invalid JSON ({_json_error(e, 'file')}) "
                "— fix the array (a broken array cannot be skipped over), or export JSON Lines (.jsonl)"
            ) from None
        except (ValueError, RecursionError) as e:
            raise InputError(
                f"{display}:{line_at(pos)}: invalid JSON ({e or 'nested too deeply'}) — fix the record"
            ) from None
        yield f"{display}:{line_at(pos)}", fix(obj), False
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]" and _skip_ws(text, pos + 1) == len(text):
            return
        raise InputError(
            f"{display}:{line_at(min(pos, len(text)))}: invalid JSON (expected ',' or ']' after a record) "
            "— fix the array, or export JSON Lines (.jsonl)"
        )
