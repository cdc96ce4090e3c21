"""``read_traffic``: a traffic file -> validated ``TrafficRecord``s, in file order; ``file_digest``.  [I/O]

- With ``since``, records older than ``since`` are dropped (reason ``"before since"``) and records
  without a timestamp are dropped too (reason ``"no timestamp"``): a time window cannot vouch for them.
- Errors are ``InputError("<file>:<line>: <what is wrong> — <what to fix>")``; a record that
  ``skip_invalid=True`` (``--skip-invalid``) would skip says so. With it a bad record is skipped and
  counted in ``ReadStats`` by reason; problems with the file as a whole (not found, unsupported type,
  a malformed JSON array, corrupt gzip) always stop. A file with no records, or whose records were
  all invalid, is an error.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic.detect import detect_format
from equiv.traffic.fields import _ONE_OBJECT, _Bad, _Row, _short, _type_name
from equiv.traffic.sources import _open_source
from equiv.traffic.tables import _clean_table_row

MAX_LINE_BYTES = 32 * 1024 * 1024

_FILTER_REASONS = frozenset({"before since", "no timestamp"})


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
        data = detect_format(row).to_fields(row, pt_field, pt_path)
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
