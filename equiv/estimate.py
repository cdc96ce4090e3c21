"""The evaluation's cost, estimated before any call is made (SPEC "No surprise spend")."""

from __future__ import annotations

import json

from equiv.candidates import candidate_messages, candidate_params
from equiv.config import Settings
from equiv.llm import client
from equiv.llm.cache import CallCache, call_key
from equiv.models import Models
from equiv.schema import TrafficRecord


def estimate(
    work: list[tuple[TrafficRecord, int, int]],
    m: Models,
    settings: Settings,
    n_checks: int,
    cache: CallCache | None = None,
) -> float:
    """A rough upper-leaning estimate of what the evaluation will spend, printed before any call.

    A prompt whose candidate answer is already in the folder's call cache (an earlier run bought it) is
    counted as free: its judge calls were bought with it, so following INCONCLUSIVE's advice is priced
    at the new prompts only. `work` items are (record, sample, candidate index): each candidate is priced
    with its own prompt (its system prompt, its context) and params."""
    total = 0.0
    bases: set[tuple[str, int]] = set()
    for rec, k, ci in work:
        config, spec = m.candidates[ci] if m.candidates else (None, m.candidate)
        messages, params = rec.messages, dict(rec.params)
        if config is not None and config.changes_prompt:
            messages, params = candidate_messages(config, messages), candidate_params(config, params)
        if cache is not None:
            sent = client.with_output_limit(params, settings.max_tokens_default)
            if cache.get(call_key(spec.call_model, spec.api_base, messages, sent, k)) is not None:
                continue
        prompt = sum(len(json.dumps(msg.get("content", ""))) for msg in messages) // 4 + 8
        base_prompt = sum(len(json.dumps(msg.get("content", ""))) for msg in rec.messages) // 4 + 8
        out = rec.usage.completion_tokens if rec.usage else (len(rec.response or "") // 4 + 1 if rec.response else 300)
        cap = params.get("max_tokens") or params.get("max_completion_tokens")
        total += spec.cost(prompt, min(out, cap) if isinstance(cap, int) else out)
        if settings.baseline_source == "rerun" and (rec.id, k) not in bases:  # one baseline call for all candidates
            bases.add((rec.id, k))
            total += m.baseline.cost(base_prompt, out)
        total += sum(2 * j.cost(base_prompt + 2 * out + 250, 60) for j in m.panel(settings, rec.prompt_type))
    per_pair = total / max(1, len(work))
    return total + n_checks * per_pair * 0.8
