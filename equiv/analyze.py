"""analyze(pairs, checks, settings) -> Verdict: the statistics of SPEC, from pairs.jsonl records alone.

Pure: no I/O, no model calls, so `equiv report` can re-decide a finished run with a new margin, alpha
or correction. Per prompt-type: pair scores -> one set of cluster-bootstrap resamples -> raw and
length-controlled intervals and the cost saving interval (all from the same resamples) -> the
multiplicity level -> the decision and its reasons.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from equiv import cost as costs
from equiv.config import Settings
from equiv.schema import (
    Calibration,
    Check,
    CostSummary,
    Diagnostics,
    Interval,
    JudgeCheckResult,
    Judgment,
    Pair,
    TypeVerdict,
    Verdict,
    VerdictLabel,
)
from equiv.stats import bootstrap as bs
from equiv.stats.calibrate import calibrate
from equiv.stats.decide import Evidence, bonferroni_levels, decide, holm_levels, overall, samples_needed
from equiv.stats.length import length_covariate, ols_from_sums

FloatArray = bs.FloatArray

# Candidate's score for each (order, winner): in "baseline_first" answer A is the baseline.
_SCORES: dict[tuple[str, str], float] = {
    ("baseline_first", "A"): -1.0,
    ("baseline_first", "B"): 1.0,
    ("baseline_first", "tie"): 0.0,
    ("candidate_first", "A"): 1.0,
    ("candidate_first", "B"): -1.0,
    ("candidate_first", "tie"): 0.0,
}


def judgment_score(j: Judgment) -> float | None:
    """+1 candidate preferred, -1 baseline preferred, 0 tie; None for an order this analysis cannot map."""
    return _SCORES.get((j.order, j.winner))


def pair_score(pair: Pair) -> float | None:
    """Mean over the pair's judgments (both orders, or a panel); None when it has none usable."""
    scores = [s for s in map(judgment_score, pair.judgments) if s is not None]
    return sum(scores) / len(scores) if scores else None


@dataclass
class _Judged:
    """The usable pairs of one prompt-type, as arrays, plus counts taken from the raw judgments."""

    prompt_type: str
    n_failed: int
    n_judge_failures: int
    scores: FloatArray
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
    models: tuple[Counter[str], Counter[str], Counter[str]]  # baseline models, candidate models, judges


