"""A simulated world for tests and the no-key demo: deterministic models selected by name.

Both transports use it: the in-package litellm provider (``fake/<name>``, see client.py) and the
loopback OpenAI-compatible server of the integration tests (equiv.testing.loopback).

Generators (``fake/skill-NN[-vK][-ctxC][-verbose]``): the "facts" of a prompt are the distinct content words
of its last user message; a model of skill NN mentions each fact with probability NN% and otherwise
writes a vague word in its place (decided by a hash of model, prompt and fact, so it is reproducible).
``-memo`` (last) memorizes: perfect on a prompt its system prompt quotes verbatim, at half its skill
otherwise (what a search that copies training prompts into the prompt would exploit).
``-instr`` (last) is only as good as its instructions: at its skill when a system message
asks for "every detail", at half of it otherwise. ``-vK`` is another model of the same skill
(different draws); ``-ctxC`` loses track in long prompts (facts after the C-th are recalled with
half the skill); ``-verbose`` pads about half of its answers with filler (a model that is verbose
on some prompts, so length and quality can be told apart).
Behaviour suffixes change the shape of the reply, not its text (see ``shape``): ``-tools`` answers with
a call to the first offered tool (arguments ``{"answer": <its text>}``) whenever the request offers
tools; on about half of the prompts ``-filtered`` is blocked by the content filter (no content,
finish_reason "content_filter"), ``-filtercut`` is cut by it after half of its words, and ``-empty``
returns an empty text (finish_reason "stop").
Judges read the conversation and the two answers out of the rendered judge prompt and prefer the
answer that mentions more facts (equiv's own notices in an answer are not facts). They read the
delimiters as leniently as a language model does (any case, spaces inside the brackets), so an answer
that can fake a delimiter in the prompt fools them as it would fool a real judge:
  fake/judge            coverage only (ties when equal)
  fake/judge-verbose    prefers the longer answer when lengths differ by > 20%, else coverage
  fake/judge-always-a   always "A"  (position-only judge)
  fake/judge-tie        always "tie"
  fake/judge-brackets   answers "[[A]]"/"[[B]]"/"[[C]]" instead of JSON
Nothing here is a real language model; the demo says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from equiv.llm.answer import CONTENT_FILTER, strip_markers

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_STOP = frozenset(
    "this that with from have what when where which your about into will would there their they them "
    "then than these those been were also could should please just like some more most very only".split()
)
VAGUE = ("something", "various", "details", "matters", "whatever", "elements", "aspects")
FILLER = (
    "Let me know if there is anything else I can help with. I hope this detailed explanation is "
    "useful and covers every angle you might be wondering about. "
)


def _u(*parts: str) -> float:
    """A reproducible uniform number in [0, 1) from strings."""
    h = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def content_text(message: dict[str, Any]) -> str:
    c = message.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return " ".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
    return ""


def facts(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for w in _WORD.findall(text.lower()):
        if w not in _STOP:
            seen.setdefault(w, None)
    return list(seen)


def count_tokens(text: str) -> int:
    """The simulated tokenizer: about four characters a token."""
    return len(text) // 4 + 1


def _last_user(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return content_text(m)
    return content_text(messages[-1]) if messages else ""


def generate(model: str, messages: list[dict[str, Any]], sample: int = 0) -> str:
    """Answer of a simulated generator ``fake/skill-NN[-vK][-verbose]``."""
    name = model.split("/", 1)[-1]
    m = _GENERATOR.fullmatch(name)
    if not m:
        raise ValueError(f"unknown fake generator {model!r}: use fake/skill-NN[-vK][-ctxC][-verbose]")
    skill = int(m.group(1)) / 100
    if m.group("instr") and not _instructed(messages):
        skill /= 2  # only as good as its instructions
    if m.group("memo"):  # a model that has seen this very prompt in its instructions answers it perfectly
        skill = 1.0 if _memorized(messages) else skill / 2
    stem = _stem(m)
    prompt = _last_user(messages)
    # a missed fact becomes a vague word, so an answer's length says little about its quality
    ctx = int(m.group(3)[4:]) if m.group(3) else None
    words = [
        f
        if _u(stem, prompt, f, str(sample)) < (skill if ctx is None or i < ctx else skill / 2)
        else VAGUE[int(_u(stem, f) * len(VAGUE))]
        for i, f in enumerate(facts(prompt))
    ]
    answer = "Answer: " + (", ".join(words) if words else "I am not sure.") + "."
    if m.group(4) and _u(stem, prompt, "pad", str(sample)) < 0.5:
        answer += " " + FILLER * 3
    return answer


_GENERATOR = re.compile(
    r"skill-(\d{1,3})(-v\d+)?(-ctx\d+)?(-verbose)?((?:-tools|-filtered|-filtercut|-empty)*)(?P<instr>-instr)?(?P<memo>-memo)?"
)
# what an -instr generator needs to read in its system prompt to work at its skill
INSTRUCTION = "every detail"


def _memorized(messages: list[dict[str, Any]]) -> bool:
    last = _last_user(messages).strip()
    return bool(last) and any(m.get("role") == "system" and last in content_text(m) for m in messages)


def _instructed(messages: list[dict[str, Any]]) -> bool:
    return any(m.get("role") == "system" and INSTRUCTION in content_text(m).lower() for m in messages)


_BEHAVIOURS = ("tools", "filtered", "filtercut", "empty")


def _stem(m: re.Match[str]) -> str:
    """The generator's name without -verbose and behaviour suffixes: its draws (a -tools model writes the
    same text as the model without the suffix)."""
    return f"skill-{m.group(1)}{m.group(2) or ''}{m.group(3) or ''}"


def shape(model: str, messages: list[dict[str, Any]], text: str, tools: Any = None) -> tuple[dict[str, Any], str]:
    """(message, finish_reason) of a simulated reply whose text is `text` (see the behaviour suffixes)."""
    plain: tuple[dict[str, Any], str] = ({"role": "assistant", "content": text}, "stop")
    m = _GENERATOR.fullmatch(model.split("/", 1)[-1])
    if not m or not m.group(5):
        return plain
    flags = set(m.group(5).strip("-").split("-"))
    if "tools" in flags and isinstance(tools, list) and tools:
        fn = tools[0].get("function", {}) if isinstance(tools[0], dict) else {}
        name = str(fn.get("name") or "tool")
        call_id = "call_" + hashlib.sha256(f"{model}|{text}".encode()).hexdigest()[:12]
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": json.dumps({"answer": text})},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    if not flags & {"filtered", "filtercut", "empty"} or not hit(model, messages):
        return plain
    if "filtered" in flags:
        return {"role": "assistant", "content": None}, CONTENT_FILTER
    if "filtercut" in flags:
        words = text.split(" ")
        return {"role": "assistant", "content": " ".join(words[: len(words) // 2])}, CONTENT_FILTER
    return {"role": "assistant", "content": ""}, "stop"


def hit(model: str, messages: list[dict[str, Any]]) -> bool:
    """Whether a -filtered / -filtercut / -empty generator's behaviour strikes this prompt (about half)."""
    m = _GENERATOR.fullmatch(model.split("/", 1)[-1])
    return m is not None and _u(_stem(m), _last_user(messages), "behaviour") < 0.5


