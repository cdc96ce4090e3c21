"""Reading traffic files into validated ``TrafficRecord``s (SPEC "Traffic record — contract",
"Where traffic lives — contract").  [I/O]

Where each part lives:

- ``read``: ``read_traffic`` and ``file_digest``, the public entry points; ``ReadStats``; the loop that
  turns rows into records (the first record's format, ``skip_invalid``, ``since``, ``--where``, redaction).
- ``paths``: what a TRAFFIC argument names (a file, folder, glob, list, ``s3://`` / ``gs://`` objects) and
  the run key's content hash; ``compression``: ``.gz`` / ``.zst`` streams; ``sources``: which reader each
  file needs; ``postgres``: the LiteLLM proxy's ``LiteLLM_SpendLogs`` table read in its database.
- ``jsonl``, ``jsonfile``, ``tables``: the file layouts (JSON Lines; ``.json`` arrays; CSV, Parquet and
  ``datasets`` folders). Each yields raw rows with where they came from.
- ``jsontext``: decoding JSON text with errors in plain words; lone surrogates -> U+FFFD.
- ``registry``: the record formats by name, each with its detector; ``detect``: which format a row is in.
  A new format is one module plus one line in ``FORMATS``.
- one module per record format, row -> ``TrafficRecord`` fields: ``native``, ``openai_log``,
  ``openai_batch`` (input and output files joined on ``custom_id``), ``litellm`` (spend logs and logging
  payloads), ``langfuse``, ``helicone``, ``otel`` (OpenTelemetry GenAI spans).
- ``fields``: the strict field checks the formats share (messages, params, id, prompt-type, usage,
  timestamp), the record-level error ``_Bad`` and ``_Skip`` (a row that is not a chat completion).
- ``where``: ``--where KEY=VALUE`` filters; ``redact``: the user's redaction of prompts and answers.

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
