"""The judge check's sensitivity kinds: degraded copies of an answer the judge should tell from the original.

SPEC's check (truncate: the first third, cut at a word boundary) stays the blocking one; the other kinds
are graded (SPEC "Judges — contract", Sensitivity). Each `perturb` is pure and deterministic (no clock, no
process-seeded `hash`): the same answer and `seed_key` give the same copy in every run, so judge calls
are cached and resumable. A kind that does not apply to an answer returns None and no check is bought.
Every copy differs from the answer it was made from.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from equiv.instruments.agreement import normalize_label
from equiv.instruments.jsontext import parse_json
from equiv.judging.pairwise import degrade

__all__ = [
    "ANSWER_KINDS",
    "KINDS",
    "PAD_MIN_CHARS",
    "applicable_kinds",
    "json_body",
    "normalize_label",
    "passes",
    "perturb",
]

KINDS = ("truncate", "drop_sentence", "number", "label", "broken_json", "pad")
ANSWER_KINDS = ("label", "json", "text")
_APPLICABLE: dict[str, tuple[str, ...]] = {
    "label": ("truncate", "label"),
    "json": ("truncate", "broken_json", "number"),
    "text": ("truncate", "drop_sentence", "number", "pad"),
}

# --- sentences -----------------------------------------------------------------------------------------
# a sentence ends at . ! or ? followed by a space and a capital, digit or quote ("e.g. the" goes on), or at
# a line break (a bullet or a line of a list is a sentence too)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[ \t]+(?=[\"'(\[\u201c]?[A-Z0-9])|[ \t]*\n\s*")

# --- numbers -------------------------------------------------------------------------------------------
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DATE_LIKE = re.compile(
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?\b"  # 2025-10-07, 2025-10-07T08:30
    r"|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b"  # 07/10/2025, 7.10.25
    r"|\b\d{1,2}:\d{2}(?::\d{2})?\b"  # 08:30, 8:30:15
)
_ENTITY = re.compile(r"(?<![\w'\u2019-])[A-Z][a-z]{2,}(?![\w'\u2019-])")
_OPENERS = "\"'([{\u201c\u2018*_`#> \t-"
# invented proper nouns: a swapped name is as plausible as the original and names nothing real
_ENTITY_BANK = ("Harlow", "Brennick", "Aldmoor", "Tavistock", "Quenby", "Marlowe", "Corrigan", "Elsworth")

# --- padding -------------------------------------------------------------------------------------------
# fluent, on-topic-sounding sentences that say nothing: appended to an intact answer, they add length and
# no content, so a judge that rewards length prefers the padded copy
_FILLER = (
    "It is worth keeping the wider context in mind when reading the points above.",
    "Each of these considerations can matter more or less depending on the particular situation.",
    "As with most questions of this kind, the details tend to vary from one case to the next.",
    "Taking a moment to review the overall picture is often a sensible step at this stage.",
    "Many people find it helpful to think about how the different parts fit together.",
    "There are, of course, several ways of looking at a matter like this one.",
    "In practice, the right approach usually depends on the goals and constraints involved.",
    "This is a common topic, and it comes up in a wide range of everyday settings.",
    "Keeping things clear and well organised generally makes them easier to work with.",
    "It can also be useful to revisit the question later, once more is known about it.",
    "Overall, these are the kinds of points that are often raised in discussions like this.",
    "With that in mind, the summary above should give a reasonable sense of the subject.",
)
PAD_MIN_CHARS = 200

# how the `json` gate reads an answer (equiv/instruments/jsontext): one fence around the whole answer
_FENCE = re.compile(r"\s*```(?:json)?[ \t]*\n?(?P<body>.*?)\n?[ \t]*```\s*", re.IGNORECASE | re.DOTALL)


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()[:8], "big")


def _sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence of `text`."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def drop_sentence(text: str) -> str | None:
    """The text without its longest sentence (the first of the longest), or None with fewer than two."""
    spans = _sentences(text)
    if len(spans) < 2:
        return None
    i = max(range(len(spans)), key=lambda k: (spans[k][1] - spans[k][0], -k))
    if i + 1 < len(spans):  # the sentence and the gap after it go: what follows takes its place
        cut = text[: spans[i][0]] + text[spans[i + 1][0] :]
    else:  # the last one goes with the gap before it
        cut = text[: spans[i - 1][1]] + text[spans[i][1] :]
    return cut.strip()


def _bump_digit(number: str, *, down_first: bool) -> str:
    """`number` with its last digit moved by one, same width: 48040 -> 48041, 1,448.80 -> 1,448.81, 19 -> 18."""
    i = max(k for k, c in enumerate(number) if c.isdigit())
    d = int(number[i])
    if down_first:
        new = d - 1 if d > 1 else d + 1  # a day or month: 07 -> 06, 31 -> 30, 01 -> 02
    else:
        new = d + 1 if d < 9 else d - 1
    return number[:i] + str(new) + number[i + 1 :]


def _sentence_initial(text: str, at: int) -> bool:
    before = text[:at].rstrip(_OPENERS)
    return not before or before[-1] in ".!?\n"


def change_number(text: str, seed_key: str = "") -> str | None:
    """One number changed to a neighbouring value (same width), the first that is not part of a date or a
    time; a date's last number when there is no other; else one capitalised name that does not start a
    sentence swapped for another; None if neither."""
    dates = [m.span() for m in _DATE_LIKE.finditer(text)]
    numbers = list(_NUMBER.finditer(text))
    plain = [m for m in numbers if not any(a <= m.start() < b for a, b in dates)]
    if plain:
        m = plain[0]
        return text[: m.start()] + _bump_digit(m.group(0), down_first=False) + text[m.end() :]
    if dates:
        a, b = dates[0]
        last = [m for m in numbers if a <= m.start() < b][-1]
        return text[: last.start()] + _bump_digit(last.group(0), down_first=True) + text[last.end() :]
    for m in _ENTITY.finditer(text):
        if _sentence_initial(text, m.start()):
            continue
        word = m.group(0)
        bank = [w for w in _ENTITY_BANK if w != word]
        other = bank[_digest("entity", seed_key, word) % len(bank)]
        return text[: m.start()] + other + text[m.end() :]
    return None


def other_label(text: str, labels: Sequence[str] | None, seed_key: str = "") -> str | None:
    """A different label from the set, for an answer that is one of the labels; else None."""
    if not labels or len(text.strip()) > 100:
        return None
    given = normalize_label(text)
    if not given or given not in {normalize_label(label) for label in labels}:
        return None
    others: list[str] = []
    for label in labels:
        key = normalize_label(label)
        if key and key != given and key not in {normalize_label(o) for o in others}:
            others.append(label.strip())
    if not others:
        return None
    return others[_digest("label", seed_key, given) % len(others)]


def json_body(text: str) -> tuple[str, str, str] | None:
    """(before, body, after) of an answer that is a JSON object or array, bare or in one ```json fence
    (read as the `json` gate reads it: strict JSON)."""
    parsed = parse_json(text)
    if not parsed.ok or not isinstance(parsed.value, dict | list):
        return None
    m = _FENCE.fullmatch(text)
    if m:
        before, body, after = text[: m.start("body")], m.group("body"), text[m.end("body") :]
    else:
        before, body, after = "", text, ""
    return before, body, after


def _last_comma_outside_strings(body: str) -> int | None:
    last, in_string, escaped = None, False, False
    for i, c in enumerate(body):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == ",":
            last = i
    return last


def break_json(text: str) -> str | None:
    """The answer's JSON with its final closing brace or bracket and its last comma dropped (no longer
    parses); the fence, if any, kept. None for an answer that is not JSON."""
    parts = json_body(text)
    if parts is None:
        return None
    before, body, after = parts
    end = len(body.rstrip())
    broken = body[: end - 1] + body[end:]  # the final } or ]
    comma = _last_comma_outside_strings(broken)
    if comma is not None:
        broken = broken[:comma] + broken[comma + 1 :]
    out = before + broken + after
    return None if parse_json(out).ok else out  # an object or array without its closer never parses


def pad(text: str, seed_key: str = "") -> str:
    """The intact answer, a blank line, then content-free filler about as long as the answer (>= 200 chars)."""
    target = max(PAD_MIN_CHARS, len(text.strip()))
    start = _digest("pad", seed_key, text) % len(_FILLER)
    chosen: list[str] = []
    while sum(len(s) + 1 for s in chosen) < target:
        chosen.append(_FILLER[(start + len(chosen)) % len(_FILLER)])
    return text.rstrip() + "\n\n" + " ".join(chosen)


def perturb(kind: str, text: str, *, labels: Sequence[str] | None = None, seed_key: str = "") -> str | None:
    """A degraded copy of `text` of this kind, or None when the kind does not apply to this answer.

    truncate: SPEC's first third at a word boundary; drop_sentence: without its longest sentence;
    number: one number (or name) changed; label: another label of `labels`; broken_json: the JSON made
    unparseable; pad: the answer plus filler (the copy that should not win). `seed_key` (e.g. the pair's
    id) picks the label and the filler; the result is the same for the same inputs in every process.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown judge check kind {kind!r} (known: {', '.join(KINDS)})")
    if not text.strip():
        return None
    out: str | None
    if kind == "truncate":
        out = degrade(text)
    elif kind == "drop_sentence":
        out = drop_sentence(text)
    elif kind == "number":
        out = change_number(text, seed_key)
    elif kind == "label":
        out = other_label(text, labels, seed_key)
    elif kind == "broken_json":
        out = break_json(text)
    else:
        out = pad(text, seed_key)
    return None if out is None or out == text else out


def applicable_kinds(answer_kind: str) -> tuple[str, ...]:
    """The kinds that fit a prompt-type whose answers are labels, JSON or free text."""
    try:
        return _APPLICABLE[answer_kind]
    except KeyError:
        raise ValueError(f"unknown answer kind {answer_kind!r} (known: {', '.join(ANSWER_KINDS)})") from None


def passes(kind: str, intact_first_winner: str, degraded_first_winner: str) -> bool:
    """Whether one check (both orders read) passed. `intact_first_winner` is the verdict with the intact
    answer shown as A, `degraded_first_winner` with the degraded copy shown as A.

    Every kind but pad: the intact answer is preferred in both orders. pad: the padded copy is not
    preferred in either order (a tie is fine: the filler adds nothing, but takes nothing away either).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown judge check kind {kind!r} (known: {', '.join(KINDS)})")
    if kind == "pad":
        return intact_first_winner != "B" and degraded_first_winner != "A"
    return intact_first_winner == "A" and degraded_first_winner == "B"
