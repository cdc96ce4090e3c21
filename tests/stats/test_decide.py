"""The decision rule at its boundaries, samples_needed, and the multiplicity levels."""

from __future__ import annotations

import math

import pytest

from equiv.schema import Interval, JudgeCheckResult
from equiv.stats.decide import (
    Evidence,
    bonferroni_levels,
    decide,
    holm_levels,
    overall,
    samples_needed,
)

Z95 = 1.6448536269514722  # z(0.95)
Z80 = 0.8416212335729143  # z(0.80)


def ev(
    lo: float = -0.05,
    hi: float = 0.05,
    lc_lo: float | None = None,
    lc_hi: float | None = None,
    *,
    n: int = 100,
    jc: JudgeCheckResult | None = None,
    saving: float | None = 0.5,
) -> Evidence:
    raw = Interval(estimate=(lo + hi) / 2, ci_low=lo, ci_high=hi)
    lc = Interval(estimate=(lo + hi) / 2, ci_low=lo if lc_lo is None else lc_lo, ci_high=hi if lc_hi is None else lc_hi)
    return Evidence(n=n, margin=0.1, alpha=0.05, raw=raw, lc=lc, judge_check=jc, saving=saving)


def test_go_needs_both_lower_bounds_strictly_above_minus_margin() -> None:
    assert decide(ev(-0.099, 0.05))[0] == "GO"
    assert decide(ev(-0.1, 0.05))[0] == "INCONCLUSIVE"  # at the margin is not above it
    assert decide(ev(-0.05, 0.05, lc_lo=-0.1))[0] == "INCONCLUSIVE"  # LC blocks
    label, reasons = decide(ev(-0.05, 0.05, lc_lo=-0.12))
    assert label == "INCONCLUSIVE" and "length control blocked the GO" in reasons[0]


def test_no_go_needs_both_upper_bounds_strictly_below_minus_margin() -> None:
    assert decide(ev(-0.3, -0.101))[0] == "NO_GO"
    assert decide(ev(-0.3, -0.1))[0] == "INCONCLUSIVE"
    assert decide(ev(-0.3, -0.15, lc_hi=-0.05))[0] == "INCONCLUSIVE"  # LC can block a NO_GO on quality too


def test_fewer_than_30_pairs_is_inconclusive_whatever_else_holds() -> None:
    assert decide(ev(0.5, 0.9, n=29))[0] == "INCONCLUSIVE"
    assert decide(ev(-0.9, -0.5, n=29))[0] == "INCONCLUSIVE"
    assert decide(ev(0.5, 0.9, n=29, saving=-1.0))[0] == "INCONCLUSIVE"
    label, reasons = decide(ev(0.5, 0.9, n=29))
    assert "only 29 usable distinct prompts" in reasons[0]
    assert decide(ev(0.5, 0.9, n=30))[0] == "GO"


def test_judge_check_blocks_below_0_7() -> None:
    assert decide(ev(jc=JudgeCheckResult(n=10, pass_rate=0.7)))[0] == "GO"
    label, reasons = decide(ev(jc=JudgeCheckResult(n=10, pass_rate=0.69)))
    assert label == "INCONCLUSIVE" and any("judge check failed" in r for r in reasons)
    assert decide(ev(jc=JudgeCheckResult(n=0, pass_rate=None)))[0] == "INCONCLUSIVE"  # nothing readable
    label, reasons = decide(ev(jc=None))
    assert label == "GO" and any("judge check did not run" in r for r in reasons)


def test_a_blocked_judge_check_says_more_pairs_will_not_help() -> None:
    e = ev(jc=JudgeCheckResult(n=10, pass_rate=0.2))
    e = Evidence(**{**e.__dict__, "samples_needed": 0})  # all-tie scores: bootstrap SE 0 -> formula gives 0
    label, reasons = decide(e)
    assert label == "INCONCLUSIVE"
    assert any("more pairs will not help" in r for r in reasons)
    assert not any("pairs would give" in r for r in reasons)


def test_cost_rules() -> None:
    assert decide(ev(saving=0.0))[0] == "NO_GO"
    assert decide(ev(saving=-0.2))[0] == "NO_GO"
    label, reasons = decide(ev(saving=None))
    assert label == "GO" and any("quality alone" in r for r in reasons)


def test_samples_needed_formula() -> None:
    # est 0, se 0.05 at n 100 -> sd 0.5; ((1.645 + 0.842) * 0.5 / 0.1)^2 = 154.6 -> 155
    assert samples_needed(0.0, 0.05, 100, 0.1, 0.05) == math.ceil(((Z95 + Z80) * 0.5 / 0.1) ** 2) == 155
    assert samples_needed(-0.1, 0.05, 100, 0.1, 0.05) is None
    assert samples_needed(-0.2, 0.05, 100, 0.1, 0.05) is None
    # a stricter level needs more
    assert samples_needed(0.0, 0.05, 100, 0.1, 0.025) > 155  # type: ignore[operator]


def test_bonferroni_levels() -> None:
    assert bonferroni_levels(["a", "b", "c", "d"], 0.05) == {t: 0.0125 for t in "abcd"}


def test_holm_steps_down_and_stops_at_first_failure() -> None:
    p = {"a": 0.001, "b": 0.01, "c": 0.5}

    def passes(name: str, level: float) -> bool:
        return p[name] <= level

    h = holm_levels(p, 0.05, passes)
    assert h.levels == pytest.approx({"a": 0.05 / 3, "b": 0.05 / 2, "c": 0.05})
    assert (h.stopped, h.not_reached) == ("c", ())
    p2 = {"a": 0.001, "b": 0.03, "c": 0.04}
    h = holm_levels(p2, 0.05, lambda n, lv: p2[n] <= lv)
    # b fails at 0.025: it and every later type keep 0.025
    assert h.levels == pytest.approx({"a": 0.05 / 3, "b": 0.025, "c": 0.025})
    assert (h.stopped, h.not_reached) == ("b", ("c",))
    assert holm_levels({"a": 0.0}, 0.05, lambda n, lv: True).stopped is None


def test_holm_breaks_ties_by_name() -> None:
    seen: list[str] = []

    def record(name: str, level: float) -> bool:
        seen.append(name)
        return True

    holm_levels({"z": 0.0, "a": 0.0}, 0.05, record)
    assert seen == ["a", "z"]


def test_overall() -> None:
    assert overall(["GO", "GO"]) == "GO"
    assert overall(["GO", "INCONCLUSIVE"]) == "INCONCLUSIVE"
    assert overall(["GO", "NO_GO", "INCONCLUSIVE"]) == "NO_GO"
    assert overall([]) == "INCONCLUSIVE"


def test_the_reason_that_stopped_a_go_comes_first() -> None:
    # quality alone would allow a GO: the first reason (the one a table shows) must say what stopped it
    label, reasons = decide(ev(jc=JudgeCheckResult(n=6, pass_rate=0.0)))
    assert label == "INCONCLUSIVE" and reasons[0].startswith("judge check failed")
    label, reasons = decide(ev(saving=-0.1))
    assert label == "NO_GO" and reasons[0].startswith("the candidate is not cheaper")
    label, reasons = decide(ev(-0.3, -0.15, jc=JudgeCheckResult(n=6, pass_rate=0.0)))
    assert label == "NO_GO" and reasons[0].startswith("quality upper bound")  # quality decided it
    label, reasons = decide(ev())
    assert label == "GO" and reasons[0].startswith("quality lower bound")
