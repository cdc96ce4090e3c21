"""CI vs margin -> GO / NO_GO / INCONCLUSIVE with reasons; samples needed; multiplicity levels.

The rule is SPEC's "Decision", written so that each condition yields one plain sentence: a lead who
reads only the reasons should know why the verdict is what it is and what would change it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from scipy.special import ndtri

from equiv.schema import HumanAgreement, Interval, JudgeCheckResult, VerdictLabel
from equiv.stats.agreement import HUMAN_AGREEMENT_MIN, HUMAN_LABELS_MIN, human_agreement_blocks

MIN_PAIRS = 30
JUDGE_CHECK_MIN_PASS = 0.7
POWER = 0.8
JUDGE_CHECK_MIN_READABLE = 10


@dataclass(frozen=True)
class GateEvidence:
    """One gate of a prompt-type (SPEC "Per-type instruments"): pass rates and the paired difference."""

    name: str
    baseline_rate: float
    candidate_rate: float
    diff: Interval  # candidate pass - baseline pass, at the tested alpha
    check_margin: float

    @property
    def holds(self) -> bool:
        return self.diff.ci_low > -self.check_margin

    @property
    def fails(self) -> bool:
        return self.diff.ci_high < -self.check_margin

    def words(self) -> str:
        return (
            f"candidate passes {self.candidate_rate:.0%} vs baseline {self.baseline_rate:.0%} "
            f"(difference {self.diff.estimate:+.3f} [{self.diff.ci_low:+.3f}, {self.diff.ci_high:+.3f}])"
        )


@dataclass(frozen=True)
class Evidence:
    """What the decision of one prompt-type rests on (intervals already at the tested alpha)."""

    n: int  # distinct prompts (clusters): the n >= 30 rule counts these (SPEC "Clusters")
    margin: float
    alpha: float  # the one-sided level this type is tested at (after any correction)
    raw: Interval | None
    lc: Interval | None
    judge_check: JudgeCheckResult | None  # None: the check did not run for this type
    saving: float | None  # saving estimate; None: cost unknown
    samples_needed: int | None = None  # prompts, SPEC's rule (the caller applies max(30, .) and the null cases)
    needed_basis: str = "raw"  # the statistic samples_needed was computed from: "raw" | "length-controlled"
    needed_why_not: str | None = None  # when samples_needed is None on an INCONCLUSIVE: what would settle it
    n_pairs: int | None = None  # pairs, when they differ from prompts (repeated samples of one prompt)
    lc_extrapolated: bool = False  # equal length lies outside the data: LC is an extrapolation (clipped)
    judge_check_ignored: JudgeCheckResult | None = None  # a check that ran, not required by this analysis
    length_control: bool = True  # False: a type decided by agreement checks (no LC; the raw interval decides)
    gates: tuple[GateEvidence, ...] = ()
    human: HumanAgreement | None = None  # the judge against people's labels on this type (equiv calibrate)
    # --sequential (SPEC "Spending less"): the anytime-valid test's outcome decides quality instead of the
    # fixed-n interval: "GO", "NO_GO" or "none" (undecided); length control can still block a GO at the stop
    sequential: str | None = None
    sequential_words: str = ""

    @property
    def lc_view(self) -> Interval | None:
        """The interval the length-controlled conditions read: LC, or the raw one where LC does not apply."""
        return self.lc if self.length_control else self.raw


def samples_needed(estimate: float, se: float, n: int, margin: float, alpha: float) -> int | None:
    """SPEC's formula: ceil(((z(1-a) + z(0.8)) * sd / (est + margin))^2), sd = bootstrap SE x sqrt(n).

    `n` counts prompts (clusters) and so does the result; the caller applies max(30, .) and the null
    cases that need the prompts in hand. None when est <= -margin: no sample size makes a GO likely
    when the estimate is already past the margin. The bootstrap SE keeps the cluster design.
    """
    gap = estimate + margin
    if not gap > 0 or not math.isfinite(se) or n <= 0:
        return None
    sd = se * math.sqrt(n)
    z = float(ndtri(1.0 - alpha)) + float(ndtri(POWER))
    return int(math.ceil((z * sd / gap) ** 2))


def judge_check_required(jc: JudgeCheckResult) -> int:
    """Readable checks a type needs (SPEC "Judge check, when planned"): min(10, planned), 0 if unplanned."""
    return min(JUDGE_CHECK_MIN_READABLE, jc.n_planned) if jc.n_planned else 0


def judge_check_blocks(jc: JudgeCheckResult | None) -> bool:
    """A check that ran and did not show discrimination (pass rate < 0.7, counting unreadable checks as
    failed; or nothing readable), or fewer readable checks than planned (min(10, planned)), blocks GO."""
    return jc is not None and (
        jc.pass_rate is None or jc.pass_rate < JUDGE_CHECK_MIN_PASS or jc.n < judge_check_required(jc)
    )


def quality_passes(ev: Evidence) -> bool:
    """Non-inferiority shown: both the raw and the length-controlled lower bounds clear -margin (under
    --sequential: the sequential test said GO, and the length-controlled lower bound at the stop clears it)."""
    lc = ev.lc_view
    if ev.sequential is not None:
        if ev.sequential != "GO":
            return False
        return not ev.length_control or ev.lc is None or ev.lc.ci_low > -ev.margin
    if ev.raw is None or lc is None:
        return False
    return min(ev.raw.ci_low, lc.ci_low) > -ev.margin


def quality_fails(ev: Evidence) -> bool:
    """Inferiority shown: both upper bounds below -margin (LC can only block a GO, never force one); under
    --sequential: the sequential test said NO_GO."""
    if ev.sequential is not None:
        return ev.sequential == "NO_GO"
    lc = ev.lc_view
    if ev.raw is None or lc is None:
        return False
    return max(ev.raw.ci_high, lc.ci_high) < -ev.margin


def gate_fails(ev: Evidence) -> GateEvidence | None:
    return next((g for g in ev.gates if g.fails), None)


def is_go(ev: Evidence) -> bool:
    return (
        ev.n >= MIN_PAIRS
        and quality_passes(ev)
        and not judge_check_blocks(ev.judge_check)
        and (ev.saving is None or ev.saving > 0)
        and all(g.holds for g in ev.gates)
        and not human_agreement_blocks(ev.human)
    )


def decide(ev: Evidence) -> tuple[VerdictLabel, list[str]]:
    """SPEC's decision rule, with one reason per condition (the decisive one first)."""
    m = ev.margin
    cheaper = ev.saving is None or ev.saving > 0
    label: VerdictLabel
    if ev.n < MIN_PAIRS:
        label = "INCONCLUSIVE"
    elif is_go(ev):
        label = "GO"
    elif quality_fails(ev) or not cheaper or gate_fails(ev) is not None:
        label = "NO_GO"
    else:
        label = "INCONCLUSIVE"

    reasons: list[str] = []
    if ev.n < MIN_PAIRS:
        pairs = f" ({ev.n_pairs} pairs)" if ev.n_pairs is not None and ev.n_pairs != ev.n else ""
        reasons.append(
            f"only {ev.n} usable distinct prompts{pairs}: at least {MIN_PAIRS} are needed for any "
            "decision (identical prompts count once)"
        )
    conf = f"{1 - ev.alpha:.4g}"
    if ev.sequential is not None and ev.n > 0:
        words = ev.sequential_words
        if ev.sequential == "GO" and not quality_passes(ev) and ev.lc is not None:
            words += (
                f", but length control blocked the GO: at equal length the lower bound is {ev.lc.ci_low:+.3f}, "
                f"not above -{m:g}"
            )
        reasons.append(words)
    elif ev.raw is not None and ev.lc is not None and not ev.length_control:
        r = ev.raw
        if quality_passes(ev):
            reasons.append(
                f"quality lower bound {r.ci_low:+.3f} is above -{m:g}: at {conf} one-sided confidence the "
                f"candidate is at most {m:g} worse (agreement checks decide pairs whose answers agree: no "
                "length control)"
            )
        elif quality_fails(ev):
            reasons.append(
                f"quality upper bound {r.ci_high:+.3f} is below -{m:g}: the candidate is worse by more than the margin"
            )
        else:
            reasons.append(
                f"the quality interval [{r.ci_low:+.3f}, {r.ci_high:+.3f}] straddles -{m:g}: the data cannot yet tell"
            )
    elif ev.raw is not None and ev.lc is not None:
        r, c = ev.raw, ev.lc
        if quality_passes(ev):
            reasons.append(
                f"quality lower bound {r.ci_low:+.3f} (length-controlled {c.ci_low:+.3f}) is above "
                f"-{m:g}: at {conf} one-sided confidence the candidate is at most {m:g} worse"
            )
        elif quality_fails(ev):
            reasons.append(
                f"quality upper bound {r.ci_high:+.3f} (length-controlled {c.ci_high:+.3f}) is below "
                f"-{m:g}: the candidate is worse by more than the margin"
            )
        elif r.ci_high < -m:
            reasons.append(
                f"the raw upper bound {r.ci_high:+.3f} is below -{m:g} but at equal length it is "
                f"{c.ci_high:+.3f}: part of the gap may be answer length, so the data cannot yet tell"
            )
        elif r.ci_low > -m:
            reasons.append(
                f"length control blocked the GO: the raw lower bound {r.ci_low:+.3f} clears -{m:g} but at "
                f"equal length it is {c.ci_low:+.3f}; the judge may be rewarding longer answers"
            )
        else:
            reasons.append(
                f"the quality interval [{r.ci_low:+.3f}, {r.ci_high:+.3f}] (length-controlled "
                f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]) straddles -{m:g}: the data cannot yet tell"
            )
        if ev.lc_extrapolated:
            reasons.append(
                "every candidate answer is longer than the baseline's, or every one shorter: equal length lies "
                "outside the data, so length and quality cannot be told apart here; the length-controlled "
                "interval is an extrapolation (clipped to [-1, 1]) and is not evidence either way"
            )
    elif ev.n == 0:
        reasons.append("no usable pairs: nothing to decide on")

    jc = ev.judge_check
    judge_at = len(reasons)
    if jc is None:
        ignored = ev.judge_check_ignored
        if ignored is not None:
            reasons.append(
                f"judge check not required by this analysis (judge_check = false), but it ran: {_check_words(ignored)}"
            )
        else:
            reasons.append(
                "judge check did not run: the judge's ability to tell a good answer from a truncated one "
                "on this prompt-type is unverified"
            )
    elif jc.pass_rate is None:
        reasons.append("judge check ran but none of its comparisons were readable in both orders: no GO")
    elif jc.pass_rate < JUDGE_CHECK_MIN_PASS:
        reasons.append(
            f"judge check failed: the judge preferred the intact answer over a truncated copy in both "
            f"orders in only {_check_words(jc)} (< {JUDGE_CHECK_MIN_PASS:.0%}); it cannot "
            "discriminate on this prompt-type, so no GO"
        )
    elif jc.n < judge_check_required(jc):
        reasons.append(
            f"judge check incomplete: {jc.n} of its {jc.n_planned} planned checks were readable in both orders "
            f"(at least {judge_check_required(jc)} are needed), so the judge is unverified here: no GO"
        )
    else:
        reasons.append(f"judge check passed: the intact answer won in both orders in {_check_words(jc)}")

    gate_at = len(reasons)
    failed_gate = gate_fails(ev)
    for g in ev.gates:
        if g.fails:
            reasons.append(
                f"gate '{g.name}' failed: {g.words()}, below -{g.check_margin:g}: NO_GO whatever the judge says"
            )
        elif not g.holds:
            reasons.append(
                f"gate '{g.name}' not shown to hold: {g.words()}; the lower bound is not above "
                f"-{g.check_margin:g}, so no GO"
            )
        else:
            reasons.append(f"gate '{g.name}' holds: {g.words()}")

    human_at = len(reasons)
    h = ev.human
    if h is not None:
        wt = h.agreement_without_ties
        rate = f"{wt.estimate:.0%} [{wt.ci_low:.0%}, {wt.ci_high:.0%}]" if wt is not None else "none"
        if human_agreement_blocks(h):
            reasons.append(
                f"the judge agrees with people's labels on only {rate} of {h.n_without_ties} non-tie pairs "
                f"(< {HUMAN_AGREEMENT_MIN:.0%} on {h.n} labels): it is not a trustworthy instrument here, so no GO"
            )
        elif h.n < HUMAN_LABELS_MIN:
            reasons.append(
                f"judge-human agreement {rate} on {h.n} labels (fewer than {HUMAN_LABELS_MIN}: not yet a test)"
            )
        else:
            reasons.append(f"the judge agrees with people's labels on {rate} of {h.n_without_ties} non-tie pairs")

    cost_at = len(reasons)
    if ev.saving is None:
        reasons.append("cost unknown (the pairs carry no costs): the verdict is on quality alone")
    elif ev.saving <= 0:
        reasons.append(f"the candidate is not cheaper (saving {ev.saving:.1%}): no reason to switch")

    # the decisive reason first: where quality alone would allow a GO, say what stopped it
    if label != "GO" and ev.n >= MIN_PAIRS and failed_gate is not None:
        reasons.insert(0, reasons.pop(gate_at + ev.gates.index(failed_gate)))
    elif label != "GO" and ev.n >= MIN_PAIRS and not quality_fails(ev):
        if not cheaper:
            reasons.insert(0, reasons.pop(cost_at))
        elif judge_check_blocks(jc) and quality_passes(ev):
            reasons.insert(0, reasons.pop(judge_at))
        elif human_agreement_blocks(h) and quality_passes(ev):
            reasons.insert(0, reasons.pop(human_at))
        elif quality_passes(ev) and not all(g.holds for g in ev.gates):
            reasons.insert(0, reasons.pop(gate_at + next(i for i, g in enumerate(ev.gates) if not g.holds)))

    if label == "INCONCLUSIVE" and judge_check_blocks(jc) and ev.n >= MIN_PAIRS:
        reasons.append("more pairs will not help until the judge passes its check on this prompt-type")
    elif label == "INCONCLUSIVE" and ev.samples_needed is not None:
        basis = "length-controlled estimate" if ev.needed_basis == "length-controlled" else "raw estimate"
        reasons.append(
            f"about {ev.samples_needed} distinct prompts in all (now {ev.n}) would give an {POWER:.0%} chance "
            f"of a GO if the true difference equals the {basis} (a larger per_type keeps the prompts already "
            "judged and buys only the new ones)"
        )
    elif label == "INCONCLUSIVE" and ev.needed_why_not:
        reasons.append(ev.needed_why_not)
    return label, reasons


