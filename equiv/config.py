"""Settings: equiv.toml (SPEC "Configuration"), CLI overrides, per-model litellm settings and prices.

Values are strict (SPEC: "a value of the wrong type is an error naming the key"): ``per_type = "200"``,
``judge_check = "yes"``, ``concurrency = true`` or ``margin = "0.1"`` are refused, not coerced, and a
boolean is never a number. The one conversion kept is an integer where a number is expected
(``max_spend_usd = 20``). CLI flags arrive already typed (typer), and so do the settings ``equiv report``
takes back from a run's run.json; a tuple of prompt-types from Python is taken as a list.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from equiv.errors import InputError
from equiv.instruments.spec import KINDS, NEEDS, CheckSpec, JsonSchemaCheck

# the judge check's kinds (SPEC "Judges": Sensitivity); "truncate" is SPEC's blocking check
JUDGE_CHECK_KINDS = ("truncate", "drop_sentence", "number", "label", "broken_json", "pad")
JudgeCheckKind = Literal["truncate", "drop_sentence", "number", "label", "broken_json", "pad"]


class ModelSettings(BaseModel):
    """Per-model litellm settings and prices. The key itself is never stored: only the env var's NAME."""

    model_config = ConfigDict(extra="forbid", strict=True)
    api_base: str | None = None
    api_key_env: str | None = None
    input_cost_per_mtok: float | None = Field(default=None, ge=0)
    output_cost_per_mtok: float | None = Field(default=None, ge=0)
    timeout: float | None = Field(default=None, gt=0)
    litellm_model: str | None = None  # call this litellm model name instead (e.g. "openai/qwen" for a local server)
    gguf: str | None = None  # local/<name> models only: a GGUF file equiv serves itself (see equiv/local)


def _tuple_as_list(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _candidate_names(v: Any) -> Any:
    """`candidate = "m"` or a list of models / [[candidates]] names (`--candidate` given several times)."""
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, list):
        if not v or not all(isinstance(x, str) and x for x in v):
            raise ValueError('name candidates in quotes: candidate = "model" or candidate = ["a", "b"]')
        if len(set(v)) != len(v):
            raise ValueError("a candidate is named twice")
        if len(v) == 1:
            return v[0]
    return v


class CandidateConfig(BaseModel):
    """A candidate configuration (SPEC "Candidates"): a model and what changes around it.

    `system_prompt` (text, or a .md / .txt file, or an `equiv optimize` prompts/<type>.json) replaces the
    traffic's leading system message; `params` override the replayed sampling params (a max_tokens cap ...);
    `last_turns` keeps only the last N user turns of the conversation (with the system message).
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    system_prompt: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    last_turns: int | None = Field(default=None, ge=1)
    # where system_prompt was read from (a file's name), set on load; not a TOML key
    system_prompt_file: str | None = Field(default=None, exclude=True)

    @field_validator("params")
    @classmethod
    def _sampling_only(cls, v: dict[str, Any]) -> dict[str, Any]:
        from equiv.schema import describe_params_error, sampling_params

        try:
            return sampling_params(v)
        except ValidationError as err:
            raise ValueError(describe_params_error(err, v)) from None

    @property
    def changes_prompt(self) -> bool:
        return self.system_prompt is not None or bool(self.params) or self.last_turns is not None


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    traffic: str
    baseline: str
    candidate: str | list[str]  # a model, a [[candidates]] name, or several: each type goes to its recommended one
    prompt_types: list[str] | None = None
    margin: float | None = Field(default=None, gt=0, lt=1)
    per_type: int | None = Field(default=None, ge=1)
    judge: str | None = None
    max_usd_per_request: float | None = Field(default=None, gt=0)

    _prompt_types_tuple = field_validator("prompt_types", mode="before")(_tuple_as_list)
    _candidates = field_validator("candidate", mode="before")(_candidate_names)


def _judge_names(v: Any) -> Any:
    """A judge is a model name or a panel (a list of distinct names; one name is that judge)."""
    if isinstance(v, tuple):
        v = list(v)
    panel = 'judge = ["model-1", "model-2"]'
    if v is not None and not isinstance(v, str | list):
        shown = f'judge = "{v}"' if isinstance(v, int | float) and not isinstance(v, bool) else 'judge = "model"'
        raise ValueError(f"a judge is a model name in quotes (got {_shown(v)}): write {shown}, or a panel {panel}")
    if isinstance(v, list):
        if not all(isinstance(x, str) and x for x in v):
            raise ValueError(f"a judge panel lists model names in quotes: write {panel}")
        if not v:
            raise ValueError("a judge panel must name at least one model")
        if len(set(map(str, v))) != len(v):
            raise ValueError("a judge panel names a model twice")
        if len(v) == 1 and isinstance(v[0], str):
            return v[0]
    return v


def _check_items(v: Any) -> Any:
    """`checks = ["json", {kind = "fields", tolerance = 0.01}]`: a bare kind name is the table {kind = name}."""
    if isinstance(v, tuple):
        v = list(v)
    if not isinstance(v, list):
        return v
    out = []
    for item in v:
        if isinstance(item, str):
            if item not in KINDS:
                raise ValueError(f"unknown check '{item}': use one of {', '.join(KINDS)}")
            if item in NEEDS:
                raise ValueError(
                    f'the {item} check needs its {NEEDS[item]}: write {{kind = "{item}", {NEEDS[item]} = ...}}'
                )
            item = {"kind": item}
        elif isinstance(item, dict) and "kind" not in item:
            raise ValueError(f"a check table needs a kind: one of {', '.join(KINDS)}")
        elif isinstance(item, dict) and item.get("kind") not in KINDS:
            raise ValueError(f"unknown check kind {item.get('kind')!r}: use one of {', '.join(KINDS)}")
        out.append(item)
    return out


class TypeSettings(BaseModel):
    """One prompt-type's own settings (SPEC "Per-type instruments": `[types."name"]`); all optional."""

    model_config = ConfigDict(extra="forbid", strict=True)
    checks: list[CheckSpec] = Field(default_factory=list)
    margin: float | None = Field(default=None, gt=0, lt=1)
    check_margin: float | None = Field(default=None, gt=0, lt=1)
    per_type: int | None = Field(default=None, ge=1)
    judge: str | list[str] | None = None
    judge_template: str | None = None
    judge_check_kinds: list[JudgeCheckKind] | None = None
    rubric: str | None = Field(default=None, min_length=1)  # criteria for judges/rubric.md: text, or a file
    max_usd_per_request: float | None = Field(default=None, gt=0)  # a cost gate: over it, the candidate is NO_GO
    calls_per_task: float | None = Field(default=None, gt=0)  # model calls that make one task: cost per task

    _judge = field_validator("judge", mode="before")(_judge_names)
    _checks = field_validator("checks", mode="before")(_check_items)


