"""The checks a prompt-type can declare (SPEC "Per-type instruments"): typed, strict, named like promptfoo's.

A check is written in equiv.toml as a kind name (``"json"``) or a table (``{kind = "regex", pattern = "..."}``).
Gates judge each answer alone (pass/fail); agreement checks compare the two answers of a pair.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

GATE_KINDS = ("json", "json_schema", "regex", "max_chars", "tool_call")
AGREEMENT_KINDS = ("label", "exact", "fields")
KINDS = GATE_KINDS + AGREEMENT_KINDS
# kinds that need a setting, and the setting: a bare name is not enough for these
NEEDS = {"json_schema": "schema", "regex": "pattern", "max_chars": "value"}


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: str  # each kind narrows it to its Literal (the union's discriminator)
    name: str | None = Field(default=None, min_length=1)  # how reports name it; default: the kind

    @property
    def gate(self) -> bool:
        return self.kind in GATE_KINDS


class JsonCheck(_Check):
    """The answer parses as JSON (a single fenced ```json block around it is accepted)."""

    kind: Literal["json"]


class JsonSchemaCheck(_Check):
    """The answer's JSON is valid against a JSON Schema: a file path (read when the config is loaded,
    relative to the config's folder) or the schema itself as a table. After loading it is the schema."""

    kind: Literal["json_schema"]
    schema_: str | dict[str, Any] = Field(alias="schema")
    file: str | None = None  # where the schema was read from (set by the loader; shown in reports)

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, serialize_by_alias=True)


class RegexCheck(_Check):
    """The answer matches `pattern` (Python `re.search`; `ignore_case` for case-insensitive)."""

    kind: Literal["regex"]
    pattern: str
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regular expression ({e})") from None
        return v


class MaxCharsCheck(_Check):
    """The answer has at most `value` characters."""

    kind: Literal["max_chars"]
    value: int = Field(ge=1)


class ToolCallCheck(_Check):
    """The answer makes a tool call to one of the request's `tools`, with arguments valid against its schema."""

    kind: Literal["tool_call"]


class LabelCheck(_Check):
    """The two answers name the same label: equal after trimming, case folding and dropping trailing
    punctuation. `labels`: the label set (else read from the prompt when it lists one), used by the
    classification judge and the wrong-label sensitivity check."""

    kind: Literal["label"]
    labels: list[str] | None = None


class ExactCheck(_Check):
    """The two answers are the same text (after trimming surrounding whitespace)."""

    kind: Literal["exact"]


class FieldsCheck(_Check):
    """The two answers are JSON objects equal field by field; numbers within `tolerance` (relative).
    `fields`: compare only these top-level fields (default: every field either answer has)."""

    kind: Literal["fields"]
    tolerance: float = Field(default=0.0, ge=0)
    fields: list[str] | None = Field(default=None, min_length=1)  # [] would make any two objects agree


CheckSpec = Annotated[
    JsonCheck | JsonSchemaCheck | RegexCheck | MaxCharsCheck | ToolCallCheck | LabelCheck | ExactCheck | FieldsCheck,
    Field(discriminator="kind"),
]


def check_name(check: Any) -> str:
    return str(check.name or check.kind)
