"""generate: the two answers of a sampled prompt (the baseline as logged or re-run, the candidate run now)."""

from __future__ import annotations

from typing import Any

from equiv.candidates import candidate_messages, candidate_params
from equiv.config import CandidateConfig, Settings
from equiv.llm import answer, client
from equiv.llm.client import ModelSpec
from equiv.llm.runner import Runner
from equiv.llm.together import together
from equiv.sampling import Sample
from equiv.schema import Side, TrafficRecord


def pair_id(record: TrafficRecord, k: int, samples: int, candidate: str | None = None) -> str:
    """A pair's id: the record's (and its sample's); a second or later candidate's pairs add `@name`."""
    base = record.id if samples == 1 else f"{record.id}#s{k}"
    return base if candidate is None else f"{base}@{candidate}"


def cluster_of(sample: Sample, record: TrafficRecord) -> str:
    """The record's cluster (SPEC "Clusters"): the sampling's, computed from messages and params."""
    return sample.cluster.get(record.id) or record.id


def weight_of(sample: Sample, record: TrafficRecord, samples: int) -> float:
    """The records of traffic a pair stands for: its cluster's count, shared by the prompt's samples."""
    return sample.weight.get(record.id, 1) / samples


def logged_side(rec: TrafficRecord, spec: ModelSpec) -> Side:
    """The baseline as logged, priced as the --baseline model from logged usage or counted tokens."""
    if rec.usage is not None:
        pt, ct = rec.usage.prompt_tokens, rec.usage.completion_tokens
    else:
        pt = client.count_tokens(spec, messages=rec.messages)
        ct = client.count_tokens(spec, text=rec.response or "")
    return Side(
        model=spec.name,
        source="logged",
        output=rec.response or "",
        prompt_tokens=pt,
        completion_tokens=ct,
        cost_usd=spec.cost(pt, ct),
    )


def run_side(comp: Any) -> Side:
    return Side(
        model=comp.model,
        source="run",
        output=comp.output,
        prompt_tokens=comp.prompt_tokens,
        completion_tokens=comp.completion_tokens,
        cost_usd=comp.cost_usd,
    )


async def generate(
    rec: TrafficRecord,
    k: int,
    settings: Settings,
    baseline: ModelSpec,
    candidate: ModelSpec,
    runner: Runner,
    config: CandidateConfig | None = None,
) -> tuple[Side, Side]:
    """(baseline, candidate) sides of sample k of a record; raises CallError when a call fails.

    `config`: the candidate's configuration (its system prompt, params, context), applied to its call only;
    its cost is that call's own tokens, so a longer system prompt costs what it costs."""
    params = dict(rec.params)
    c_messages, c_params = rec.messages, params
    if config is not None and config.changes_prompt:
        c_messages, c_params = candidate_messages(config, rec.messages), candidate_params(config, params)
    if settings.baseline_source == "logged":
        base = logged_side(rec, baseline)
        cand = await runner.call(candidate, c_messages, c_params, sample=k, redact=True)
    else:
        b, cand = await together(
            runner.call(baseline, rec.messages, params, sample=k, redact=True),
            runner.call(candidate, c_messages, c_params, sample=k, redact=True),
        )
        base = run_side(b).model_copy(update=answer.side_extras(b))
    return base, run_side(cand).model_copy(update=answer.side_extras(cand))  # tool calls, filter
