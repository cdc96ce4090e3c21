"""Judge reply -> "A" | "B" | "tie" | None. Only the judge's own reply is parsed; never guessed."""

from __future__ import annotations

import json
import re

from equiv.schema import Winner

_BRACKET = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_NORMAL = {"a": "A", "b": "B", "tie": "tie", "c": "tie", "draw": "tie", "equal": "tie"}


def _json_objects(text: str) -> list[dict[str, object]]:
    """Every JSON object embedded in the text (a reply may wrap it in prose or a code fence)."""
    dec = json.JSONDecoder()
    found = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def parse_reply(text: str) -> tuple[Winner | None, str]:
    """(winner, reason). None when the reply names no verdict, or names conflicting ones."""
    votes: list[str] = []
    reason = ""
    for obj in _json_objects(text):
        if "winner" in obj:
            w = _NORMAL.get(str(obj["winner"]).strip().lower())
            if w is None:
                return None, ""
            votes.append(w)
            reason = str(obj.get("reason", ""))[:2000]
    if not votes:
        votes = [{"A": "A", "B": "B", "C": "tie"}[m] for m in _BRACKET.findall(text)]
        reason = text.strip()[:2000]
    if not votes or len(set(votes)) != 1:
        return None, ""
    return votes[0], reason  # type: ignore[return-value]