def _check_words(jc: JudgeCheckResult) -> str:
    """'80% of 10 checks', saying how many were unreadable (they count as not passed)."""
    total = jc.n + (jc.n_unreadable or 0)
    rate = f"{jc.pass_rate:.0%}" if jc.pass_rate is not None else "none"
    unreadable = f", {jc.n_unreadable} of them unreadable (counted as not passed)" if jc.n_unreadable else ""
    return f"{rate} of {total} checks{unreadable}"


def bonferroni_levels(names: Sequence[str], alpha: float) -> dict[str, float]:
    """Each of K types tested at alpha / K."""
    k = max(1, len(names))
    return {name: alpha / k for name in names}


@dataclass(frozen=True)
class HolmResult:
    levels: dict[str, float]  # the level each type is tested (and its interval reported) at
    stopped: str | None  # the first type that failed, None if every type passed
    not_reached: tuple[str, ...]  # types after the stop: none of them may be GO


def holm_levels(pvalues: Mapping[str, float], alpha: float, passes: Callable[[str, float], bool]) -> HolmResult:
    """Holm's step-down (SPEC): the i-th smallest p-value is tested at alpha / (K - i + 1).

    ``passes(name, level)`` says whether that type would be GO at that level. The procedure stops at
    the first failure; that type and every later one keep the level where it stopped, and none of
    the later ones may be GO. Ties in p are broken by name so the order never depends on input order.
    """
    order = sorted(pvalues, key=lambda name: (pvalues[name], name))
    k = len(order)
    levels: dict[str, float] = {}
    for i, name in enumerate(order):
        levels[name] = alpha / (k - i)
        if not passes(name, levels[name]):
            rest = tuple(order[i + 1 :])
            levels.update({later: levels[name] for later in rest})
            return HolmResult(levels=levels, stopped=name, not_reached=rest)
    return HolmResult(levels=levels, stopped=None, not_reached=())


def overall(labels: Iterable[VerdictLabel]) -> VerdictLabel:
    """GO only when every type is GO; NO_GO when any is NO_GO; else INCONCLUSIVE."""
    seen = list(labels)
    if seen and all(v == "GO" for v in seen):
        return "GO"
    if any(v == "NO_GO" for v in seen):
        return "NO_GO"
    return "INCONCLUSIVE"
