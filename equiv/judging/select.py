"""Which judge template each prompt-type uses (SPEC "Judges", issue: judges that fit the type).

Per type, first match wins:
1. its own ``judge_template`` ([types."name"]);
2. ``rubric`` set -> judges/rubric.md (the criteria shown to the judge);
3. a ``label`` check -> judges/classification.md (the label set shown when known);
4. the top-level ``judge_template``.
And where a pair carries a ``reference`` answer and the type has no template of its own, the
reference-guided judges/reference.md (FastChat's reference-guided pairwise judge) judges that pair.
Automatic choices (2-4, reference) apply only while the top-level template is the default one: a
template the user chose is never replaced behind their back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from equiv.config import Settings
from equiv.errors import InputError
from equiv.instruments.spec import LabelCheck
from equiv.judging.prompt import find_template, template_hash, template_variables

DEFAULT = "judges/pairwise.md"
CLASSIFICATION = "judges/classification.md"
REFERENCE = "judges/reference.md"
RUBRIC = "judges/rubric.md"


@dataclass(frozen=True)
class Template:
    name: str  # file name, as run.json records it
    text: str
    hash: str


@dataclass(frozen=True)
class TypeJudging:
    """How one prompt-type is judged."""

    template: Template
    reference: Template | None  # for pairs that carry a reference answer
    labels: tuple[str, ...] | None  # the label check's own label set, when it names one
    rubric: str | None
    label_type: bool  # the type has a label check (the prompt's label set is read per pair)


def _load(raw: str, settings: Settings, cache: dict[str, Template]) -> Template:
    if raw not in cache:
        path = find_template(raw, settings.base_dir)
        cache[raw] = Template(name=path.name, text=path.read_text(encoding="utf-8"), hash=template_hash(path))
    return cache[raw]


def select(settings: Settings, prompt_types: list[str]) -> dict[str, TypeJudging]:
    """Each type's templates, loaded and hashed (InputError, exit 2, for a missing or unusable one)."""
    cache: dict[str, Template] = {}
    auto = "judge_template" not in settings.model_fields_set or settings.judge_template == DEFAULT
    out = {}
    for t in prompt_types:
        ts = settings.type_settings.get(t)
        label = next((c for c in settings.checks_for(t) if isinstance(c, LabelCheck)), None)
        rubric = ts.rubric if ts is not None else None
        own = ts.judge_template if ts is not None else None
        if own is not None:
            raw = own
        elif rubric is not None and auto:
            raw = RUBRIC
        elif label is not None and auto:
            raw = CLASSIFICATION
        else:
            raw = settings.judge_template
        tpl = _load(raw, settings, cache)
        if "rubric" in template_variables(tpl.text) and not rubric:
            raise InputError(
                f'prompt-type {t}: the judge template {tpl.name} shows a rubric: set [types."{t}"] rubric = "..."'
            )
        ref = _load(REFERENCE, settings, cache) if own is None and auto and raw == DEFAULT else None
        out[t] = TypeJudging(
            template=tpl,
            reference=ref,
            labels=tuple(label.labels) if label is not None and label.labels else None,
            rubric=rubric,
            label_type=label is not None,
        )
    return out


def templates_used(judging: dict[str, TypeJudging], with_reference: set[str]) -> dict[str, str]:
    """{file name: hash} of every template the run uses (run.json's template_hashes)."""
    used: dict[str, str] = {}
    for t, j in judging.items():
        used[j.template.name] = j.template.hash
        if j.reference is not None and t in with_reference:
            used[j.reference.name] = j.reference.hash
    return used


def digest(judging: dict[str, TypeJudging], with_reference: set[str]) -> str:
    """The templates part of the run key: one template for every type -> its hash (older keys unchanged)."""
    per_type = {
        t: [j.template.hash, j.reference.hash if j.reference is not None and t in with_reference else None]
        for t, j in judging.items()
    }
    hashes = {h for pair in per_type.values() for h in pair if h is not None}
    if len(hashes) == 1:
        return hashes.pop()
    return hashlib.sha256(json.dumps(per_type, sort_keys=True).encode()).hexdigest()[:16]
