"""What undermines a prompt-type's verdict, in plain sentences: the HTML report, the terminal and summary.md
all say the same thing (thresholds are reporting choices, not SPEC's decision rule)."""

from __future__ import annotations

from equiv.report.instruments import weak_kinds
from equiv.report.markdown import fmt_pct, fmt_signed
from equiv.schema import TypeVerdict
from equiv.stats.decide import JUDGE_CHECK_MIN_PASS as JUDGE_CHECK_MIN
from equiv.stats.decide import MIN_PAIRS as MIN_N

# Judge diagnostics: beyond these the page says, in words, why the verdict deserves less trust.
POSITION_CONSISTENCY_MIN = 0.7
POSITION_A_SHARE_MAX_DEVIATION = 0.15  # outside [0.35, 0.65]
TIE_RATE_MAX = 0.5
LENGTH_SLOPE_MAX = 0.2  # |b1| of s ~ b0 + b1*x, x in [-1, 1]


def type_warnings(tv: TypeVerdict, a_share: float | None = None, length_slope: float | None = None) -> list[str]:
    """Plain sentences for whatever undermines this type's verdict (a_share/length_slope: from diagnostics
    unless given, e.g. computed from the pairs of an imported file)."""
    diag = tv.diagnostics
    if a_share is None and diag is not None:
        a_share = diag.position_a_share
    if length_slope is None and diag is not None:
        length_slope = diag.length_slope
    out: list[str] = []
    prompts = tv.n_prompts if tv.n_prompts is not None else tv.n
    if tv.n == 0:
        out.append("No completed pairs: nothing can be decided for this type.")
    elif prompts < MIN_N:
        pairs = f" ({tv.n} pairs)" if tv.n != prompts else ""
        out.append(
            f"Only {prompts} distinct prompts{pairs}, fewer than {MIN_N}: too few to decide either way "
            "(identical prompts are one piece of evidence, however often they occur)."
        )
    total = tv.n + tv.n_failed
    if total and tv.n_failed / total > 0.1:
        out.append(
            f"{tv.n_failed} of {total} pairs failed and are left out; if failures are not random "
            "(e.g. the candidate fails on hard prompts) the estimate is optimistic."
        )
    cal = diag.calibration if diag is not None else None
    if cal is not None and cal.n_pairs:
        out.append(
            f"Verdicts of {cal.n_pairs} pairs are position-calibrated from the judge's logprobs: each pair goes to "
            f"the answer the judge's log-odds favour over both positions; {cal.changed} verdicts differ from the "
            "word the judge wrote. A judge that needs this is weak. Position consistency and the A share "
            "describe the judge's own words, and so does the judge check; the tie rate counts the verdicts the "
            "scores used."
        )
    pc = tv.position_consistency
    if pc is not None and pc < POSITION_CONSISTENCY_MIN:
        out.append(
            f"Position consistency is {fmt_pct(pc)} (below {fmt_pct(POSITION_CONSISTENCY_MIN)}): the judge "
            "often changes its mind when the two answers swap places, so its verdicts here are partly noise."
        )
    if a_share is not None and abs(a_share - 0.5) > POSITION_A_SHARE_MAX_DEVIATION:
        out.append(
            f"The judge picked the answer shown first (position A) in {fmt_pct(a_share)} of its decisive "
            "verdicts: it is biased by position. Judging both orders cancels the bias in the estimate, "
            "but a biased judge is less able to tell the answers apart."
        )
    if tv.tie_rate is not None and tv.tie_rate > TIE_RATE_MAX:
        out.append(
            f"{fmt_pct(tv.tie_rate)} of judgments are ties: a judge that cannot tell answers apart makes "
            "any candidate look equivalent."
        )
    jc = tv.judge_check
    if jc is not None and jc.required is False:
        out.append(
            "The judge check ran but this analysis does not let it block a GO (judge_check = false): "
            + (
                "it passed."
                if jc.pass_rate is not None and jc.pass_rate >= JUDGE_CHECK_MIN
                else f"it FAILED ({fmt_pct(jc.pass_rate)} of {jc.n + (jc.n_unreadable or 0)} checks), so the judge has "
                "not shown that it can tell a good answer from a truncated one here."
            )
        )
    elif tv.judge_check is None:
        out.append(
            "No judge check ran for this type: nothing shows that the judge can tell a good answer from "
            "a truncated copy of it here."
        )
    elif tv.judge_check.pass_rate is None:
        out.append("The judge check produced no readable comparison: the judge's discrimination is unknown.")
    elif tv.judge_check.pass_rate < JUDGE_CHECK_MIN:
        out.append(
            f"Judge check: the judge preferred the intact answer over a truncated copy in only "
            f"{fmt_pct(tv.judge_check.pass_rate)} of {tv.judge_check.n} checks (below "
            f"{fmt_pct(JUDGE_CHECK_MIN)}): it cannot discriminate on this type, so no GO is possible."
        )
    by_kind = jc.by_kind if jc is not None and jc.by_kind else {}
    for kind in weak_kinds(jc):
        k = by_kind[kind]
        unreadable = f" (and {k.n_unreadable} unreadable)" if k.n_unreadable else ""
        out.append(
            f"Judge sensitivity '{kind}': the judge passed only {fmt_pct(k.pass_rate)} of {k.n} checks of this "
            f"kind{unreadable}, below {fmt_pct(JUDGE_CHECK_MIN)}: differences of this kind may go unseen. Only "
            "the truncation check blocks a GO."
        )
    lc = tv.lc_quality_diff
    if lc is not None and lc.extrapolated:
        out.append(
            "Every candidate answer is longer than the baseline's, or every one shorter: equal length lies "
            "outside the data, so the length-controlled interval is an extrapolation (clipped to [-1, 1]) and "
            "neither it nor the raw interval can separate quality from length here."
        )
    elif length_slope is not None and abs(length_slope) > LENGTH_SLOPE_MAX:
        longer = "longer" if length_slope > 0 else "shorter"
        out.append(
            f"Length slope {fmt_signed(length_slope)}: the judge favours the {longer} answer. Trust the "
            "length-controlled interval over the raw one."
        )
    return out
