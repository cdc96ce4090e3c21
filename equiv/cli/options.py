"""Shared pieces of the commands: comma lists, settings from config + flags."""

from __future__ import annotations

from typing import Any

from equiv.config import Settings, load_settings


def split_list(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [t.strip() for t in raw.split(",") if t.strip()]


def settings_from(config: str | None, **flags: Any) -> Settings:
    return load_settings(config, {k: v for k, v in flags.items() if v is not None})
