"""Checks built the way the config loader builds them: validated from what equiv.toml would say."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from equiv.instruments.spec import CheckSpec

_ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckSpec)


def check(kind: str, **settings: Any) -> Any:
    return _ADAPTER.validate_python({"kind": kind, **settings})