def _between(text: str, tag: str) -> str | None:
    """The text between the first `<tag>` and the next `</tag>`, in any case and with any spaces inside the
    brackets (a language model reads `</ ANSWER_B >` as the end of answer B too)."""
    m = re.search(rf"<\s*{tag}\s*>\n?(.*?)\n?<\s*/\s*{tag}\s*>", text, flags=re.S | re.I)
    return m.group(1) if m else None


def _fact_counts(prompt: str) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """Each answer of a rendered judge prompt with the number of the conversation's facts it covers."""
    conv, a, b = _between(prompt, "conversation") or "", _between(prompt, "answer_a"), _between(prompt, "answer_b")
    if a is None or b is None:
        return None
    wanted = set(facts(conv))
    return (a, len(wanted & set(facts(strip_markers(a))))), (b, len(wanted & set(facts(strip_markers(b)))))


def judge(model: str, messages: list[dict[str, Any]]) -> str:
    """Reply of a simulated judge to a rendered judge prompt (see judges/pairwise.md)."""
    name = model.split("/", 1)[-1]
    prompt = "\n".join(content_text(m) for m in messages)
    if name == "judge-always-a":
        return json.dumps({"winner": "A", "reason": "A is better."})
    if name == "judge-tie":
        return json.dumps({"winner": "tie", "reason": "Both are equally good."})
    counts = _fact_counts(prompt)
    if counts is None:
        return "I cannot find the two answers."
    (a, ca), (b, cb) = counts
    winner = "A" if ca > cb else "B" if cb > ca else "tie"
    if name == "judge-biased":  # writes the most likely word of its (position-biased) distribution
        lp = _biased_logprobs(ca, cb)
        return json.dumps({"winner": max(lp, key=lambda w: lp[w]), "reason": ""})
    if name == "judge-verbose" and max(len(a), len(b)) > 1.2 * max(1, min(len(a), len(b))):
        winner = "A" if len(a) > len(b) else "B"
    if name == "judge-brackets":
        return f"Coverage A={ca}, B={cb}. Verdict: [[{ {'A': 'A', 'B': 'B', 'tie': 'C'}[winner] }]]"
    if name not in ("judge", "judge-verbose", "judge-biased"):
        raise ValueError(f"unknown fake judge {model!r}")
    return json.dumps({"winner": winner, "reason": f"A covers {ca} facts, B covers {cb}."})


