"""Which reader a path needs, chosen by its name: JSONL, .json, CSV, Parquet or a ``datasets`` folder.  [I/O]"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from equiv.errors import InputError
from equiv.traffic.fields import _Row
from equiv.traffic.jsonfile import _json_rows
from equiv.traffic.jsonl import _jsonl_rows, _open_gzip
from equiv.traffic.tables import _csv_rows, _hf_folder_rows, _parquet_rows

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json", ".csv", ".parquet")


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
