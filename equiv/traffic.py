"""Reading traffic files into validated ``TrafficRecord``s (SPEC "Traffic record — contract").  [I/O]

Formats, chosen by the file name:

- ``.jsonl`` / ``.ndjson`` (optionally ``.gz``): streamed line by line in binary; each line is decoded
  on its own so that invalid UTF-8 names its line. A line longer than ``max_line_bytes`` (32 MiB by
  default) is an error for that line: it is skipped over in chunks, never held in memory whole.
- ``.json``: a JSON array of records, an object ``{"data": [...]}`` (the layout ``datasets`` reads
  with ``field="data"``), or JSON Lines under a ``.json`` name. Arrays are parsed element by element
  so errors name the element's line, but the file text is held in memory: use JSONL for big files.
- ``.csv``: stdlib ``csv`` (streamed, every cell kept as text; errors name the row's first line).
  The ``messages``, ``usage``, ``params`` and ``metadata`` cells may hold JSON text. An empty cell is
  a missing value (CSV cannot tell them apart).
- ``.parquet`` and folders written by ``datasets``' ``save_to_disk``: through ``datasets``
  (``streaming=True`` for parquet; imported lazily, it is slow to import). Arrow unifies struct
  fields across rows, so ``None`` values inside dicts (messages, params, metadata, usage) are dropped.

Why not ``datasets`` for CSV and JSON too: its CSV loader (pandas) reads the texts ``NA``, ``None``
and ``null`` as missing and the id ``007`` as the number 7, and its JSON loader re-encodes fields
whose type varies between records (a message ``content`` that is sometimes a string and sometimes a
list of parts) as JSON strings. Both silently change the prompts we are meant to replay.

Record shapes (one per row):

- native: ``messages`` (OpenAI chat messages) or ``prompt`` (a string, taken as one user message),
  plus the optional ``prompt_type``, ``id``, ``response``, ``model``, ``usage``, ``params``,
  ``timestamp``, ``metadata``. A top-level ``system`` string (Anthropic-style logs) becomes a leading
  system message. If there is no ``response`` and the conversation ends with an assistant message
  holding text, that message is taken as the logged response (the shape of chat datasets).
- OpenAI chat-completion logs ``{"request": {...}, "response": {...}}``: messages and the sampling
  parameters that shape the output (``REPLAYED_PARAMS``) from the request; the text, usage, model and
  ``created`` time from the response (a Batch API ``{"body": ...}`` wrapper is unwrapped). The id is the
  top-level ``id``, else the response's ``id``.

Params: traffic cannot steer a call (SPEC "Traffic record" ``params``):

- A native record's ``params`` may hold sampling params only (``equiv.schema.SamplingParams``, strictly
  typed: ``temperature: "hot"``, ``max_tokens: -5`` or ``true`` are refused, naming the key). Any other
  key, in particular what would move the call or make its answer up (``api_base``, ``base_url``,
  ``api_key``, ``mock_response``, ``extra_headers``, ``extra_body``, ``custom_llm_provider``, ``timeout``,
  ``n``, ``stream``, ``metadata``, ``user``, ``logprobs`` ...), refuses the record (reason
  ``"non-sampling params"``): with the user's key in hand, a traffic file could otherwise send it to any
  host, or write the candidate's answer itself and forge a GO. Where a model is called, and with which
  key, is set in equiv.toml only. A null value is an absent param (it is never sent) and is dropped.
- A logged OpenAI request legitimately holds more than sampling params. Its ``model``, ``messages``
  (or ``prompt``) and ``metadata`` are read as above; keys that do not shape the answer are ignored and
  never replayed: who asked (``user``, ``safety_identifier``), transport and storage (``stream``,
  ``stream_options``, ``store``, ``service_tier``, ``prompt_cache_key``), ``logprobs``/``top_logprobs``,
  ``n`` = 1, and the key the prompt-type is read from. Everything else must be a sampling param, exactly
  as for native ``params``: a request that also holds ``api_base``, ``mock_response``, ``extra_headers``
  ... (or a key equiv does not replay, such as ``functions``) is refused, because it cannot be replayed
  safely or faithfully; so is ``n`` > 1, whose logged usage counts every answer and would inflate the
  baseline's cost (the saving) n-fold.
- Replayed values are kept as written (``0`` stays ``0``), so the call cache keyed on them is stable.

Decisions (documented because users will meet them):

- Unknown top-level fields are kept in ``metadata`` (an explicit ``metadata`` key wins on a name
  clash): logs carry extra fields (latency, tenant, user ...) and must load as they are.
- ``prompt_type`` is looked up with ``prompt_type_field`` (a literal key or a dotted path such as
  ``metadata.feature``) at the top level, then inside ``metadata`` (and, for OpenAI logs, inside
  ``request`` and ``request.metadata``). Missing, null or empty -> ``"default"``; numbers are
  turned into text; any other type is an error.
- A missing ``id`` is the first 16 hex digits of the sha256 of the canonical JSON of the messages, so
  the same prompt gets the same id in every run. The reader does NOT make repeated ids unique: that
  needs memory proportional to the file, and streaming files of any size matters more.
  ``equiv.sampling.stratified_sample`` makes the ids of its sample unique (``"<id>#2"``, ...).
- ``timestamp``: ISO 8601, or unix time as a number or digit string (seconds; milliseconds,
  microseconds and nanoseconds are recognised by their size). A time without a zone is taken as UTC;
  every timestamp is returned in UTC.
  With ``since``, records older than ``since`` are dropped (reason ``"before since"``) and records
  without a timestamp are dropped too (reason ``"no timestamp"``): a time window cannot vouch for them.
- JSON text escapes that leave a lone UTF-16 surrogate (a truncated emoji) are replaced by U+FFFD
  rather than failing the record; ``NaN``/``Infinity`` are rejected (not JSON).
- Errors are ``InputError("<file>:<line>: <what is wrong> — <what to fix>")``; a record that
  ``skip_invalid=True`` (``--skip-invalid``) would skip says so. With it a bad record is skipped and
  counted in ``ReadStats`` by reason; problems with the file as a whole (not found, unsupported type,
  a malformed JSON array, corrupt gzip) always stop. A file with no records, or whose records were
  all invalid, is an error.
- A malformed JSON line is described in plain words: a line cut short (it ends inside a string, or
  before its object closes) says it is truncated, and is decoded without its line break so that the
  break is not blamed as a control character inside the string.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from pydantic import ValidationError

from equiv.errors import InputError
from equiv.llm import answer
from equiv.schema import SAMPLING_PARAMS, TrafficRecord, describe_params_error, sampling_params

__all__ = [
    "MAX_LINE_BYTES",
    "REPLAYED_PARAMS",
    "ROLES",
    "SUPPORTED_SUFFIXES",
    "ReadStats",
    "file_digest",
    "read_traffic",
]

ROLES = ("system", "user", "assistant", "tool", "developer", "function")
MAX_LINE_BYTES = 32 * 1024 * 1024
REPLAYED_PARAMS = SAMPLING_PARAMS  # the only params a record may carry, replayed for both models
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
_PARAMS_FIX = (
    "remove it from the record: traffic may set only sampling params ("
    + ", ".join(SAMPLING_PARAMS)
    + "); a model's api_base and key belong in equiv.toml's [models] table"
)
_SKIP_HINT = " (--skip-invalid skips and counts such records)"
SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json", ".csv", ".parquet")
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
_LOG_FIELDS = frozenset({"request", "response", "id", "metadata", "timestamp", "prompt_type"})
_JSON_CELLS = frozenset({"messages", "usage", "params", "metadata"})
_FILTER_REASONS = frozenset({"before since", "no timestamp"})
_ONE_OBJECT = "each line must be one JSON object"
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_STR = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass
class ReadStats:
    """What the reader did, for the user: records read, records skipped by reason, a few examples.

    ``skipped`` holds both invalid records (only counted with ``skip_invalid=True``) and records
    dropped by ``since`` (reasons ``"before since"`` and ``"no timestamp"``); ``invalid`` counts the
    former. ``skipped_lines`` lists the first ``max_examples`` invalid ones as "file:line: reason".
    """

    read: int = 0
    rows: int = 0  # non-blank lines / rows looked at
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_lines: list[str] = field(default_factory=list)
    max_examples: int = 20

    @property
    def invalid(self) -> int:
        """Invalid records skipped (``skip_invalid=True``), not counting those dropped by ``since``."""
        return sum(n for reason, n in self.skipped.items() if reason not in _FILTER_REASONS)

    def skipped_total(self) -> int:
        """All records skipped, whatever the reason (invalid, or outside the ``since`` window)."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line for the terminal, e.g. ``read 980 records; skipped 20 (invalid JSON: 12, ...)``."""
        text = f"read {self.read} record{'s' if self.read != 1 else ''}"
        if self.skipped:
            parts = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
            text += f"; skipped {sum(self.skipped.values())} ({parts})"
        return text

    def _skip(self, reason: str, example: str | None = None) -> None:
        self.skipped[reason] += 1
        if example is not None and len(self.skipped_lines) < self.max_examples:
            self.skipped_lines.append(example)


