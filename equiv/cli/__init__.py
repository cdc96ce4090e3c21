"""The `equiv` command. Thin: parse flags, call the pipeline, print. Errors are shown here, once."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from equiv.errors import AbortedError, EquivError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="equiv",
    help="Can this prompt-type move to a cheaper model without losing quality? Measured on your own traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _printable(message: str) -> str:
    """Messages may quote traffic or provider text: no terminal escape sequences, whatever they quote."""
    return _CONTROL.sub("?", message)


def user_errors(fn: F) -> F:
    """The one place user errors become a message and an exit code (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EquivError as err:
            typer.echo(f"equiv: error: {_printable(err.message)}", err=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            # SPEC exit codes: 4 = aborted, partial results kept (Ctrl-C is one more way to abort)
            typer.echo(
                "equiv: interrupted (Ctrl-C); finished work is kept: run the same command again to resume.", err=True
            )
            raise typer.Exit(AbortedError.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _register() -> None:
    from equiv.cli import calibrate, compare, history, label, nightly, optimize, qualify, report  # noqa: F401


def main() -> None:
    from equiv.llm import client

    client.FREEZE_AFTER_IMPORT = True  # this process is equiv's own (see there)
    _register()
    app(prog_name="equiv")


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
