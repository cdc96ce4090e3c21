"""What a user must know beside the numbers: failures by reason, skipped records, model and judge cautions."""

from __future__ import annotations

import re
from collections import Counter

from equiv.config import Settings
from equiv.llm import answer
from equiv.local import is_local
from equiv.sampling import Sample
from equiv.schema import Pair
from equiv.traffic import ReadStats


def run_notes(pairs: list[Pair], sample: Sample, read_stats: ReadStats, settings: Settings) -> list[str]:
    """What the user must know beside the numbers: failures by reason, skipped records, model mismatches."""
    notes = []
    errors = Counter(p.error.split(":")[0] + ": " + p.error.split(":", 1)[-1].strip()[:120] for p in pairs if p.error)
    for reason, n in errors.most_common(5):
        notes.append(f"{n} pair(s) failed: {reason}")
    for reason, n in sample.skipped.items():
        notes.append(f"{n} record(s) skipped: {reason}")
    notes.extend(sample.notes())
    for finish, what in (
        (
            answer.CONTENT_FILTER,
            "were blocked or cut by the provider's content filter (judged as what the user would get)",
        ),
        (
            answer.LENGTH,
            "stopped at their output limit (max_tokens from the traffic, else "
            f"max_tokens_default = {settings.max_tokens_default}, which equiv sends so that the spend "
            "cap holds): they are judged as cut",
        ),
    ):
        for role in ("candidate", "baseline"):
            n = sum(
                1
                for p in pairs
                if (side := getattr(p, role)) is not None and (side.model_extra or {}).get("finish_reason") == finish
            )
            if n:
                notes.append(f"{n} {role} answer(s) {what}")
    if read_stats.invalid:
        notes.append(f"{read_stats.invalid} invalid traffic record(s) skipped (--skip-invalid)")
    if not_traffic := read_stats.by_category("not traffic"):
        parts = ", ".join(f"{reason}: {n}" for reason, n in not_traffic.items())
        notes.append(f"{sum(not_traffic.values())} traffic row(s) skipped as not successful chat completions ({parts})")
    if settings.redact:
        rule = settings.redact if isinstance(settings.redact, str) else f"{len(settings.redact)} pattern(s)"
        notes.append(
            f"redaction ran ({rule}): prompts, logged answers and model answers were redacted before any call, "
            "judge or write; run.json sample.redaction counts what it changed"
        )
    notes.extend(model_notes(settings))
    if settings.baseline_source == "logged":
        logged = Counter(r.model for recs in sample.records.values() for r in recs if r.model)
        other = [mdl for mdl in logged if mdl != settings.baseline]
        if other:
            notes.append(
                f"logged responses come from {', '.join(sorted(other))}; they are priced as the baseline "
                f"{settings.baseline}"
            )
    return notes


_SIZE_OR_VERSION = re.compile(r"^(v?\d[\w.]*|\d+(\.\d+)?[bmk]|latest|preview|instruct|chat|it|gguf|q\d.*|f16|bf16)$")


def model_family(name: str) -> str:
    """A model's family for the self-preference warning: 'gpt-4o-mini' -> 'gpt', 'local/qwen2.5-coder-1.5b' -> 'qwen'.

    The leading letters of the last path segment (provider prefixes such as openai/ or local/ dropped);
    crude on purpose: a false "same family" costs a line of caution, a missed one a biased verdict.
    """
    last = name.lower().rstrip("/").rsplit("/", 1)[-1]
    m = re.match(r"[a-z]+", last)
    return m.group(0) if m else last


def model_notes(settings: Settings) -> list[str]:
    """Judge self-preference risk and free local models: facts the numbers alone do not show."""
    notes = []
    base, cands = settings.baseline, settings.candidate_models
    for judge in settings.all_judges():
        for role, other in (("baseline", base), *(("candidate", c) for c in cands)):
            if not other:
                continue
            if other == judge:
                notes.append(
                    f"the judge {judge} is the {role} model itself: it may prefer its own answers; "
                    f'use a judge from another model family (judge_family = "strict" refuses this)'
                )
            elif model_family(other) == model_family(judge):
                notes.append(
                    f"the judge {judge} shares the {role}'s model family ({model_family(judge)}) with {other}: "
                    f"it may prefer that family's answers; use a judge from another family"
                )
    for name in dict.fromkeys(n for n in (base, *cands, *settings.all_judges()) if n and is_local(n)):
        ms = settings.model_settings(name)
        if ms.input_cost_per_mtok is None or ms.output_cost_per_mtok is None:
            notes.append(
                f"{name} runs on this machine and is priced at $0 (no price in the config): set "
                f'[models."{name}"] input_cost_per_mtok / output_cost_per_mtok to count its hardware'
            )
    return notes
