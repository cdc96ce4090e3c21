"""Agreement checks: compare the two answers of a pair (SPEC "Per-type instruments").

A pair that agrees under every agreement check of its type scores 0 with no judge call. `label` is
promptfoo's ``equals`` / inspect_ai's ``match`` made tolerant of how models dress a label; `exact` is
``equals`` on stripped text; `fields` compares JSON objects field by field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from equiv.instruments.jsontext import parse_json
from equiv.instruments.spec import ExactCheck, FieldsCheck, LabelCheck

AgreementCheck = LabelCheck | ExactCheck | FieldsCheck

_WRAPPERS = "\"'`*“”‘’"  # quotes, backticks, markdown emphasis
_TRAILING = ".,;:!?"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class AgreementResult:
    agree: bool
    fields: Mapping[str, bool] | None = None  # `fields` only
    why: str | None = None  # `fields`: which side is not a JSON object, when one is not


def normalize_label(text: str) -> str:
    """Strip, case-fold, drop trailing punctuation (``.,;:!?``) and surrounding quotes, backticks and
    asterisks (markdown bold), repeatedly, then collapse internal whitespace to one space."""
    out = _SPACE.sub(" ", text.casefold())
    while True:
        prev = out
        out = out.strip().rstrip(_TRAILING).strip()
        if len(out) >= 2 and out[0] in _WRAPPERS and out[-1] in _WRAPPERS:
            out = out.strip(_WRAPPERS)
        if out == prev:
            return out


def labels_agree(a: str, b: str) -> bool:
    """Equal after `normalize_label`. A declared label set is not used here: no mapping of synonyms."""
    return normalize_label(a) == normalize_label(b)


def exact_agree(a: str, b: str) -> bool:
    """Equal after stripping surrounding whitespace (promptfoo's ``equals`` on trimmed text)."""
    return a.strip() == b.strip()


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _numbers_close(a: float, b: float, tolerance: float) -> bool:
    if a == b:
        return True
    if tolerance == 0:
        return False
    try:
        return math.fabs(a - b) <= tolerance * max(math.fabs(a), math.fabs(b))
    except OverflowError:  # integers beyond float range: equal only if equal
        return False


def values_agree(a: Any, b: Any, tolerance: float = 0.0) -> bool:
    """Two JSON values agree: numbers (not booleans) within `tolerance` relative to the larger magnitude
    (``|a - b| <= tolerance * max(|a|, |b|)``; 0: equal, ``1 == 1.0``); booleans, null and strings equal
    (strings after stripping surrounding whitespace, case kept: it can matter in IDs); objects with the
    same keys and lists of the same length agree element by element, by the same rules. ``true != 1``."""
    if _is_number(a) and _is_number(b):
        return _numbers_close(a, b, tolerance)
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_agree(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_agree(x, y, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) and isinstance(b, bool):
        return a is b
    return a is None and b is None


def fields_agree(check: FieldsCheck, a_text: str, b_text: str) -> AgreementResult:
    """Both answers parse (a code fence accepted) to JSON objects, and every compared field agrees by
    `values_agree`. Compared: ``check.fields`` when given (a listed field missing on both sides agrees),
    else every top-level field either side has. A field missing on one side disagrees.

    When a side is not a JSON object the pair disagrees: `fields` then maps the listed fields, or every
    field of the side that is an object, to False (``{}`` when neither is)."""
    a, b = parse_json(a_text), parse_json(b_text)
    a_obj = a.value if a.ok and isinstance(a.value, dict) else None
    b_obj = b.value if b.ok and isinstance(b.value, dict) else None
    if a_obj is None or b_obj is None:
        names = check.fields if check.fields is not None else list(a_obj or b_obj or {})
        sides = [s for s, obj in (("baseline", a_obj), ("candidate", b_obj)) if obj is None]
        why = f"{sides[0]} is not a JSON object" if len(sides) == 1 else "baseline and candidate are not JSON objects"
        return AgreementResult(False, dict.fromkeys(names, False), why)
    names = check.fields if check.fields is not None else list(dict.fromkeys([*a_obj, *b_obj]))
    per_field: dict[str, bool] = {}
    for name in names:
        if name not in a_obj or name not in b_obj:
            per_field[name] = name not in a_obj and name not in b_obj
            continue
        try:
            per_field[name] = values_agree(a_obj[name], b_obj[name], check.tolerance)
        except RecursionError:
            per_field[name] = False
    return AgreementResult(all(per_field.values()), per_field)


def run_agreement(check: AgreementCheck, a_text: str, b_text: str) -> AgreementResult:
    """One agreement check on a pair's two answer texts (a: baseline, b: candidate)."""
    if isinstance(check, LabelCheck):
        return AgreementResult(labels_agree(a_text, b_text))
    if isinstance(check, ExactCheck):
        return AgreementResult(exact_agree(a_text, b_text))
    return fields_agree(check, a_text, b_text)
