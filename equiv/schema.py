"""The records that cross stages. Field names follow SPEC.md's contracts exactly; extras are optional."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
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


class TrafficRecord(BaseModel):
    """One prompt of real traffic, normalised (see SPEC "Traffic record")."""

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
        if isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, int | float) and not isinstance(x, bool)
                                       for k, x in v.items()):
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
    prompt_id: str | None = None  # cluster id for repeated samples of one prompt
    judge_failures: list[JudgeFailure] = Field(default_factory=list)
    timestamp: datetime | None = None

    @property
    def cluster(self) -> str:
        return self.prompt_id or self.pair_id


class Check(BaseModel):
    """One judge-check comparison: the baseline answer against a degraded copy (checks.jsonl)."""

    model_config = ConfigDict(extra="allow")
    pair_id: str
    prompt_type: str
    judgments: list[Judgment] = Field(default_factory=list)  # order: intact_first / degraded_first
    judge_failures: list[JudgeFailure] = Field(default_factory=list)
    error: str | None = None


class Interval(BaseModel):
    estimate: float
    ci_low: float
    ci_high: float


class JudgeCheckResult(BaseModel):
    n: int
    pass_rate: float | None


class CostSummary(BaseModel):
    baseline_usd_per_request: float
    candidate_usd_per_request: float
    saving: Interval
    # optional extension: projection from the traffic's volume
    monthly_requests: float | None = None
    monthly_saving_usd: float | None = None


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
