"""The per-type instruments as the three reports show them (SPEC "Per-type instruments" and "Judges").

Everything here reads the analysis (`TypeVerdict.checks`, `n_judged`, `agreement_rate`, `judges`,
`panel_agreement`, `human_agreement`, `judge_check.by_kind`, `PairResult.decided_by`): it formats, it never
computes a figure of its own. The texts returned are plain (check names come from equiv.toml, JSON field
names from model answers): each report escapes them its own way (HTML autoescape, `md_text`, `clean`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from equiv.report.markdown import DASH, fmt_interval, fmt_pct, fmt_rate
from equiv.schema import CheckSummary, Interval, JudgeCheckResult, TypeVerdict
from equiv.stats.decide import JUDGE_CHECK_MIN_PASS

if TYPE_CHECKING:
    from equiv.analyze import PairResult

GATE_DIGITS = 3  # a gate's pass-rate difference is read against check_margin (0.02 by default): 2 digits are too few


def has_instruments(tv: TypeVerdict) -> bool:
    """Whether the analysis recorded any instrument of this type: declared checks, a judge panel, people's
    labels or graded judge-check kinds. A type with none of them (every older run) shows no Instruments part."""
    jc = tv.judge_check
    return bool(
        tv.checks
        or tv.judges
        or tv.panel_agreement is not None
        or tv.human_agreement is not None
        or (jc is not None and jc.by_kind)
    )


def fmt_plain_interval(iv: Interval | None, digits: int = 2) -> str:
    """A kappa-like figure with its interval, unsigned unless negative: ``0.62 [0.48, 0.75]``."""
    if iv is None:
        return DASH
    return f"{fmt_rate(iv.estimate, digits)} [{fmt_rate(iv.ci_low, digits)}, {fmt_rate(iv.ci_high, digits)}]"


def judged_text(tv: TypeVerdict) -> str | None:
    """How many pairs went to the judge: ``"19 of 39 pairs went to the judge (39 prompts); 51% of the traffic
    was decided without it"``. None when the analysis does not say (older verdicts)."""
    if tv.n_judged is None:
        return None
    prompts = f" ({tv.n_prompts} distinct prompts)" if tv.n_prompts is not None and tv.n_prompts != tv.n else ""
    text = f"{tv.n_judged} of {tv.n} pairs{prompts} went to the judge"
    if tv.agreement_rate is not None:
        text += f"; {fmt_pct(tv.agreement_rate)} of the traffic was decided without it (identical or agreeing answers)"
    return text


def gate_result(c: CheckSummary) -> str:
    """What a gate did to the verdict, as the analysis decided it."""
    if c.kind != "gate":
        return ""
    if c.failed:
        return "fails: NO_GO"
    if c.passed:
        return "passes"
    return "not settled"


def check_cells(c: CheckSummary) -> dict[str, str]:
    """One check as table cells: pass rates and the difference's interval (gates), agreement rate (agreement)."""
    gate = c.kind == "gate"
    return {
        "name": c.name,
        "kind": c.kind,
        "check": c.check,
        "n": str(c.n),
        "baseline": fmt_pct(c.baseline_pass_rate) if gate else "",
        "candidate": fmt_pct(c.candidate_pass_rate) if gate else "",
        "diff": fmt_interval(c.diff, GATE_DIGITS) if gate else "",
        "agreement": "" if gate else fmt_pct(c.agreement_rate),
        "result": gate_result(c),
        "status": ("failed" if c.failed else "passed" if c.passed else "open") if gate else "",
    }


def check_summary(c: CheckSummary) -> str:
    """One check in a line (summary.md, the terminal): ``json: baseline 100%, candidate 90%, difference
    -0.100 [-0.175, -0.025], fails: NO_GO`` or ``label: 51% agree``."""
    cells = check_cells(c)
    if c.kind == "gate":
        return (
            f"{c.name}: baseline {cells['baseline']}, candidate {cells['candidate']}, "
            f"difference {cells['diff']}, {cells['result']}"
        )
    return f"{c.name}: {cells['agreement']} agree"


