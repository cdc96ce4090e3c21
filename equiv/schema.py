"""The records that cross stages. Field names follow SPEC.md's contracts exactly; extras are optional."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

Winner = Literal["A", "B", "tie"]
Order = Literal["baseline_first", "candidate_first"]
CheckOrder = Literal["intact_first", "degraded_first"]
VerdictLabel = Literal["GO", "NO_GO", "INCONCLUSIVE"]


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class SamplingParams(BaseModel):
    """The params a traffic record may replay (SPEC "Traffic record" ``params``): sampling params only.

    They shape the answer and nothing else. Anything that picks where or how a call is sent (``api_base``,
    ``base_url``, ``api_key``, ``extra_headers``, ``extra_body``, ``custom_llm_provider``, ``timeout``,
    ``num_retries`` ...), makes the answer up (``mock_response``), changes what comes back (``n``,
    ``stream``, ``logprobs``) or labels the call at the provider (``metadata``, ``user``) is not a field
    here, so ``extra="forbid"`` refuses it: a traffic file must never be able to send the user's key to
    another host or forge the candidate's answer. Values are strict (``"0.2"`` is not a temperature,
    ``true`` is not a token count); an integer is fine where a number is expected.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    # each description is what the user reads when the value is wrong: "params.top_p must be <description>"
    temperature: float | None = Field(default=None, ge=0, description="a number >= 0")
    top_p: float | None = Field(default=None, ge=0, le=1, description="a number from 0 to 1")
    top_k: int | None = Field(default=None, ge=0, description="a whole number >= 0")
    max_tokens: int | None = Field(default=None, ge=1, description="a whole number >= 1")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="a whole number >= 1")
    stop: str | list[str] | None = Field(default=None, description="text or a list of texts")
    seed: int | None = Field(default=None, description="a whole number")
    response_format: dict[str, Any] | None = Field(
        default=None, description='an object such as {"type": "json_object"}'
    )
    tools: list[dict[str, Any]] | None = Field(default=None, description="a list of tool objects")
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = Field(
        default=None, description='"none", "auto", "required" or an object naming a tool'
    )
    parallel_tool_calls: bool | None = Field(default=None, description="true or false")
    presence_penalty: float | None = Field(default=None, ge=-2, le=2, description="a number from -2 to 2")
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2, description="a number from -2 to 2")
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = Field(
        default=None, description="an object mapping token ids to numbers from -100 to 100"
    )
    reasoning_effort: str | None = Field(default=None, min_length=1, description="text such as low or high")
    verbosity: str | None = Field(default=None, min_length=1, description="text such as low or high")


SAMPLING_PARAMS: tuple[str, ...] = tuple(SamplingParams.model_fields)


def sampling_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params as given, nulls dropped (a null is an absent param), once ``SamplingParams`` accepts them.

    The values are returned as written, not as the model converted them (``0`` stays ``0``), so what is
    replayed, and the call cache keyed on it, is exactly the traffic's. Raises pydantic's ``ValidationError``.
    """
    present = {k: v for k, v in params.items() if v is not None}
    SamplingParams.model_validate(present)
    return present


def describe_params_error(err: ValidationError, params: Mapping[str, Any], prefix: str = "params") -> str:
    """One line naming every non-sampling key, else the first wrongly typed one and what it must be."""
    errors = err.errors()
    extra = sorted({str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and e["loc"]})
    if len(extra) == 1:
        return f"{prefix}.{extra[0]} is not a sampling parameter, so it is never sent"
    if extra:
        return f"{prefix} {', '.join(extra)} are not sampling parameters, so they are never sent"
    key = str(errors[0]["loc"][0]) if errors[0]["loc"] else ""
    given = params.get(key)  # the whole value: an error's own input may be one item of it
    shown = str(given).lower() if isinstance(given, bool) else repr(given)
    field = SamplingParams.model_fields.get(key)
    what = field.description if field is not None and field.description else "a valid value"
    return f"{prefix}.{key} must be {what} (got {shown[:60]})"


class TrafficRecord(BaseModel):
    """One prompt of real traffic, normalised (see SPEC "Traffic record").

    ``params`` stays a plain ``dict`` (callers pass it on as keyword arguments), but only ever holds
    what ``SamplingParams`` accepts, nulls dropped: a record built anywhere goes through that gate.
    """

    model_config = ConfigDict(extra="forbid")
    id: str
    prompt_type: str = "default"
    messages: list[dict[str, Any]]
    response: str | None = None
    model: str | None = None
    usage: Usage | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str = ""  # "file:line", for messages that point at the record
    reference: str | None = None  # a reference (gold) answer: the reference-guided judge shows it

    @field_validator("params")
    @classmethod
    def _sampling_only(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            return sampling_params(v)
        except ValidationError as e:
            raise ValueError(describe_params_error(e, v)) from None


class Completion(BaseModel):
    """One model call's result, as returned by llm.client (never contains credentials)."""

    model: str
    output: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float = 0.0
    finish_reason: str | None = None
    # the alternatives the model weighed for its first decoded token (token -> log-probability), when the
    # call asked for logprobs: a local judge's first token is its verdict word (the reply is prefilled)
    first_token_logprobs: dict[str, float] | None = None
    # the answer's tool calls in OpenAI's shape ({"id", "type", "function": {"name", "arguments"}}), when it
    # made any; `output` shows them as text too (equiv.llm.answer), so the judge and pairs.jsonl see them
    tool_calls: list[dict[str, Any]] | None = None
    # the sha256 of the redaction rule this answer went through (equiv.toml `redact`), when it did: a cached
    # answer is redacted again only under another rule (a scrubber need not be idempotent)
    redacted: str | None = None
    # --batch: the provider batch that answered it, and the share of the real-time price it was billed at
    # (`cost_usd` stays the real-time price: routing and savings use it; the eval's spend uses `billed_usd`)
    batch_id: str | None = None
    batch_price_share: float | None = None

    @property
    def billed_usd(self) -> float:
        return self.cost_usd * (self.batch_price_share if self.batch_price_share is not None else 1.0)


