"""Per-run store of finished calls, so a resumed run never buys a call twice.

One JSON line per finished call in `<run_dir>/calls.jsonl`, appended and flushed as calls finish and
fsynced in the background (equiv.durable).
A torn last line (the process was killed mid-write) is dropped on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from equiv import durable
from equiv.schema import Completion


def call_key(model: str, call_model: str, api_base: str | None, messages: list[dict[str, Any]],
             params: dict[str, Any], sample: int = 0) -> str:
    """The one cache key function: everything that affects a call's output, nothing else."""
    blob = json.dumps(
        {"m": model, "c": call_model, "b": api_base or "", "msg": messages, "p": params, "s": sample},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class CallCache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, Completion] = {}
        self.dropped_lines = 0
        if path is not None and path.exists():
            self._load(path)
        self._fh = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

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

    def get(self, key: str) -> Completion | None:
        return self._entries.get(key)

    def put(self, key: str, completion: Completion) -> None:
        self._entries[key] = completion
        if self._fh is not None:
            self._fh.write(json.dumps({"key": key, "completion": completion.model_dump()}) + "\n")
            self._fh.flush()
            durable.mark(self._fh)

    def total_cost(self) -> float:
        return sum(c.cost_usd for c in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        if self._fh is not None:
            durable.sync(self._fh)
            self._fh.close()
            self._fh = None