class _Bad(Exception):
    """One record is bad: ``reason`` is the counting key, ``detail`` and ``fix`` make the message."""

    def __init__(self, reason: str, detail: str, fix: str, *, skip_hint: bool = True) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.fix = reason, detail, fix
        self.skip_hint = skip_hint  # False where skipping cannot help (the whole file has the wrong layout)

    def message(self, where: str) -> str:
        """The user's message; a record --skip-invalid could skip says so (issue 14)."""
        return f"{where}: {self.detail} — {self.fix}" + (_SKIP_HINT if self.skip_hint else "")


# A source yields (locator, raw row or _Bad, whether the row came from an Arrow/CSV table).
_Row = tuple[str, "dict[str, Any] | Any | _Bad", bool]


def read_traffic(
    path: str | Path,
    *,
    prompt_type_field: str = "prompt_type",
    skip_invalid: bool = False,
    stats: ReadStats | None = None,
    since: datetime | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[TrafficRecord]:
    """Stream the records of a traffic file, validated, in file order.

    Problems visible before reading (missing file, directory, unsupported type, bad
    ``prompt_type_field``) raise at once; problems in the content raise while iterating.
    """
    p = Path(path)
    display = str(path)
    fields = prompt_type_field.split(".")
    if not prompt_type_field or not all(fields):
        raise InputError(
            f"prompt_type_field {prompt_type_field!r} is not a field name or dotted path "
            "— use e.g. prompt_type or metadata.feature"
        )
    source = _open_source(p, display, max_line_bytes)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return _records(source, display, prompt_type_field, fields, skip_invalid, stats or ReadStats(), since)


def file_digest(path: str | Path) -> str:
    """sha256 (hex) of the file's bytes, streamed; for a dataset folder, of its files and names.

    It keys the run directory: the same traffic content resumes the same run, whatever its name.
    """
    p = Path(path)
    h = hashlib.sha256()
    try:
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                h.update(f.relative_to(p).as_posix().encode() + b"\0")
                _hash_into(h, f)
        else:
            _hash_into(h, p)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found — check the path") from None
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e}) — check the path and permissions") from None
    return h.hexdigest()


