"""Renders a judge template (judges/*.md) for one order. Pure; StrictUndefined so typos fail loudly."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from equiv.errors import InputError
from equiv.llm.fake import content_text

_BUNDLED = [Path(__file__).resolve().parents[1] / "_judges", Path(__file__).resolve().parents[2] / "judges"]
_TAGS = ("conversation", "answer_a", "answer_b")


def find_template(raw: str, base_dir: str | None = None) -> Path:
    """A template path as given, relative to the config's folder, or bundled (judges/<name>)."""
    p = Path(raw)
    tries = [p]
    if base_dir and not p.is_absolute():
        tries.append(Path(base_dir) / p)
    tries += [d / p.name for d in _BUNDLED]
    for t in tries:
        if t.is_file():
            return t
    raise InputError(f"judge_template '{raw}': file not found (looked in {', '.join(str(t) for t in tries)})")


def template_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=8)
def _compile(text: str) -> jinja2.Template:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    try:
        return env.from_string(text)
    except jinja2.TemplateSyntaxError as e:
        raise InputError(f"judge template: line {e.lineno}: {e.message}") from None


def _neutralize(text: str) -> str:
    """Answers are shown verbatim, except that they cannot close or open the prompt's own delimiters."""
    for tag in _TAGS:
        text = text.replace(f"</{tag}>", f"</ {tag}>").replace(f"<{tag}>", f"< {tag}>")
    return text


def render_conversation(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(f"[{m.get('role', 'user')}]\n{content_text(m)}" for m in messages)


def render(template_text: str, messages: list[dict[str, Any]], answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The judge's chat messages: the whole rendered template as one user message."""
    try:
        body = _compile(template_text).render(
            conversation=_neutralize(render_conversation(messages)),
            answer_a=_neutralize(answer_a),
            answer_b=_neutralize(answer_b),
        )
    except jinja2.UndefinedError as e:
        raise InputError(f"judge template uses an unknown variable: {e.message}") from None
    return [{"role": "user", "content": body}]
