"""The evaluation's cost, estimated before any call is made (SPEC "No surprise spend")."""

from __future__ import annotations

import json

from equiv.config import Settings
from equiv.llm import client
from equiv.llm.cache import CallCache, call_key
from equiv.models import Models
from equiv.schema import TrafficRecord


def estimate(
    work: list[tuple[TrafficRecord, int]], m: Models, settings: Settings, n_checks: int, cache: CallCache | None = None
) -> float:
    """A rough upper-leaning estimate of what the evaluation will spend, printed before any call.

    A prompt whose candidate answer is already in the folder's call cache (an earlier run bought it) is
    counted as free: its judge calls were bought with it, so following INCONCLUSIVE's advice is priced
    at the new prompts only."""
    total = 0.0
    for rec, k in work:
        if cache is not None:
            sent = client.with_output_limit(dict(rec.params), settings.max_tokens_default)
            if cache.get(call_key(m.candidate.call_model, m.candidate.api_base, rec.messages, sent, k)) is not None:
                continue
        prompt = sum(len(json.dumps(msg.get("content", ""))) for msg in rec.messages) // 4 + 8
        out = rec.usage.completion_tokens if rec.usage else (len(rec.response or "") // 4 + 1 if rec.response else 300)
        total += m.candidate.cost(prompt, out)
        if settings.baseline_source == "rerun":
            total += m.baseline.cost(prompt, out)
        total += sum(2 * j.cost(prompt + 2 * out + 250, 60) for j in m.panel(settings, rec.prompt_type))
    per_pair = total / max(1, len(work))
    return total + n_checks * per_pair * 0.8
