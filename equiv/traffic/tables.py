"""Tables: ``.csv`` (stdlib), ``.parquet`` (``pyarrow.dataset``) and ``datasets`` folders.  [I/O]

- ``.csv`` (also ``.csv.gz`` / ``.csv.zst``): stdlib ``csv`` (streamed, every cell kept as text; errors
  name the row's first line). The ``messages``, ``usage``, ``params`` and ``metadata`` cells may hold
  JSON text. An empty cell is a missing value (CSV cannot tell them apart).
- ``.parquet``, local or in a bucket: ``pyarrow.dataset``'s scanner, in record batches of
  ``PARQUET_BATCH_ROWS`` rows, one batch read ahead, so memory stays bounded by a row group whatever the
  file's size; with **column projection**: only the columns a record format reads (``_PROJECTIONS``, or a
  format module's own ``_COLUMNS``) plus those the caller names (``prompt_type_field`` and ``--where``
  keys) are read. A native record's other top-level fields, which JSONL keeps in ``metadata``, are
  therefore not read from Parquet: name such a column in ``prompt_type_field`` or ``--where``, or put it in
  the ``metadata`` column. A format that declares no columns is read with all of them when its marker
  keys are in the file.
- Folders written by ``datasets``' ``save_to_disk``: through ``datasets`` (imported lazily, it is slow to
  import).

Arrow unifies struct fields across rows, so ``None`` values inside dicts (messages, params, metadata,
usage) are dropped (``_clean_table_row``).

Why not ``datasets`` for CSV and JSON too: its CSV loader (pandas) reads the texts ``NA``, ``None``
and ``null`` as missing and the id ``007`` as the number 7, and its JSON loader re-encodes fields
whose type varies between records (a message ``content`` that is sometimes a string and sometimes a
list of parts) as JSON strings. Both silently change the prompts we are meant to replay.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import zlib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

from equiv.errors import InputError
from equiv.traffic import native, openai_batch, openai_log
from equiv.traffic.compression import CorruptData
from equiv.traffic.fields import _Bad, _io_error, _Row
from equiv.traffic.jsontext import _DECODER, _SURROGATE_ESCAPE_STR, _fix_surrogates, _json_error
from equiv.traffic.paths import TrafficFile
from equiv.traffic.registry import FORMATS, RECORD_KEYS, Format

_JSON_CELLS = frozenset({"messages", "usage", "params", "metadata"})

PARQUET_BATCH_ROWS = 2048

# the top-level fields each format reads from a row (a format module may instead declare ``_COLUMNS``)
_PROJECTIONS: dict[str, frozenset[str]] = {
    "native": native._NATIVE_FIELDS,
    "openai-log": openai_log._LOG_FIELDS,
    "openai-batch": openai_batch._COLUMNS,
}


def _csv_rows(display: str, opener: Callable[[], IO[bytes]], limit: int) -> Iterator[_Row]:
    """CSV through the stdlib: cells stay text (no NA/number guessing); bad bytes name their row."""
    csv.field_size_limit(max(csv.field_size_limit(), limit))  # module-wide, only ever raised
    try:
        f = io.TextIOWrapper(opener(), encoding="utf-8-sig", errors="surrogateescape", newline="")
    except (CorruptData, OSError, EOFError, zlib.error) as e:
        raise _read_error(display, e) from None
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise InputError(f"{display}:1: cannot parse the CSV header ({e}) — check the file is CSV") from None
        except (CorruptData, OSError, EOFError, zlib.error) as e:
            raise _read_error(display, e, 1) from None
        if header is None:
            return
        header = [h.strip() for h in header]
        if not RECORD_KEYS & set(header):
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
            except (CorruptData, OSError, EOFError, zlib.error) as e:
                raise _read_error(display, e, start) from None
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


def _read_error(display: str, e: BaseException, line: int | None = None) -> InputError:
    if isinstance(e, CorruptData):
        return InputError(e.message(f"{display}:{line}" if line else display))
    return _io_error(display, e, line)


def _parquet_rows(f: TrafficFile, display: str, columns: Collection[str] = ()) -> Iterator[_Row]:
    """A Parquet file through ``pyarrow.dataset``: projected columns, record batches, in the file's order."""
    try:
        with f.open(block_size=1 << 16) as fh:
            head = fh.read(4)
    except OSError as e:
        raise _io_error(display, e) from None
    if head != b"PAR1":
        raise InputError(
            f"{display}: not a Parquet file (it does not start with PAR1) — check the file or its extension"
        )

    def rows() -> Iterator[dict[str, Any]]:  # opens the file and checks its columns now; then streams
        import pyarrow.dataset as pads

        if f.local is not None:
            ds = pads.dataset(str(f.local), format="parquet")
        else:
            ds = pads.dataset(f.remote, format="parquet", filesystem=f.fs)
        names = list(ds.schema.names)
        if not RECORD_KEYS & set(names):
            raise InputError(
                f"{display}: no 'messages' or 'prompt' column (columns: {', '.join(names)[:200]}) "
                "— name the prompt column messages or prompt"
            )
        keep = _projection(names, columns)
        scanner = ds.scanner(
            columns=keep,
            batch_size=PARQUET_BATCH_ROWS,
            batch_readahead=1,
            fragment_readahead=1,
            use_threads=False,  # record order = file order, and one batch in memory at a time
        )
        return (row for batch in scanner.to_batches() for row in batch.to_pylist())

    yield from _table_rows(display, rows, "Parquet")


def _projection(names: list[str], extra: Collection[str]) -> list[str] | None:
    """The columns to read: those some format reads, and ``extra``; None (all) if a format whose rows may be
    in the file (its marker keys are columns) does not say which it reads."""
    wanted = set(extra)
    present = set(names)
    for fmt in FORMATS.values():
        cols = _format_columns(fmt)
        if cols is None:
            if fmt.keys & present:
                return None
            continue
        wanted |= cols
    return [n for n in names if n in wanted]


def _format_columns(fmt: Format) -> frozenset[str] | None:
    if fmt.name in _PROJECTIONS:
        return _PROJECTIONS[fmt.name]
    declared = getattr(sys.modules.get(fmt.to_fields.__module__), "_COLUMNS", None)
    return frozenset(declared) | fmt.keys if declared is not None else None


def _hf_folder_rows(p: Path, display: str) -> Iterator[_Row]:
    """A folder written by ``datasets``' ``save_to_disk`` (one split, or a DatasetDict's ``train``)."""
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
    """Rows from ``pyarrow`` or ``datasets``; their many exception types (Arrow, fsspec, ...) become one
    InputError."""
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
        except InputError:
            raise
        except Exception as e:  # same boundary as above
            raise InputError(
                f"{display}:row {n + 1}: cannot be read as {kind} ({type(e).__name__}: {str(e)[:200]}) — check the file"
            ) from None
        n += 1
        if n == 1 and isinstance(row, dict) and not RECORD_KEYS & set(row):
            raise InputError(
                f"{display}: no 'messages' or 'prompt' column (columns: {', '.join(map(str, row))[:200]}) "
                "— name the prompt column messages or prompt"
            )
        yield f"{display}:row {n}", row, True


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
