"""Errors a user can cause or must act on. The CLI shows their message, never a traceback."""

from __future__ import annotations


class EquivError(Exception):
    """An error shown to the user as-is (exit code 2 unless a subclass says otherwise)."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class InputError(EquivError):
    """Bad traffic, bad config, bad CLI usage: the user must fix something (exit 2)."""


class PriceError(InputError):
    """A model has no known price: refused before any call is made (exit 2)."""


class AbortedError(EquivError):
    """The run stopped early (auth failure, spend cap, failing provider); partial results kept (exit 4)."""

    exit_code = 4


class AuthError(AbortedError):
    """The provider rejected the credentials: fail fast instead of retrying 1,000 calls."""


class SpendCapReached(AbortedError):
    """max_spend_usd would be exceeded by the next call."""
