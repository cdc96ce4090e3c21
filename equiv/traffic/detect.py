"""Which format a row is in: the registered format whose detector claims it, else native.  [pure]

The first record of a file decides its format (``read._records``); only native records and OpenAI logs
may be mixed in one file (as they always could), so for those two detection runs on every row.
"""

from __future__ import annotations

from typing import Any

from equiv.traffic.registry import DEFAULT_FORMAT, FORMATS, MIXABLE, Format

# the tools' own formats first: their rows also carry `messages` or `request`, which native records and
# OpenAI logs are recognised by, so those two are tried last whatever the registry's order
_ORDER = [f for f in FORMATS.values() if f.name not in MIXABLE] + [f for f in FORMATS.values() if f.name in MIXABLE]


def detect_format(row: dict[str, Any]) -> Format:
    """The format of one row (a dict, table cells already cleaned)."""
    for fmt in _ORDER:
        if fmt.detect(row):
            return fmt
    return FORMATS[DEFAULT_FORMAT]
