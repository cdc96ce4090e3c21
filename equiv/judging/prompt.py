"""Renders a judge template (judges/*.md) for one order. Pure; StrictUndefined so typos fail loudly."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from equiv.errors import InputError
from equiv.llm import answer

_BUNDLED = [Path(__file__).resolve().parents[1] / "_judges", Path(__file__).resolve().parents[2] / "judges"]
_TAGS = ("conversation", "answer_a", "answer_b")
# the other data a template may show (judges/classification.md, reference.md, rubric.md): render passes each
# as "" unless given, so a template can test `{% if labels %}`; their tags are delimiters of every template
EXTRA_VARIABLES = ("labels", "reference", "rubric")
_TEXT_PARTS = ("text", "input_text", "output_text")


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


def _environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=8)
def _compile(text: str) -> jinja2.Template:
    try:
        return _environment().from_string(text)
    except jinja2.TemplateSyntaxError as e:
        raise InputError(f"judge template: line {e.lineno}: {e.message}") from None


def template_variables(text: str) -> set[str]:
    """The variables a template reads (e.g. {"conversation", "answer_a", "answer_b", "reference"}), so a
    caller can check that it has what the template needs (a `reference` per pair) before using it."""
    env = _environment()
    try:
        return set(jinja2.meta.find_undeclared_variables(env.parse(text)))
    except jinja2.TemplateSyntaxError as e:
        raise InputError(f"judge template: line {e.lineno}: {e.message}") from None


# Characters a reader may take for the brackets, the slash or the gaps of a tag: a judge model is not an XML
# parser, it reads `</ANSWER_B >`, `< /answer_b>`, `＜/answer_b＞` or `</answer-b>` as the end of answer B too.
_OPENS = "<\uff1c\ufe64\u2039\u3008\u27e8\u2329"
_CLOSES = ">\uff1e\ufe65\u203a\u3009\u27e9\u232a"
_SLASHES = "/\\\\\uff0f\u2044\u2215"
_INVISIBLE = "\u00ad\u034f\u180e\u200b-\u200f\u2060-\u2064\ufeff"
_GAP = f"[\\s{_INVISIBLE}]*"
_SEPARATOR = f"[\\s{_INVISIBLE}_\\-\\.\uff3f\u2010-\u2015]*"
_TEMPLATE_TAG = re.compile(r"</\s*([A-Za-z][\w\-]*)\s*>")


def _letter(c: str) -> str:
    """A character of a tag name in any case, ASCII or fullwidth, with invisible characters after it."""
    forms = {c.lower(), c.upper()}
    forms |= {chr(ord(f) + 0xFEE0) for f in list(forms) if "!" <= f <= "~"}
    return "[" + "".join(re.escape(f) for f in sorted(forms)) + f"][{_INVISIBLE}]*"


def _name_pattern(name: str) -> str:
    words = [w for w in re.split(r"[_\-]+", name) if w]
    return _SEPARATOR.join("".join(_letter(c) for c in w) for w in words)


@lru_cache(maxsize=16)
def _guard(tags: tuple[str, ...]) -> re.Pattern[str]:
    """Anything a reader could take for an opening or closing tag of one of `tags`."""
    names = "|".join(_name_pattern(t) for t in sorted(tags, key=len, reverse=True))
    return re.compile(
        f"(?P<open>[{_OPENS}]){_GAP}(?:[{_SLASHES}]{_GAP})?(?:{names})(?![A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a])"
        f"(?:[^{_OPENS}{_CLOSES}\n]{{0,200}}?(?P<close>[{_CLOSES}]))?",
        re.IGNORECASE,
    )


@lru_cache(maxsize=8)
def delimiter_tags(template_text: str) -> tuple[str, ...]:
    """The tags a template delimits its data with (every `</name>` it closes), SPEC's three, and the tags
    of the extra data (`labels`, `reference`, `rubric`), whichever template is used."""
    found = {t.lower() for t in _TEMPLATE_TAG.findall(template_text)}
    return tuple(sorted(found | set(_TAGS) | set(EXTRA_VARIABLES)))


def neutralize(text: str, tags: tuple[str, ...] = _TAGS) -> str:
    """Data (answers, the conversation) is shown verbatim, except that nothing in it can pass for one of the
    prompt's own delimiters: in any case, spacing, bracket lookalike or separator, a delimiter-like tag has
    its brackets escaped (`</ANSWER_B >` -> `&lt;/ANSWER_B &gt;`), so the only tags the judge sees are the
    template's. (Not a per-call nonce: a judge prompt must be the same bytes every time for the call cache,
    resumes and a local server's prefix reuse, and templates keep their plain, documented tags.)"""

    def escape(m: re.Match[str]) -> str:
        body = m.group(0)[len(m.group("open")) :]
        if m.group("close"):
            body = body[: -len(m.group("close"))] + "&gt;"
        return "&lt;" + body

    return _guard(tags).sub(escape, text)


