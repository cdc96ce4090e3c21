"""Shared pieces of the commands: comma lists, settings from config + flags."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from equiv.errors import InputError

if TYPE_CHECKING:
    from equiv.config import Settings


def split_list(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [t.strip() for t in raw.split(",") if t.strip()]


def settings_from(config: str | None, **flags: Any) -> Settings:
    from equiv.config import load_settings  # here, not at the top: `equiv --help` stays fast

    return load_settings(config, {k: v for k, v in flags.items() if v is not None})


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def is_relative(raw: str) -> bool:
    """`24h`, `7d` ...: a window that ends now (as opposed to an ISO 8601 start time)."""
    return _RELATIVE.fullmatch(raw.strip().lower()) is not None


def parse_since(raw: str, now: datetime | None = None) -> datetime:
    """`24h`, `90m`, `7d`, `2w`, `3600s` before now, or an ISO 8601 time (UTC if it names no zone)."""
    text = raw.strip()
    m = _RELATIVE.fullmatch(text.lower())
    if m:
        delta = timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
        if delta <= timedelta(0):
            raise InputError(f"--since {raw}: the window must be longer than zero")
        return (now or datetime.now(UTC)) - delta
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"--since {raw!r}: give a window such as 24h, 90m, 7d, or an ISO 8601 time such as 2025-03-01T00:00:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