class Settings(BaseModel):
    """Everything that defines a run. All keys optional; CLI flags override the file."""

    model_config = ConfigDict(extra="forbid", strict=True)
    margin: float = Field(default=0.10, gt=0, lt=1)  # a share of the [-1, 1] scale: (0, 1)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    per_type: int = Field(default=200, ge=1)
    seed: int = 0
    concurrency: int = Field(default=16, ge=1, le=1024)
    max_spend_usd: float = Field(default=20.0, ge=0)
    bootstrap: int = Field(default=10000, ge=100)
    judge: str | list[str] = "gpt-4.1"  # a list is a panel (SPEC "Judges"): every judge judges both orders
    judge_template: str = "judges/pairwise.md"
    # a judge from the baseline's or candidate's family: a caution in every report, or refused ("strict")
    judge_family: Literal["caution", "strict"] = "caution"
    # the judge check's kinds; None: truncate plus the perturbations that fit each type's answers
    judge_check_kinds: list[JudgeCheckKind] | None = None
    check_margin: float = Field(default=0.02, gt=0, lt=1)  # gates: GO needs the pass-rate diff's low bound above -this
    # "position": re-decide verdicts from the judge's verdict-word logprobs, corrected for its position
    # preference (local judges record them; see equiv/stats/calibrate.py). Analysis only: no new calls.
    judge_calibration: Literal["none", "position"] = "none"
    baseline_source: Literal["logged", "rerun"] = "logged"
    correction: Literal["none", "bonferroni", "holm"] = "none"
    ci: Literal["percentile", "bca"] = "percentile"
    prompt_type_field: str = "prompt_type"
    # traffic (SPEC "Where traffic lives"): force a format (else the first record decides), KEY=VALUE filters
    # on dotted fields, and redaction of prompts and answers (a list of regexes, or "module:function")
    format: str | None = None
    where: list[str] = Field(default_factory=list)
    redact: list[str] | str | None = None
    # --sequential (SPEC "Spending less"): prompts in a seeded order, each type stops when an anytime-valid test decides
    sequential: bool = False
    # --batch: generations and judge calls through the provider's Batch API, billed at this share of the
    # configured real-time price (litellm's own batch prices where the price is litellm's)
    batch: bool = False
    batch_discount: float = Field(default=0.5, gt=0, le=1)
    judge_check: bool = True
    judge_check_fraction: float = Field(default=0.10, gt=0, le=1)
    judge_check_min: int = Field(default=10, ge=0)
    samples_per_prompt: int = Field(default=1, ge=1, le=100)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=50)
    judge_retries: int = Field(default=2, ge=0, le=10)
    max_tokens_default: int = Field(default=1024, ge=1)
    baseline: str | None = None
    # a model or a [[candidates]] name; several: one run compares the baseline with each (SPEC "Candidates")
    candidate: str | list[str] | None = None
    candidates: list[CandidateConfig] = Field(default_factory=list)
    max_usd_per_request: float | None = Field(default=None, gt=0)  # cost gate per request (also per type, route)
    calls_per_task: float | None = Field(default=None, gt=0)  # model calls per task: cost per task in reports
    types: list[str] | None = None
    skip_invalid: bool = False
    # nightly: a candidate cost per request up by more than this share since the route's last run is a regression
    cost_regression_share: float = Field(default=0.2, ge=0)
    routes: list[Route] = Field(default_factory=list)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    # [types."name"] tables (the TOML key is `types`; a list there is the --types filter instead)
    type_settings: dict[str, TypeSettings] = Field(default_factory=dict)
    # where relative paths (judge_template, route traffic) are resolved; not a TOML key
    base_dir: str | None = Field(default=None, exclude=True)

    _types_tuple = field_validator("types", mode="before")(_tuple_as_list)
    _where_tuple = field_validator("where", mode="before")(_tuple_as_list)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        from equiv.traffic.registry import FORMATS

        if value is not None and value not in FORMATS:
            raise ValueError(f"unknown traffic format; use one of: {', '.join(FORMATS)}")
        return value

    _judge = field_validator("judge", mode="before")(_judge_names)
    _candidate = field_validator("candidate", mode="before")(_candidate_names)

    @model_validator(mode="before")
    @classmethod
    def _type_tables(cls, data: Any) -> Any:
        """`types` as a table of tables is the per-type settings; as a list, the prompt-types to analyse."""
        if isinstance(data, dict) and isinstance(data.get("types"), dict):
            data = dict(data)
            tables = data.pop("types")
            if data.get("type_settings"):
                raise ValueError('give per-type settings once: [types."name"] tables or type_settings')
            data["type_settings"] = tables
        return data

    @field_validator("types")
    @classmethod
    def _no_empty_types(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not [t for t in v if t]:
            raise ValueError("must name at least one prompt-type")
        return v

    @field_validator("candidates")
    @classmethod
    def _distinct_candidates(cls, v: list[CandidateConfig]) -> list[CandidateConfig]:
        names = [c.name for c in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two [[candidates]] are named '{twice[0]}': give each candidate its own name")
        return v

    def candidate_configs(self) -> list[CandidateConfig]:
        """The candidates of this run, in order: those `candidate` names (a [[candidates]] name, else a
        plain model), or every [[candidates]] entry when `candidate` is not set."""
        names = [self.candidate] if isinstance(self.candidate, str) else list(self.candidate or [])
        if not names:
            return list(self.candidates)
        by_name = {c.name: c for c in self.candidates}
        return [by_name.get(n) or CandidateConfig(name=n, model=n) for n in names]

    @property
    def candidate_models(self) -> list[str]:
        """Each candidate's model (distinct, in order)."""
        return list(dict.fromkeys(c.model for c in self.candidate_configs()))

    def for_type(self, prompt_type: str) -> Settings:
        """These settings as one prompt-type sees them: its [types."name"] table over the top level."""
        ts = self.type_settings.get(prompt_type)
        if ts is None:
            return self
        update = {
            k: getattr(ts, k)
            for k in (
                "margin",
                "check_margin",
                "per_type",
                "judge",
                "judge_template",
                "judge_check_kinds",
                "max_usd_per_request",
                "calls_per_task",
            )
            if getattr(ts, k) is not None
        }
        return self.model_copy(update=update) if update else self

    def checks_for(self, prompt_type: str) -> list[Any]:
        ts = self.type_settings.get(prompt_type)
        return list(ts.checks) if ts is not None else []

    def judges_for(self, prompt_type: str | None = None) -> list[str]:
        """The judge panel of a prompt-type (one name for a single judge)."""
        j = self.for_type(prompt_type).judge if prompt_type is not None else self.judge
        return [j] if isinstance(j, str) else list(j)

    def all_judges(self) -> list[str]:
        """Every judge any prompt-type uses, top level first."""
        names = self.judges_for()
        for t in sorted(self.type_settings):
            names += self.judges_for(t)
        return list(dict.fromkeys(names))

    @property
    def judge_label(self) -> str:
        """The judge as verdict.json names it: the model, or the panel's models joined by ', '."""
        return ", ".join(self.all_judges())

    def model_settings(self, model: str) -> ModelSettings:
        return self.models.get(model, ModelSettings())

    def api_key(self, model: str) -> str | None:
        """The key for a model, read from the environment at call time (never stored)."""
        env = self.model_settings(model).api_key_env
        if env is None:
            return None
        value = os.environ.get(env)
        if not value:
            raise InputError(
                f'models."{model}".api_key_env names the environment variable {env}, which is not set: '
                f"export {env}=... before running"
            )
        return value


def _shown(value: Any) -> str:
    """A value as the user wrote it in TOML: true/false, 'text', 1.5, a table."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a table"
    return repr(value)[:60]


def _is_number_text(value: Any, integer: bool) -> bool:
    if not isinstance(value, str):
        return False
    try:
        int(value) if integer else float(value)
    except ValueError:
        return False
    return True


def _what_to_do(e: Any, leaf: str, in_file: bool) -> str:
    """What to write instead, for one pydantic error (strict mode: no coercion was attempted)."""
    kind, given = e["type"], e.get("input")
    in_file = in_file and bool(e["loc"]) and isinstance(e["loc"][-1], str)  # `key = value`, not an item of a list
    if e["loc"] == ("models",):
        return 'write one table per model: [models."name"]'
    if e["loc"] == ("routes",):
        return "write one [[routes]] table per route"
    if kind in ("int_type", "float_type"):
        if isinstance(given, bool):
            return "write a number, not true/false"
        if in_file and _is_number_text(given, kind == "int_type"):
            return f"write {leaf} = {given.strip()} (no quotes)"
        return "write a whole number" if kind == "int_type" else "write a number"
    if kind == "bool_type":
        return f"write {leaf} = true or {leaf} = false (no quotes)" if in_file else "give true or false"
    if kind == "string_type":
        if in_file and isinstance(given, int | float):
            return f'write {leaf} = "{given}" (in quotes)'
        return "write it as text, in quotes"
    if kind == "list_type":
        return f'write {leaf} = ["{given}"] (a list)' if in_file and isinstance(given, str) else "give a list"
    if kind in ("dict_type", "model_type"):
        return f"write it as a table ([{leaf}])"
    if kind == "literal_error":
        return "use one of these"
    if leaf == "margin":
        return "the margin is a share of the [-1, 1] quality scale: use a value above 0 and below 1, e.g. 0.1"
    return "change the value"


def _key_path(loc: tuple[Any, ...]) -> str:
    """An error's location as the user wrote it: `types."name".checks[1]`, `models."m".timeout`, `margin`."""
    parts: list[str] = []
    items = list(loc)
    if not items or items[0] != "type_settings":
        return ".".join(str(p) for p in items) or "(top level)"
    items[0] = "types"
    for i, part in enumerate(items):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif i == 1 and items[0] == "types":
            parts.append(f'"{part}"')
        elif (
            i > 0 and items[i - 1] == "checks" or (i > 1 and isinstance(items[i - 1], int) and items[i - 2] == "checks")
        ):
            if part in ("json", "json_schema", "regex", "max_chars", "tool_call", "label", "exact", "fields"):
                continue  # the discriminated union's branch name: the user wrote `kind`, not this
            parts.append(str(part))
        else:
            parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _format_validation_error(err: ValidationError, source: str, from_overrides: frozenset[str] = frozenset()) -> str:
    lines = []
    for e in err.errors():
        loc = _key_path(e["loc"])
        in_file = not (e["loc"] and e["loc"][0] in from_overrides)
        if e["type"] == "extra_forbidden":
            where = f"{source}: unknown key" if in_file else "unknown setting"
            lines.append(f"{where} '{loc}': remove it or check its spelling")
        else:
            where = f"{source}: key" if in_file else "setting"
            leaf = next((str(p) for p in reversed(e["loc"]) if isinstance(p, str)), loc)
            fix = _what_to_do(e, leaf, in_file)
            if e["type"] == "value_error":
                msg = str(e["msg"]).removeprefix("Value error, ")
                lines.append(f"{where} '{loc}': {msg}")
                continue
            lines.append(f"{where} '{loc}': {e['msg']} (got {_shown(e.get('input'))}): {fix}")
    return "\n".join(lines)


def load_settings(config_path: str | Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read equiv.toml (if any), apply non-None CLI overrides, validate. Errors name the file and key."""
    data: dict[str, Any] = {}
    source = "settings"
    base_dir = None
    if config_path is not None:
        path = Path(config_path)
        source = str(path)
        if not path.is_file():
            raise InputError(f"{path}: config file not found")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text; save the config as UTF-8 TOML") from None
        except tomllib.TOMLDecodeError as e:
            raise InputError(f"{path}: invalid TOML: {e}") from None
        base_dir = str(path.resolve().parent)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if isinstance(data.get("types"), dict):  # [types."name"] tables; a --types list filters, it does not replace them
        data["type_settings"] = data.pop("types")
    data.update(given)
    data["base_dir"] = base_dir
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        raise InputError(_format_validation_error(e, source, frozenset(given))) from None
    load_check_files(settings, source)
    load_candidate_files(settings, source)
    return settings


_PROMPT_FILE_SUFFIXES = (".md", ".txt", ".json")


def load_candidate_files(settings: Settings, source: str = "settings") -> None:
    """Each candidate's system_prompt read from its file (relative to the config's folder), so the run
    records the prompt itself. A value that looks like a file name (one word ending .md / .txt / .json)
    must exist: a typo never becomes the system prompt. A .json file is `equiv optimize`'s output
    (prompts/<type>.json): its "system_prompt" is used."""
    for i, cand in enumerate(settings.candidates):
        raw = cand.system_prompt
        if raw is None:
            continue
        where = f"{source}: key 'candidates[{i}].system_prompt'"
        if not raw.strip():
            raise InputError(f"{where} is empty: write the prompt, or a file path, or leave the key out")
        looks_like_file = len(raw) < 300 and not any(ch.isspace() for ch in raw) and raw.endswith(_PROMPT_FILE_SUFFIXES)
        if not looks_like_file:
            continue
        path = resolve_path(settings, raw)
        if not path.is_file():
            raise InputError(f"{where}: file {raw} not found (paths are relative to the config file)")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{where}: cannot read {path} as UTF-8 text ({e})") from None
        if path.suffix == ".json":
            import json

            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: {path} is not JSON ({e})") from None
            prompt = data.get("system_prompt") if isinstance(data, dict) else None
            if not isinstance(prompt, str):
                raise InputError(f'{where}: {path} has no "system_prompt" text (an equiv optimize prompts file has)')
            text = prompt
        if not text.strip():
            raise InputError(f"{where}: {path} is empty")
        cand.system_prompt = text
        cand.system_prompt_file = path.name


def load_check_files(settings: Settings, source: str = "settings") -> None:
    """Read each json_schema check's schema file (relative to the config's folder) and check the schema,
    so a run records the schema itself and `equiv report` needs no file. Exit 2 naming the key otherwise."""
    for t, ts in settings.type_settings.items():
        for i, check in enumerate(ts.checks):
            if isinstance(check, JsonSchemaCheck):
                where = f"{source}: key 'types.\"{t}\".checks[{i}].schema'"
                check.schema_ = _load_schema(settings, check, where)
        if ts.rubric is not None:
            path = resolve_path(settings, ts.rubric)
            if "\n" not in ts.rubric and len(ts.rubric) < 300 and path.suffix in (".md", ".txt") and path.is_file():
                ts.rubric = path.read_text(encoding="utf-8")  # a rubric file: the run records its text
            if not ts.rubric.strip():
                raise InputError(f"{source}: key 'types.\"{t}\".rubric' is empty: write the criteria or a file path")


def _load_schema(settings: Settings, check: JsonSchemaCheck, where: str) -> dict[str, Any]:
    import json

    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    schema = check.schema_
    if isinstance(schema, str):
        path = resolve_path(settings, schema)
        if not path.is_file():
            raise InputError(f"{where}: schema file {schema} not found (paths are relative to the config file)")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{where}: {path} is not a JSON file ({e})") from None
        check.file = path.name
    if not isinstance(schema, dict):
        raise InputError(f"{where}: a JSON Schema is an object; got {type(schema).__name__}")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as e:
        raise InputError(f"{where}: not a valid JSON Schema: {e.message}") from None
    return schema


def resolve_path(settings: Settings, raw: str) -> Path:
    """A path from config: absolute, relative to cwd, or relative to the config file's folder."""
    p = Path(raw)
    if p.is_absolute() or p.exists() or settings.base_dir is None:
        return p
    alt = Path(settings.base_dir) / p
    return alt if alt.exists() else p