def weak_kinds(jc: JudgeCheckResult | None) -> list[str]:
    """The graded judge-check kinds the analysis cautions about: non-blocking, pass rate below the judge
    check's own threshold (the rule behind the analysis's "caution: judge sensitivity" reasons)."""
    if jc is None or not jc.by_kind:
        return []
    return [
        kind
        for kind, k in jc.by_kind.items()
        if not k.blocking and k.pass_rate is not None and k.pass_rate < JUDGE_CHECK_MIN_PASS
    ]


def kinds_summary(jc: JudgeCheckResult | None) -> str | None:
    """``truncate 100% of 10, number 50% of 10 (caution)``; None without graded kinds."""
    if jc is None or not jc.by_kind:
        return None
    weak = set(weak_kinds(jc))
    parts = []
    for kind, k in jc.by_kind.items():
        part = f"{kind} {fmt_pct(k.pass_rate)} of {k.n}" + (
            f" (+{k.n_unreadable} unreadable)" if k.n_unreadable else ""
        )
        if kind in weak:
            part += " (caution)"
        parts.append(part)
    return ", ".join(parts)


def human_summary(tv: TypeVerdict) -> str | None:
    """``judge-human agreement 33% [11%, 60%] without ties (9 of 19 labels), kappa -0.13 [-0.37, 0.09]``."""
    h = tv.human_agreement
    if h is None:
        return None
    from equiv.report.markdown import fmt_pct_interval

    parts = []
    if h.agreement_without_ties is not None:
        parts.append(f"{fmt_pct_interval(h.agreement_without_ties)} without ties ({h.n_without_ties} of {h.n} labels)")
    if h.agreement is not None:
        parts.append(f"{fmt_pct_interval(h.agreement)} with ties")
    if h.kappa is not None:
        parts.append(f"kappa {fmt_plain_interval(h.kappa)}")
    if not parts:
        parts.append(f"{h.n} labels")
    return "judge-human agreement " + ", ".join(parts)


def decided_by(result: PairResult) -> str | None:
    """Who decided a pair: ``"identical"``, ``"agreement: label"`` (the agreement checks that agreed) or
    ``"judge"``. None for a failed pair, and for a judged pair of a type without checks (as reports showed
    pairs before instruments)."""
    if result.decided_by == "identical":
        return "identical"
    if result.decided_by is not None:
        inst = result.instruments
        names = [a.name for a in inst.agreements] if inst is not None else []
        return result.decided_by + (": " + ", ".join(names) if names else "")
    inst = result.instruments
    if result.score is not None and inst is not None and (inst.gates or inst.agreements):
        return "judge"
    return None


def gate_failures(result: PairResult) -> list[dict[str, str]]:
    """The gates a pair's answers failed: ``{"name", "side", "why"}`` (the instruments' own reasons)."""
    inst = result.instruments
    if inst is None:
        return []
    out = []
    for g in inst.gates:
        for side, ok, why in (("baseline", g.baseline, g.baseline_why), ("candidate", g.candidate, g.candidate_why)):
            if not ok:
                out.append({"name": g.name, "side": side, "why": why or ""})
    return out


def summary_parts(tv: TypeVerdict, *, checks: bool = True) -> list[str]:
    """A type's instruments in short phrases (summary.md and the terminal): its checks (unless `checks` is
    false: summary.md tables them), how many pairs went to the judge, the panel's kappa and any judge from a
    compared model's family, the judge-check kinds and agreement with people. Empty without any."""
    if not has_instruments(tv):
        return []
    parts = [check_summary(c) for c in tv.checks or ()] if checks else []
    judged = judged_text(tv)
    if judged:
        parts.append(judged)
    if tv.panel_agreement is not None:
        parts.append(f"panel agreement (Fleiss' kappa) {fmt_plain_interval(tv.panel_agreement)}")
    family = [
        f"{name} (same family as {', '.join(d.same_family_as)})"
        for name, d in (tv.judges or {}).items()
        if d.same_family_as
    ]
    if family:
        parts.append("judge " + "; ".join(family))
    kinds = kinds_summary(tv.judge_check)
    if kinds:
        parts.append(f"judge check by kind: {kinds}")
    human = human_summary(tv)
    if human:
        parts.append(human)
    return parts
