"""The run directory (SPEC "Run directory"): run.json, pairs.jsonl, checks.jsonl, calls.jsonl, verdict.json.

Lines are appended and flushed as work finishes (fsynced in the background, equiv.durable), so a
killed run loses at most the calls in flight.
A torn last line is dropped on load; a corrupt line elsewhere is an error naming the line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from equiv import durable
from equiv.errors import InputError
from equiv.schema import Check, Pair, Verdict

M = TypeVar("M", bound=BaseModel)

PAIRS = "pairs.jsonl"
CHECKS = "checks.jsonl"
CALLS = "calls.jsonl"
RUN = "run.json"
VERDICT = "verdict.json"
LOCK = ".lock"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id(key: str, later_s: int = 0) -> str:
    """`<UTC yyyymmdd-HHMMSS>-<key>` (SPEC); `later_s` moves it on when that second's directory is taken."""
    return f"{(datetime.now(UTC) + timedelta(seconds=later_s)).strftime('%Y%m%d-%H%M%S')}-{key}"


def find_run(out: Path, key: str) -> Path | None:
    """The newest run directory under `out` whose id ends with this key (same command -> resume)."""
    if not out.is_dir():
        return None
    found = sorted(p for p in out.iterdir() if p.is_dir() and p.name.endswith(f"-{key}"))
    return found[-1] if found else None


def read_jsonl(path: Path, model: type[M], *, tolerate_torn_tail: bool = True) -> list[M]:
    """Validated records of a JSONL file; errors name file and line. A torn last line is dropped."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    out: list[M] = []
    with open(path, "rb") as fh:
        lines = fh.readlines()
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last = i == len(lines)
        try:
            out.append(model.model_validate_json(raw))
        except ValidationError as e:
            if last and tolerate_torn_tail and not raw.endswith(b"\n"):
                break  # killed mid-write: the record will be redone
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InputError(
                f"{path}:{i}: {'invalid JSON' if first['type'] == 'json_invalid' else loc}: {first['msg']}"
            ) from None
    return out


def _dump(record: BaseModel) -> str:
    return record.model_dump_json(exclude_none=False) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class RunDir:
    """One run's directory. Holds a lock while a process works in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._locked = False
        self._lock_fd: int | None = None
        self._fhs: dict[str, Any] = {}

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    def lock(self) -> None:
        """Refuse a second process in the same run directory.

        An advisory lock (flock) on `.lock` is held while the process lives: the kernel drops it when the
        process dies, however it dies (kill -9 included), so a stale lock never blocks a resume and a
        reused pid is never mistaken for a live run. The file holds the pid, for the message only.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.file(LOCK)
        if fcntl is None:  # pragma: no cover - no flock on this platform: exclusive create + pid check
            self._lock_by_pid(lock)
            return
        for _ in range(5):
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = _read_pid(lock)
                os.close(fd)
                raise InputError(
                    f"{self.path}: another equiv process{f' (pid {pid})' if pid else ''} is working in this run "
                    "directory; wait for it to finish, or use --fresh for a separate run"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder unlinked it as we opened it: lock the new file instead
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            self._lock_fd = fd
            self._locked = True
            return
        raise InputError(f"{self.path}: could not lock {LOCK}; try again")  # pragma: no cover

    def _lock_by_pid(self, lock: Path) -> None:  # pragma: no cover - platforms without fcntl
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = _read_pid(lock)
                if pid and _alive(pid):
                    raise InputError(
                        f"{self.path}: another equiv process (pid {pid}) is working in this run directory; "
                        "wait for it to finish, or use --fresh for a separate run"
                    ) from None
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            self._locked = True
            return

    def unlock(self) -> None:
        for fh in self._fhs.values():
            durable.sync(fh)
            fh.close()
        self._fhs.clear()
        if self._locked:
            self.file(LOCK).unlink(missing_ok=True)  # unlinked while still held: see the inode check in lock()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            self._locked = False

    def load_pairs(self) -> list[Pair]:
        p = self.file(PAIRS)
        return read_jsonl(p, Pair) if p.exists() else []

    def load_checks(self) -> list[Check]:
        p = self.file(CHECKS)
        return read_jsonl(p, Check) if p.exists() else []

    def rewrite(self, name: str, records: Sequence[BaseModel]) -> None:
        """Atomically replace a JSONL file (used on resume to drop failed pairs that will be redone)."""
        if name in self._fhs:
            fh = self._fhs.pop(name)
            durable.sync(fh)
            fh.close()
        tmp = self.file(name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(_dump(r) for r in records)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.file(name))

    def append(self, name: str, record: BaseModel) -> None:
        fh = self._fhs.get(name)
        if fh is None:
            fh = self._fhs[name] = open(self.file(name), "a", encoding="utf-8")
        fh.write(_dump(record))
        fh.flush()  # in the OS now: a killed process loses nothing
        durable.mark(fh)  # on disk soon: fsync in the background, off the event loop

    def read_run_info(self) -> dict[str, Any]:
        p = self.file(RUN)
        if not p.exists():
            return {}
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def read_own_run_info(self, key: str, fix: str) -> dict[str, Any]:
        """run.json of a directory this run (`key`) may resume; InputError when it belongs to another run."""
        info = self.read_run_info()
        if info and info.get("key") not in (None, key):
            raise InputError(
                f"{self.path}: this run directory belongs to a different run (key {info.get('key')}, "
                f"this command's key is {key}); {fix}"
            )
        return info

    def write_run_info(self, info: dict[str, Any]) -> None:
        write_json_atomic(self.file(RUN), info)

    def write_verdict(self, verdict: Verdict) -> None:
        write_json_atomic(self.file(VERDICT), verdict.model_dump(mode="json"))


def _read_pid(lock: Path) -> int:
    try:
        return int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_pairs_from(target: Path) -> tuple[list[Pair], list[Check] | None, dict[str, Any], Path]:
    """For `equiv report`: a run directory or a pairs.jsonl file -> (pairs, checks, run_info, folder)."""
    if target.is_dir():
        run = RunDir(target)
        if not run.file(PAIRS).exists():
            raise InputError(f"{target}: no {PAIRS} here; give a run directory or a pairs.jsonl file")
        checks = run.load_checks() if run.file(CHECKS).exists() else None
        return run.load_pairs(), checks, run.read_run_info(), target
    if not target.exists():
        raise InputError(f"{target}: not found; give a run directory or a pairs.jsonl file")
    pairs = read_jsonl(target, Pair, tolerate_torn_tail=False)
    checks_path = target.with_name(CHECKS)
    checks = read_jsonl(checks_path, Check) if checks_path.exists() else None
    run_path = target.with_name(RUN)
    info: dict[str, Any] = {}
    if run_path.exists():
        info = RunDir(target.parent).read_run_info()
    return pairs, checks, info, target.parent


def iter_lines(records: Iterable[BaseModel]) -> Iterable[str]:
    return (_dump(r) for r in records)
