"""Which format a row is in: the registered format whose detector claims it, else native.  [pure]

The first record of a file decides its format (``read._records``); only native records and OpenAI logs
may be mixed in one file (as they always could), so for those two detection runs on every row.
"""

from __future__ import annotations

from typing import Any

from equiv.traffic.native import _NATIVE_FIELDS
from equiv.traffic.registry import DEFAULT_FORMAT, FORMATS, MIXABLE, Format

# the tools' own formats first: their rows also carry `messages` or `request`, which native records and
# OpenAI logs are recognised by, so those two are tried last whatever the registry's order
_ORDER = [f for f in FORMATS.values() if f.name not in MIXABLE] + [f for f in FORMATS.values() if f.name in MIXABLE]


_NATIVE = FORMATS["native"]


def detect_format(row: dict[str, Any]) -> Format:
    """The format of one row (a dict, table cells already cleaned)."""
    # first, cheaply, a plain native record: ``messages`` or ``prompt`` and no key outside a native record's.
    # No tool's detector claims such a row (each needs keys of its own, or refuses ``messages``/``prompt``;
    # tests/traffic/test_detect_fast.py checks it), so native would win below; any other row is tried in order
    if ("messages" in row or "prompt" in row) and row.keys() <= _NATIVE_FIELDS:  # native._KEYS
        return _NATIVE
    return _detect(row)


def _detect(row: dict[str, Any]) -> Format:
    """``detect_format`` without its shortcut: every detector, the tools' first."""
    for fmt in _ORDER:
        if fmt.detect(row):
            return fmt
    return FORMATS[DEFAULT_FORMAT]
