"""Reading traffic files into validated ``TrafficRecord``s (SPEC "Traffic record — contract",
"Where traffic lives — contract").  [I/O]

Where each part lives:

- ``read``: ``read_traffic`` and ``file_digest``, the public entry points; ``ReadStats``; the loop that
  turns rows into records (``skip_invalid``, ``since``).
- ``sources``: which reader a path needs, chosen by its name (``SUPPORTED_SUFFIXES``).
- ``jsonl``, ``jsonfile``, ``tables``: the file layouts (JSON Lines, optionally gzipped; ``.json``
  arrays; CSV, Parquet and ``datasets`` folders). Each yields raw rows with where they came from.
- ``jsontext``: decoding JSON text with errors in plain words; lone surrogates -> U+FFFD.
- ``registry``: the record formats by name (``native``, ``openai-log``), each with its detector;
  ``detect``: which format a row is in. A new format is one module plus one line in ``FORMATS``.
- ``native``, ``openai_log``: one module per record format, row -> ``TrafficRecord`` fields.
- ``fields``: the strict field checks the formats share (messages, params, id, prompt-type, usage,
  timestamp) and the record-level error ``_Bad``.

Traffic cannot steer a call: a record may carry sampling params only (``REPLAYED_PARAMS``); see
``fields`` for native ``params`` and ``openai_log`` for logged requests.
"""

from __future__ import annotations

from equiv.traffic.fields import REPLAYED_PARAMS, ROLES
from equiv.traffic.read import MAX_LINE_BYTES, ReadStats, file_digest, read_traffic
from equiv.traffic.sources import SUPPORTED_SUFFIXES

__all__ = [
    "MAX_LINE_BYTES",
    "REPLAYED_PARAMS",
    "ROLES",
    "SUPPORTED_SUFFIXES",
    "ReadStats",
    "file_digest",
    "read_traffic",
]