def _hash_into(h: Any, f: Path) -> None:
    with f.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)


# ---------------------------------------------------------------------------------------- sources


def _open_source(p: Path, display: str, max_line_bytes: int) -> Callable[[], Iterator[_Row]]:
    """Check the path now (so the user hears about a wrong path before anything else) and pick a reader."""
    if not p.exists():
        raise InputError(f"{display}: file not found — check the path")
    if p.is_dir():
        if any((p / n).is_file() for n in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return lambda: _hf_folder_rows(p, display)
        raise InputError(
            f"{display}: is a directory — give a traffic file ({', '.join(SUPPORTED_SUFFIXES)}) "
            "or a folder written by datasets' save_to_disk"
        )
    name = p.name.lower()
    suffix = next((s for s in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)
    if suffix is None:
        raise InputError(
            f"{display}: unsupported file type {''.join(p.suffixes[-2:]) or '(no extension)'!r} "
            f"— use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if suffix.endswith(".gz"):
        return lambda: _jsonl_rows(display, lambda: _open_gzip(p), max_line_bytes, gz=True)
    if suffix in (".jsonl", ".ndjson"):
        return lambda: _jsonl_rows(display, lambda: p.open("rb"), max_line_bytes)
    if suffix == ".json":
        return lambda: _json_rows(p, display, max_line_bytes)
    if suffix == ".csv":
        return lambda: _csv_rows(p, display, max_line_bytes)
    return lambda: _parquet_rows(p, display)


def _open_gzip(p: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(p, "rb"))


def _io_error(display: str, e: BaseException, line: int | None = None) -> InputError:
    where = f"{display}:{line}" if line else display
    if isinstance(e, (gzip.BadGzipFile, EOFError, zlib.error)):
        return InputError(f"{where}: the gzip data is corrupt or truncated ({e}) — re-compress or re-export the file")
    msg = getattr(e, "strerror", None) or str(e)
    return InputError(f"{where}: cannot be read ({msg}) — check the file and its permissions")


def _sniff(head: bytes, display: str, gz: bool) -> None:
    """Whole-file mistakes that would otherwise surface as a confusing error on line 1."""
    if gz:
        return
    if head.startswith(b"\x1f\x8b"):
        raise InputError(f"{display}: the file is gzip-compressed — name it .jsonl.gz (or decompress it)")
    if head.startswith(b"PAR1"):
        raise InputError(f"{display}: this is a Parquet file — name it .parquet")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{display}: the file is UTF-16 encoded — save it as UTF-8")


def _jsonl_rows(display: str, opener: Callable[[], IO[bytes]], limit: int, gz: bool = False) -> Iterator[_Row]:
    lineno = 0
    try:
        with opener() as f:
            first = True
            while True:
                try:
                    line = f.readline(limit + 1)
                except (OSError, EOFError, zlib.error) as e:
                    raise _io_error(display, e, lineno + 1) from None
                if not line:
                    return
                lineno += 1
                where = f"{display}:{lineno}"
                if first:
                    _sniff(line[:4], display, gz)
                    if line.startswith(b"\xef\xbb\xbf"):
                        line = line[3:]
                    first = False
                if len(line) > limit and not line.endswith(b"\n"):
                    yield where, _too_long(len(line) + _skip_rest_of_line(f), limit), False
                    continue
                if not line.strip():
                    continue  # blank lines are allowed anywhere
                yield where, _parse_json_line(line), False
    except OSError as e:
        raise _io_error(display, e) from None


def _too_long(size: int, limit: int) -> _Bad:
    return _Bad(
        "line too long",
        f"line is {size / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB limit per record",
        "check the export (one JSON object per line); raise max_line_bytes if records are this big",
    )


def _skip_rest_of_line(f: IO[bytes]) -> int:
    """Consume the rest of an over-long line in bounded chunks; return how many bytes it had."""
    n = 0
    while chunk := f.readline(1 << 20):
        n += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return n


def _parse_json_line(line: bytes) -> Any:
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


def _json_rows(p: Path, display: str, limit: int) -> Iterator[_Row]:
    """A .json file: JSON Lines under a .json name (streamed), else an array or {"data": [...]}."""
    try:
        with p.open("rb") as f:
            start = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
            head = b""
            if start.startswith(b"{"):  # one record per line, or one object holding the records?
                f.seek(0)
                head = f.readline(limit + 1)
                while head and not head.strip():
                    head = f.readline(limit + 1)
    except OSError as e:
        raise _io_error(display, e) from None
    _sniff(start[:4], display, False)
    first = _parse_json_line(head.removeprefix(b"\xef\xbb\xbf")) if head.strip() else None
    if isinstance(first, dict) and not _is_container(first):
        yield from _jsonl_rows(display, lambda: p.open("rb"), limit)
        return
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise _io_error(display, e) from None
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


def _is_container(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("data"), list) and not _looks_like_record(obj)


def _looks_like_record(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in ("messages", "prompt", "request"))


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


def _csv_rows(p: Path, display: str, limit: int) -> Iterator[_Row]:
    """CSV through the stdlib: cells stay text (no NA/number guessing); bad bytes name their row."""
    csv.field_size_limit(max(csv.field_size_limit(), limit))  # module-wide, only ever raised
    try:
        f = p.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as e:
        raise _io_error(display, e) from None
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise InputError(f"{display}:1: cannot parse the CSV header ({e}) — check the file is CSV") from None
        if header is None:
            return
        header = [h.strip() for h in header]
        if not {"messages", "prompt", "request"} & set(header):
            raise InputError(
                f"{display}:1: no 'messages' or 'prompt' column (columns: {', '.join(header)[:200]}) "
                "— the header row must name the prompt column"
            )
        start = reader.line_num + 1
        while True:
            try:
                cells = next(reader, None)
            except csv.Error as e:
                raise InputError(f"{display}:{start}: cannot parse CSV ({e}) — fix the quoting of this row") from None
            if cells is None:
                return
            where = f"{display}:{start}"
            start = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                yield (
                    where,
                    _Bad(
                        "invalid record",
                        f"row has {len(cells)} cells but the header has {len(header)}",
                        "quote cells that contain commas",
                    ),
                    True,
                )
                continue
            try:
                "".join(cells).encode("utf-8")
            except UnicodeEncodeError:
                yield (
                    where,
                    _Bad("invalid UTF-8", "invalid UTF-8 in this row", "save the file as UTF-8"),
                    True,
                )
                continue
            # an empty cell is a missing value: CSV has no other way to write one
            yield where, {k: v for k, v in zip(header, cells, strict=False) if v != ""}, True


def _parquet_rows(p: Path, display: str) -> Iterator[_Row]:
    try:
        with p.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise _io_error(display, e) from None
    if head != b"PAR1":
        raise InputError(
            f"{display}: not a Parquet file (it does not start with PAR1) — check the file or its extension"
        )
    import datasets  # lazy: importing datasets takes seconds

    yield from _table_rows(
        display,
        lambda: iter(datasets.load_dataset("parquet", data_files=str(p), split="train", streaming=True)),
        "Parquet",
    )


def _hf_folder_rows(p: Path, display: str) -> Iterator[_Row]:
    import datasets  # lazy: importing datasets takes seconds

    def rows() -> Iterator[dict[str, Any]]:
        ds = datasets.load_from_disk(str(p))
        if isinstance(ds, datasets.DatasetDict):
            if "train" in ds:
                ds = ds["train"]
            elif len(ds) == 1:
                ds = next(iter(ds.values()))
            else:
                raise InputError(f"{display}: holds the splits {', '.join(ds)} — give the folder of one split")
        return iter(ds)

    yield from _table_rows(display, rows, "a datasets folder")


def _table_rows(display: str, make: Callable[[], Iterator[Any]], kind: str) -> Iterator[_Row]:
    """Rows from ``datasets``; its many exception types (Arrow, fsspec, ...) become one InputError."""
    n = 0
    try:
        it = make()
    except InputError:
        raise
    except Exception as e:  # the boundary with a third-party loader: report, never a traceback
        raise InputError(f"{display}: cannot be read as {kind} ({type(e).__name__}: {e}) — check the file") from None
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except Exception as e:  # same boundary as above
            raise InputError(
                f"{display}:row {n + 1}: cannot be read as {kind} ({type(e).__name__}: {str(e)[:200]}) — check the file"
            ) from None
        n += 1
        if n == 1 and isinstance(row, dict) and not {"messages", "prompt", "request"} & set(row):
            raise InputError(
                f"{display}: no 'messages' or 'prompt' column (columns: {', '.join(map(str, row))[:200]}) "
                "— name the prompt column messages or prompt"
            )
        yield f"{display}:row {n}", row, True


# ---------------------------------------------------------------------------------------- records


def _records(
    source: Callable[[], Iterator[_Row]],
    display: str,
    pt_field: str,
    pt_path: list[str],
    skip_invalid: bool,
    stats: ReadStats,
    since: datetime | None,
) -> Iterator[TrafficRecord]:
    rows = invalid = read = 0  # this file's own counts (a ReadStats may be shared by several files)
    for where, row, table in source():
        rows += 1
        stats.rows += 1
        try:
            if isinstance(row, _Bad):
                raise row
            record = _to_record(row, where, pt_field, pt_path, table)
        except _Bad as bad:
            if not skip_invalid:
                raise InputError(bad.message(where)) from None
            invalid += 1
            stats._skip(bad.reason, f"{where}: {bad.detail}")
            continue
        if since is not None:
            if record.timestamp is None:
                stats._skip("no timestamp")
                continue
            if record.timestamp < since:
                stats._skip("before since")
                continue
        read += 1
        stats.read += 1
        yield record
    if rows == 0:
        raise InputError(f"{display}: no records — the file is empty; give a file with one record per line or row")
    if read == 0 and invalid == rows:
        first = f" (first: {stats.skipped_lines[0]})" if stats.skipped_lines else ""
        raise InputError(f"{display}: no valid records: all {rows} were invalid{first} — check the file's format")


def _to_record(row: Any, where: str, pt_field: str, pt_path: list[str], table: bool) -> TrafficRecord:
    if not isinstance(row, dict):
        raise _Bad("not a JSON object", f"expected a JSON object, got {_type_name(row)}", _ONE_OBJECT)
    try:
        if table:
            row = _clean_table_row(row)
        if isinstance(row.get("request"), dict) and "messages" not in row and "prompt" not in row:
            data = _from_openai_log(row, pt_field, pt_path)
        else:
            data = _from_native(row, pt_field, pt_path)
        data["source"] = where
        return TrafficRecord.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "record"
        raise _Bad(
            "invalid record", f"{loc}: {err['msg']} (got {_short(err.get('input'))})", "fix this field"
        ) from None
    except RecursionError:
        raise _Bad("invalid record", "the record is nested too deeply", "flatten the record") from None


def _clean_table_row(row: dict[str, Any]) -> dict[str, Any]:
    """Table cells -> record fields: drop nulls, NaNs and Arrow's unified ``None``s; parse JSON cells."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            continue
        key = str(key).lstrip("\ufeff")
        if isinstance(value, str):
            if key in _JSON_CELLS and value.strip():
                text = value
                try:
                    value = _DECODER.decode(text)
                    if _SURROGATE_ESCAPE_STR.search(text):  # as for JSONL text: a lone \ud83d -> U+FFFD
                        value = _fix_surrogates(value)
                except (ValueError, RecursionError) as e:
                    detail = _json_error(e, "text") if isinstance(e, json.JSONDecodeError) else str(e)
                    raise _Bad(
                        "invalid JSON", f"column {key}: invalid JSON ({detail})", f"write {key} as JSON text"
                    ) from None
        elif isinstance(value, float) and math.isnan(value):
            continue
        else:
            value = _drop_nones(value)
        if value is None:
            continue
        out[key] = value
    return out


def _drop_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nones(v) for v in value]
    return value


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


def _params(value: dict[str, Any], name: str) -> dict[str, Any]:
    """Sampling params only, strictly typed (``SamplingParams``); nulls dropped; values kept as written."""
    try:
        return sampling_params(value)
    except ValidationError as e:
        detail = describe_params_error(e, value, name)
        if any(err["type"] == "extra_forbidden" for err in e.errors()):
            raise _Bad("non-sampling params", detail, _PARAMS_FIX) from None
        raise _Bad("invalid params", detail, "fix the value, or remove the param") from None


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


def _record_id(value: Any, messages: list[dict[str, Any]]) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
        raise _Bad(
            "invalid record",
            f"id must be text or an integer, got {_type_name(value)}",
            "fix the id, or remove it",
        )
    if value is not None and str(value).strip():
        return str(value)
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


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
