"""The label set a classification prompt lists ("one label from: billing, login, bug"), for the judge.

Read from the prompt's own words: the system message first, then the user messages, the first list that
is convincing wins. A list is convincing when it follows a cue ("labels", "categories", "one of" ...) and
has at least two distinct items of at most 40 characters that look like labels (words, not sentences or
JSON). Without a colon or brackets after the cue the bar is higher (short items, joined by "or" or at
least three of them), since "one of the best ..." is prose, not a label set. Nothing convincing -> None:
the caller then judges without a label set rather than with an invented one.
"""

from __future__ import annotations

import re
from typing import Any

MAX_LABEL_CHARS = 40

_CUE = re.compile(
    r"\b(?:one\s+of|either|labels?|categor(?:y|ies)|classes|class|options|choices|tags|intents?|allowed\s+values)\b"
    r"(?:\s+(?:the|these|those|following|below|allowed|possible|valid|available|given|listed))*"
    r"(?:\s+(?:labels?|categories|classes|options|choices|tags|intents|values))?"
    r"(?:\s+(?:from|among|in|is|are))?"
    r"(?:\s+(?:the|these|those|following|below))*"
    r"(?P<colon>\s*[:\uff1a]|\s+[-\u2013\u2014](?=\s))?[ \t]*",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^[ \t]*(?:[-*\u2022\u2023\u25e6]|\d{1,2}[.)]|[a-z][.)])[ \t]+(?P<item>\S.*)$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_SEPARATOR = re.compile(r"\s*(?:,|\||;|\s/\s|\s+or\s+)\s*", re.IGNORECASE)
_DESCRIPTION = re.compile(r"\s*(?::|\s[-\u2013\u2014]\s|\s\().*$")
_LABEL = re.compile(r"^\w[\w \-&'./+#]*$")
# quotes and markdown emphasis around a label ("billing", `bug`, **login**, __shipping__): stripped only
# in pairs, so a label's own underscores ("feature_", "_private") stay
_PAIRS = {'"': '"', "'": "'", "`": "`", "*": "*", "_": "_", "\u201c": "\u201d", "\u2018": "\u2019"}
_CLOSING = {"[": "]", "(": ")"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else p.get("text") for p in content if isinstance(p, str | dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _unwrap(item: str) -> str:
    item = item.strip()
    while len(item) >= 2 and _PAIRS.get(item[0]) == item[-1]:
        item = item[1:-1].strip()
    return item


def _clean(item: str) -> str:
    item = re.sub(r"^(?:or|and)\s+", "", _unwrap(item), flags=re.IGNORECASE)
    return _unwrap(_unwrap(item).rstrip(".,;:!?"))


def _accept(items: list[str], strict: bool, joined_by_or: bool) -> list[str] | None:
    labels: list[str] = []
    seen: set[str] = set()
    for raw in items:
        item = _clean(raw)
        if not item:
            continue
        if len(item) > MAX_LABEL_CHARS or not _LABEL.match(item):
            return None
        if strict and len(item.split()) > 2:
            return None
        if item.casefold() not in seen:
            seen.add(item.casefold())
            labels.append(item)
    if len(labels) < 2 or (strict and len(labels) < 3 and not joined_by_or):
        return None
    return labels


def _bullets(text: str, start: int) -> list[str]:
    """The bulleted or numbered lines right after `start` (the end of the cue's line)."""
    items: list[str] = []
    for line in text[start:].split("\n")[1:]:
        if not line.strip():
            if items:
                break
            continue
        m = _BULLET.match(line)
        if not m:
            break
        items.append(_DESCRIPTION.sub("", _unwrap(m.group("item"))))
    return items


def _inline(rest: str) -> tuple[list[str], bool, bool] | None:
    """(items, bracketed, joined by "or") of the list that starts `rest`, up to the sentence's end."""
    bracketed = rest[:1] in _CLOSING
    if bracketed:
        end = rest.find(_CLOSING[rest[0]], 1)
        if end == -1:
            return None
        body = rest[1:end]
    else:
        m = _SENTENCE_END.search(rest)
        body = rest[: m.start()] if m else rest
    if not body.strip():
        return None
    return _SEPARATOR.split(body), bracketed, re.search(r"\sor\s", body, re.IGNORECASE) is not None


def _from_text(text: str) -> list[str] | None:
    for cue in _CUE.finditer(text):
        rest = text[cue.end() :]
        line_rest = rest.split("\n", 1)[0]
        colon = cue.group("colon") is not None
        if colon and not line_rest.strip():
            found = _accept(_bullets(text, cue.end()), strict=False, joined_by_or=False)
            if found:
                return found
            continue
        inline = _inline(rest)
        if inline is None:
            continue
        items, bracketed, joined_by_or = inline
        found = _accept(items, strict=not (colon or bracketed), joined_by_or=joined_by_or)
        if found:
            return found
    return None


def labels_from_prompt(messages: list[dict[str, Any]]) -> list[str] | None:
    """The allowed labels a classification prompt lists, in its order and spelling, or None."""
    dicts = [m for m in messages if isinstance(m, dict)]
    ordered = [m for m in dicts if m.get("role") in ("system", "developer")]
    ordered += [m for m in dicts if m.get("role", "user") == "user"]
    for m in ordered:
        found = _from_text(_text(m.get("content")))
        if found:
            return found
    return None
