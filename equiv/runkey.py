"""The run key: a short hash of what defines a run (SPEC "Run directory"): same command -> same key -> resume."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from equiv.config import Settings


def run_key(settings: Settings, traffic_digest: str, template_digest: str, since: datetime | None = None) -> str:
    """A short hash of what defines the run: same command -> same key -> resume."""
    names = (settings.baseline, *settings.candidate_models, *settings.all_judges())
    models = {m: settings.model_settings(m).model_dump() for m in names if m is not None}
    window = {"since": since.isoformat()} if since is not None else {}  # absent -> keys of older runs unchanged
    # per-type instruments, judges and templates (absent -> keys of older runs unchanged)
    extra: dict[str, object] = {}
    if settings.type_settings:
        extra["types"] = {t: ts.model_dump(mode="json") for t, ts in sorted(settings.type_settings.items())}
    for key in ("judge_check_kinds", "check_margin", "judge_family"):
        if key in settings.model_fields_set:
            extra[key] = getattr(settings, key)
    cands = settings.candidate_configs()
    if len(cands) > 1 or any(c.changes_prompt or c.name != c.model for c in cands):
        # candidate configurations: their models, names, prompts and params (absent -> older keys unchanged)
        extra["candidates"] = [c.model_dump(mode="json") for c in cands]
    if settings.sequential:
        extra["sequential"] = True
    for key in ("max_usd_per_request", "calls_per_task"):
        if getattr(settings, key) is not None:
            extra[key] = getattr(settings, key)
    blob = json.dumps(
        {
            **window,
            **extra,
            "traffic": traffic_digest,
            "baseline": settings.baseline,
            "candidate": settings.candidate,
            "judge": settings.judge,
            "template": template_digest,
            "per_type": settings.per_type,
            "types": sorted(settings.types) if settings.types else None,
            "seed": settings.seed,
            "baseline_source": settings.baseline_source,
            "samples_per_prompt": settings.samples_per_prompt,
            "prompt_type_field": settings.prompt_type_field,
            **_traffic_options(settings),
            "judge_check": settings.judge_check,
            "models": models,
            # a run directory holds one verdict: another margin, alpha ... is another run (which buys
            # nothing: the folder's calls are shared), never a silent rewrite of the first one's verdict
            "analysis": {
                k: getattr(settings, k)
                for k in ("margin", "alpha", "correction", "ci", "bootstrap", "judge_calibration")
            },
            "max_tokens_default": settings.max_tokens_default,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _traffic_options(settings: Settings) -> dict[str, Any]:
    """--format, --where and redact change what is read: another run. Unset, they leave older keys alone."""
    out: dict[str, Any] = {}
    if settings.format is not None:
        out["format"] = settings.format
    if settings.where:
        out["where"] = sorted(settings.where)
    if settings.redact:
        from equiv.traffic.redact import load_redactor

        redactor = load_redactor(settings.redact)
        out["redact"] = redactor.digest if redactor is not None else None  # a scrubber's code, not only its name
    return out
