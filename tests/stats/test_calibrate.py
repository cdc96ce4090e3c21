"""Position calibration (judge_calibration = "position"): a biased but informative judge is read from its
logprobs, identical answers tie, the judge check keeps the judge's own words, nothing else changes."""

from __future__ import annotations

import math
import random

from equiv.analyze import analyze
from equiv.config import Settings
from equiv.report.html import render_html
from equiv.schema import Check, Judgment, Pair, Side
from equiv.stats.calibrate import calibrate, calibrate_pair


def _lp(log_odds_a: float, tie: float = -4.0) -> dict[str, float]:
    """Verdict-word logprobs with the given log-odds of A over B (normalised)."""
    z = {"A": log_odds_a, "B": 0.0, "tie": tie}
    norm = math.log(sum(math.exp(v) for v in z.values()))
    return {w: v - norm for w, v in z.items()}


def _j(order: str, lo: float) -> Judgment:
    """The word the judge writes is the most likely one."""
    lp = _lp(lo)
    return Judgment(order=order, winner=max(("A", "B", "tie"), key=lambda w: lp[w]), judge="j", logprobs=lp)


def _pairs(n: int, bias: float, delta: float, noise: float, seed: int = 0, t: str = "t") -> list[Pair]:
    """delta > 0: the judge's log-odds lean to the baseline by delta, over a pull of `bias` to position A."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        js = [
            _j("baseline_first", bias + delta + rng.gauss(0, noise)),
            _j("candidate_first", bias - delta + rng.gauss(0, noise)),
        ]
        out.append(
            Pair(
                pair_id=f"{t}{i}",
                prompt_type=t,
                baseline=Side(model="b", output="x" * 50, cost_usd=2e-4),
                candidate=Side(model="c", output="y" * 50, cost_usd=1e-4),
                judgments=js,
            )
        )
    return out


def _checks(n: int, bias: float, delta: float, t: str = "t") -> list[Check]:
    return [
        Check(
            pair_id=f"{t}{i}",
            prompt_type=t,
            judgments=[_j("intact_first", bias + delta), _j("degraded_first", bias - delta)],
        )
        for i in range(n)
    ]


def _settings(cal: str) -> Settings:
    return Settings(judge_calibration=cal, bootstrap=2000, judge_check_min=10)


def test_a_judge_that_always_writes_a_is_read_from_its_logprobs() -> None:
    pairs, checks = _pairs(60, bias=3.0, delta=0.6, noise=0.3), _checks(10, bias=3.0, delta=0.8)
    assert all(j.winner == "A" for p in pairs for j in p.judgments)
    raw = analyze(pairs, checks, _settings("none"), run_id="r").prompt_types[0]
    assert raw.quality_diff is not None and raw.quality_diff.estimate == 0.0  # contradictions look "equivalent"
    verdict = analyze(pairs, checks, _settings("position"), run_id="r")
    cal = verdict.prompt_types[0]
    assert cal.quality_diff is not None and cal.quality_diff.estimate < -0.9 and cal.verdict == "NO_GO"
    # the judge is described by the words it wrote, and its check too: it never passes one
    assert cal.position_consistency == 0.0 and cal.judge_check is not None and cal.judge_check.pass_rate == 0.0
    info = cal.diagnostics.calibration if cal.diagnostics else None
    assert info is not None and info.n_pairs == 60 and info.changed == 60  # every candidate_first "A" -> "B"
    assert any("position-calibrated" in n and "60 of their 120 verdicts differ" in n for n in verdict.notes)
    page = render_html(verdict, pairs, {}, checks)  # the evidence shows the word written and the one used
    assert (
        "reply A (candidate better in its own words), calibrated to B" in page
        and "position-calibrated from the judge" in page
    )
    assert page.count('data-outcome="lost inconsistent"') == 60  # lost (calibrated), inconsistent (as written)


def test_identical_answers_and_float_noise_tie() -> None:
    """Identical answers tie even if the server's float noise makes c a hair off 0; so does |c| <= 1e-6."""
    p = _pairs(1, bias=2.0, delta=0.0, noise=0.0)[0]
    p.candidate = Side(model="c", output=p.baseline.output if p.baseline else "", cost_usd=1e-4)
    p.judgments[1] = _j("candidate_first", 2.0 + 1e-4)  # the same prompt, re-evaluated: c = -1e-4
    assert [j.winner for j in calibrate_pair(p)[0].judgments] == ["tie", "tie"]
    p.candidate = Side(model="c", output="different", cost_usd=1e-4)
    assert [j.winner for j in calibrate_pair(p)[0].judgments] == ["B", "A"]  # not identical: c decides
    p.judgments[1] = _j("candidate_first", 2.0 + 5e-7)
    assert [j.winner for j in calibrate_pair(p)[0].judgments] == ["tie", "tie"]


