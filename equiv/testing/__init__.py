"""Test helpers shipped with the package, so integration tests and benchmarks share one simulated API."""

from equiv.testing.loopback import LoopbackServer, messages_hash

__all__ = ["LoopbackServer", "messages_hash"]