def _collect(prompt_type: str, pairs: Sequence[Pair]) -> _Judged:
    """Score each pair and count judge behaviour. Sorted by (cluster, pair_id): input order never matters.

    One plain loop over the records (no per-pair containers beyond one small dict): on 20,000 pairs
    this loop is a fifth of analyze()'s time, the bootstrap itself most of the rest.
    """
    n_failed = 0
    n_judge_failures = 0
    rows: list[tuple[str, str, float, float, float, float, float]] = []
    n_judgments = n_ties = n_decisive = n_a = n_both = n_consistent = 0
    models_b: Counter[str] = Counter()
    models_c: Counter[str] = Counter()
    judges: Counter[str] = Counter()
    nan = float("nan")
    for p in pairs:
        b, c = p.baseline, p.candidate
        if b is not None and b.model:
            models_b[b.model] += 1
        if c is not None and c.model:
            models_c[c.model] += 1
        for j in p.judgments:
            if j.judge:
                judges[j.judge] += 1
        if p.judge_failures:
            n_judge_failures += len(p.judge_failures)
        if p.error is not None:
            n_failed += 1
            continue
        total = 0.0
        k = 0
        by_judge: dict[str, dict[str, float]] = {}
        for j in p.judgments:
            js = _SCORES.get((j.order, j.winner))
            if js is None:
                continue
            total += js
            k += 1
            if j.winner == "tie":
                n_ties += 1
            else:
                n_decisive += 1
                if j.winner == "A":
                    n_a += 1
            orders = by_judge.get(j.judge)
            if orders is None:
                by_judge[j.judge] = {j.order: js}
            elif j.order not in orders:
                orders[j.order] = js
        if k == 0:
            n_failed += 1
            continue
        n_judgments += k
        for orders in by_judge.values():
            if len(orders) == 2:
                n_both += 1
                n_consistent += orders["baseline_first"] == orders["candidate_first"]
        rows.append(
            (
                p.prompt_id or p.pair_id,
                p.pair_id,
                total / k,
                float(len(b.output)) if b is not None and b.output is not None else nan,
                float(len(c.output)) if c is not None and c.output is not None else nan,
                b.cost_usd if b is not None and b.cost_usd is not None else nan,
                c.cost_usd if c is not None and c.cost_usd is not None else nan,
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    names = sorted({r[0] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    col = np.array([r[2:] for r in rows], dtype=np.float64).reshape(len(rows), 5)
    return _Judged(
        prompt_type=prompt_type,
        n_failed=n_failed,
        n_judge_failures=n_judge_failures,
        scores=col[:, 0].copy(),
        codes=np.array([index[r[0]] for r in rows], dtype=np.intp),
        n_clusters=len(names),
        base_chars=col[:, 1].copy(),
        cand_chars=col[:, 2].copy(),
        cost_b=col[:, 3].copy(),
        cost_c=col[:, 4].copy(),
        n_judgments=n_judgments,
        n_ties=n_ties,
        n_decisive=n_decisive,
        n_position_a=n_a,
        n_both_orders=n_both,
        n_consistent=n_consistent,
        models=(models_b, models_c, judges),
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
    cost_known: int  # number of pairs with both costs
    estimate: tuple[float, float, float, float]  # raw, lc, slope, saving
    samples: tuple[FloatArray, FloatArray, FloatArray]  # raw, lc, saving
    jackknife: tuple[FloatArray, FloatArray, FloatArray]
    se_raw: float
    p_value: float


def _bootstrap(data: _Judged, settings: Settings) -> _Boot:
    n = data.scores.size
    has_len = ~(np.isnan(data.base_chars) | np.isnan(data.cand_chars))
    x = np.zeros(n, dtype=np.float64)
    if has_len.any():
        x[has_len] = length_covariate(data.base_chars[has_len], data.cand_chars[has_len])
    has_cost = ~(np.isnan(data.cost_b) | np.isnan(data.cost_c))
    s = data.scores
    cols = np.zeros((n, bs.N_COLUMNS), dtype=np.float64)
    cols[:, bs.COUNT] = 1.0
    cols[:, bs.S] = s
    cols[:, bs.X] = x
    cols[:, bs.SX] = s * x
    cols[:, bs.XX] = x * x
    cols[:, bs.COST_N] = has_cost
    cols[:, bs.COST_B] = np.where(has_cost, data.cost_b, 0.0)
    cols[:, bs.COST_C] = np.where(has_cost, data.cost_c, 0.0)
    sums = bs.cluster_sums(data.codes, cols, data.n_clusters)

    raw_e, lc_e, slope_e, save_e = _statistics(sums.sum(axis=0))
    rng = bs.stream_rng(settings.seed, data.prompt_type)
    totals = bs.resample_totals(sums, settings.bootstrap, rng)
    raw_b, lc_b, _, save_b = _statistics(totals)
    raw_j, lc_j, _, save_j = _statistics(bs.jackknife_totals(sums))
    if not np.any(x):  # sd == 0 or no lengths: LC is exactly the raw estimate
        lc_e, lc_b, lc_j, slope_e = raw_e, raw_b, raw_j, np.array([np.nan])
    se = float(np.std(raw_b, ddof=1)) if raw_b.size > 1 else float("nan")
    p = max(bs.share_at_or_below(raw_b, -settings.margin), bs.share_at_or_below(lc_b, -settings.margin))
    return _Boot(
        data=data,
        x=x,
        length_known=bool(has_len.any()),
        cost_known=int(has_cost.sum()),
        estimate=(float(raw_e[0]), float(lc_e[0]), float(slope_e[0]), float(save_e[0])),
        samples=(raw_b, lc_b, save_b),
        jackknife=(raw_j, lc_j, save_j),
        se_raw=se,
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


def _judge_check(checks: Sequence[Check]) -> JudgeCheckResult:
    """n = checks readable in both orders; pass = intact answer preferred in both (A then B)."""
    n = passed = 0
    for c in checks:
        if c.error is not None:
            continue
        first: dict[str, str] = {}
        for j in c.judgments:
            first.setdefault(j.order, j.winner)
        if "intact_first" in first and "degraded_first" in first:
            n += 1
            passed += first["intact_first"] == "A" and first["degraded_first"] == "B"
    return JudgeCheckResult(n=n, pass_rate=passed / n if n else None)


@dataclass
class _Decided:
    label: VerdictLabel
    reasons: list[str]
    raw: Interval | None
    lc: Interval | None
    saving: Interval | None
    samples_needed: int | None  # computed at this level whatever the label (the caller may override it)
    bca_fallback: bool


def _decide_at(
    boot: _Boot | None, n: int, alpha: float, settings: Settings, jc: JudgeCheckResult | None
) -> _Decided:
    raw = lc = save = None
    fallback = False
    need = None
    saving_est: float | None = None
    if boot is not None:
        raw, f1 = _interval(boot.samples[0], boot.estimate[0], boot.jackknife[0], alpha, settings.ci)
        lc, f2 = _interval(boot.samples[1], boot.estimate[1], boot.jackknife[1], alpha, settings.ci)
        fallback = f1 or f2
        if boot.cost_known:
            save, _ = _interval(boot.samples[2], boot.estimate[3], boot.jackknife[2], alpha, settings.ci)
            saving_est = save.estimate
        need = samples_needed(raw.estimate, boot.se_raw, n, settings.margin, alpha)
    ev = Evidence(
        n=n,
        margin=settings.margin,
        alpha=alpha,
        raw=raw,
        lc=lc,
        judge_check=jc,
        saving=saving_est,
        samples_needed=need,
    )
    label, reasons = decide(ev)
    return _Decided(
        label=label,
        reasons=reasons,
        raw=raw,
        lc=lc,
        saving=save,
        samples_needed=need,
        bca_fallback=fallback,
    )


def _most_common(counts: Counter[str]) -> str | None:
    """The most frequent name; ties go to the name seen first (Counter keeps insertion order)."""
    return counts.most_common(1)[0][0] if counts else None


def analyze(
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
) -> Verdict:
    """The verdict of SPEC "Statistics" for these pairs (and judge checks, None when none ran)."""
    wanted = set(settings.types) if settings.types else None
    if wanted is not None:
        pairs = [p for p in pairs if p.prompt_type in wanted]
    calibration: dict[str, Calibration] = {}
    scored = pairs
    if settings.judge_calibration == "position":
        scored, calibration = calibrate(pairs)
    by_type: dict[str, list[Pair]] = defaultdict(list)
    for p in scored:
        by_type[p.prompt_type].append(p)
    for t in wanted or ():
        by_type.setdefault(t, [])
    names = sorted(by_type)
    checks_by_type: dict[str, list[Check]] = defaultdict(list)
    for c in checks or ():
        checks_by_type[c.prompt_type].append(c)

    judged = {t: _collect(t, by_type[t]) for t in names}
    if calibration:  # scores from the calibrated verdicts; the judge's diagnostics from the words it wrote
        written: dict[str, list[Pair]] = defaultdict(list)
        for p in pairs:
            written[p.prompt_type].append(p)
        for t in names:
            w = _collect(t, written[t])
            judged[t] = replace(judged[t], n_ties=w.n_ties, n_decisive=w.n_decisive, n_position_a=w.n_position_a,
                                n_both_orders=w.n_both_orders, n_consistent=w.n_consistent)
    boots = {t: _bootstrap(d, settings) if d.scores.size else None for t, d in judged.items()}
    jcs = {
        t: _judge_check(checks_by_type[t]) if checks is not None and checks_by_type[t] else None
        for t in names
    }

    def n_of(t: str) -> int:
        return int(judged[t].scores.size)

    k = len(names)
    stopped: str | None = None
    not_reached: tuple[str, ...] = ()
    if settings.correction == "bonferroni":
        levels = bonferroni_levels(names, settings.alpha)
    elif settings.correction == "holm":
        pvals = {t: (b.p_value if (b := boots[t]) is not None else 1.0) for t in names}

        def passes(t: str, level: float) -> bool:
            d = _decide_at(boots[t], n_of(t), level, settings, jcs[t])
            return d.label == "GO" and aborted is None

        holm = holm_levels(pvals, settings.alpha, passes)
        levels, stopped, not_reached = holm.levels, holm.stopped, holm.not_reached
    else:
        levels = {t: settings.alpha for t in names}

    verdicts: list[TypeVerdict] = []
    notes: list[str] = []
    for t in names:
        data, boot, jc, level = judged[t], boots[t], jcs[t], levels[t]
        n = n_of(t)
        d = _decide_at(boot, n, level, settings, jc)
        label, reasons = d.label, list(d.reasons)
        if settings.correction != "none" and k > 1:
            reasons.append(
                f"tested at alpha {level:.4g} ({settings.correction} correction over {k} prompt-types)"
            )
        if label == "GO" and t in not_reached:
            label = "INCONCLUSIVE"
            reasons.insert(0, f"Holm's procedure stopped at '{stopped}', so this prompt-type cannot be GO")
        if aborted is not None and label == "GO":
            label = "INCONCLUSIVE"
            reasons.insert(0, f"the run was aborted ({aborted}): results are partial, so no GO")
        if checks is not None and jc is None:
            reasons.append("(no judge check was sampled for this prompt-type)")
        if d.bca_fallback:
            reasons.append("BCa interval degenerate (e.g. no spread in the scores): percentile interval used")
        if data.n_failed:
            reasons.append(f"{data.n_failed} pair(s) failed or had no readable verdict and were excluded")
        if boot is not None and not boot.length_known:
            reasons.append("answer texts are missing: length control could not be applied (LC equals raw)")
        if boot is not None and 0 < boot.cost_known < n:
            reasons.append(
                f"cost known for {boot.cost_known} of {n} pairs: cost figures use those pairs only"
            )
        cal = calibration.get(t)
        if cal is not None and cal.n_pairs < n:
            reasons.append(f"judge calibration applied to {cal.n_pairs} of {n} pairs (the others lack the "
                           f"judge's logprobs in both orders: their verdicts are the judge's own words)")
        tv = _type_verdict(data, boot, d, label, reasons, jc, level, monthly_volume)
        if tv.diagnostics is not None:
            tv.diagnostics.calibration = cal
        verdicts.append(tv)

    n_cal = sum(c.n_pairs for c in calibration.values())
    if n_cal:
        changed = sum(c.changed for c in calibration.values())
        notes.append(f"verdicts of {n_cal} pair(s) are position-calibrated from the judge's logprobs "
                     f"(judge_calibration = position): {changed} differ from the word the judge wrote; "
                     f"judge checks use the judge's own words")
    top = overall(v.verdict for v in verdicts)
    if not names:
        notes.append("no pairs to analyze")
    found_b, found_c, found_j = (
        _most_common(sum((judged[t].models[i] for t in names), Counter())) for i in range(3)
    )
    return Verdict(
        run_id=run_id,
        baseline=baseline or found_b or settings.baseline or "",
        candidate=candidate or found_c or settings.candidate or "",
        judge=judge or found_j or settings.judge,
        margin=settings.margin,
        alpha=settings.alpha,
        correction=settings.correction,
        bootstrap=settings.bootstrap,
        seed=settings.seed,
        eval_cost_usd=eval_cost_usd,
        verdict=top,
        prompt_types=verdicts,
        ci_method=settings.ci,
        aborted=aborted,
        notes=notes,
    )


def _type_verdict(
    data: _Judged,
    boot: _Boot | None,
    d: _Decided,
    label: VerdictLabel,
    reasons: list[str],
    jc: JudgeCheckResult | None,
    level: float,
    monthly_volume: Mapping[str, float | None] | None,
) -> TypeVerdict:
    n = int(data.scores.size)
    cost: CostSummary | None = None
    mean_chars: dict[str, float] | None = None
    diagnostics = Diagnostics(
        n_judgments=data.n_judgments,
        n_judge_failures=data.n_judge_failures,
        position_a_share=data.n_position_a / data.n_decisive if data.n_decisive else None,
    )
    if boot is not None:
        if boot.cost_known and d.saving is not None:
            known = ~(np.isnan(data.cost_b) | np.isnan(data.cost_c))
            base = float(data.cost_b[known].mean())
            cand = float(data.cost_c[known].mean())
            volume = monthly_volume.get(data.prompt_type) if monthly_volume else None
            monthly = costs.monthly_projection(volume, base, cand) if volume is not None else None
            cost = CostSummary(
                baseline_usd_per_request=base,
                candidate_usd_per_request=cand,
                saving=d.saving,
                monthly_requests=volume,
                monthly_saving_usd=monthly,
            )
        if boot.length_known:
            ok = ~(np.isnan(data.base_chars) | np.isnan(data.cand_chars))
            mean_chars = {
                "baseline": float(data.base_chars[ok].mean()),
                "candidate": float(data.cand_chars[ok].mean()),
            }
        slope = boot.estimate[2]
        diagnostics.length_slope = slope if np.isfinite(slope) else None
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
    )
