"""analyze(pairs, checks, settings) -> Verdict: the statistics of SPEC, from pairs.jsonl records alone.

Pure: no I/O, no model calls, so `equiv report` can re-decide a finished run with a new margin, alpha
or correction. Per prompt-type: pair results (score, cluster, weight, consistency: `pair_results`,
the one place a judgment becomes a score) -> one set of cluster-bootstrap resamples -> raw and
length-controlled intervals and the cost saving interval (all from the same resamples) -> the
multiplicity level -> the decision and its reasons. `analyze_run` also hands back the per-pair and
per-check results, so the reports show what the analysis used instead of recomputing it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from equiv import cost as costs
from equiv.config import Settings
from equiv.instruments import Answer, PairInstruments, evaluate
from equiv.judging.perturb import passes as check_passes
from equiv.schema import (
    Calibration,
    CandidateVerdict,
    Check,
    CostSummary,
    Diagnostics,
    EvalCost,
    HumanAgreement,
    Interval,
    JudgeCheckResult,
    JudgeDiagnostics,
    Judgment,
    KindCheckResult,
    Pair,
    SequentialSummary,
    Side,
    TypeVerdict,
    Verdict,
    VerdictLabel,
)
from equiv.stats import bootstrap as bs
from equiv.stats import instruments as ins
from equiv.stats import sequential as sq
from equiv.stats.agreement import Labelled, human_agreement
from equiv.stats.calibrate import calibrate
from equiv.stats.decide import (
    JUDGE_CHECK_MIN_PASS,
    MIN_PAIRS,
    Evidence,
    GateEvidence,
    bonferroni_levels,
    decide,
    holm_levels,
    judge_check_blocks,
    overall,
    samples_needed,
)
from equiv.stats.length import length_covariate, ols_from_sums

FloatArray = bs.FloatArray

FIRST, SECOND = "baseline_first", "candidate_first"
# Candidate's score for each (order, winner): in "baseline_first" answer A is the baseline.
_SCORES: dict[tuple[str, str], float] = {
    (FIRST, "A"): -1.0,
    (FIRST, "B"): 1.0,
    (FIRST, "tie"): 0.0,
    (SECOND, "A"): 1.0,
    (SECOND, "B"): -1.0,
    (SECOND, "tie"): 0.0,
}


def judgment_score(j: Judgment) -> float | None:
    """+1 candidate preferred, -1 baseline preferred, 0 tie; None for an order this analysis cannot map."""
    return _SCORES.get((j.order, j.winner))


def pair_score(pair: Pair) -> float | None:
    """Mean over the pair's judgments (both orders, or a panel); None when it has none usable."""
    if pair.error is not None:
        return None
    scores = [s for s in map(judgment_score, pair.judgments) if s is not None]
    return sum(scores) / len(scores) if scores else None


