"""Which reader each traffic file needs, chosen by its name; several files read as one source.  [I/O]

``equiv.traffic.paths`` finds the files (a path, a glob, a folder, ``s3://`` / ``gs://`` objects, a list);
each is read by its layout (JSON Lines, ``.json``, CSV, Parquet), decompressed on the fly when it is
``.gz`` or ``.zst``, and the files follow one another in their sorted order. A set of files that are an
OpenAI Batch's input and output JSONL is read as one ``openai-batch`` source instead, the two sides
joined on ``custom_id`` (``equiv.traffic.openai_batch``): the first file in the order decides, as the first
record decides a file's format.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import IO

from equiv.errors import InputError
from equiv.traffic import openai_batch
from equiv.traffic.compression import decompressing
from equiv.traffic.fields import Rows, _Row
from equiv.traffic.jsonfile import _json_rows
from equiv.traffic.jsonl import _jsonl_rows
from equiv.traffic.paths import SUPPORTED_SUFFIXES, TrafficFile, TrafficPath, kind_of, postgres_url, resolve
from equiv.traffic.tables import _csv_rows, _hf_folder_rows, _parquet_rows

__all__ = ["SUPPORTED_SUFFIXES", "_open_source"]


def _open_source(
    path: TrafficPath,
    display: str,
    max_line_bytes: int,
    *,
    columns: Collection[str] = (),
    since: datetime | None = None,
    where: Sequence[str] = (),
    prompt_type_field: str = "prompt_type",
) -> Rows:
    """Check the path now (so the user hears about a wrong path before anything else) and pick the readers.

    ``columns`` are table columns to read besides those a record format uses (the ``prompt_type_field``
    and ``--where`` keys): Parquet is read with only those (column projection). A ``postgresql://`` URL is
    the LiteLLM proxy's database (``equiv.traffic.postgres``), which gets ``since``, ``where`` and
    ``prompt_type_field`` to push them down to SQL.
    """
    url = postgres_url(path, display)
    if url is not None:
        from equiv.traffic import postgres

        return postgres.spendlogs_source(url, since=since, where=where, prompt_type_field=prompt_type_field)
    r = resolve(path)
    if r.hf_folder is not None:
        folder = r.hf_folder
        return lambda raw=False: _hf_folder_rows(folder, display)
    readers = [_reader(f, max_line_bytes, columns) for f in r.files]
    if len(readers) == 1 and (kind_of(r.files[0].name) or ("",))[0] != "jsonl":
        return readers[0]  # only JSON Lines can be an OpenAI Batch file
    return lambda raw=False: _files_rows(r.files, readers, max_line_bytes, raw)


def _reader(f: TrafficFile, limit: int, columns: Collection[str]) -> Rows:
    kind = kind_of(f.name)
    if kind is None:  # resolve() only lets readable names through
        raise InputError(f"{f.display}: unsupported file type")
    layout, codec = kind

    def opener() -> IO[bytes]:
        return decompressing(f.open(), codec)

    if layout == "jsonl":
        return lambda raw=False: _jsonl_rows(f.display, opener, limit, compressed=codec is not None, raw=raw)
    if layout == "json":
        return lambda raw=False: _json_rows(f.display, opener, limit, compressed=codec is not None)
    if layout == "csv":
        return lambda raw=False: _csv_rows(f.display, opener, limit)
    return lambda raw=False: _parquet_rows(f, f.display, columns)


def _files_rows(files: list[TrafficFile], readers: list[Rows], limit: int, raw: bool = False) -> Iterator[_Row]:
    """The files one after the other; an OpenAI Batch's input and output files joined instead."""
    batch = _batch_kinds(files, limit)
    if batch is not None:
        yield from openai_batch._batch_rows(files, batch, readers)
        return
    for rows in readers:
        yield from rows(raw=raw)


def _batch_kinds(files: list[TrafficFile], limit: int) -> list[str] | None:
    """Each file's side ("input" / "output") if the first file is an OpenAI Batch file, else None."""

    def kind(f: TrafficFile) -> str | None:
        k = kind_of(f.name)
        if k is None or k[0] != "jsonl":
            return None
        codec = k[1]
        rows = _jsonl_rows(
            f.display, lambda: decompressing(f.open(block_size=1 << 16), codec), limit, codec is not None
        )
        try:  # the first JSON object decides (a malformed line before it is reported by the reader, in its turn)
            for n, (_where, row, _table) in enumerate(rows):
                if isinstance(row, dict) or n >= 10:
                    return openai_batch.batch_side(row)
            return None
        finally:
            rows.close()

    first = kind(files[0])
    if first is None:
        return None
    kinds = [first] + [kind(f) for f in files[1:]]
    for f, k in zip(files, kinds, strict=True):
        if k is None:
            raise InputError(
                f"{f.display}: is not an OpenAI Batch file, but {files[0].display} is — give a batch's input and "
                "output files on their own (their folder, a glob matching both, or both paths)"
            )
    return [k for k in kinds if k is not None]