class Side(BaseModel):
    """One side (baseline or candidate) of a pair, as written to pairs.jsonl."""

    model_config = ConfigDict(extra="allow")
    model: str
    source: Literal["logged", "run"] = "run"
    output: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


class Judgment(BaseModel):
    """One judge verdict in one order. In pairs: A is the baseline when order is baseline_first.

    `logprobs` (optional, local judges): the judge's log-probabilities of writing "A", "B" and "tie" as
    its verdict, read from the verdict token. `winner` stays what the judge wrote; the analysis can
    correct the judge's position preference from them (judge_calibration = "position").
    """

    model_config = ConfigDict(extra="allow")
    order: str
    winner: Winner
    judge: str = ""
    reason: str = ""
    logprobs: dict[str, float] | None = None

    @field_validator("logprobs", mode="before")
    @classmethod
    def _only_verdict_logprobs(cls, v: Any) -> Any:
        """An imported file may carry some other `logprobs` shape: not ours to read, so left out, not refused."""
        if isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(x, int | float) and not isinstance(x, bool) for k, x in v.items()
        ):
            return v
        return None

    @model_serializer(mode="wrap")
    def _drop_absent_logprobs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("logprobs") is None:
            data.pop("logprobs", None)  # judges without them write the contract's fields only
        return data


class JudgeFailure(BaseModel):
    """A judge reply that could not be parsed after retries: recorded, never guessed."""

    order: str
    judge: str
    error: str
    raw: str = ""


class Pair(BaseModel):
    """One sampled prompt: the single input of the analysis (a line of pairs.jsonl)."""

    model_config = ConfigDict(extra="allow")
    pair_id: str
    prompt_type: str = "default"
    messages: list[dict[str, Any]] = Field(default_factory=list)
    baseline: Side | None = None
    candidate: Side | None = None
    judgments: list[Judgment] = Field(default_factory=list)
    error: str | None = None
    # optional extensions (not in the contract's example, allowed by it)
    prompt_id: str | None = None  # cluster id: identical messages and params (SPEC "Clusters")
    weight: float | None = None  # records of the traffic this pair stands for (its cluster's, shared by its samples)
    judge_failures: list[JudgeFailure] = Field(default_factory=list)
    timestamp: datetime | None = None
    reference: str | None = None  # the traffic's reference answer, when it carries one
    tools: list[dict[str, Any]] | None = None  # the request's tools (the tool_call gate reads them)
    decided_by: str | None = None  # "identical" / "agreement": scored 0 with no judge call
    candidate_name: str | None = None  # which candidate configuration (SPEC "Candidates"); None: the only one

    @model_serializer(mode="wrap")
    def _absent_when_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_none(handler(self), "reference", "tools", "decided_by", "candidate_name")

    @property
    def cluster(self) -> str:
        return self.prompt_id or self.pair_id


class Check(BaseModel):
    """One judge-check comparison: the baseline answer against a degraded copy (checks.jsonl)."""

    model_config = ConfigDict(extra="allow")
    pair_id: str
    prompt_type: str
    kind: str = "truncate"  # the perturbation (SPEC "Judges": Sensitivity); "truncate" is SPEC's check
    judgments: list[Judgment] = Field(default_factory=list)  # order: intact_first / degraded_first
    judge_failures: list[JudgeFailure] = Field(default_factory=list)
    error: str | None = None


