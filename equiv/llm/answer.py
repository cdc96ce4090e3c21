"""What a model's reply shows: the one text the judge, pairs.jsonl and the reports see for an answer.

A chat reply is not always text. Each shape has an explicit rendering here, so that no answer becomes a
silent "" that loses to the other side:

- **Tool calls** (`message.tool_calls`, or the older `function_call`; content often null): the answer IS
  the call. A user's application executes it, so the judge must see which function was called with
  which arguments, clearly marked as a call, after any text the model wrote with it. The arguments are
  shown as the model wrote them (malformed JSON is a defect the judge should see, not one to repair).
  The structured calls are kept beside the text (`Completion.tool_calls`).
- **Content filter** (`finish_reason == "content_filter"`): the provider withheld all or part of the
  answer. What the user gets is the text that came back, or nothing, so that is what is judged: the
  partial text with a notice where the filter cut it, or a notice that nothing came back. A blocked
  answer is not excluded as a failed pair: excluding the prompts a candidate cannot answer would hide
  exactly the regression a swap must catch (a candidate blocked on one prompt in five could still GO on
  the other four); a blocked answer IS a quality loss for the user, unless the judge finds that refusing
  served the user better (it sees the conversation and can tell).
- **Refusal** (`message.refusal`, structured outputs): the refusal text is what the user is shown, so it
  is the answer, marked as a refusal.
- **Empty text** with any other finish reason: a genuine empty answer, kept as "" (pairs.jsonl says
  what the model returned); the judge prompt marks it as empty (equiv.judging.prompt) so that the judge
  does not mistake it for a rendering problem.

Accepts litellm's objects and plain dicts (a logged OpenAI response) alike.
"""

from __future__ import annotations

import json
from typing import Any

TOOL_CALL = "[tool call]"
BLOCKED = "[no answer: the provider's content filter blocked this reply; the user received nothing]"
CUT = "[the provider's content filter cut this answer off here; the user received only the text above]"
REFUSAL = "[refusal]"
EMPTY = "[empty answer: the model returned no text]"
MARKERS = (BLOCKED, CUT, EMPTY, TOOL_CALL, REFUSAL)
CONTENT_FILTER = "content_filter"
LENGTH = "length"  # the reply stopped at its output limit (the traffic's, or the one equiv sent)


def field(obj: Any, name: str) -> Any:
    """`obj.name` or `obj[name]`, None when absent (litellm objects and plain dicts)."""
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def content_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [field(p, "text") for p in content]
        return "\n".join(p for p in parts if isinstance(p, str))
    raise TypeError(f"content is {type(content).__name__}")


def tool_calls_of(message: Any) -> list[dict[str, Any]]:
    """The message's tool calls in OpenAI's shape ({"id", "type", "function": {"name", "arguments"}});
    a legacy `function_call` becomes one call without an id."""
    calls: list[dict[str, Any]] = []
    for call in field(message, "tool_calls") or []:
        fn = field(call, "function")
        calls.append(
            {
                "id": field(call, "id"),
                "type": field(call, "type") or "function",
                "function": {"name": field(fn, "name"), "arguments": field(fn, "arguments")},
            }
        )
    legacy = field(message, "function_call")
    if legacy is not None and not calls:
        calls.append(
            {
                "id": None,
                "type": "function",
                "function": {"name": field(legacy, "name"), "arguments": field(legacy, "arguments")},
            }
        )
    return calls


def _arguments(raw: Any) -> str:
    if raw is None:
        return "{}"
    if isinstance(raw, str):
        return raw.strip() or "{}"
    return json.dumps(raw, ensure_ascii=False, sort_keys=True)


def render_tool_calls(calls: list[dict[str, Any]]) -> str:
    """One block per call: `[tool call] name` then `arguments: <JSON as the model wrote it>`."""
    blocks = []
    for call in calls:
        fn = call.get("function") or {}
        name = fn.get("name") or "(no function name)"
        blocks.append(f"{TOOL_CALL} {name}\narguments: {_arguments(fn.get('arguments'))}")
    return "\n\n".join(blocks)


def render_reply(text: str, calls: list[dict[str, Any]], refusal: str | None, finish_reason: str | None) -> str:
    """The answer as the judge and pairs.jsonl see it (see the module docstring for each case)."""
    parts = []
    if text.strip():
        parts.append(text)
    elif refusal and refusal.strip():
        parts.append(f"{REFUSAL} {refusal}")
    if calls:
        parts.append(render_tool_calls(calls))
    if finish_reason == CONTENT_FILTER:
        parts.append(CUT if parts else BLOCKED)
    return "\n\n".join(parts)


def render_message(message: Any, finish_reason: str | None = None) -> str:
    """A chat message (litellm object or dict) as answer text; raises TypeError on content of another type."""
    return render_reply(
        content_text(field(message, "content")), tool_calls_of(message), _refusal(message), finish_reason
    )


def generated_text(message: Any) -> str:
    """What the model itself wrote (text and call arguments, no notices): for counting its tokens."""
    calls = tool_calls_of(message)
    args = [_arguments((c.get("function") or {}).get("arguments")) for c in calls]
    names = [str((c.get("function") or {}).get("name") or "") for c in calls]
    return "\n".join([content_text(field(message, "content")), _refusal(message) or "", *names, *args]).strip()


def _refusal(message: Any) -> str | None:
    refusal = field(message, "refusal")
    if refusal is None:
        refusal = field(field(message, "provider_specific_fields"), "refusal")
    return refusal if isinstance(refusal, str) else None


def strip_markers(text: str) -> str:
    """The answer without equiv's notices (the simulated judge reads only what the model wrote)."""
    for marker in MARKERS:
        text = text.replace(marker, " ")
    return text


def side_extras(completion: Any) -> dict[str, Any]:
    """What pairs.jsonl keeps beside a run answer's text when it is not plain text (optional Side fields):
    the structured tool calls, and the finish reason of a reply the content filter blocked or cut, or that
    stopped at its output limit."""
    extras: dict[str, Any] = {}
    if field(completion, "tool_calls"):
        extras["tool_calls"] = field(completion, "tool_calls")
    finish = field(completion, "finish_reason")
    if finish in (CONTENT_FILTER, LENGTH):  # blocked or cut answers: the run notes count them
        extras["finish_reason"] = finish
    return extras
