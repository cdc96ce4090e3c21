"""Reading an answer's text as JSON, the way the `json`, `json_schema` and `fields` checks see it.

Strict JSON (RFC 8259, like promptfoo's ``is-json``, which uses ``JSON.parse``): any JSON value, with no
``NaN`` / ``Infinity``. One fenced code block (```json ... ``` or ``` ... ```) around the whole answer,
with optional whitespace around the fence, is accepted; text outside one fence (prose, a second fence)
makes the answer not JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n?(?P<body>.*?)\n?[ \t]*```\Z", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    """The JSON read from an answer: `ok` with `value`, or not, with `why` (a short reason)."""

    ok: bool
    value: Any = None
    why: str | None = None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def unfence(text: str) -> str:
    """The text inside a fenced code block that is the whole (stripped) answer, else the stripped text.

    Two fences give a body with a fence line in it, which then does not parse as JSON."""
    stripped = text.strip()
    m = _FENCE.match(stripped)
    return stripped if m is None else m.group("body").strip()


def parse_json(text: str) -> Parsed:
    """Parse an answer as strict JSON, a single surrounding code fence accepted (see the module doc)."""
    body = unfence(text)
    if not body:
        return Parsed(False, why="not JSON: the answer is empty")
    try:
        return Parsed(True, json.loads(body, parse_constant=_no_constant))
    except json.JSONDecodeError as e:
        return Parsed(False, why=f"not JSON: {e.msg} at line {e.lineno} column {e.colno}")
    except ValueError as e:  # NaN / Infinity
        return Parsed(False, why=f"not JSON: {e}")
    except RecursionError:
        return Parsed(False, why="not JSON: nested too deeply")
