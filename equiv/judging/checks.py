"""The judge check (SPEC "Judge check"; "Judges": Sensitivity): which pairs are checked, with which kinds.

Each check compares, in both orders, the baseline's answer with a perturbed copy of itself. Truncation
(SPEC's first third) is the blocking kind; the graded kinds are chosen to fit the type's answers
(a wrong label for labels, broken JSON and a changed number for JSON, a dropped sentence, a changed
number and padding for text) unless `judge_check_kinds` names them.
"""

from __future__ import annotations

import math

from equiv.analyze import pair_cluster
from equiv.config import Settings
from equiv.instruments.spec import FieldsCheck, JsonCheck, JsonSchemaCheck, LabelCheck
from equiv.judging.perturb import applicable_kinds
from equiv.sampling import cluster_rank
from equiv.schema import Pair


def answer_kind(settings: Settings, prompt_type: str) -> str:
    """What a type's answers are, as its checks say: "label", "json" or "text"."""
    checks = settings.checks_for(prompt_type)
    if any(isinstance(c, LabelCheck) for c in checks):
        return "label"
    if any(isinstance(c, JsonCheck | JsonSchemaCheck | FieldsCheck) for c in checks):
        return "json"
    return "text"


def kinds_for(settings: Settings, prompt_type: str) -> tuple[str, ...]:
    """The judge-check kinds of a type: its (or the top-level) judge_check_kinds, else those that fit a
    type with declared checks; truncation always first (it is SPEC's blocking check)."""
    chosen = settings.for_type(prompt_type).judge_check_kinds
    if chosen is not None:
        kinds: list[str] = list(chosen)
    elif settings.checks_for(prompt_type):  # a type that declares its instruments gets the kinds that fit it
        kinds = list(applicable_kinds(answer_kind(settings, prompt_type)))
    else:  # SPEC's truncation alone, as before per-type settings (set judge_check_kinds for more)
        kinds = []
    return tuple(dict.fromkeys(["truncate", *kinds]))


def check_sample(pairs: list[Pair], settings: Settings) -> list[Pair]:
    """Per prompt-type: 10% of its prompts (at least 10, all if fewer), chosen reproducibly and nested.

    The prompts with the smallest seeded cluster hash (the order sampling uses), so a larger per_type
    checks a superset of a smaller one's checks and buys only the new ones. One pair per prompt: with
    --samples-per-prompt k the k pairs of a prompt share the logged baseline answer, so checking two of
    them would judge the same comparison twice and count it twice.
    """
    by_type: dict[str, dict[str, Pair]] = {}
    for p in sorted(pairs, key=lambda p: p.pair_id):
        if p.error is None and p.baseline is not None and (p.baseline.output or "").strip():
            by_type.setdefault(p.prompt_type, {}).setdefault(pair_cluster(p), p)
    chosen: list[Pair] = []
    for t in sorted(by_type):
        ranked = sorted(by_type[t].items(), key=lambda kv: (cluster_rank(settings.seed, t, kv[0]), kv[0]))
        n = max(settings.judge_check_min, math.ceil(settings.judge_check_fraction * len(ranked)))
        chosen += sorted((p for _, p in ranked[:n]), key=lambda p: p.pair_id)
    return chosen
