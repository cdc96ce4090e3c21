"""fsync without stalling the event loop.

Appends to calls.jsonl and pairs.jsonl are written and flushed at once, so a killed process (kill -9,
Ctrl-C) loses nothing: the data is in the OS. Forcing it to disk (fsync, ~5 ms per call here) is what
protects against a machine crash, and doing that inline blocked the event loop for ~5 ms per call,
which doubled the wall time of a run. So writers mark a file dirty and one daemon thread fsyncs
dirty files (coalescing bursts); `sync(fh)` forces it before a file is closed. The thread waits at
least INTERVAL_S between two rounds: a write to a file being fsynced waits for the fsync (the inode is
locked), so fsyncing back to back stalled the event loop on most writes. A machine crash may lose the
last INTERVAL_S of writes (re-bought on resume); a killed process still loses nothing.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any

INTERVAL_S = 0.25


class _Syncer:
    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._dirty: set[IO[Any]] = set()
        self._busy = 0
        self._thread: threading.Thread | None = None

    def mark(self, fh: IO[Any]) -> None:
        """`fh` was written and flushed: fsync it soon."""
        with self._cv:
            self._dirty.add(fh)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="equiv-fsync", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def sync(self, fh: IO[Any]) -> None:
        """fsync `fh` now (before closing it) and wait for any fsync of it in progress."""
        with self._cv:
            self._dirty.discard(fh)
            self._cv.wait_for(lambda: self._busy == 0)
        _fsync(fh)

    def _loop(self) -> None:
        last = 0.0
        while True:
            wait = last + INTERVAL_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._cv:
                self._cv.wait_for(lambda: bool(self._dirty))
                batch, self._dirty = self._dirty, set()
                self._busy += 1
            try:
                for fh in batch:
                    _fsync(fh)
                last = time.monotonic()
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()


def _fsync(fh: IO[Any]) -> None:
    try:
        os.fsync(fh.fileno())
    except (OSError, ValueError):  # closed meanwhile: its closer synced it
        pass


_SYNCER = _Syncer()
mark = _SYNCER.mark
sync = _SYNCER.sync
