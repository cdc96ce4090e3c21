"""The store of finished calls: a run never buys a call that any run under its `--out` folder bought.

Each run appends one JSON line per call it bought to its own `<run_dir>/calls.jsonl` (flushed as
calls finish, fsynced in the background by equiv.durable); what that file holds is what the run
spent. The cache also reads the `calls.jsonl` of every other run directory beside it (read-only,
indexed by key and read lazily, so a folder of many nightly runs costs an index, not their texts):
a rerun with a larger `per_type`, a corrected price or timeout, or another margin finds its calls
there and buys only what is new (SPEC "Nothing lost, nothing bought twice").

A torn last line (the process was killed mid-write) is dropped on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from equiv import durable
from equiv.schema import Completion

_KEY_PREFIX = b'{"key": "'


def call_key(
    call_model: str, api_base: str | None, messages: list[dict[str, Any]], params: dict[str, Any], sample: int = 0
) -> str:
    """The one cache key function: what defines a call's output (the model as called, where it is
    served, the messages, the params sent, the sample index), nothing else: not the name a report
    gives the model, not its price, not its timeout."""
    blob = json.dumps(
        {"c": call_model, "b": api_base or "", "msg": messages, "p": params, "s": sample},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def sibling_call_files(run_dir: Path) -> list[Path]:
    """The calls.jsonl of every other run directory in the run's parent folder (the `--out` folder)."""
    parent = run_dir.parent
    if not parent.is_dir():
        return []
    return sorted(
        p / "calls.jsonl" for p in parent.iterdir() if p.is_dir() and p != run_dir and (p / "calls.jsonl").is_file()
    )


class CallCache:
    def __init__(self, path: Path | None, shared: Iterable[Path] = ()) -> None:
        self.path = path
        self._entries: dict[str, Completion] = {}
        self._shared: dict[str, tuple[Path, int]] = {}
        self.dropped_lines = 0
        if path is not None and path.exists():
            self._load(path)
        for other in shared:
            self._index(other)
        self._fh = open(path, "a", encoding="utf-8") if path is not None else None

    def _load(self, path: Path) -> None:
        with open(path, "rb") as fh:
            for raw in fh:
                try:
                    row = json.loads(raw)
                    self._entries[row["key"]] = Completion.model_validate(row["completion"])
                except (ValueError, KeyError, TypeError):
                    self.dropped_lines += 1  # torn or corrupt line: the call will be redone
        if self.dropped_lines:
            # rewrite without the bad lines so later appends start on a clean line
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as out:
                for key, comp in self._entries.items():
                    out.write(json.dumps({"key": key, "completion": comp.model_dump()}) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)

    def _index(self, path: Path) -> None:
        """Where each finished call of another run is (key -> file, offset); its text is read on a hit."""
        try:
            with open(path, "rb") as fh:
                offset = 0
                for raw in fh:
                    if raw.endswith(b"\n") and raw.startswith(_KEY_PREFIX) and raw[73:74] == b'"':
                        self._shared.setdefault(raw[9:73].decode("ascii", "replace"), (path, offset))
                    offset += len(raw)
        except OSError:
            return  # another run's folder vanished: its calls are simply not reused

    def _read_shared(self, key: str) -> Completion | None:
        where = self._shared.get(key)
        if where is None:
            return None
        try:
            with open(where[0], "rb") as fh:
                fh.seek(where[1])
                row = json.loads(fh.readline())
            if row.get("key") != key:
                return None
            return Completion.model_validate(row["completion"])
        except (OSError, ValueError, KeyError, TypeError):
            self._shared.pop(key, None)
            return None

    def get(self, key: str) -> Completion | None:
        """A finished call: this run's own, else another run's under the same folder."""
        hit = self._entries.get(key)
        if hit is None:
            hit = self._read_shared(key)
        return hit

    def put(self, key: str, completion: Completion) -> None:
        self._entries[key] = completion
        if self._fh is not None:
            self._fh.write(json.dumps({"key": key, "completion": completion.model_dump()}) + "\n")
            self._fh.flush()
            durable.mark(self._fh)

    def total_cost(self) -> float:
        """What this run bought (calls reused from other runs cost it nothing)."""
        return sum(c.billed_usd for c in self._entries.values())

    def total_realtime_cost(self) -> float:
        """What this run's calls cost at real-time prices (differs from `total_cost` for --batch calls)."""
        return sum(c.cost_usd for c in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        if self._fh is not None:
            durable.sync(self._fh)
            self._fh.close()
            self._fh = None