def test_a_blind_judge_cannot_reach_go_through_calibration() -> None:
    """Its probabilities follow position and noise only: its own words fail the check, so no GO."""
    for seed in range(10):
        pairs = _pairs(400, bias=3.0, delta=0.0, noise=0.5, seed=seed)
        tv = analyze(pairs, _checks(10, bias=3.0, delta=0.0), _settings("position"), run_id="r").prompt_types[0]
        assert tv.verdict != "GO" and tv.judge_check is not None and tv.judge_check.pass_rate == 0.0


def test_identical_answers_tie_and_an_able_judge_can_give_go() -> None:
    """Same prompt, same answers: the same log-odds in both orders, so c = 0 and the pair is a tie."""
    pairs = _pairs(60, bias=2.0, delta=0.0, noise=0.0)
    for p in pairs:
        p.candidate = Side(model="c", output="x" * 50, cost_usd=1e-4)
    checks = _checks(10, bias=0.5, delta=2.0)  # in its own words it prefers the intact answer in both orders
    tv = analyze(pairs, checks, _settings("position"), run_id="r").prompt_types[0]
    assert tv.quality_diff is not None and tv.quality_diff.estimate == 0.0 and tv.quality_diff.ci_low == 0.0
    assert tv.judge_check is not None and tv.judge_check.pass_rate == 1.0 and tv.verdict == "GO"


def test_ties_one_order_and_missing_logprobs_are_left_as_written() -> None:
    pairs = _pairs(4, bias=2.0, delta=0.5, noise=0.0)
    pairs[0].judgments[0] = Judgment(order="baseline_first", winner="tie", judge="j", logprobs=_lp(2.5))
    pairs[1].judgments[1] = Judgment(order="candidate_first", winner="A", judge="j")  # no logprobs
    pairs[2].judgments = pairs[2].judgments[:1]  # one order only
    out, info = calibrate(pairs)
    assert [j.winner for j in out[0].judgments] == ["tie", "B"]  # its tie stays; the other order follows c
    assert [j.winner for j in out[1].judgments] == ["A", "A"] and [j.winner for j in out[2].judgments] == ["A"]
    assert [j.winner for j in out[3].judgments] == ["A", "B"] and pairs[3].judgments[1].winner == "A"  # no mutation
    assert info["t"].n_pairs == 2 and info["t"].changed == 2
    assert calibrate_pair(pairs[3].model_copy(update={"error": "x"}))[1] is False


def test_pairs_without_logprobs_are_named_in_the_reasons() -> None:
    pairs = _pairs(40, bias=2.0, delta=0.5, noise=0.1)
    for p in pairs[:5]:
        p.judgments = [j.model_copy(update={"logprobs": None}) for j in p.judgments]
    tv = analyze(pairs, None, _settings("position"), run_id="r").prompt_types[0]
    assert any("calibration applied to 35 of 40 pairs" in r for r in tv.reasons)


def test_logprobs_are_an_optional_field_of_a_judgment() -> None:
    assert "logprobs" not in Judgment(order="baseline_first", winner="A").model_dump_json()
    other = Judgment.model_validate({"order": "x", "winner": "A", "logprobs": [{"token": "A", "logprob": -1}]})
    assert other.logprobs is None  # an imported file's own logprobs shape is left out, not refused
    j = Judgment.model_validate_json(_j("baseline_first", 1.0).model_dump_json())
    assert j.logprobs is not None and set(j.logprobs) == {"A", "B", "tie"}
