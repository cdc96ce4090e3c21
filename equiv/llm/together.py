"""Calls made side by side that also stop side by side.

`asyncio.gather` leaves the other awaitables running when one of them raises. When what raised was an
abort (a bad key, the spend cap, a provider that keeps failing), the call left running is no longer
anybody's: the run stops, closes its cache, and the answer (paid for) arrives after it, or the call is
cut off mid-flight when the event loop ends; the resumed run buys it again. `together` cancels the
others instead and waits for them; the runner keeps the answer of a call cancelled after it was sent
(`Runner.settle` waits for it), so nothing sent is forgotten. A call that merely failed stops nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from equiv.llm.client import CallError

T = TypeVar("T")


async def together(*aws: Awaitable[T]) -> list[T]:
    """The results, in argument order.

    A call that failed on its own (a `CallError`: the pair records the failure) lets the others finish:
    they are paid for once sent, and may be shared with another pair's identical call. Any other error
    stops the run (an abort, a failed redaction): the others are cancelled and awaited, then it is
    raised, before the first call error. When the caller is cancelled, all are cancelled and awaited
    before the cancellation goes on.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            if any(_stops(t) for t in done):
                break
    finally:
        left = [t for t in tasks if not t.done()]
        for t in left:
            t.cancel()
        if left:
            await asyncio.wait(left)
    errors = [e for t in tasks if not t.cancelled() and (e := t.exception()) is not None]  # each one retrieved
    if errors:
        raise next((e for e in errors if not isinstance(e, CallError)), errors[0])
    return [t.result() for t in tasks]


def _stops(task: asyncio.Future[Any]) -> bool:
    return not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), CallError)
