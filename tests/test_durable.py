"""Background fsync: every marked file gets fsynced, `sync` waits, and closed files are harmless."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from equiv import durable


def test_marked_files_are_fsynced_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    fhs = [open(tmp_path / f"f{i}.jsonl", "a") for i in range(3)]
    for fh in fhs:
        fh.write("x\n")
        fh.flush()
        durable.mark(fh)
    deadline = time.monotonic() + 5
    while not {fh.fileno() for fh in fhs} <= set(synced) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert {fh.fileno() for fh in fhs} <= set(synced)
    for fh in fhs:
        synced.clear()
        durable.sync(fh)
        assert synced == [fh.fileno()]  # sync forces it now, whatever the thread did
        fh.close()


def test_a_file_closed_after_mark_does_not_break_the_thread(tmp_path: Path) -> None:
    fh = open(tmp_path / "a.jsonl", "a")
    fh.write("x\n")
    fh.flush()
    durable.mark(fh)
    fh.close()  # closed without sync: the thread's fsync of it is skipped
    fh2 = open(tmp_path / "b.jsonl", "a")
    fh2.write("y\n")
    fh2.flush()
    durable.mark(fh2)
    durable.sync(fh2)
    fh2.close()
    assert (tmp_path / "b.jsonl").read_text() == "y\n"
