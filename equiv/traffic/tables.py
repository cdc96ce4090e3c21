"""Tables: ``.csv`` (stdlib), ``.parquet`` and ``datasets`` folders (through ``datasets``).  [I/O]

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
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from equiv.errors import InputError
from equiv.traffic.fields import _Bad, _io_error, _Row
from equiv.traffic.jsontext import _DECODER, _SURROGATE_ESCAPE_STR, _fix_surrogates, _json_error
from equiv.traffic.registry import RECORD_KEYS

_JSON_CELLS = frozenset({"messages", "usage", "params", "metadata"})


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