def _biased_logprobs(ca: int, cb: int) -> dict[str, float]:
    """A small judge's verdict-word distribution: a strong pull to "A" (log-odds +8) and a weak one to the
    answer with more facts (log-odds 0.5 per fact), so it writes "A" but its probabilities still move."""
    z = {"A": 8.0 + 0.25 * (ca - cb), "B": 0.25 * (cb - ca), "tie": -3.0}
    top = max(z.values())
    norm = top + math.log(sum(math.exp(v - top) for v in z.values()))
    return {w: v - norm for w, v in z.items()}


def judge_logprobs(model: str, messages: list[dict[str, Any]]) -> dict[str, float] | None:
    """The verdict word's log-probabilities for judges that have them (judge-biased), else None."""
    if model.split("/", 1)[-1] != "judge-biased":
        return None
    counts = _fact_counts("\n".join(content_text(m) for m in messages))
    if counts is None:
        return None
    (_, ca), (_, cb) = counts
    return _biased_logprobs(ca, cb)


def reflect(messages: list[dict[str, Any]], model: str = "fake/reflect") -> str:
    """Reply of the simulated reflection model ``fake/reflect`` (equiv optimize): it reads the current system
    prompt between <current_prompt> tags and proposes it with one more instruction, in a fenced block (the
    first proposal asks for every detail, which is what an ``-instr`` generator needs)."""
    prompt = (_between("\n".join(content_text(m) for m in messages), "current_prompt") or "").strip()
    if prompt.startswith("(empty"):
        prompt = ""
    extra = (
        "Mention every detail of the request, in its order."
        if INSTRUCTION not in prompt.lower()
        else "Keep the answer short."
    )
    if model.endswith("reflect-copy"):  # copies the judged requests into the prompt: memorizing, not learning
        text = "\n".join(content_text(m) for m in messages)
        shown = re.findall(r"request: \[user\]\n(.*?)\nassistant's answer:", text, flags=re.S)
        extra = "Known requests:\n" + "\n".join(s.strip() for s in shown)
    return f"Here is the improved prompt.\n\n```\n{(prompt + ' ' + extra).strip()}\n```\n"


def is_judge(model: str) -> bool:
    return model.split("/", 1)[-1].startswith("judge")


def reply(model: str, messages: list[dict[str, Any]], sample: int = 0) -> tuple[str, int, int]:
    """(text, prompt_tokens, completion_tokens) of a simulated call."""
    if model.split("/", 1)[-1] in ("reflect", "reflect-copy"):
        text = reflect(messages, model)
    else:
        text = judge(model, messages) if is_judge(model) else generate(model, messages, sample)
    prompt_tokens = sum(count_tokens(content_text(m)) + 3 for m in messages)
    return text, prompt_tokens, count_tokens(text)


def price(model: str) -> tuple[float, float]:
    """USD per million tokens (input, output) of a simulated model: skill-NN costs NN% of $2.50/$10."""
    name = model.split("/", 1)[-1]
    m = _GENERATOR.fullmatch(name)
    if m:
        share = int(m.group(1)) / 100
        return round(2.5 * share**3, 6), round(10.0 * share**3, 6)
    return 2.0, 8.0  # judges: priced like gpt-4.1
