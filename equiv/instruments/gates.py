"""Gates: checks that judge one answer alone, pass or fail (SPEC "Per-type instruments").

Each gate returns ``(passed, why)``: `why` is a short reason when it fails, else None. Semantics follow
promptfoo's assertions of the same purpose (``is-json``, ``contains-json`` with a schema, ``regex``,
``is-valid-openai-tools-call``) and inspect_ai's ``pattern`` scorer for `regex` (``re.search``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable

from equiv.instruments.jsontext import parse_json
from equiv.instruments.spec import JsonCheck, JsonSchemaCheck, MaxCharsCheck, RegexCheck, ToolCallCheck

GateResult = tuple[bool, str | None]
GateCheck = JsonCheck | JsonSchemaCheck | RegexCheck | MaxCharsCheck | ToolCallCheck

_MAX_WHY = 160  # characters of a schema error's message kept in a reason


@functools.lru_cache(maxsize=256)
def _compiled(canonical: str) -> Validator:
    schema = json.loads(canonical)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def compile_schema(schema: Mapping[str, Any] | bool) -> Validator:
    """The validator for a JSON Schema (its draft from ``$schema``, default the latest; formats checked
    as far as jsonschema can), cached per schema. Raises ValueError if the schema itself is invalid."""
    try:
        return _compiled(json.dumps(schema, sort_keys=True, separators=(",", ":")))
    except SchemaError as e:
        raise ValueError(f"not a valid JSON Schema: {_short(e.message)}") from None
    except TypeError as e:
        raise ValueError(f"not a JSON Schema: {e}") from None


def _short(message: str) -> str:
    return message if len(message) <= _MAX_WHY else message[: _MAX_WHY - 3] + "..."


def _path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_error(validator: Validator, instance: Any) -> str | None:
    """The most relevant error (jsonschema's ``best_match``) as ``"<message> at <path>"``, or None if valid.
    An unresolvable ``$ref`` (remote references are never fetched) raises ValueError."""
    try:
        error = best_match(validator.iter_errors(instance))
    except Unresolvable as e:
        raise ValueError(f"the schema has a reference that cannot be resolved: {e}") from None
    return None if error is None else f"{_short(error.message)} at {_path(error)}"


def json_gate(text: str) -> GateResult:
    """Like promptfoo's ``is-json``: any JSON value passes (a single surrounding code fence accepted)."""
    parsed = parse_json(text)
    return parsed.ok, parsed.why


def json_schema_gate(check: JsonSchemaCheck, text: str) -> GateResult:
    """The (possibly fenced) JSON is valid against the check's schema (promptfoo's ``is-json`` with a
    ``value`` schema). The loader must have read a schema file into a dict: a str raises ValueError."""
    if isinstance(check.schema_, str):
        raise ValueError(f"json_schema check: schema {check.schema_!r} was not loaded (the loader resolves files)")
    validator = compile_schema(check.schema_)
    parsed = parse_json(text)
    if not parsed.ok:
        return False, parsed.why
    why = schema_error(validator, parsed.value)
    return why is None, None if why is None else f"schema: {why}"


@functools.lru_cache(maxsize=256)
def _regex(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def regex_gate(check: RegexCheck, text: str) -> GateResult:
    """``re.search(pattern, text)`` finds a match anywhere (promptfoo's ``regex``, inspect_ai's
    ``pattern``); ``ignore_case`` adds ``re.IGNORECASE``. The text is taken as returned."""
    if _regex(check.pattern, re.IGNORECASE if check.ignore_case else 0).search(text):
        return True, None
    return False, f"no match for /{_short(check.pattern)}/"


def max_chars_gate(check: MaxCharsCheck, text: str) -> GateResult:
    """``len(text) <= value``, the text as returned (surrounding whitespace counts), in code points."""
    n = len(text)
    return (True, None) if n <= check.value else (False, f"{n} characters > {check.value}")


def _tool_functions(tools: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """name -> function spec, from OpenAI tools (``{"type": "function", "function": {...}}``); a bare
    function spec (the legacy ``functions`` shape) is read too."""
    out: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        fn = tool.get("function", tool)
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            out[fn["name"]] = fn
    return out


def _call_error(call: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]) -> str | None:
    fn = call.get("function")
    if not isinstance(fn, Mapping):
        return "not a function call"
    name = fn.get("name")
    if not isinstance(name, str) or name not in functions:
        return f"calls {name!r}, not one of the request's tools"
    raw = fn.get("arguments")
    if isinstance(raw, str):
        parsed = parse_json(raw)
        if not parsed.ok:
            return f"{name}: arguments {parsed.why}"
        args = parsed.value
    else:
        args = raw  # some providers hand arguments over already parsed
    if not isinstance(args, dict):
        return f"{name}: arguments are not a JSON object"
    parameters = functions[name].get("parameters")
    if parameters is None:
        return None
    try:
        why = schema_error(compile_schema(parameters), args)
    except ValueError as e:
        return f"{name}: {e}"
    return None if why is None else f"{name}: arguments {why}"


def tool_call_gate(tool_calls: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None) -> GateResult:
    """Like promptfoo's ``is-valid-openai-tools-call``: at least one tool call, and every call names one
    of the request's `tools` with ``arguments`` that parse as a JSON object valid against that tool's
    ``parameters`` schema (no ``parameters``: any object). The first failing call gives the reason."""
    if not tools:
        return False, "the request has no tools"
    if not tool_calls:
        return False, "no tool call"
    functions = _tool_functions(tools)
    for i, call in enumerate(tool_calls, 1):
        why = _call_error(call, functions)
        if why is not None:
            return False, why if len(tool_calls) == 1 else f"call {i}: {why}"
    return True, None


def run_gate(
    check: GateCheck,
    text: str,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> GateResult:
    """One gate on one answer."""
    if isinstance(check, JsonCheck):
        return json_gate(text)
    if isinstance(check, JsonSchemaCheck):
        return json_schema_gate(check, text)
    if isinstance(check, RegexCheck):
        return regex_gate(check, text)
    if isinstance(check, MaxCharsCheck):
        return max_chars_gate(check, text)
    return tool_call_gate(tool_calls, tools)
