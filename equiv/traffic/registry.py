"""The record formats equiv reads, by name (SPEC "Where traffic lives — contract").  [pure]

A format is one module that turns one row, as the tool wrote it, into ``TrafficRecord`` fields with the
shared checks of ``equiv.traffic.fields``; it plugs in with one ``Format(...)`` line in ``FORMATS``:

    Format("helicone", helicone._KEYS, helicone._is_helicone, helicone._from_helicone),

``detect`` must claim only rows that no other format claims (detection does not depend on the order
here); a row that no format claims is read as ``DEFAULT_FORMAT``, whose checks then name what is missing.
``keys`` are the top-level keys that mark a row of the format: a CSV header, a ``datasets`` table or a
``.json`` object must hold one of ``RECORD_KEYS`` to be taken as traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from equiv.traffic import helicone, langfuse, litellm, native, openai_batch, openai_log, otel

# (row, prompt_type_field, prompt_type_field split on ".") -> the fields of a TrafficRecord (``source`` aside)
ToFields = Callable[[dict[str, Any], str, list[str]], dict[str, Any]]


@dataclass(frozen=True)
class Format:
    """One record format: its ``--format`` name, the keys that mark it, its detector and its reader."""

    name: str
    keys: frozenset[str]
    detect: Callable[[dict[str, Any]], bool]
    to_fields: ToFields
    # a line that holds many records (an OTLP export object holds many spans): the rows it holds, each read
    # with ``to_fields``; their locators get "#<n>" appended
    expand: Callable[[dict[str, Any]], Iterator[dict[str, Any]]] | None = None


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("litellm-spendlogs", litellm._SPENDLOG_KEYS, litellm._is_spendlog, litellm._from_spendlog),
        Format("litellm-payload", litellm._PAYLOAD_KEYS, litellm._is_payload, litellm._from_payload),
        Format("native", native._KEYS, native._is_native, native._from_native),
        Format("openai-log", openai_log._KEYS, openai_log._is_openai_log, openai_log._from_openai_log),
        Format("openai-batch", openai_batch._KEYS, openai_batch._is_openai_batch, openai_batch._from_openai_batch),
        Format("otel-genai", otel._KEYS, otel._is_otel, otel._from_otel, otel._spans_of),
        Format("langfuse", langfuse._KEYS, langfuse._is_langfuse, langfuse._from_langfuse),
        Format("helicone", helicone._KEYS, helicone._is_helicone, helicone._from_helicone),
    )
}
DEFAULT_FORMAT = "native"
# formats whose rows may be mixed in one file (as they always could): detected row by row
MIXABLE = frozenset({"native", "openai-log"})
RECORD_KEYS: frozenset[str] = frozenset().union(*(f.keys for f in FORMATS.values()))