def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and part.get("type", "text") in _TEXT_PARTS and isinstance(part.get("text"), str):
        return str(part["text"])
    if isinstance(part, dict) and part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
        return str(part["refusal"])
    return None


def unseen_parts(messages: list[dict[str, Any]]) -> list[str]:
    """The kinds of content in the conversation that a text judge cannot see (image_url, input_audio, file ...)."""
    kinds: dict[str, None] = {}
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            for part in content:
                if _part_text(part) is None:
                    kinds.setdefault(str(part.get("type", "unknown")) if isinstance(part, dict) else "unknown")
    return list(kinds)


def unjudgeable(messages: list[dict[str, Any]]) -> str | None:
    """Why the judge cannot compare answers to this conversation, or None.

    The judge prompt is text only. A prompt with an image (or audio, or a file) would be judged by a judge
    that never saw what the user asked about: it would prefer whichever answer reads more plausibly, a
    verdict on nothing. Such a pair is recorded as failed with this reason (excluded from the statistics,
    counted in n_failed, named in the run notes) before any call is bought for it.
    """
    kinds = unseen_parts(messages)
    if not kinds:
        return None
    what = "image" if set(kinds) <= {"image_url", "image", "input_image"} else "non-text"
    return f"not judged: the prompt has {what} parts ({', '.join(kinds)}) and the judge sees text only"


def message_text(m: dict[str, Any]) -> str:
    """One message as the judge reads it: its text, the tool calls it made, and what it could not show."""
    content = m.get("content")
    lines: list[str] = []
    if isinstance(content, str):
        lines.append(content)
    elif isinstance(content, list):
        for part in content:
            text = _part_text(part)
            kind = part.get("type", "unknown") if isinstance(part, dict) else "unknown"
            lines.append(text if text is not None else f"[{kind} part: not shown to the judge]")
    calls = answer.tool_calls_of(m)
    if calls:
        lines.append(answer.render_tool_calls(calls))
    return "\n".join(lines)


def _role_label(m: dict[str, Any]) -> str:
    role = str(m.get("role", "user"))
    if role in ("tool", "function"):
        ref = m.get("name") or m.get("tool_call_id")
        return f"[{role} result{f' ({ref})' if ref else ''}]"
    return f"[{role}]"


def render_conversation(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(f"{_role_label(m)}\n{message_text(m)}" for m in messages)


def show_answer(text: str, tags: tuple[str, ...] = _TAGS) -> str:
    """An answer as the judge reads it: verbatim, delimiters neutralized; an empty answer says it is empty
    (a blank between the tags could pass for a rendering fault, and the judge must know the user got nothing)."""
    return neutralize(text, tags) if text.strip() else answer.EMPTY


def render(
    template_text: str, messages: list[dict[str, Any]], answer_a: str, answer_b: str, **extra: str
) -> list[dict[str, str]]:
    """The judge's chat messages: the whole rendered template as one user message.

    `extra` is further data for the template (`labels`, `reference`, `rubric`, or any other name): each is
    neutralized like the answers and passed as is; `labels`, `reference` and `rubric` are "" unless given
    (a template can test `{% if labels %}`). Any other variable a template uses and nobody gave fails.
    """
    reserved = set(extra) & {"conversation", "answer_a", "answer_b"}
    if reserved:
        raise ValueError(f"render: {', '.join(sorted(reserved))} is not extra data")
    tags = delimiter_tags(template_text)
    data = {name: "" for name in EXTRA_VARIABLES}
    for name, value in extra.items():
        if not isinstance(value, str):
            raise TypeError(f"render: {name} must be text, got {type(value).__name__}")
        data[name] = neutralize(value, tags)
    try:
        body = _compile(template_text).render(
            conversation=neutralize(render_conversation(messages), tags),
            answer_a=show_answer(answer_a, tags),
            answer_b=show_answer(answer_b, tags),
            **data,
        )
    except jinja2.UndefinedError as e:
        raise InputError(f"judge template uses an unknown variable: {e.message}") from None
    return [{"role": "user", "content": body}]
