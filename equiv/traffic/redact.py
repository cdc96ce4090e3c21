"""``redact``: the user's privacy rule, applied to prompts and answers before anything else sees them.  [pure]

``redact`` in equiv.toml is a list of regular expressions (each match becomes ``[REDACTED]``) or one
``"module:function"`` name: a function ``str -> str`` of the user's own (a PII scrubber, say). It runs on
every text of a record's prompt (message contents, text parts, tool-call arguments), its logged answer
and its reference, while the traffic is read, so the sample, the run directory, the candidate and the
judge only ever see redacted text; the runner applies it again to the answers models write
(``equiv.llm.runner``), before they are cached, judged or written. The run records that it ran
(patterns are hashed, not written, and the count of replaced texts), and the reports say so.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from equiv.errors import InputError
from equiv.schema import TrafficRecord

MASK = "[REDACTED]"


@dataclass
class Redactor:
    """One redaction rule, and what it did in this process (texts changed, records touched)."""

    describe: str  # "3 patterns" or "module:function": what the run records and the reports say
    digest: str  # sha256 of the rule, for the run key: another rule is another run
    fn: Callable[[str], str]
    texts_changed: int = 0
    records_changed: int = 0

    def text(self, value: str) -> str:
        out = self.fn(value)
        if not isinstance(out, str):
            raise InputError(
                f"redact: {self.describe} returned {type(out).__name__}, not text — it must map str -> str"
            )
        if out != value:
            self.texts_changed += 1
        return out

    def tree(self, value: Any) -> Any:
        """Every string in a JSON-like value, redacted (keys kept)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        if isinstance(value, dict):
            return {k: self.tree(v) for k, v in value.items()}
        return value

    def record(self, rec: TrafficRecord) -> TrafficRecord:
        """The record with its prompt, logged answer and reference redacted (ids, params, metadata kept)."""
        before = self.texts_changed
        update: dict[str, Any] = {"messages": [_message(self, m) for m in rec.messages]}
        if rec.response is not None:
            update["response"] = self.text(rec.response)
        if rec.reference is not None:
            update["reference"] = self.text(rec.reference)
        if self.texts_changed == before:
            return rec
        self.records_changed += 1
        return rec.model_copy(update=update)

    def summary(self) -> dict[str, Any]:
        """What run.json keeps: the rule's description and hash, and what it changed in this run's reading."""
        return {
            "rule": self.describe,
            "sha256": self.digest,
            "records_changed": self.records_changed,
            "texts_changed": self.texts_changed,
        }


def _message(r: Redactor, m: dict[str, Any]) -> dict[str, Any]:
    out = dict(m)
    if "content" in out:
        out["content"] = r.tree(out["content"])
    if "tool_calls" in out:
        out["tool_calls"] = r.tree(out["tool_calls"])
    if "function_call" in out:
        out["function_call"] = r.tree(out["function_call"])
    return out


def load_redactor(rule: list[str] | str | None, source: str = "settings") -> Redactor | None:
    """The rule from equiv.toml's ``redact`` (a list of regexes, or "module:function"); None when unset.

    A regex that does not compile, an empty pattern, a module that cannot be imported or a name that is
    not a function is exit 2 naming the key."""
    if rule is None:
        return None
    if isinstance(rule, str):
        return _function(rule, source)
    if not rule:
        return None
    compiled = []
    for i, pattern in enumerate(rule):
        where = f"{source}: key 'redact[{i}]'"
        if not pattern:
            raise InputError(f"{where}: an empty pattern would match everywhere — remove it")
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise InputError(f"{where}: not a regular expression ({e}) — fix the pattern") from None
        if rx.search(""):
            raise InputError(f"{where}: {pattern!r} matches the empty string — it would mask every position")
        compiled.append(rx)
    joined = re.compile("|".join(f"(?:{rx.pattern})" for rx in compiled))

    def mask(text: str) -> str:
        return joined.sub(MASK, text)

    digest = hashlib.sha256("\0".join(rule).encode()).hexdigest()
    n = len(compiled)
    return Redactor(f"{n} pattern{'s' if n != 1 else ''}", digest, mask)


def _function(name: str, source: str) -> Redactor:
    where = f"{source}: key 'redact'"
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise InputError(f"{where}: {name!r} is neither a list of patterns nor 'module:function'")
    try:
        mod = importlib.import_module(module)
    except Exception as e:
        raise InputError(
            f"{where}: cannot import {module!r} ({type(e).__name__}: {e}) — check the module name and PYTHONPATH"
        ) from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise InputError(f"{where}: {module!r} has no function {attr!r}")
    return Redactor(name, hashlib.sha256(name.encode()).hexdigest(), fn)
