"""Test helpers shipped with the package, so integration tests and benchmarks share one simulated API.

Names are loaded lazily so that ``python -m equiv.testing.loopback`` does not import the module twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from equiv.testing.loopback import LoopbackServer, messages_hash

__all__ = ["LoopbackServer", "messages_hash"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from equiv.testing import loopback

        return getattr(loopback, name)
    raise AttributeError(f"module 'equiv.testing' has no attribute {name!r}")
