"""Which format a row is in: the registered format whose detector claims it, else native.  [pure]

Detection runs on every row, not on the first one only, so a file may mix native records and OpenAI
logs (as it always could).
"""

from __future__ import annotations

from typing import Any

from equiv.traffic.registry import DEFAULT_FORMAT, FORMATS, Format


def detect_format(row: dict[str, Any]) -> Format:
    """The format of one row (a dict, table cells already cleaned)."""
    for fmt in FORMATS.values():
        if fmt.detect(row):
            return fmt
    return FORMATS[DEFAULT_FORMAT]