def _drop_none(data: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if data.get(name) is None:
            data.pop(name, None)  # optional extensions: absent rather than null, so old readers see the contract
    return data


class Interval(BaseModel):
    estimate: float
    ci_low: float
    ci_high: float
    # length control only: equal length lies outside the data (SPEC "Length control"); clipped to [-1, 1]
    extrapolated: bool | None = None

    @model_serializer(mode="wrap")
    def _absent_when_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_none(handler(self), "extrapolated")


class KindCheckResult(BaseModel):
    """One sensitivity kind of the judge check (SPEC "Judges": ``judge_check.by_kind``)."""

    n: int  # checks of this kind readable in both orders
    pass_rate: float | None  # passed / every check of this kind that ran (an unreadable one is not a pass)
    n_unreadable: int = 0
    blocking: bool = False  # only "truncate" (SPEC's judge check) can block a GO


class JudgeCheckResult(BaseModel):
    n: int  # checks readable in both orders
    pass_rate: float | None  # passed / (readable + unreadable): an unreadable check is not a pass
    # optional extensions (SPEC "Judge check, when planned")
    n_planned: int | None = None  # checks the run planned for this type
    n_unreadable: int | None = None  # checks that ran and could not be read in both orders
    required: bool | None = None  # False: it ran, but this analysis does not let it block (judge_check = false)
    by_kind: dict[str, KindCheckResult] | None = None  # every kind that ran, "truncate" included

    @model_serializer(mode="wrap")
    def _absent_when_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_none(handler(self), "n_planned", "n_unreadable", "required", "by_kind")


class CostSummary(BaseModel):
    baseline_usd_per_request: float
    candidate_usd_per_request: float
    saving: Interval
    # optional extension: projection from the traffic's volume
    monthly_requests: float | None = None
    monthly_saving_usd: float | None = None
    # optional (SPEC "Candidates"): the cost gate, and cost per task where the config says calls_per_task
    max_usd_per_request: float | None = None
    over_budget: bool | None = None  # the candidate's cost per request is above max_usd_per_request
    calls_per_task: float | None = None
    baseline_usd_per_task: float | None = None
    candidate_usd_per_task: float | None = None
    # candidate cost per task / its win-or-tie rate: what one task it does not lose costs
    candidate_quality_adjusted_usd_per_task: float | None = None

    @model_serializer(mode="wrap")
    def _absent_when_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_none(
            handler(self),
            "max_usd_per_request",
            "over_budget",
            "calls_per_task",
            "baseline_usd_per_task",
            "candidate_usd_per_task",
            "candidate_quality_adjusted_usd_per_task",
        )


class Calibration(BaseModel):
    """How judge_calibration = "position" re-decided a prompt-type's verdicts (equiv/stats/calibrate.py)."""

    method: str = "position"
    n_pairs: int  # pairs judged in both orders with logprobs: their verdicts follow the judge's log-odds
    changed: int  # judgments whose winner differs from the word the judge wrote


class Diagnostics(BaseModel):
    """Judge diagnostics (optional extension of verdict.json)."""

    position_a_share: float | None = None  # share of decisive verdicts that went to position A
    length_slope: float | None = None  # b1 of s ~ b0 + b1*x
    n_judgments: int = 0
    n_judge_failures: int = 0
    calibration: Calibration | None = None


class FieldAgreement(BaseModel):
    """One JSON field of a `fields` check: how often the two answers agree on it."""

    n: int  # pairs where either answer has the field (and both answers are JSON objects)
    agreement_rate: float | None


class CheckSummary(BaseModel):
    """One per-type check in verdict.json (SPEC "Per-type instruments")."""

    name: str
    kind: Literal["gate", "agreement"]
    check: str  # the check's own kind: json, json_schema, regex, max_chars, tool_call, label, exact, fields
    n: int  # pairs it was evaluated on
    baseline_pass_rate: float | None = None  # gates (traffic-weighted)
    candidate_pass_rate: float | None = None
    diff: Interval | None = None  # gates: candidate pass - baseline pass, paired cluster bootstrap
    agreement_rate: float | None = None  # agreement kinds
    fields: dict[str, FieldAgreement] | None = None  # `fields` only: per-field agreement
    passed: bool | None = None  # gates: the lower bound clears -check_margin
    failed: bool | None = None  # gates: the upper bound is below -check_margin (NO_GO)


class JudgeDiagnostics(BaseModel):
    """One judge of a panel (SPEC "Judges": ``judges``)."""

    n_judgments: int
    n_failures: int = 0
    quality_diff: float | None = None  # this judge's mean score alone
    position_a_share: float | None = None
    position_consistency: float | None = None
    tie_rate: float | None = None
    agreement_with_panel: float | None = None  # share of its verdicts equal to the other judges' majority
    same_family_as: list[str] = Field(default_factory=list)  # "baseline" / "candidate": the family guard


class HumanAgreement(BaseModel):
    """The judge against human or gold labels (SPEC "Calibration against people"), each with a bootstrap
    interval over pairs (clusters). A pair agrees when its score's sign is the gold side's; 0 is a tie."""

    n: int  # labelled pairs with a judge score
    n_without_ties: int  # of those, pairs where neither the label nor the judge is a tie
    agreement: Interval | None
    agreement_without_ties: Interval | None
    kappa: Interval | None  # Cohen's kappa over baseline / tie / candidate
    position_consistency: Interval | None  # of the labelled pairs judged in both orders


class SequentialSummary(BaseModel):
    """SPEC "Spending less": verdict.json per type `sequential`."""

    stopped_at: int  # distinct prompts used when the type stopped (all of them when no test decided)
    decided_by: str | None  # "GO" / "NO_GO": the test that crossed 1/alpha; None: undecided at per_type
    e_value: float  # the deciding test's wealth at the stop (else the larger of the two at the end)
    n_available: int  # distinct prompts the type had
    alpha: float  # the level each of its two tests ran at


class TypeVerdict(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt_type: str
    n: int
    n_failed: int
    verdict: VerdictLabel
    reasons: list[str]
    quality_diff: Interval | None
    lc_quality_diff: Interval | None
    win_rate: float | None
    tie_rate: float | None
    position_consistency: float | None
    judge_check: JudgeCheckResult | None
    mean_chars: dict[str, float] | None
    cost: CostSummary | None
    samples_needed: int | None
    # optional extensions
    alpha_tested: float | None = None
    n_prompts: int | None = None
    diagnostics: Diagnostics | None = None
    # SPEC "Per-type instruments" / "Judges" (optional; absent on types that use none of them)
    checks: list[CheckSummary] | None = None
    agreement_rate: float | None = None  # share of pairs decided without a judge (identical, or agreeing)
    n_judged: int | None = None  # pairs that went to the judge
    judges: dict[str, JudgeDiagnostics] | None = None
    panel_agreement: Interval | None = None  # Fleiss' kappa across the panel's judges
    human_agreement: HumanAgreement | None = None
    margin: float | None = None  # this type's margin, when [types."name"] sets one
    win_or_tie_rate: float | None = None  # traffic-weighted share of pairs whose score is >= 0
    sequential: SequentialSummary | None = None  # --sequential: where the anytime-valid test stopped


class EvalCost(BaseModel):
    """What the evaluation spent next to what it proves (issue 16: the eval-cost line)."""

    usd: float  # what this run directory spent (eval_cost_usd)
    fixed_n_realtime_usd: float  # what today's fixed-n, real-time design would have spent (an estimate)
    pairs_bought: int
    pairs_fixed_n: int
    first_month_saving_usd: float | None  # projected saving of the types that can switch (GO), first month
    share_of_first_month_saving: float | None  # usd / first_month_saving_usd


class CandidateVerdict(BaseModel):
    """One candidate configuration's verdicts (SPEC "Candidates": verdict.json `candidates`)."""

    model_config = ConfigDict(extra="allow")
    name: str
    model: str
    verdict: VerdictLabel
    prompt_types: list[TypeVerdict]
    params: dict[str, Any] | None = None
    system_prompt_sha256: str | None = None
    last_turns: int | None = None
    eval_cost_usd: float | None = None  # what this candidate's pairs cost (its calls and their judging)

    @model_serializer(mode="wrap")
    def _absent_when_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_none(handler(self), "params", "system_prompt_sha256", "last_turns", "eval_cost_usd")


class Verdict(BaseModel):
    model_config = ConfigDict(extra="allow")
    schema_version: int = 1
    run_id: str
    baseline: str
    candidate: str
    judge: str
    margin: float
    alpha: float
    correction: str
    bootstrap: int
    seed: int
    eval_cost_usd: float | None
    verdict: VerdictLabel
    prompt_types: list[TypeVerdict]
    # optional extensions
    ci_method: str = "percentile"
    aborted: str | None = None  # why the run stopped early (spend cap, auth ...), when it did
    notes: list[str] = Field(default_factory=list)
    # several candidates (SPEC "Candidates"): each one's verdicts, and the cheapest GO per prompt-type
    candidates: list[CandidateVerdict] | None = None
    recommended: dict[str, str | None] | None = None
    eval_cost: EvalCost | None = None  # the eval-cost line: spent, the fixed-n design's, share of the saving

    @model_serializer(mode="wrap")
    def _absent_when_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_none(handler(self), "candidates", "recommended", "eval_cost")
