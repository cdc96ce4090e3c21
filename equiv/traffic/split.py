"""Sampling one large JSON Lines file on several cores: the file cut into byte ranges.  [I/O]

``equiv.sampling.stratified_sample`` over ``read_traffic`` of a single local, uncompressed ``.jsonl`` file
of at least ``EQUIV_SPLIT_MIN_BYTES`` (256 MiB) whose first record is native: the file is cut at line
breaks into one range per core (at most ``EQUIV_READ_WORKERS``, default the cores this process may use,
at most 8); this process samples the first range while ``python -m equiv.traffic.split`` children sample
the others, each with the same reader and the same per-type bottom-k. The parts then merge into exactly
what one pass gives (tests/traffic/test_split.py):

- a cluster in a type's bottom-k of the whole file is in the bottom-k of every range that holds it (fewer
  clusters rank below it there), so each range counted all of its records: the counts add up, and its
  first record is that of the first range holding it;
- positions, line numbers (a child counts the line breaks before its range) and the examples of skipped
  lines follow file order; the first error in the file is the first range's error.

A child that fails for any other reason (killed, out of memory) makes the whole file read again in one
pass, so the result never depends on how it was cut. ``EQUIV_READ_WORKERS=1`` turns splitting off.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equiv.errors import InputError

MIN_BYTES = 256 * 2**20
MAX_WORKERS = 8
_COUNT_CHUNK = 1 << 22


@dataclass(frozen=True)
class Job:
    """One range of the file, and what sampling it needs (picklable: a child gets it on stdin)."""

    path: str
    display: str
    start: int
    end: int | None
    limit: int
    pt_field: str
    skip_invalid: bool
    since: Any  # datetime | None
    format: str | None  # forced with --format
    allowed: set[str] | None
    per_type: int
    per_type_of: dict[str, int] | None
    require_response: bool
    seed: int


@dataclass
class Part:
    """What one range gave: per type (records, first, last, seen, heap, kept), volume and skips, the reader's
    stats and its row counts (rows, units, invalid, read)."""

    groups: dict[str, tuple[Any, ...]]
    volume: Counter[str]
    skipped: Counter[str]
    stats: Any  # equiv.traffic.read.ReadStats
    counts: tuple[int, int, int, int]


def workers_for(size: int) -> int:
    """How many ranges a file of `size` bytes is cut into (1: not cut)."""
    try:
        cap = int(os.environ.get("EQUIV_READ_WORKERS", "0")) or len(os.sched_getaffinity(0))
    except (ValueError, AttributeError):
        cap = os.cpu_count() or 1
    try:
        min_bytes = int(os.environ.get("EQUIV_SPLIT_MIN_BYTES", str(MIN_BYTES)))
    except ValueError:
        min_bytes = MIN_BYTES
    return max(1, min(cap, MAX_WORKERS, size // max(1, min_bytes)))


def cut(path: Path, n: int) -> list[tuple[int, int | None]]:
    """`n` byte ranges of the file, each ending just after a line break (fewer if lines are that long)."""
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as f:
        for k in range(1, n):
            at = max(size * k // n, starts[-1])
            f.seek(at - 1 if at > 0 else 0)
            if at > 0:  # to the end of the line holding byte `at - 1`, in bounded chunks (a line may be huge)
                while (chunk := f.readline(1 << 20)) and not chunk.endswith(b"\n"):
                    pass
            pos = f.tell()
            if pos >= size:
                break
            if pos > starts[-1]:
                starts.append(pos)
    return [(s, starts[i + 1] if i + 1 < len(starts) else None) for i, s in enumerate(starts)]


def lines_before(path: str, offset: int) -> int:
    """Line breaks in the file's first `offset` bytes."""
    n = 0
    with open(path, "rb") as f:
        left = offset
        while left > 0:
            chunk = f.read(min(_COUNT_CHUNK, left))
            if not chunk:
                break
            n += chunk.count(b"\n")
            left -= len(chunk)
    return n


def sample_range(job: Job) -> Part:
    """Sample one range as ``stratified_sample`` samples a whole file (``_sample_light``), keeping its state."""
    from equiv.sampling import _BottomK, _sample_light
    from equiv.traffic.jsonl import _jsonl_rows
    from equiv.traffic.read import ReadStats, _Options, _Traffic
    from equiv.traffic.registry import FORMATS

    base = lines_before(job.path, job.start) if job.start else 0

    def source(*, raw: bool = False) -> Any:
        opener = lambda: open(job.path, "rb")  # noqa: E731
        return _jsonl_rows(job.display, opener, job.limit, span=(job.start, job.end, base), raw=raw)

    fmt = FORMATS[job.format] if job.format else None
    options = _Options(job.pt_field, job.pt_field.split("."), job.skip_invalid, job.since, fmt, [], None)
    stats = ReadStats()
    counts: list[int] = []
    # a later range is read as the file's first record decided: native (equiv.traffic.read._Traffic._split)
    native = FORMATS["native"] if job.start else None
    traffic = _Traffic(source, job.display, options, stats, True, counts=counts, start_format=native)
    light = traffic._light()
    assert light is not None  # a new _Traffic with fast=True
    items, build = light
    groups: dict[str, _BottomK] = {}
    volume: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    _sample_light(
        items,
        build,
        groups,
        volume,
        skipped,
        job.allowed,
        job.per_type,
        job.per_type_of,
        job.require_response,
        job.seed,
    )
    state = {t: (g.records, g.first, g.last, g.seen, g.heap, g.kept) for t, g in groups.items()}
    c = (counts + [0, 0, 0, 0])[:4]
    return Part(state, volume, skipped, stats, (c[0], c[1], c[2], c[3]))


def start_child(job: Job) -> subprocess.Popen[bytes]:
    """``python -m equiv.traffic.split`` sampling `job`'s range (the job on its stdin, the Part on its stdout)."""
    here = str(Path(__file__).resolve().parents[2])  # where this equiv is imported from, for the child too
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([here, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    proc = subprocess.Popen(
        [sys.executable, "-m", "equiv.traffic.split"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(pickle.dumps(job))
    proc.stdin.close()
    proc.stdin = None  # sent: communicate() has nothing more to write
    return proc


class ChildFailed(Exception):
    """A child ended without a Part or an InputError: the caller reads the file in one pass instead."""


def collect(proc: subprocess.Popen[bytes]) -> Part:
    """The child's Part; its InputError raised here; ChildFailed for anything else."""
    out, err = proc.communicate()  # both pipes at once: a chatty stderr cannot stall the child
    code = proc.returncode
    try:
        kind, value = pickle.loads(out)
    except Exception:
        raise ChildFailed(f"exit {code}: {err.decode('utf-8', 'replace')[-500:]}") from None
    if kind == "part":
        return value  # type: ignore[no-any-return]
    if kind == "input_error":
        raise InputError(str(value))
    raise ChildFailed(str(value))


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _main() -> None:
    job = pickle.loads(sys.stdin.buffer.read())
    try:
        result: tuple[str, Any] = ("part", sample_range(job))
    except InputError as e:
        result = ("input_error", str(e))
    except BaseException as e:  # reported to the parent, which reads the file in one pass instead
        result = ("failed", f"{type(e).__name__}: {e}")
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


if __name__ == "__main__":  # run as a child: through the module's own name, so what it pickles names it too
    from equiv.traffic.split import _main as main

    main()
