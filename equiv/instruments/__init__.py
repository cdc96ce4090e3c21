"""Per-type instruments (SPEC "Per-type instruments"): pure functions over a pair's two answers.

`evaluate` runs a prompt-type's checks on one pair: gates on each answer alone (they never decide
whether the judge is needed), agreement checks on the two together. A pair is decided without the
judge when its answers are identical, or when it has agreement checks and all of them agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from equiv.instruments.agreement import normalize_label, run_agreement, values_agree
from equiv.instruments.gates import compile_schema, run_gate
from equiv.instruments.jsontext import Parsed, parse_json
from equiv.instruments.spec import CheckSpec, ExactCheck, FieldsCheck, LabelCheck, check_name

__all__ = [
    "AgreementOutcome",
    "Answer",
    "GateOutcome",
    "PairInstruments",
    "Parsed",
    "check_names",
    "compile_schema",
    "evaluate",
    "normalize_label",
    "parse_json",
    "values_agree",
]


@dataclass(frozen=True)
class Answer:
    """One side of a pair as the instruments see it."""

    text: str  # the answer's text (tool calls, if any, are also rendered into it by equiv)
    # OpenAI shape: {"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class GateOutcome:
    name: str  # the check's display name (`check_names`)
    kind: str  # the check's own kind: json, json_schema, regex, max_chars, tool_call
    baseline: bool  # passed
    candidate: bool
    baseline_why: str | None = None  # short reason when it fails
    candidate_why: str | None = None


@dataclass(frozen=True)
class AgreementOutcome:
    name: str
    kind: str  # label, exact, fields
    agree: bool
    # `fields` only: per field whether the two answers agree on it (a field missing on one side disagrees)
    fields: Mapping[str, bool] | None = None
    why: str | None = None  # `fields`: which side is not a JSON object, when one is not


@dataclass(frozen=True)
class PairInstruments:
    identical: bool  # texts equal after stripping surrounding whitespace, and the same tool calls
    gates: tuple[GateOutcome, ...]
    agreements: tuple[AgreementOutcome, ...]

    @property
    def agreed(self) -> bool:
        """No judge call needed: identical, or at least one agreement check and every one agrees."""
        return self.decided_by is not None

    @property
    def decided_by(self) -> str | None:
        """``"identical"``, ``"agreement"``, or None (the pair needs the judge)."""
        if self.identical:
            return "identical"
        if self.agreements and all(a.agree for a in self.agreements):
            return "agreement"
        return None


def check_names(checks: Sequence[CheckSpec]) -> list[str]:
    """Unique display names in order: the check's `name`, else its kind; a repeat gets " #2", " #3", ..."""
    used: set[str] = set()
    counts: dict[str, int] = {}
    out: list[str] = []
    for check in checks:
        base = check_name(check)
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base} #{counts[base]}"
        while name in used:
            counts[base] += 1
            name = f"{base} #{counts[base]}"
        used.add(name)
        out.append(name)
    return out


def _call_key(call: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a tool call does: its type, function name and arguments (parsed when they are JSON), not its id."""
    fn = call.get("function")
    if not isinstance(fn, Mapping):
        return ("other", json.dumps(call, sort_keys=True, default=str))
    args = fn.get("arguments")
    if isinstance(args, str):
        parsed = parse_json(args)
        args = parsed.value if parsed.ok else args
    return (call.get("type", "function"), fn.get("name"), json.dumps(args, sort_keys=True, default=str))


def identical(baseline: Answer, candidate: Answer) -> bool:
    """Texts equal after stripping surrounding whitespace, and tool calls equal in order (ids ignored:
    providers mint a fresh one per call; arguments compared as parsed JSON when they parse)."""
    if baseline.text.strip() != candidate.text.strip() or len(baseline.tool_calls) != len(candidate.tool_calls):
        return False
    return all(_call_key(a) == _call_key(b) for a, b in zip(baseline.tool_calls, candidate.tool_calls, strict=True))


def evaluate(
    checks: Sequence[CheckSpec],
    baseline: Answer,
    candidate: Answer,
    tools: Sequence[dict[str, Any]] | None = None,
) -> PairInstruments:
    """Run a prompt-type's `checks` on one pair. `tools`: the request's OpenAI tools (for `tool_call`).

    Raises ValueError for a check the loader has not finished (a `json_schema` whose schema is still a
    path) or whose schema is invalid."""
    gates: list[GateOutcome] = []
    agreements: list[AgreementOutcome] = []
    for name, check in zip(check_names(checks), checks, strict=True):
        if isinstance(check, LabelCheck | ExactCheck | FieldsCheck):
            r = run_agreement(check, baseline.text, candidate.text)
            agreements.append(AgreementOutcome(name, check.kind, r.agree, r.fields, r.why))
        else:
            b_ok, b_why = run_gate(check, baseline.text, baseline.tool_calls, tools)
            c_ok, c_why = run_gate(check, candidate.text, candidate.tool_calls, tools)
            gates.append(GateOutcome(name, check.kind, b_ok, c_ok, b_why, c_why))
    return PairInstruments(identical(baseline, candidate), tuple(gates), tuple(agreements))
