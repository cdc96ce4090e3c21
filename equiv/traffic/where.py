"""``--where KEY=VALUE``: keep the records whose dotted field equals the value.  [pure]

KEY is a dotted path looked up first in the row as the tool wrote it (``metadata.tenant``,
``request_tags``, ``model_group``, a Langfuse ``traceId`` ...), then in the record equiv read from it
(``prompt_type``, ``model``, ``metadata.tenant``), so one filter works for every format. A value
matches when its text is VALUE (numbers as written, booleans as ``true`` / ``false``); a list matches
when one of its items does. Several filters must all match. Records left out are counted under the
reason ``where KEY=VALUE`` (category "filtered").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from equiv.errors import InputError

_MISSING = object()


@dataclass(frozen=True)
class Where:
    key: str
    path: tuple[str, ...]
    value: str

    @property
    def reason(self) -> str:
        return f"where {self.key}={self.value}"

    def matches(self, row: dict[str, Any], record: Callable[[], dict[str, Any]]) -> bool:
        """Whether the raw ``row`` (else the ``record()`` equiv read, built only when needed) matches."""
        found = _lookup(row, self.key, self.path)
        if found is _MISSING:
            found = _lookup(record(), self.key, self.path)
        return found is not _MISSING and _equals(found, self.value)


def parse_where(items: Iterable[str], source: str = "--where") -> list[Where]:
    """``["metadata.tenant=acme", ...]`` -> filters; exit 2 naming the item when one is not KEY=VALUE."""
    out = []
    for i, item in enumerate(items):
        key, eq, value = item.partition("=")
        key = key.strip()
        path = tuple(key.split("."))
        if not eq or not key or not all(path):
            raise InputError(
                f"{source}[{i}] {item!r} is not KEY=VALUE — write e.g. metadata.tenant=acme "
                "(KEY a field or dotted path)"
            )
        out.append(Where(key, path, value))
    return out


def _lookup(root: Any, dotted: str, path: tuple[str, ...]) -> Any:
    """The value at the dotted path. At each level the longest literal key is tried first, as OpenTelemetry
    attribute names (``gen_ai.agent.name``) and CSV columns (``metadata.tenant``) hold dots themselves."""
    if not path:
        return root
    if not isinstance(root, dict):
        return _MISSING
    for i in range(len(path), 0, -1):
        key = ".".join(path[:i])
        if key in root:
            found = _lookup(root[key], ".".join(path[i:]), path[i:])
            if found is not _MISSING:
                return found
    return _MISSING


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _equals(found: Any, value: str) -> bool:
    if isinstance(found, list):
        return any(_text(v) == value for v in found)
    return _text(found) == value
