"""``redact``: the user's privacy rule, applied to prompts and answers before anything else sees them.  [pure]

``redact`` in equiv.toml is a list of regular expressions (each match becomes ``[REDACTED]``) or one
``"module:function"`` name: a function ``str -> str`` of the user's own (a PII scrubber, say). It runs on
every text of a record's prompt (message contents, text parts, tool-call arguments), its logged answer
and its reference, while the traffic is read, so the sample, the run directory, the candidate and the
judge only ever see redacted text; the runner applies it again to the answers models write
(``equiv.llm.runner``), before they are cached, judged or written. The run records that it ran
(the rule is hashed, not written: patterns often hold the very text they hide, and the count of replaced
texts), and the reports say so. Only text is rewritten: a message's content and text parts, tool-call
arguments; ids, names, types and image data are kept so the conversation still replays.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
        try:
            out = self.fn(value)
        except Exception as e:  # the user's function failed: their input error, exit 2, never a traceback
            raise InputError(
                f"redact: {self.describe} raised {type(e).__name__}: {e} — fix the function (it must map str -> str)"
            ) from None
        if not isinstance(out, str):
            raise InputError(
                f"redact: {self.describe} returned {type(out).__name__}, not text — it must map str -> str"
            )
        if out != value:
            self.texts_changed += 1
        return out

    def content(self, value: Any) -> Any:
        """A message's content: the text, or the ``text`` of its text parts (types, ids, image data kept)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [
                {**part, "text": self.text(part["text"])}
                if isinstance(part, dict) and isinstance(part.get("text"), str)
                else part
                for part in value
            ]
        return value

    def call(self, value: Any) -> Any:
        """A tool call (``{"function": {"name", "arguments"}}``) or a legacy ``function_call``: only the
        arguments are text a user wrote; ids and names are kept so the conversation still links up."""
        if not isinstance(value, dict):
            return value
        fn = value.get("function") if "function" in value else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            return {**value, "function": {**fn, "arguments": self.text(fn["arguments"])}}
        if isinstance(value.get("arguments"), str):
            return {**value, "arguments": self.text(value["arguments"])}
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
        out["content"] = r.content(out["content"])
    if isinstance(out.get("tool_calls"), list):
        out["tool_calls"] = [r.call(c) for c in out["tool_calls"]]
    if "function_call" in out:
        out["function_call"] = r.call(out["function_call"])
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

    def mask(text: str) -> str:  # one pattern after another: each keeps its own groups and flags
        for rx in compiled:
            text = rx.sub(MASK, text)
        return text

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
    # the run key covers the function's code, not only its name: an edited scrubber is another run
    h = hashlib.sha256(name.encode())
    try:
        h.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):
        path = getattr(mod, "__file__", None)
        if path:
            try:
                h.update(Path(path).read_bytes())
            except OSError:
                pass
    return Redactor(name, h.hexdigest(), fn)
