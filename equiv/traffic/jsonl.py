"""JSON Lines files: ``.jsonl`` / ``.ndjson``, optionally ``.gz`` or ``.zst``.  [I/O]

Streamed line by line in binary; each line is decoded on its own so that invalid UTF-8 names its line.
A line longer than ``max_line_bytes`` (32 MiB by default) is an error for that line: it is skipped over
in chunks, never held in memory whole. Blank lines are allowed anywhere; a UTF-8 BOM is dropped.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Generator
from typing import IO

from equiv.errors import InputError
from equiv.traffic.compression import CorruptData, compressed_by
from equiv.traffic.fields import _Bad, _io_error, _Row
from equiv.traffic.jsontext import _parse_json_line

_SUFFIX = {"gzip": ".gz", "zstd": ".zst"}


def _sniff(head: bytes, display: str, compressed: bool) -> None:
    """Whole-file mistakes that would otherwise surface as a confusing error on line 1."""
    if compressed:
        return
    codec = compressed_by(head)
    if codec is not None:
        raise InputError(
            f"{display}: the file is {codec}-compressed — name it .jsonl{_SUFFIX[codec]} (or decompress it)"
        )
    if head.startswith(b"PAR1"):
        raise InputError(f"{display}: this is a Parquet file — name it .parquet")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{display}: the file is UTF-16 encoded — save it as UTF-8")


def _jsonl_rows(
    display: str,
    opener: Callable[[], IO[bytes]],
    limit: int,
    compressed: bool = False,
    span: tuple[int, int | None, int] | None = None,
    raw: bool = False,
) -> Generator[_Row, None, None]:
    """The lines of one file, parsed; ``opener`` gives its (decompressed) bytes. ``span``: only the lines
    from byte ``start`` (the start of a line) to byte ``end`` (None: the end), the first being line
    ``lines_before + 1`` (``(start, end, lines_before)``, for ``equiv.traffic.split``). With ``raw``, a
    line is given as its bytes, for the reader to decode (``equiv.traffic.read._records``); a line too
    long is still a ``_Bad``."""
    start, end, lineno = span or (0, None, 0)
    left = None if end is None else end - start  # bytes of the span not read yet
    try:
        with opener() as f:
            if start:
                f.seek(start)
            first = start == 0
            while True:
                try:
                    line = f.readline(limit + 1 if left is None else min(limit + 1, left))
                    if left is not None:
                        left -= len(line)
                except CorruptData as e:
                    raise InputError(e.message(f"{display}:{lineno + 1}")) from None
                except (OSError, EOFError, zlib.error) as e:
                    raise _io_error(display, e, lineno + 1) from None
                if not line:
                    return
                lineno += 1
                where = f"{display}:{lineno}"
                if first:
                    _sniff(line[:4], display, compressed)
                    if line.startswith(b"\xef\xbb\xbf"):
                        line = line[3:]
                    first = False
                if len(line) > limit and not line.endswith(b"\n"):
                    try:
                        rest = _skip_rest_of_line(f)
                        size = len(line) + rest
                        if left is not None:
                            left -= rest
                    except CorruptData as e:
                        raise InputError(e.message(where)) from None
                    except (OSError, EOFError, zlib.error) as e:
                        raise _io_error(display, e, lineno) from None
                    yield where, _too_long(size, limit), False
                    continue
                if line[:1] != b"{" and not line.strip():  # a line opening an object is not blank (no copy made)
                    continue  # blank lines are allowed anywhere
                yield where, line if raw else _parse_json_line(line), False
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
