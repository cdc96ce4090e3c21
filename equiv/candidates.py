"""Candidates as configurations (SPEC "Candidates"): what a candidate sends instead of the traffic's call.

A candidate is a model plus what changes around it: its own system prompt (replacing the traffic's leading
system message), params that override the replayed ones (a max_tokens cap ...), and a context option that
keeps only the last N user turns. The judge always reads the traffic's own conversation: it judges the
answers to the user's request, not to the candidate's rewritten prompt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from equiv.config import CandidateConfig, Settings
from equiv.errors import InputError

_SYSTEM_ROLES = ("system", "developer")


def prompt_hash(text: str | None) -> str | None:
    """sha256 of a system prompt's UTF-8 text (routing.json and run.json record it), None without one."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text is not None else None


def candidate_messages(cand: CandidateConfig, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as this candidate is called with it.

    `last_turns = N`: the leading system message(s) and the last N user turns (a turn is a user message
    and everything after it up to the next user message, so a tool call stays with its result).
    `system_prompt`: replaces the leading system (or developer) messages with one system message, or comes
    first when the traffic has none.
    """
    msgs = list(messages)
    lead = 0
    while lead < len(msgs) and msgs[lead].get("role") in _SYSTEM_ROLES:
        lead += 1
    head, body = msgs[:lead], msgs[lead:]
    if cand.last_turns is not None:
        starts = [i for i, m in enumerate(body) if m.get("role") == "user"]
        if len(starts) > cand.last_turns:
            body = body[starts[-cand.last_turns] :]
    if cand.system_prompt is not None:
        head = [{"role": "system", "content": cand.system_prompt}]
    return head + body


def candidate_params(cand: CandidateConfig, params: dict[str, Any]) -> dict[str, Any]:
    """The replayed params with the candidate's own on top."""
    return {**params, **cand.params} if cand.params else dict(params)


def describe(cand: CandidateConfig) -> dict[str, Any]:
    """What run.json, verdict.json and routing.json record of a candidate (the prompt as its hash)."""
    out: dict[str, Any] = {"name": cand.name, "model": cand.model}
    if cand.params:
        out["params"] = dict(cand.params)
    if cand.system_prompt is not None:
        out["system_prompt_sha256"] = prompt_hash(cand.system_prompt)
        if cand.system_prompt_file is not None:
            out["system_prompt_file"] = cand.system_prompt_file
    if cand.last_turns is not None:
        out["last_turns"] = cand.last_turns
    return out


def candidates_named(models: Any) -> bool:
    """Whether pairs name their candidate: several candidates, or one [[candidates]] configuration."""
    cands = models.candidates
    return len(cands) > 1 or any(c.name != c.model or c.changes_prompt for c, _ in cands)


def resolve_candidates(settings: Settings) -> list[CandidateConfig]:
    """The run's candidates, checked: at least one, distinct names, no two the same configuration, and none
    that is the baseline's own call (the same model with nothing changed). Exit 2 otherwise."""
    cands = settings.candidate_configs()
    if not cands:
        raise InputError("name both models: --baseline MODEL --candidate MODEL (or baseline/candidate in the config)")
    names = [c.name for c in cands]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"the candidate {twice[0]} is named twice: name each candidate once")
    seen: dict[str, str] = {}
    for c in cands:
        if c.model == settings.baseline and not c.changes_prompt:
            raise InputError(
                f"baseline and candidate are the same model ({settings.baseline}): nothing to compare "
                "(a candidate on the baseline's model needs its own system_prompt, params or last_turns)"
            )
        key = repr((c.model, c.system_prompt, sorted(c.params.items()), c.last_turns))
        if key in seen:
            raise InputError(f"the candidates {seen[key]} and {c.name} are the same configuration: compare each once")
        seen[key] = c.name
    return cands