def pair_cluster(pair: Pair) -> str:
    """The pair's cluster (SPEC "Clusters"): the id equiv's sampling gave it; for pairs from elsewhere
    (no prompt_id), the hash of their messages, so duplicated prompts are one cluster there too."""
    if pair.prompt_id:
        return pair.prompt_id
    if pair.messages:
        blob = json.dumps(pair.messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
        return "m-" + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return pair.pair_id


@dataclass(frozen=True)
class PairResult:
    """What the analysis made of one pair: the report shows these, it never recomputes them."""

    pair_id: str
    prompt_type: str
    cluster: str
    weight: float
    score: float | None  # None: not used (failed, or no readable verdict)
    error: str | None
    judgments: tuple[Judgment, ...]  # the verdicts the score used (calibrated ones carry `written` as extra)
    consistent: bool | None  # the judge's own words prefer the same answer in both orders; None: not both
    one_order: bool  # used, but some judge's verdict exists in one order only (its position bias not cancelled)
    # SPEC "Per-type instruments": "identical" / "agreement" (scored 0, no judge) or None (the judge decided)
    decided_by: str | None = None
    instruments: PairInstruments | None = None  # gates and agreement checks of the pair's type (None: no answers)

    @property
    def used(self) -> bool:
        return self.score is not None

    @property
    def outcome(self) -> str:
        """lost / won / tie / failed."""
        if self.score is None:
            return "failed"
        return "lost" if self.score < 0 else "won" if self.score > 0 else "tie"


@dataclass(frozen=True)
class CheckResult:
    """One judge-check comparison as the analysis read it (first verdict per judge and order)."""

    pair_id: str
    prompt_type: str
    readable: bool  # some judge gave a verdict in both orders
    passed: bool  # every judge that did passed (truncate and the like: the intact answer won in both orders)
    judgments: tuple[Judgment, ...]
    error: str | None
    kind: str = "truncate"


@dataclass
class Analysis:
    verdict: Verdict
    pairs: list[PairResult] = field(default_factory=list)  # in the order of the input pairs
    checks: list[CheckResult] = field(default_factory=list)


def _consistency(judgments: Sequence[Judgment]) -> tuple[bool | None, bool]:
    """(every judge that gave both orders preferred the same answer in both, some judge gave one order only)."""
    by_judge: dict[str, dict[str, float]] = {}
    for j in judgments:
        s = judgment_score(j)
        if s is not None:
            by_judge.setdefault(j.judge, {}).setdefault(j.order, s)
    both = [o for o in by_judge.values() if len(o) == 2]
    consistent = all(o[FIRST] == o[SECOND] for o in both) if both else None
    return consistent, any(len(o) == 1 for o in by_judge.values())


def answer_of(side: Side | None) -> Answer | None:
    """A side as the instruments read it: its text and structured tool calls."""
    if side is None or side.output is None:
        return None
    calls = (side.model_extra or {}).get("tool_calls")
    return Answer(text=side.output, tool_calls=tuple(c for c in calls if isinstance(c, dict)) if calls else ())


def pair_instruments(pair: Pair, checks: Sequence[Any]) -> PairInstruments | None:
    """The pair's gates and agreement checks (and whether its answers are identical); None without both answers."""
    b, c = answer_of(pair.baseline), answer_of(pair.candidate)
    if b is None or c is None:
        return None
    tools = (pair.model_extra or {}).get("tools")
    return evaluate(checks, b, c, tools if isinstance(tools, list) else None)


NoChecks: Callable[[str], list[Any]] = lambda _t: []  # noqa: E731


def pair_results(
    pairs: Sequence[Pair], calibration: str = "none", checks_for: Callable[[str], list[Any]] = NoChecks
) -> tuple[list[PairResult], dict[str, Calibration]]:
    """Each pair's score (from calibrated verdicts under judge_calibration = "position"), cluster,
    weight and consistency (always from the words the judge wrote: that is what describes the judge).

    A pair whose answers are identical, or agree under every agreement check of its type, scores 0
    whatever judgments it carries (SPEC "Per-type instruments": it is never sent to the judge)."""
    info: dict[str, Calibration] = {}
    scored: Sequence[Pair] = pairs
    if calibration == "position":
        scored, info = calibrate(pairs)
    out = []
    for written, p in zip(pairs, scored, strict=True):
        consistent, one_order = _consistency(written.judgments)
        inst = pair_instruments(p, checks_for(p.prompt_type)) if p.error is None else None
        decided_by = inst.decided_by if inst is not None else None
        score = 0.0 if decided_by is not None else pair_score(p)
        if decided_by is not None:  # not judged: any verdicts it carries (an import) are not the instrument's
            consistent, one_order = None, False
        out.append(
            PairResult(
                pair_id=p.pair_id,
                prompt_type=p.prompt_type,
                cluster=pair_cluster(p),
                weight=float(p.weight) if p.weight is not None and p.weight > 0 else 1.0,
                score=score,
                error=p.error if p.error is not None else (None if score is not None else "no readable verdict"),
                judgments=tuple(p.judgments) if decided_by is None else (),
                consistent=consistent,
                one_order=one_order and score is not None,
                decided_by=decided_by,
                instruments=inst,
            )
        )
    return out, info


def check_results(checks: Sequence[Check]) -> list[CheckResult]:
    out = []
    for c in checks:
        kind = c.kind or "truncate"
        by_judge: dict[str, dict[str, Judgment]] = {}
        for j in c.judgments:
            by_judge.setdefault(j.judge, {}).setdefault(j.order, j)
        both = [o for o in by_judge.values() if "intact_first" in o and "degraded_first" in o]
        readable = c.error is None and bool(both)
        passed = readable and all(
            check_passes(kind, o["intact_first"].winner, o["degraded_first"].winner) for o in both
        )
        out.append(
            CheckResult(
                pair_id=c.pair_id,
                prompt_type=c.prompt_type,
                readable=readable,
                passed=passed,
                judgments=tuple(j for o in by_judge.values() for j in o.values()),
                error=c.error,
                kind=kind,
            )
        )
    return out


def _by_type(
    pairs: Sequence[Pair], results: Sequence[PairResult]
) -> defaultdict[str, tuple[list[Pair], list[PairResult]]]:
    """Pairs and their results per prompt-type, in input order (an absent type reads as empty)."""
    by_type: defaultdict[str, tuple[list[Pair], list[PairResult]]] = defaultdict(lambda: ([], []))
    for p, r in zip(pairs, results, strict=True):
        by_type[p.prompt_type][0].append(p)
        by_type[p.prompt_type][1].append(r)
    return by_type


@dataclass
class _Judged:
    """The usable pairs of one prompt-type, as arrays, plus counts taken from the judgments."""

    prompt_type: str
    n_failed: int
    n_judge_failures: int
    scores: FloatArray
    weights: FloatArray
    codes: np.ndarray  # cluster index of each pair
    n_clusters: int
    base_chars: FloatArray  # nan where an output is missing
    cand_chars: FloatArray
    cost_b: FloatArray  # nan where a cost is missing
    cost_c: FloatArray
    n_judgments: int
    n_ties: int
    n_decisive: int
    n_position_a: int
    n_both_orders: int
    n_consistent: int
    n_one_order: int
    models: tuple[Counter[str], Counter[str], Counter[str]]  # baseline models, candidate models, judges
    inst_rows: list[ins.Row] = field(default_factory=list)  # usable pairs' instrument outcomes, in row order
    n_decided: int = 0  # usable pairs scored 0 without the judge (identical, or agreeing)


def _collect(prompt_type: str, pairs: Sequence[Pair], results: Sequence[PairResult]) -> _Judged:
    """Arrays of one type's usable pairs, sorted by (cluster, pair_id): input order never matters.

    Ties count the verdicts the scores used; the A share and consistency count the judge's own words.
    """
    n_failed = n_judge_failures = 0
    rows: list[tuple[str, str, float, float, float, float, float, float]] = []
    inst: dict[str, PairInstruments] = {}
    n_decided = 0
    n_judgments = n_ties = n_decisive = n_a = n_both = n_consistent = n_one = 0
    models_b: Counter[str] = Counter()
    models_c: Counter[str] = Counter()
    judges: Counter[str] = Counter()
    nan = float("nan")
    for p, r in zip(pairs, results, strict=True):
        b, c = p.baseline, p.candidate
        if b is not None and b.model:
            models_b[b.model] += 1
        if c is not None and c.model:
            models_c[c.model] += 1
        for j in p.judgments:
            if j.judge:
                judges[j.judge] += 1
        n_judge_failures += len(p.judge_failures)
        if r.score is None:
            n_failed += 1
            continue
        for j in r.judgments:
            if judgment_score(j) is None:
                continue
            n_judgments += 1
            n_ties += j.winner == "tie"
        by_judge: dict[str, dict[str, str]] = {}
        for j in p.judgments if r.decided_by is None else ():  # the words written
            if judgment_score(j) is None:
                continue
            if j.winner != "tie":
                n_decisive += 1
                n_a += j.winner == "A"
            by_judge.setdefault(j.judge, {}).setdefault(j.order, j.winner)
        n_both += sum(len(o) == 2 for o in by_judge.values())
        n_consistent += sum(len(o) == 2 and r.consistent is True for o in by_judge.values())
        n_one += r.one_order
        if r.instruments is not None:
            inst[p.pair_id] = r.instruments
        n_decided += r.decided_by is not None
        rows.append(
            (
                r.cluster,
                p.pair_id,
                r.score,
                r.weight,
                float(len(b.output)) if b is not None and b.output is not None else nan,
                float(len(c.output)) if c is not None and c.output is not None else nan,
                b.cost_usd if b is not None and b.cost_usd is not None else nan,
                c.cost_usd if c is not None and c.cost_usd is not None else nan,
            )
        )
    rows.sort(key=lambda row: (row[0], row[1]))
    names = sorted({row[0] for row in rows})
    index = {name: i for i, name in enumerate(names)}
    col = np.array([row[2:] for row in rows], dtype=np.float64).reshape(len(rows), 6)
    inst_rows = [ins.Row(code=index[row[0]], weight=row[3], instruments=inst[row[1]]) for row in rows if row[1] in inst]
    return _Judged(
        prompt_type=prompt_type,
        n_failed=n_failed,
        n_judge_failures=n_judge_failures,
        scores=col[:, 0].copy(),
        weights=col[:, 1].copy(),
        codes=np.array([index[row[0]] for row in rows], dtype=np.intp),
        n_clusters=len(names),
        base_chars=col[:, 2].copy(),
        cand_chars=col[:, 3].copy(),
        cost_b=col[:, 4].copy(),
        cost_c=col[:, 5].copy(),
        n_judgments=n_judgments,
        n_ties=n_ties,
        n_decisive=n_decisive,
        n_position_a=n_a,
        n_both_orders=n_both,
        n_consistent=n_consistent,
        n_one_order=n_one,
        models=(models_b, models_c, judges),
        inst_rows=inst_rows,
        n_decided=n_decided,
    )


def _statistics(totals: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(raw mean, LC intercept, LC slope, saving) from totals (..., m): one formula for estimate,
    resamples and jackknife alike."""
    t = np.atleast_2d(totals)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = t[:, bs.S] / t[:, bs.COUNT]
    b0, b1 = ols_from_sums(t[:, bs.COUNT], t[:, bs.X], t[:, bs.S], t[:, bs.XX], t[:, bs.SX])
    save = costs.saving(t[:, bs.COST_B], t[:, bs.COST_C])
    return raw, b0, b1, save


@dataclass
class _Boot:
    """Everything the decision of one type needs, computed once and read at any alpha."""

    data: _Judged
    x: FloatArray
    length_known: bool
    lc_extrapolated: bool  # equal length (x = 0) lies outside the observed x
    cost_known: int  # number of pairs with both costs
    estimate: tuple[float, float, float, float]  # raw, lc, slope, saving
    samples: tuple[FloatArray, FloatArray, FloatArray]  # raw, lc, saving
    jackknife: tuple[FloatArray, FloatArray, FloatArray]
    se: tuple[float, float]  # bootstrap standard errors of raw and lc
    p_value: float


def _bootstrap(data: _Judged, settings: Settings) -> _Boot:
    """Weighted cluster bootstrap: each pair's row is scaled by its weight (the records it stands for),
    clusters are resampled whole, so every statistic is traffic-weighted and the spread is the clusters'."""
    n = data.scores.size
    has_len = ~(np.isnan(data.base_chars) | np.isnan(data.cand_chars))
    x = np.zeros(n, dtype=np.float64)
    if has_len.any():
        x[has_len] = length_covariate(data.base_chars[has_len], data.cand_chars[has_len])
    spread = bool(np.any(x))
    extrapolated = spread and bool(x[has_len].min() > 0 or x[has_len].max() < 0)
    has_cost = ~(np.isnan(data.cost_b) | np.isnan(data.cost_c))
    s, w = data.scores, data.weights
    cols = np.zeros((n, bs.N_COLUMNS), dtype=np.float64)
    cols[:, bs.COUNT] = w
    cols[:, bs.S] = w * s
    cols[:, bs.X] = w * x
    cols[:, bs.SX] = w * s * x
    cols[:, bs.XX] = w * x * x
    cols[:, bs.COST_N] = w * has_cost
    cols[:, bs.COST_B] = np.where(has_cost, w * data.cost_b, 0.0)
    cols[:, bs.COST_C] = np.where(has_cost, w * data.cost_c, 0.0)
    sums = bs.cluster_sums(data.codes, cols, data.n_clusters)

    raw_e, lc_e, slope_e, save_e = _statistics(sums.sum(axis=0))
    rng = bs.stream_rng(settings.seed, data.prompt_type)
    totals = bs.resample_totals(sums, settings.bootstrap, rng)
    raw_b, lc_b, _, save_b = _statistics(totals)
    raw_j, lc_j, _, save_j = _statistics(bs.jackknife_totals(sums))
    if not spread:  # sd == 0 or no lengths: LC is exactly the raw estimate
        lc_e, lc_b, lc_j, slope_e = raw_e, raw_b, raw_j, np.array([np.nan])
    se_raw = float(np.std(raw_b, ddof=1)) if raw_b.size > 1 else float("nan")
    finite_lc = lc_b[np.isfinite(lc_b)]
    se_lc = float(np.std(finite_lc, ddof=1)) if finite_lc.size > 1 else float("nan")
    p = max(bs.share_at_or_below(raw_b, -settings.margin), bs.share_at_or_below(lc_b, -settings.margin))
    return _Boot(
        data=data,
        x=x,
        length_known=bool(has_len.any()),
        lc_extrapolated=extrapolated,
        cost_known=int(has_cost.sum()),
        estimate=(float(raw_e[0]), float(lc_e[0]), float(slope_e[0]), float(save_e[0])),
        samples=(raw_b, lc_b, save_b),
        jackknife=(raw_j, lc_j, save_j),
        se=(se_raw, se_lc),
        p_value=p,
    )


def _interval(
    samples: FloatArray, estimate: float, jack: FloatArray, alpha: float, method: str
) -> tuple[Interval, bool]:
    """The (1 - 2*alpha) interval; the flag says BCa was asked for but fell back to percentile."""
    if method == "bca":
        bca = bs.bca_interval(samples, estimate, jack, alpha)
        if bca is not None:
            return Interval(estimate=estimate, ci_low=bca[0], ci_high=bca[1]), False
    lo, hi = bs.percentile_interval(samples, alpha)
    return Interval(estimate=estimate, ci_low=lo, ci_high=hi), method == "bca"


def _clipped(iv: Interval) -> Interval:
    """An extrapolated LC interval: clipped to the score's range [-1, 1] and marked (SPEC "Length control")."""

    def clip(v: float) -> float:
        return min(1.0, max(-1.0, v)) if math.isfinite(v) else (-1.0 if v < 0 else 1.0)

    return Interval(estimate=clip(iv.estimate), ci_low=clip(iv.ci_low), ci_high=clip(iv.ci_high), extrapolated=True)


def _judge_check(results: Sequence[CheckResult], planned: int | None) -> JudgeCheckResult:
    """SPEC's truncation check (the blocking one): n = checks readable in both orders; pass rate over
    every check that ran (unreadable ones fail). `by_kind`: every kind that ran, truncation included."""
    kinds: dict[str, list[CheckResult]] = defaultdict(list)
    for c in results:
        kinds[c.kind].append(c)
    by_kind = {}
    for kind in sorted(kinds):
        rs = kinds[kind]
        k_n = sum(c.readable for c in rs)
        by_kind[kind] = KindCheckResult(
            n=k_n,
            pass_rate=sum(c.passed for c in rs) / len(rs) if k_n else None,
            n_unreadable=len(rs) - k_n,
            blocking=kind == "truncate",
        )
    blocking = kinds.get("truncate", [])
    n = sum(c.readable for c in blocking)
    unreadable = len(blocking) - n
    passed = sum(c.passed for c in blocking)
    ran = n + unreadable
    return JudgeCheckResult(
        n=n,
        pass_rate=passed / ran if n else None,
        n_planned=planned,
        n_unreadable=unreadable if (unreadable or planned is not None) else None,
        by_kind=by_kind if set(by_kind) - {"truncate"} else None,
    )


@dataclass
class _Decided:
    label: VerdictLabel
    reasons: list[str]
    raw: Interval | None
    lc: Interval | None
    saving: Interval | None
    samples_needed: int | None
    bca_fallback: bool


def _needed(
    boot: _Boot,
    raw: Interval,
    lc: Interval,
    n_prompts: int,
    alpha: float,
    settings: Settings,
    jc: JudgeCheckResult | None,
) -> tuple[int | None, str, str | None]:
    """SPEC's samples_needed: (prompts, the statistic it is computed from, why there is none)."""
    m = settings.margin
    if judge_check_blocks(jc):
        return None, "raw", None  # decide() says more pairs will not help until the check passes
    lc_blocks = raw.ci_low > -m and lc.ci_low <= -m
    basis = "length-controlled" if lc_blocks else "raw"
    if lc_blocks and boot.lc_extrapolated:
        return (
            None,
            basis,
            (
                "more of the same prompts would not settle it: what would is pairs where the candidate's answer is "
                "about as long as the baseline's (e.g. a length cap or instruction), so quality can be told apart "
                "from length"
            ),
        )
    est, se = (lc.estimate, boot.se[1]) if lc_blocks else (raw.estimate, boot.se[0])
    need = samples_needed(est, se, n_prompts, m, alpha)
    if need is None:
        if est <= -m:
            return (
                None,
                basis,
                (
                    f"the {basis} estimate {est:+.3f} is already at or past -{m:g}: more prompts "
                    "would make a NO_GO more likely, not a GO"
                ),
            )
        return None, basis, None
    need = max(MIN_PAIRS, need)
    if need <= n_prompts:
        why = "more of the same data would not settle it: " + (
            "at equal length the candidate's quality is what keeps the interval below the margin; what would "
            "settle it is a candidate whose answers are as long as the baseline's, or a judge less swayed by "
            "length"
            if lc_blocks
            else f"the {n_prompts} prompts in hand already exceed what the power formula (80% power at the estimate) "
            "asks for; the interval still reaches past the margin, so the estimate is close to it: re-run with "
            "new prompts (another seed or a later traffic window) or accept that the difference is near the margin"
        )
        return None, basis, why
    return need, basis, None


def _decide_at(
    boot: _Boot | None,
    data: _Judged,
    alpha: float,
    settings: Settings,
    jc: JudgeCheckResult | None,
    jc_ignored: JudgeCheckResult | None = None,
    tools: ins.TypeInstruments | None = None,
    human: HumanAgreement | None = None,
    length_control: bool = True,
    seq: sq.SequentialResult | None = None,
) -> _Decided:
    raw = lc = save = None
    fallback = False
    need: int | None = None
    basis, why_not = "raw", None
    saving_est: float | None = None
    n_prompts = data.n_clusters
    if boot is not None:
        raw, f1 = _interval(boot.samples[0], boot.estimate[0], boot.jackknife[0], alpha, settings.ci)
        lc, f2 = _interval(boot.samples[1], boot.estimate[1], boot.jackknife[1], alpha, settings.ci)
        if not length_control:  # decided by agreement checks: no length control, the raw interval decides
            lc = raw
        elif boot.lc_extrapolated:
            lc = _clipped(lc)
        fallback = f1 or f2
        if boot.cost_known:
            save, _ = _interval(boot.samples[2], boot.estimate[3], boot.jackknife[2], alpha, settings.ci)
            saving_est = save.estimate
        need, basis, why_not = _needed(boot, raw, lc, n_prompts, alpha, settings, jc)
    ev = Evidence(
        n=n_prompts,
        margin=settings.margin,
        alpha=alpha,
        raw=raw,
        lc=lc,
        judge_check=jc,
        saving=saving_est,
        samples_needed=need,
        needed_basis=basis,
        needed_why_not=why_not,
        n_pairs=int(data.scores.size),
        lc_extrapolated=bool(boot is not None and boot.lc_extrapolated and length_control),
        judge_check_ignored=jc_ignored,
        length_control=length_control,
        gates=tuple(
            GateEvidence(g.name, g.baseline_rate, g.candidate_rate, g.interval(alpha), settings.check_margin)
            for g in (tools.gates if tools is not None else [])
        ),
        human=human,
        sequential=(seq.decided_by or "none") if seq is not None else None,
        sequential_words=_sequential_words(seq, alpha) if seq is not None else "",
    )
    if seq is not None:
        why = (
            "the sequential test is still undecided: a larger per_type continues it (the prompts already judged "
            "are kept)"
            if seq.decided_by is None
            else None
        )
        ev = replace(ev, samples_needed=None, needed_why_not=why)
    label, reasons = decide(ev)
    budget = settings.max_usd_per_request
    if budget is not None and boot is not None and boot.cost_known:
        per_request = candidate_usd_per_request(data)
        if per_request > budget:
            label = "NO_GO"
            reasons.insert(
                0,
                f"over budget: the candidate costs ${per_request:.6g} per request, above max_usd_per_request "
                f"${budget:g} (the cost gate fails whatever the quality)",
            )
    return _Decided(
        label=label,
        reasons=reasons,
        raw=raw,
        lc=lc if length_control else None,
        saving=save,
        samples_needed=need if label == "INCONCLUSIVE" else None,
        bca_fallback=fallback,
    )


def _sequential_words(seq: sq.SequentialResult, alpha: float) -> str:
    bar = f"1/alpha = {1 / alpha:.3g}"
    if seq.decided_by is None:
        return (
            f"sequential test (anytime-valid, alpha {alpha:.4g}) undecided after all {seq.n} prompts: "
            f"largest e-value {seq.e_value:.3g} < {bar}"
        )
    what = "not worse than the margin" if seq.decided_by == "GO" else "worse by more than the margin"
    return (
        f"sequential test (anytime-valid, alpha {alpha:.4g}): {seq.decided_by} at prompt {seq.stopped_at} of "
        f"{seq.n} (e-value {seq.e_value:.3g} >= {bar}): {what}, valid under optional stopping"
    )


def sequential_decision(
    pairs: list[Pair],
    results: list[PairResult],
    settings: Settings,
    prompt_type: str,
    n_tests: int,
    recorded: Sequence[str] | None,
    scale: float | None = None,
) -> str | None:
    """Where a live --sequential run stands for one candidate x type: "GO" / "NO_GO" once its test has
    decided on the prompts in hand (in their fixed order), else None. The same test the analysis replays."""
    alpha = settings.alpha / (n_tests if settings.correction != "none" else 1)
    margin = settings.for_type(prompt_type).margin
    _, result = _sequential_prefix(pairs, results, margin, alpha, settings.seed, prompt_type, recorded, scale)
    return result.decided_by


def _sequential_prefix(
    pairs: list[Pair],
    results: list[PairResult],
    margin: float,
    alpha: float,
    seed: int,
    prompt_type: str,
    recorded: Sequence[str] | None,
    scale: float | None = None,
) -> tuple[tuple[list[Pair], list[PairResult]], sq.SequentialResult]:
    """The sequential test over a type's prompts (clusters) in their fixed order (`recorded`, else the seeded
    one), and the pairs of the prompts up to where it stopped. A prompt's score is the weighted mean of its
    usable pairs; a prompt that was tried and failed is skipped (as the fixed-n analysis excludes it). With a
    recorded order the test reads only the prompts before the first one never tried (a killed look leaves
    gaps: what finished first must not decide). `scale`: the sample's largest cluster weight (recorded
    before any verdict); else the largest among these pairs (the whole sample, in a fixed-n run)."""
    clusters = list(dict.fromkeys(r.cluster for r in results))
    present = set(clusters)
    if recorded:
        order = list(dict.fromkeys(recorded))
        known = set(order)
        order += sq.fixed_order([c for c in clusters if c not in known], seed, prompt_type)
        gap = next((i for i, c in enumerate(order) if c not in present), len(order))
        considered = order[:gap]
    else:
        order = sq.fixed_order(clusters, seed, prompt_type)
        considered = order
    totals: dict[str, list[float]] = {}
    for r in results:
        if r.score is not None and r.error is None:
            acc = totals.setdefault(r.cluster, [0.0, 0.0])
            acc[0] += r.weight * r.score
            acc[1] += r.weight
    if scale is None:
        scale = max((v[1] for v in totals.values()), default=1.0)
    usable = [c for c in considered if c in totals]
    result = sq.run(
        [totals[c][0] / totals[c][1] for c in usable],
        margin,
        alpha,
        weights=[totals[c][1] for c in usable],
        scale=scale,
    )
    result = replace(result, n=len(order))  # the type's prompts (a recorded order holds the whole sample)
    if result.decided_by is not None:
        last = order.index(usable[result.stopped_at - 1])
        kept = set(order[: last + 1])
        keep = [i for i, r in enumerate(results) if r.cluster in kept]
        return ([pairs[i] for i in keep], [results[i] for i in keep]), result
    return (pairs, results), result


def _most_common(counts: Counter[str]) -> str | None:
    """The most frequent name; ties go to the name seen first (Counter keeps insertion order)."""
    return counts.most_common(1)[0][0] if counts else None


def analyze(pairs: Sequence[Pair], checks: Sequence[Check] | None, settings: Settings, **kw: Any) -> Verdict:
    """The verdict of SPEC "Statistics" for these pairs (and judge checks, None when none ran); the
    keywords are `analyze_run`'s."""
    return analyze_run(pairs, checks, settings, **kw).verdict


def analyze_run(
    pairs: Sequence[Pair],
    checks: Sequence[Check] | None,
    settings: Settings,
    *,
    run_id: str,
    baseline: str | None = None,
    candidate: str | None = None,
    judge: str | None = None,
    eval_cost_usd: float | None = None,
    monthly_volume: Mapping[str, float | None] | None = None,
    aborted: str | None = None,
    planned_checks: Mapping[str, int] | None = None,
    labels: Mapping[str, str] | None = None,
    candidates: Sequence[Mapping[str, Any]] | None = None,
    sequential_order: Mapping[str, Sequence[str]] | None = None,
    eval_cost_realtime_usd: float | None = None,
    sequential_scale: Mapping[str, float] | None = None,
) -> Analysis:
    """The verdict with the per-pair and per-check results it rests on.

    `checks`: the judge checks that ran (None: none ran). With `settings.judge_check` false they are
    still reported, but do not block. `planned_checks`: per type, how many checks the run planned
    (run.json); a type with fewer readable checks than min(10, planned) cannot GO. `labels`: people's
    verdicts per pair_id ("baseline" / "candidate" / "tie", from `equiv calibrate RUN --labels`): each
    type gets `human_agreement`, and one where the judge agrees with people too rarely cannot GO.
    `candidates`: the run's candidate configurations in order (run.json's `candidates`: name, model ...);
    pairs name theirs in `candidate_name` (none: the first). With more than one, every candidate x type
    is one test for `correction`, and `recommended` names the cheapest GO per type (SPEC "Candidates").
    """
    wanted = set(settings.types) if settings.types else None
    if wanted is not None:
        pairs = [p for p in pairs if p.prompt_type in wanted]
    cand_info = _candidate_order(pairs, candidates)
    first = cand_info[0]["name"] if cand_info else None
    several = len(cand_info) > 1
    groups: dict[str | None, list[Pair]] = {c["name"]: [] for c in cand_info} if cand_info else {None: []}
    for p in pairs:
        groups.setdefault(p.candidate_name or first, []).append(p)

    all_results: list[PairResult] = []
    calibration: dict[tuple[str | None, str], Calibration] = {}
    by_unit: dict[tuple[str | None, str], tuple[list[Pair], list[PairResult]]] = {}
    for c, group in groups.items():
        results, cal_by_type = pair_results(group, settings.judge_calibration, settings.checks_for)
        all_results.extend(results)
        calibration.update({(c, t): v for t, v in cal_by_type.items()})
        by_type = _by_type(group, results)
        for t in wanted or ():
            by_type[t]
        for t in sorted(by_type):
            by_unit[(c, t)] = by_type[t]
    units = sorted(by_unit, key=lambda u: (list(groups).index(u[0]), u[1]))
    type_names = sorted({t for _, t in units})
    seq: dict[tuple[str | None, str], sq.SequentialResult] = {}
    seq_level: dict[tuple[str | None, str], float] = {}
    if settings.sequential:  # each type's prompts in their fixed order, up to where the sequential test stopped
        for u in units:
            k_tests = len(units) if settings.correction != "none" else 1
            seq_level[u] = settings.alpha / k_tests
            recorded = (sequential_order or {}).get(u[1])
            scale = (sequential_scale or {}).get(u[1])
            by_unit[u], seq[u] = _sequential_prefix(
                *by_unit[u], settings.for_type(u[1]).margin, seq_level[u], settings.seed, u[1], recorded, scale
            )
    views = {t: settings.for_type(t) for t in type_names}  # each type's own margin, check_margin ...
    # a type decided by agreement checks applies no length control (SPEC "Length control")
    length_control = {t: not any(not c.gate for c in settings.checks_for(t)) for t in type_names}
    checked = check_results([c for c in checks or () if wanted is None or c.prompt_type in wanted])
    checks_by_type: dict[str, list[CheckResult]] = defaultdict(list)
    for chk in checked:
        checks_by_type[chk.prompt_type].append(chk)

    judged = {u: _collect(u[1], *by_unit[u]) for u in units}
    boots = {u: _bootstrap(d, views[u[1]]) if d.scores.size else None for u, d in judged.items()}
    tools = {
        u: ins.summarize(d.inst_rows, d.n_clusters, seed=settings.seed, key=u[1], n_boot=settings.bootstrap)
        for u, d in judged.items()
    }
    humans = {u: _human_agreement(by_unit[u][1], labels, settings, u[1]) for u in units} if labels else {}
    ran: dict[str, JudgeCheckResult | None] = {}  # the judge check reads baseline answers: one per type
    for t in type_names:
        planned = planned_checks.get(t) if planned_checks is not None else None
        ran[t] = _judge_check(checks_by_type[t], planned) if checks_by_type[t] or planned else None
    required = settings.judge_check
    jcs = {t: ran[t] if required else None for t in type_names}
    ignored = {t: None if required else ran[t] for t in type_names}

    def label_of(u: tuple[str | None, str]) -> str:  # a test's name in Holm's order and in reasons
        return f"{u[1]} ({u[0]})" if several else u[1]

    def decided(u: tuple[str | None, str], level: float) -> _Decided:
        t = u[1]
        return _decide_at(
            boots[u],
            judged[u],
            level,
            views[t],
            jcs[t],
            ignored[t],
            tools[u],
            humans.get(u),
            length_control[t],
            seq.get(u),
        )

    tests = {label_of(u): u for u in units}
    k = len(units)
    stopped: str | None = None
    not_reached: tuple[str, ...] = ()
    if settings.correction == "bonferroni" or (settings.sequential and settings.correction == "holm"):
        levels = bonferroni_levels(list(tests), settings.alpha)
    elif settings.correction == "holm":
        pvals = {name: (b.p_value if (b := boots[u]) is not None else 1.0) for name, u in tests.items()}

        def passes(name: str, level: float) -> bool:
            return decided(tests[name], level).label == "GO" and aborted is None

        holm = holm_levels(pvals, settings.alpha, passes)
        levels, stopped, not_reached = holm.levels, holm.stopped, holm.not_reached
    else:
        levels = {name: settings.alpha for name in tests}
    over = f"{k} candidate x prompt-type tests" if several else f"{k} prompt-types"

    verdicts: dict[tuple[str | None, str], TypeVerdict] = {}
    notes: list[str] = []
    for name, u in tests.items():
        t = u[1]
        data, boot, jc, level = judged[u], boots[u], jcs[t], levels[name]
        n = int(data.scores.size)
        d = decided(u, level)
        label, reasons = d.label, list(d.reasons)
        if settings.correction != "none" and k > 1:
            how: str = settings.correction
            if settings.sequential and how == "holm":
                how = "Bonferroni: with --sequential, holm's step-down is replaced by its first step"
            reasons.append(f"tested at alpha {level:.4g} ({how} correction over {over})")
        if label == "GO" and name in not_reached:
            label = "INCONCLUSIVE"
            reasons.insert(0, f"Holm's procedure stopped at '{stopped}', so this prompt-type cannot be GO")
        if aborted is not None and label == "GO":
            label = "INCONCLUSIVE"
            reasons.insert(0, f"the run was aborted ({aborted}): results are partial, so no GO")
        if checks is not None and required and ran[t] is None:
            reasons.append("(no judge check was sampled for this prompt-type)")
        if d.bca_fallback:
            reasons.append("BCa interval degenerate (e.g. no spread in the scores): percentile interval used")
        if data.n_failed:
            reasons.append(f"{data.n_failed} pair(s) failed or had no readable verdict and were excluded")
        if data.n_one_order:
            reasons.append(
                f"{data.n_one_order} of {n} pairs were judged in one order only (the other order's "
                "verdict could not be read): the judge's position bias is not cancelled in those"
            )
        if boot is not None and not boot.length_known:
            reasons.append("answer texts are missing: length control could not be applied (LC equals raw)")
        if boot is not None and 0 < boot.cost_known < n:
            reasons.append(f"cost known for {boot.cost_known} of {n} pairs: cost figures use those pairs only")
        cal = calibration.get(u)
        if cal is not None and cal.n_pairs < n:
            reasons.append(
                f"judge calibration applied to {cal.n_pairs} of {n} pairs (the others lack the "
                f"judge's logprobs in both orders: their verdicts are the judge's own words)"
            )
        if label != d.label:
            d.samples_needed = None
        tv = _type_verdict(
            data, boot, d, label, reasons, ran[t] if not required else jc, level, monthly_volume, views[t]
        )
        if tv.judge_check is not None and not required:
            tv.judge_check = tv.judge_check.model_copy(update={"required": False})
        if tv.diagnostics is not None:
            tv.diagnostics.calibration = cal
        _add_instruments(tv, tools[u], level, views[t], settings.checks_for(t), data)
        tv.judges, tv.panel_agreement = _panel(by_unit[u][0], by_unit[u][1], settings, t)
        tv.human_agreement = humans.get(u)
        if views[t].margin != settings.margin:
            tv.margin = views[t].margin
        if tv.judge_check is not None and tv.judge_check.by_kind:
            tv.reasons.extend(_sensitivity_words(tv.judge_check))
        if u in seq:
            r = seq[u]
            tv.sequential = SequentialSummary(
                stopped_at=r.stopped_at, decided_by=r.decided_by, e_value=r.e_value, n_available=r.n, alpha=seq_level[u]
            )
        verdicts[u] = tv

    n_cal = sum(c.n_pairs for c in calibration.values())
    if n_cal:
        changed = sum(c.changed for c in calibration.values())
        notes.append(
            f"the verdicts of {n_cal} pair(s) judged in both orders are position-calibrated from the "
            f"judge's logprobs (judge_calibration = position): {changed} of their {2 * n_cal} verdicts "
            f"differ from the word the judge wrote; judge checks use the judge's own words"
        )
    first_units = [u for u in units if u[0] == (first if cand_info else None)]
    first_verdicts = [verdicts[u] for u in first_units]
    top = overall(v.verdict for v in first_verdicts)
    if not units:
        notes.append("no pairs to analyze")
    first_judged = [judged[u] for u in first_units]
    found_b, found_c, found_j = (_most_common(sum((d.models[i] for d in first_judged), Counter())) for i in range(3))
    verdict = Verdict(
        run_id=run_id,
        baseline=baseline or found_b or settings.baseline or "",
        candidate=candidate or found_c or (cand_info[0]["model"] if cand_info else "") or "",
        judge=judge or found_j or settings.judge_label,
        margin=settings.margin,
        alpha=settings.alpha,
        correction=settings.correction,
        bootstrap=settings.bootstrap,
        seed=settings.seed,
        eval_cost_usd=eval_cost_usd,
        verdict=top,
        prompt_types=first_verdicts,
        ci_method=settings.ci,
        aborted=aborted,
        notes=notes,
    )
    if cand_info and (several or _configured(cand_info[0])):
        verdict.candidates = [
            CandidateVerdict(
                **{**info, "verdict": overall(verdicts[u].verdict for u in units if u[0] == info["name"])},
                prompt_types=[verdicts[u] for u in units if u[0] == info["name"]],
            )
            for info in cand_info
        ]
        verdict.recommended = recommend(verdict.candidates, type_names)
        if several and settings.correction == "none":
            verdict.notes.append(
                f"{len(cand_info)} candidates were compared with correction = none: picking the best of several "
                "raises the chance of a false GO; set correction = holm (or bonferroni) to control it over every "
                "candidate x prompt-type test"
            )
    if eval_cost_usd is not None:
        verdict.eval_cost = _eval_cost(
            verdict, eval_cost_usd, len(pairs), seq, settings.samples_per_prompt, eval_cost_realtime_usd
        )
    by_id = {r.pair_id: r for r in all_results}  # in the order of the input pairs, whatever the candidates
    ordered = [by_id[p.pair_id] for p in pairs if p.pair_id in by_id]
    return Analysis(verdict=verdict, pairs=ordered if len(ordered) == len(all_results) else all_results, checks=checked)


def _eval_cost(
    verdict: Verdict,
    usd: float,
    bought: int,
    seq: Mapping[tuple[str | None, str], sq.SequentialResult],
    samples: int = 1,
    realtime_usd: float | None = None,
) -> EvalCost:
    """The eval-cost line: what the run spent; what the fixed-n design (every sampled prompt of every
    candidate x type, bought in real time) would have spent, scaling this run's spend per pair bought; and
    the spend as a share of the first month's projected saving of the types that can switch (GO: the
    recommended candidate's, with several)."""
    fixed = max(bought, sum(r.n for r in seq.values()) * samples) if seq else bought
    base = realtime_usd if realtime_usd is not None else usd  # --batch: the same calls at real-time prices
    fixed_usd = base * fixed / bought if bought else base
    saving = 0.0
    any_go = False
    views = {tv.prompt_type: tv for tv in verdict.prompt_types}
    if verdict.candidates is not None and verdict.recommended is not None:
        by_name = {c.name: {tv.prompt_type: tv for tv in c.prompt_types} for c in verdict.candidates}
        views = {t: by_name[n][t] for t, n in verdict.recommended.items() if n is not None and t in by_name.get(n, {})}
    for tv in views.values():
        if tv.verdict == "GO" and tv.cost is not None and tv.cost.monthly_saving_usd is not None:
            saving += tv.cost.monthly_saving_usd
            any_go = True
    return EvalCost(
        usd=usd,
        fixed_n_realtime_usd=round(fixed_usd, 6),
        pairs_bought=bought,
        pairs_fixed_n=fixed,
        first_month_saving_usd=saving if any_go else None,
        share_of_first_month_saving=usd / saving if any_go and saving > 0 else None,
    )


_CANDIDATE_KEYS = ("name", "model", "params", "system_prompt_sha256", "last_turns")


def _candidate_order(pairs: Sequence[Pair], candidates: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The candidates in the run's order (as given, else as the pairs name them, unnamed first), each as
    verdict.json describes it. Empty: a single-candidate run whose pairs name none."""
    out = [{k: c[k] for k in _CANDIDATE_KEYS if c.get(k) is not None} for c in candidates or ()]
    known = {c["name"] for c in out}
    for p in pairs:
        if p.candidate_name is not None and p.candidate_name not in known:
            model = p.candidate.model if p.candidate is not None else p.candidate_name
            out.append({"name": p.candidate_name, "model": model})
            known.add(p.candidate_name)
    if out and any(p.candidate_name is None for p in pairs) and candidates is None:
        model = next((p.candidate.model for p in pairs if p.candidate_name is None and p.candidate), "")
        out.insert(0, {"name": model or "candidate", "model": model})
    return out


def _configured(info: Mapping[str, Any]) -> bool:
    """A candidate that is more than a model name: a [[candidates]] entry with its own name, prompt or params."""
    return info.get("name") != info.get("model") or any(info.get(k) is not None for k in _CANDIDATE_KEYS[2:])


def recommend(cands: Sequence[CandidateVerdict], types: Sequence[str]) -> dict[str, str | None]:
    """Per prompt-type, the cheapest candidate whose verdict is GO (cost per request; the first listed when
    costs are unknown or equal); None when no candidate is GO."""
    out: dict[str, str | None] = {}
    for t in types:
        best: tuple[float, int, str] | None = None
        for i, c in enumerate(cands):
            tv = next((v for v in c.prompt_types if v.prompt_type == t), None)
            if tv is None or tv.verdict != "GO":
                continue
            price = tv.cost.candidate_usd_per_request if tv.cost is not None else math.inf
            if best is None or (price, i) < best[:2]:
                best = (price, i, c.name)
        out[t] = best[2] if best is not None else None
    return out


def _add_instruments(
    tv: TypeVerdict,
    tools: ins.TypeInstruments,
    level: float,
    view: Settings,
    checks: Sequence[Any],
    data: _Judged,
) -> None:
    """verdict.json's per-type instrument fields: checks (gates at the tested level), agreement_rate, n_judged."""
    if checks:
        tv.checks = [ins.gate_summary(g, level, view.check_margin) for g in tools.gates] + tools.agreements
    tv.agreement_rate = tools.agreement_rate
    tv.n_judged = int(data.scores.size) - data.n_decided
    if data.n_decided:
        what = "agree under every agreement check of this type" if checks else "are identical"
        if any(not c.gate for c in checks):
            what = "are identical or agree under every agreement check of this type"
        tv.reasons.append(
            f"{data.n_decided} of {data.scores.size} pairs {what}: they score 0 with no judge call "
            f"({tv.n_judged} went to the judge)"
        )


_CATEGORY = {-1.0: 0, 0.0: 1, 1.0: 2}  # a verdict's category for agreement between judges: baseline / tie / candidate


def _panel(
    pairs: Sequence[Pair], results: Sequence[PairResult], settings: Settings, prompt_type: str
) -> tuple[dict[str, JudgeDiagnostics] | None, Interval | None]:
    """Per-judge diagnostics and Fleiss' kappa across judges, when more than one judge judged this type."""
    from equiv.notes import model_family
    from equiv.stats.agreement import panel_kappa

    verdicts: dict[tuple[str, str], dict[str, float]] = {}  # (pair, order) -> judge -> score (words written)
    clusters: dict[str, str] = {}
    failures: Counter[str] = Counter()
    for p, r in zip(pairs, results, strict=True):
        for f in p.judge_failures:
            failures[f.judge] += 1
        if r.score is None or r.decided_by is not None:
            continue
        clusters[p.pair_id] = r.cluster
        for j in p.judgments:
            sc = judgment_score(j)
            if sc is not None:
                verdicts.setdefault((p.pair_id, j.order), {}).setdefault(j.judge, sc)
    names = sorted({name for v in verdicts.values() for name in v})
    if len(names) < 2:
        return None, None
    cand_model = next((p.candidate.model for p in pairs if p.candidate is not None and p.candidate.model), None)
    cand_model = cand_model or next(iter(settings.candidate_models), None)
    families = {role: model_family(m) for role, m in (("baseline", settings.baseline), ("candidate", cand_model)) if m}
    out: dict[str, JudgeDiagnostics] = {}
    for name in names:
        mine = {k: v[name] for k, v in verdicts.items() if name in v}
        per_pair: dict[str, list[float]] = {}
        orders: dict[str, dict[str, float]] = {}
        for (pid, order), sc in mine.items():
            per_pair.setdefault(pid, []).append(sc)
            orders.setdefault(pid, {})[order] = sc
        both = [o for o in orders.values() if len(o) == 2]
        decisive = [(order, sc) for (_pid, order), sc in mine.items() if sc != 0]
        a_wins = sum((order == FIRST) == (sc < 0) for order, sc in decisive)
        agree = n_cmp = 0
        for key, sc in mine.items():
            others = Counter(v for jn, v in verdicts[key].items() if jn != name)
            if others:
                top = others.most_common(2)
                if len(top) == 1 or top[0][1] > top[1][1]:
                    n_cmp += 1
                    agree += top[0][0] == sc
        out[name] = JudgeDiagnostics(
            n_judgments=len(mine),
            n_failures=failures[name],
            quality_diff=float(np.mean([np.mean(v) for v in per_pair.values()])) if per_pair else None,
            position_a_share=a_wins / len(decisive) if decisive else None,
            position_consistency=sum(o[FIRST] == o[SECOND] for o in both) / len(both) if both else None,
            tie_rate=sum(sc == 0 for sc in mine.values()) / len(mine) if mine else None,
            agreement_with_panel=agree / n_cmp if n_cmp else None,
            same_family_as=[role for role, fam in families.items() if model_family(name) == fam],
        )
    ratings = [
        (clusters[pid], [_CATEGORY[v[n]] for n in names])
        for (pid, _order), v in sorted(verdicts.items())
        if all(n in v for n in names)
    ]
    kappa = panel_kappa(ratings, seed=settings.seed, key=prompt_type, n_boot=settings.bootstrap, alpha=settings.alpha)
    return out, kappa


def _human_agreement(
    results: Sequence[PairResult], labels: Mapping[str, str], settings: Settings, prompt_type: str
) -> HumanAgreement | None:
    items = [
        Labelled(cluster=r.cluster, score=r.score, gold=labels[r.pair_id], consistent=r.consistent)  # type: ignore[arg-type]
        for r in results
        if r.score is not None and r.pair_id in labels and labels[r.pair_id] in ("baseline", "candidate", "tie")
    ]
    if not items:
        return None
    return human_agreement(items, seed=settings.seed, key=prompt_type, n_boot=settings.bootstrap, alpha=settings.alpha)


_KIND_WORDS = {
    "truncate": "a truncated copy",
    "drop_sentence": "a copy missing a sentence",
    "number": "a copy with a changed number or name",
    "label": "a wrong label",
    "broken_json": "a copy with broken JSON",
    "pad": "a copy padded with irrelevant filler",
}


def _sensitivity_words(jc: JudgeCheckResult) -> list[str]:
    """Cautions for the graded judge-check kinds (they never block a GO: only truncation does)."""
    out = []
    for kind, k in (jc.by_kind or {}).items():
        if k.blocking or k.pass_rate is None or k.pass_rate >= JUDGE_CHECK_MIN_PASS:
            continue
        what = _KIND_WORDS.get(kind, kind)
        told = (
            "did not prefer the padded copy in either order"
            if kind == "pad"
            else "preferred the intact answer in both orders"
        )
        out.append(
            f"caution: judge sensitivity '{kind}': against {what} the judge {told} in only "
            f"{k.pass_rate:.0%} of {k.n + k.n_unreadable} checks (below {JUDGE_CHECK_MIN_PASS:.0%}); "
            "this kind does not block a GO, but differences of this kind may go unseen"
        )
    return out


def _weighted_mean(values: FloatArray, weights: FloatArray) -> float:
    return float(np.sum(values * weights) / np.sum(weights))


def _cost_means(data: _Judged) -> tuple[float, float]:
    """Traffic-weighted mean cost per request of (baseline, candidate), over the pairs with both costs."""
    known = ~(np.isnan(data.cost_b) | np.isnan(data.cost_c))
    w = data.weights[known]
    return _weighted_mean(data.cost_b[known], w), _weighted_mean(data.cost_c[known], w)


def candidate_usd_per_request(data: _Judged) -> float:
    return _cost_means(data)[1]


def _type_verdict(
    data: _Judged,
    boot: _Boot | None,
    d: _Decided,
    label: VerdictLabel,
    reasons: list[str],
    jc: JudgeCheckResult | None,
    level: float,
    monthly_volume: Mapping[str, float | None] | None,
    view: Settings | None = None,
) -> TypeVerdict:
    n = int(data.scores.size)
    cost: CostSummary | None = None
    mean_chars: dict[str, float] | None = None
    diagnostics = Diagnostics(
        n_judgments=data.n_judgments,
        n_judge_failures=data.n_judge_failures,
        position_a_share=data.n_position_a / data.n_decisive if data.n_decisive else None,
    )
    w = data.weights
    win_or_tie = float(np.sum(w * (data.scores >= 0)) / np.sum(w)) if n else None
    if boot is not None:
        if boot.cost_known and d.saving is not None:
            base, cand = _cost_means(data)
            volume = monthly_volume.get(data.prompt_type) if monthly_volume else None
            monthly = costs.monthly_projection(volume, base, cand) if volume is not None else None
            cost = CostSummary(
                baseline_usd_per_request=base,
                candidate_usd_per_request=cand,
                saving=d.saving,
                monthly_requests=volume,
                monthly_saving_usd=monthly,
            )
            if view is not None and view.max_usd_per_request is not None:
                cost.max_usd_per_request = view.max_usd_per_request
                cost.over_budget = cand > view.max_usd_per_request
            if view is not None and view.calls_per_task is not None:
                calls = view.calls_per_task
                cost.calls_per_task = calls
                cost.baseline_usd_per_task = base * calls
                cost.candidate_usd_per_task = cand * calls
                if win_or_tie:
                    cost.candidate_quality_adjusted_usd_per_task = cand * calls / win_or_tie
        if boot.length_known:
            ok = ~(np.isnan(data.base_chars) | np.isnan(data.cand_chars))
            mean_chars = {
                "baseline": _weighted_mean(data.base_chars[ok], w[ok]),
                "candidate": _weighted_mean(data.cand_chars[ok], w[ok]),
            }
        slope = boot.estimate[2]
        diagnostics.length_slope = slope if np.isfinite(slope) and not boot.lc_extrapolated else None
    return TypeVerdict(
        prompt_type=data.prompt_type,
        n=n,
        n_failed=data.n_failed,
        verdict=label,
        reasons=reasons,
        quality_diff=d.raw,
        lc_quality_diff=d.lc,
        win_rate=(1.0 + d.raw.estimate) / 2.0 if d.raw is not None else None,
        tie_rate=data.n_ties / data.n_judgments if data.n_judgments else None,
        position_consistency=data.n_consistent / data.n_both_orders if data.n_both_orders else None,
        judge_check=jc,
        mean_chars=mean_chars,
        cost=cost,
        samples_needed=d.samples_needed if label == "INCONCLUSIVE" else None,
        alpha_tested=level,
        n_prompts=data.n_clusters,
        diagnostics=diagnostics,
        win_or_tie_rate=win_or_tie,
    )


def quality_draws(pairs: Sequence[Pair], settings: Settings) -> dict[str, FloatArray]:
    """Per prompt-type, the cluster-bootstrap draws of the raw quality difference (SPEC's resamples).

    For comparisons between two runs (nightly regression): the same seeded resamples `analyze` uses.
    """
    results, _ = pair_results(pairs, settings.judge_calibration)
    by_type = _by_type(pairs, results)
    out: dict[str, FloatArray] = {}
    for t in sorted(by_type):
        data = _collect(t, *by_type[t])
        if data.scores.size:
            out[t] = _bootstrap(data, settings).samples[0]
    return out
