"""``read_traffic``: a traffic file -> validated ``TrafficRecord``s, in file order; ``file_digest``.  [I/O]

- With ``since``, records older than ``since`` are dropped (reason ``"before since"``) and records
  without a timestamp are dropped too (reason ``"no timestamp"``): a time window cannot vouch for them.
- Errors are ``InputError("<file>:<line>: <what is wrong> — <what to fix>")``; a record that
  ``skip_invalid=True`` (``--skip-invalid``) would skip says so. With it a bad record is skipped and
  counted in ``ReadStats`` by reason; problems with the file as a whole (not found, unsupported type,
  a malformed JSON array, corrupt gzip) always stop. A file with no records, or whose records were
  all invalid, is an error.
- What ``read_traffic`` returns is an iterator of ``TrafficRecord``s. ``equiv.sampling.stratified_sample``
  reads it through ``_Traffic._light`` instead: the usual native line of a JSON Lines file is then checked
  as msgspec decodes it (``typed._typed_native``), else the usual native row of JSON text by
  ``native._fast_native`` (both exact in one direction: they vouch only for rows the full validation
  accepts, anything unusual takes the full path), and only the records the sample keeps are built. Errors,
  counts and ``ReadStats`` are the same either way.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic.detect import detect_format
from equiv.traffic.fields import _ONE_OBJECT, Rows, _Bad, _short, _Skip, _type_name
from equiv.traffic.jsontext import _parse_json_line
from equiv.traffic.native import _fast_native
from equiv.traffic.paths import TrafficPath, digest, postgres_url, traffic_display
from equiv.traffic.redact import Redactor
from equiv.traffic.registry import FORMATS, MIXABLE, Format
from equiv.traffic.sources import _open_source
from equiv.traffic.tables import _clean_table_row
from equiv.traffic.typed import _typed_native
from equiv.traffic.where import Where, parse_where

MAX_LINE_BYTES = 32 * 1024 * 1024
_TYPED_TRIES = 64  # lines the typed check may miss before it is given up on (when it misses most lines)


@dataclass
class ReadStats:
    """What the reader did, for the user: records read, records skipped by reason, a few examples.

    ``skipped`` holds, by reason, invalid records (only counted with ``skip_invalid=True``), records
    dropped by a filter (``since``: ``"before since"`` and ``"no timestamp"``; ``--where``) and rows the
    format says are not a successful chat completion (errors, embeddings, non-200 responses; always
    skipped). ``categories`` says which of the three each reason is; ``invalid`` counts the first.
    ``skipped_lines`` lists the first ``max_examples`` invalid ones as "file:line: reason".
    """

    read: int = 0
    rows: int = 0  # non-blank lines / rows looked at
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_lines: list[str] = field(default_factory=list)
    max_examples: int = 20
    categories: dict[str, str] = field(default_factory=dict)  # reason -> "invalid" | "filtered" | "not traffic"

    @property
    def invalid(self) -> int:
        """Invalid records skipped (``skip_invalid=True``), not counting filtered or not-traffic rows."""
        return self.count("invalid")

    def count(self, category: str) -> int:
        """Rows skipped in one category: ``"invalid"``, ``"filtered"`` or ``"not traffic"``."""
        return sum(n for reason, n in self.skipped.items() if self.categories.get(reason, "invalid") == category)

    def by_category(self, category: str) -> dict[str, int]:
        """The reasons of one category with their counts."""
        return {r: n for r, n in sorted(self.skipped.items()) if self.categories.get(r, "invalid") == category}

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

    def _skip(self, reason: str, example: str | None = None, category: str = "invalid") -> None:
        self.skipped[reason] += 1
        self.categories.setdefault(reason, category)
        if example is not None and len(self.skipped_lines) < self.max_examples:
            self.skipped_lines.append(example)


def read_traffic(
    path: TrafficPath,
    *,
    prompt_type_field: str = "prompt_type",
    skip_invalid: bool = False,
    stats: ReadStats | None = None,
    since: datetime | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    format: str | None = None,
    where: Sequence[str] = (),
    redact: Redactor | None = None,
) -> Iterator[TrafficRecord]:
    """Stream the records of a traffic file, validated, in file order.

    ``format`` forces one of ``FORMATS`` (else each file's first record decides; native records and
    OpenAI logs may be mixed). ``where`` holds ``KEY=VALUE`` filters (``equiv.traffic.where``);
    ``redact`` rewrites every prompt and logged answer before the record is yielded.
    Problems visible before reading (missing file, directory, unsupported type, bad
    ``prompt_type_field``, an unknown format, a malformed filter) raise at once; problems in the
    content raise while iterating.
    """
    if format is not None and format not in FORMATS:
        raise InputError(f"--format {format!r} is not a traffic format — use one of: {', '.join(FORMATS)}")
    filters = parse_where(where)
    display = traffic_display(path)  # a file, glob, folder, s3:// / gs:// URL, or a list of them (paths.py)
    fields = prompt_type_field.split(".")
    if not prompt_type_field or not all(fields):
        raise InputError(
            f"prompt_type_field {prompt_type_field!r} is not a field name or dotted path "
            "— use e.g. prompt_type or metadata.feature"
        )
    columns = {prompt_type_field, fields[0], *(w.key for w in filters), *(w.path[0] for w in filters)}
    source = _open_source(  # parquet reads only the columns needed; a database gets the filters (postgres.py)
        path, display, max_line_bytes, columns=columns, since=since, where=where, prompt_type_field=prompt_type_field
    )
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    opts = _Options(
        prompt_type_field, fields, skip_invalid, since, FORMATS[format] if format else None, filters, redact
    )
    # rows of JSON text (files, not a database) may take the fast check when nothing rewrites or filters records
    fast = postgres_url(path) is None and not filters and redact is None and format in (None, "native")
    return _Traffic(source, display, opts, stats or ReadStats(), fast, path=path, limit=max_line_bytes)


def file_digest(
    path: TrafficPath,
    *,
    since: datetime | None = None,
    where: Sequence[str] = (),
    prompt_type_field: str = "prompt_type",
) -> str:
    """sha256 (hex) of the traffic's content, streamed: of a file's bytes; of several files' names (below
    their common folder) and contents, whatever order a glob or list gave them in; of a dataset folder's
    files and names (``equiv.traffic.paths.digest``).

    It keys the run directory: the same traffic content resumes the same run, whatever its name. A LiteLLM
    proxy database is keyed on the rows the filters select (``equiv.traffic.postgres.spendlogs_digest``),
    so rows other teams add elsewhere in the table do not start a new run.
    """
    url = postgres_url(path)
    if url is not None:
        from equiv.traffic.postgres import spendlogs_digest

        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return spendlogs_digest(url, since=since, where=where, prompt_type_field=prompt_type_field)
    return digest(path)


@dataclass(frozen=True)
class _Options:
    pt_field: str
    pt_path: list[str]
    skip_invalid: bool
    since: datetime | None
    format: Format | None  # forced with --format
    where: list[Where]
    redact: Redactor | None


class _Traffic(Iterator[TrafficRecord]):
    """What ``read_traffic`` returns: an iterator of validated records (``_records``), which
    ``equiv.sampling.stratified_sample`` may instead read through ``_light`` when it is untouched."""

    def __init__(
        self,
        source: Rows,
        display: str,
        o: _Options,
        stats: ReadStats,
        fast: bool,
        *,
        counts: list[int] | None = None,
        start_format: Format | None = None,
        path: Any = None,
        limit: int = MAX_LINE_BYTES,
    ) -> None:
        self._source, self._display, self._o, self._stats, self._fast = source, display, o, stats, fast
        # a range of a file (equiv.traffic.split): its row counts go to `counts` instead of the whole-file
        # checks at its end; its rows are read as the file's first record decided (`start_format`)
        self._counts, self._start_format = counts, start_format
        self._path, self._limit = path, limit  # the traffic path, for _split
        self._it: Iterator[Any] | None = None
        self._lightened = False  # _light gave the rows away

    def __iter__(self) -> _Traffic:
        return self

    def __next__(self) -> TrafficRecord:
        if self._it is None:
            self._it = _records(self._source, self._display, self._o, self._stats, False)
        elif self._lightened:
            raise RuntimeError("these records are being read by stratified_sample")
        return next(self._it)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()

    def _light(self) -> tuple[Iterator[Any], Callable[[Any, str], TrafficRecord]] | None:
        """The records for sampling, each a ``TrafficRecord`` or, for a row that the fast check
        (``native._fast_native``) vouched for, the tuple ``(*_Fast, row, where)``; and the function that
        builds the record of such a row (``build(row, where)``, which cannot fail), so that only the records
        a sample keeps are built. None once iteration has started, or where records are rewritten (redaction)
        or filtered by their content (``--where``): sample the records themselves then."""
        if self._it is not None or not self._fast:
            return None
        self._it = it = _records(
            self._source, self._display, self._o, self._stats, True, self._counts, self._start_format
        )
        self._lightened = True
        o = self._o

        def build(row: dict[str, Any] | bytes, where: str) -> TrafficRecord:
            try:
                if type(row) is bytes:  # a line the typed check vouched for, decoded now
                    row = _parse_json_line(row)
                    if not isinstance(row, dict):
                        raise row if isinstance(row, _Bad) else _Bad("not a JSON object", "not an object", _ONE_OBJECT)
                return _to_record(row, where, _NATIVE, o)  # type: ignore[arg-type]
            except _Bad as bad:  # cannot happen (the fast check vouched for the row): still, say where
                raise InputError(bad.message(where)) from None

        return it, build

    def _split(
        self,
        allowed: set[str] | None,
        per_type: int,
        per_type_of: dict[str, int] | None,
        require_response: bool,
        seed: int,
    ) -> list[Any] | None:
        """``stratified_sample`` on several cores (``equiv.traffic.split``): the Parts of the file's ranges in
        file order, this reader's stats updated as one pass would; None where the traffic is not one large
        local JSON Lines file whose first record is native, or when a child failed (read it in one pass)."""
        if self._it is not None or not self._fast or self._path is None:
            return None
        file = _splittable(self._path, self._limit)
        if file is None:
            return None
        from equiv.traffic import split

        ranges = split.cut(file.local, split.workers_for(file.local.stat().st_size))  # type: ignore[arg-type]
        if len(ranges) < 2:
            return None
        o = self._o
        jobs = [
            split.Job(
                str(file.local),
                file.display,
                start,
                end,
                self._limit,
                o.pt_field,
                o.skip_invalid,
                o.since,
                o.format.name if o.format is not None else None,
                allowed,
                per_type,
                per_type_of,
                require_response,
                seed,
            )
            for start, end in ranges
        ]
        procs: list[Any] = []
        try:
            for job in jobs[1:]:
                procs.append(split.start_child(job))
        except OSError:  # no child could be started (no interpreter to run, no pipes left): one pass
            split.stop(procs)
            return None
        try:
            parts = [split.sample_range(jobs[0])]  # this process reads the first range meanwhile
            parts += [split.collect(p) for p in procs]
        except split.ChildFailed:
            return None
        finally:
            split.stop(procs)
        self._it, self._lightened = iter(()), True
        st = self._stats
        totals = [0, 0, 0, 0]
        for part in parts:
            st.read += part.stats.read
            st.rows += part.stats.rows
            for reason, n in part.stats.skipped.items():
                st.skipped[reason] += n
                st.categories.setdefault(reason, part.stats.categories.get(reason, "invalid"))
            st.skipped_lines.extend(part.stats.skipped_lines[: max(0, st.max_examples - len(st.skipped_lines))])
            totals = [a + b for a, b in zip(totals, part.counts, strict=True)]
        _check_whole(self._display, st, *totals)
        return parts


def _splittable(path: Any, limit: int) -> Any:
    """The TrafficFile of a single local, uncompressed JSON Lines file whose first record is a native record
    (not an OpenAI Batch line), large enough to cut (``equiv.traffic.split.workers_for``); else None."""
    from equiv.traffic.jsonl import _jsonl_rows
    from equiv.traffic.openai_batch import batch_side
    from equiv.traffic.paths import kind_of, resolve
    from equiv.traffic.split import workers_for

    if not isinstance(path, (str, os.PathLike)):
        return None
    try:
        r = resolve(path)
    except InputError:
        return None
    if r.hf_folder is not None or len(r.files) != 1:
        return None
    f = r.files[0]
    if f.local is None or kind_of(f.name) != ("jsonl", None):
        return None
    try:
        if workers_for(f.local.stat().st_size) < 2:
            return None
        rows = _jsonl_rows(f.display, lambda: f.local.open("rb"), limit)  # type: ignore[union-attr]
        try:
            first = next(rows, None)
        finally:
            rows.close()
    except (OSError, InputError):
        return None
    if first is None or not isinstance(first[1], dict) or batch_side(first[1]) is not None:
        return None
    return f if detect_format(first[1]) is _NATIVE else None


_NATIVE = FORMATS["native"]


def _records(
    source: Rows,
    display: str,
    o: _Options,
    stats: ReadStats,
    fast: bool,
    counts: list[int] | None = None,
    start_format: Format | None = None,
) -> Iterator[Any]:
    """The records, validated, in file order (``TrafficRecord``s); with ``fast``, the rows that
    ``_fast_native`` vouches for come as ``(*_Fast, row, where)`` instead (``_Traffic._light``)."""
    # this file's own counts (a ReadStats may be shared by several files); a unit is a row, or one of the
    # records a row expands into (an OTLP line's spans)
    rows = units = invalid = read = misses = 0
    # the usual native line is checked as msgspec decodes it (equiv.traffic.typed), when the prompt-type is
    # the record's own field; given up on for the rest of the reading where most lines are not that usual
    typed = fast and o.pt_field == "prompt_type"
    fmt = o.format  # auto: each file's first record decides (native and OpenAI logs stay mixable)
    current = None
    pt_field, pt_path, since = o.pt_field, o.pt_path, o.since
    prefix = None  # current + ":": a locator "<current>:<digits>" is a line of the current file
    for where, row, table in source(raw=typed):
        if o.format is None and not (
            prefix is not None and where.startswith(prefix) and where[len(prefix) :].isdigit()
        ):
            if (file := _file_of(where)) != current:
                # a new file of a glob or folder: its own first record decides (a range of a file: the file's did)
                current, fmt = file, start_format if current is None else None
            prefix = current + ":"
        rows += 1
        stats.rows += 1
        f: Any = None
        # a row of the file's native records (detect_format: native, as both checks take only rows whose keys
        # are all native fields, `messages` among them)
        native = fmt is not None and (fmt is _NATIVE or (o.format is None and fmt.name in MIXABLE))
        if type(row) is bytes:  # a JSON line not decoded yet (a source asked for raw lines)
            if typed and native:
                f = _typed_native(row)
                if f is None:
                    misses += 1
                    if misses > _TYPED_TRIES and misses > rows // 2:  # these lines are mostly not the usual
                        typed = False
            if f is None:
                row = _parse_json_line(row)
        if f is None and fast and native and not table and type(row) is dict:  # a native record of JSON text
            f = _fast_native(row, pt_field, pt_path)
        if f is not None:
            units += 1
            if since is not None:
                ts = f[1]
                if ts is None:
                    stats._skip("no timestamp", category="filtered")
                    continue
                if ts < since:
                    stats._skip("before since", category="filtered")
                    continue
            read += 1
            stats.read += 1
            yield (*f, row, where)
            continue
        try:
            if isinstance(row, _Bad):
                raise row
            if not isinstance(row, dict):
                raise _Bad("not a JSON object", f"expected a JSON object, got {_type_name(row)}", _ONE_OBJECT)
            if table:
                row = _clean_table_row(row)
            if fmt is None:
                fmt = detect_format(row)
            elif o.format is not None and not fmt.detect(row):
                keys = ", ".join(sorted(map(str, row))[:8])
                raise _Bad(
                    f"not {fmt.name}",
                    f"this row is not a {fmt.name} record (its keys: {keys})",
                    "check --format, or leave it out and let the first record decide",
                )
            row_fmt = detect_format(row) if fmt.name in MIXABLE and o.format is None else fmt
            if row_fmt.expand is not None:
                items = [(f"{where}#{n}", r) for n, r in enumerate(row_fmt.expand(row), 1)]
            else:
                items = [(where, row)]
        except _Bad as bad:
            if not o.skip_invalid:
                raise InputError(bad.message(where)) from None
            units += 1
            invalid += 1
            stats._skip(bad.reason, f"{where}: {bad.detail}")
            continue
        units += len(items)
        for loc, item in items:
            try:
                record = _to_record(item, loc, row_fmt, o)
            except _Skip as skip:
                stats._skip(skip.reason, category="not traffic")
                continue
            except _Bad as bad:
                if not o.skip_invalid:
                    raise InputError(bad.message(loc)) from None
                invalid += 1
                stats._skip(bad.reason, f"{loc}: {bad.detail}")
                continue
            if o.since is not None:
                if record.timestamp is None:
                    stats._skip("no timestamp", category="filtered")
                    continue
                if record.timestamp < o.since:
                    stats._skip("before since", category="filtered")
                    continue
            failed = next((w for w in o.where if not w.matches(item, _dumped(record))), None) if o.where else None
            if failed is not None:
                stats._skip(failed.reason, category="filtered")
                continue
            if o.redact is not None:
                record = o.redact.record(record)
            read += 1
            stats.read += 1
            yield record
    if counts is not None:  # a range of a file: the file's checks are made on all its ranges' counts
        counts[:] = [rows, units, invalid, read]
    else:
        _check_whole(display, stats, rows, units, invalid, read)


def _check_whole(display: str, stats: ReadStats, rows: int, units: int, invalid: int, read: int) -> None:
    """A file with no records, or with only invalid ones, is an error."""
    if rows == 0:
        raise InputError(f"{display}: no records — the file is empty; give a file with one record per line or row")
    if read == 0 and invalid == units:
        first = f" (first: {stats.skipped_lines[0]})" if stats.skipped_lines else ""
        raise InputError(f"{display}: no valid records: all {rows} were invalid{first} — check the file's format")


def _file_of(where: str) -> str:
    """The file part of a locator ("logs/a.jsonl:12", "s3://b/a.jsonl.gz:7", "in.jsonl:3 (out.jsonl:7)")."""
    head = where.split(" (", 1)[0]
    return head.rsplit(":", 1)[0] if ":" in head else head


def _dumped(record: TrafficRecord) -> Callable[[], dict[str, Any]]:
    cache: list[dict[str, Any]] = []

    def get() -> dict[str, Any]:
        if not cache:
            cache.append(record.model_dump(mode="json"))
        return cache[0]

    return get


def _to_record(row: dict[str, Any], where: str, fmt: Format, o: _Options) -> TrafficRecord:
    try:
        data = fmt.to_fields(row, o.pt_field, o.pt_path)
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
