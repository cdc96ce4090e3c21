"""Position calibration (judge_calibration = "position"): a biased but informative judge is recovered,
a judge that follows position alone stays unable to pass its check, and nothing else changes."""

from __future__ import annotations

import math
import random

from equiv.analyze import analyze
from equiv.config import Settings
from equiv.schema import Check, Judgment, Pair, Side
from equiv.stats.calibrate import MIN_JUDGMENTS, calibrate, log_odds


def _lp(log_odds_a: float, tie: float = -4.0) -> dict[str, float]:
    """Verdict-word logprobs with the given log-odds of A over B (normalised)."""
    z = {"A": log_odds_a, "B": 0.0, "tie": tie}
    norm = math.log(sum(math.exp(v) for v in z.values()))
    return {w: v - norm for w, v in z.items()}


def _j(order: str, lo: float) -> Judgment:
    lp = _lp(lo)
    return Judgment(order=order, winner=max(("A", "B", "tie"), key=lambda w: lp[w]), judge="j", logprobs=lp)


def _pairs(n: int, bias: float, delta: float, noise: float, seed: int = 0, t: str = "t") -> list[Pair]:
    """delta > 0: the judge's log-odds lean to the baseline by delta (over a position pull of `bias`)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        js = [_j("baseline_first", bias + delta + rng.gauss(0, noise)),
              _j("candidate_first", bias - delta + rng.gauss(0, noise))]
        out.append(Pair(pair_id=f"{t}{i}", prompt_type=t, baseline=Side(model="b", output="x" * 50, cost_usd=2e-4),
                        candidate=Side(model="c", output="x" * 50, cost_usd=1e-4), judgments=js))
    return out


def _checks(n: int, bias: float, delta: float, noise: float, seed: int = 1, t: str = "t") -> list[Check]:
    rng = random.Random(seed)
    return [Check(pair_id=f"{t}{i}", prompt_type=t,
                  judgments=[_j("intact_first", bias + delta + rng.gauss(0, noise)),
                             _j("degraded_first", bias - delta + rng.gauss(0, noise))]) for i in range(n)]


def _settings(cal: str) -> Settings:
    return Settings(judge_calibration=cal, bootstrap=2000, judge_check_min=10)


def test_a_biased_but_informative_judge_is_recovered() -> None:
    """It writes "A" every time (so raw: every pair 0, check 0%); its probabilities still follow the content."""
    pairs, checks = _pairs(60, bias=3.0, delta=0.6, noise=0.2), _checks(10, bias=3.0, delta=0.8, noise=0.2)
    assert all(j.winner == "A" for p in pairs for j in p.judgments)
    raw = analyze(pairs, checks, _settings("none"), run_id="r").prompt_types[0]
    assert raw.quality_diff is not None and raw.quality_diff.estimate == 0.0 and raw.judge_check is not None
    assert raw.judge_check.pass_rate == 0.0 and raw.verdict == "INCONCLUSIVE"
    cal = analyze(pairs, checks, _settings("position"), run_id="r").prompt_types[0]
    assert cal.quality_diff is not None and cal.quality_diff.estimate < -0.9  # the baseline is better, as it is
    assert cal.judge_check is not None and cal.judge_check.pass_rate == 1.0
    assert cal.verdict == "NO_GO" and cal.position_consistency is not None and cal.position_consistency > 0.9
    info = cal.diagnostics.calibration if cal.diagnostics else None
    assert info is not None and info.applied and info.n == 120 and abs((info.threshold or 0) - 3.0) < 0.3
    assert info.changed == 60  # every candidate_first "A" became "B"


def test_an_equal_candidate_under_calibration_can_be_go() -> None:
    pairs, checks = _pairs(200, bias=3.0, delta=0.0, noise=0.05), _checks(20, bias=3.0, delta=0.8, noise=0.2)
    tv = analyze(pairs, checks, _settings("position"), run_id="r").prompt_types[0]
    assert tv.judge_check is not None and tv.judge_check.pass_rate == 1.0
    assert tv.quality_diff is not None and abs(tv.quality_diff.estimate) < 0.15


def test_a_judge_that_follows_position_alone_still_fails_its_check() -> None:
    """No content in its probabilities: calibrated verdicts are coin flips; the check needs both orders right."""
    for seed in range(20):
        pairs = _pairs(60, bias=3.0, delta=0.0, noise=0.5, seed=seed)
        checks = _checks(10, bias=3.0, delta=0.0, noise=0.5, seed=seed + 100)
        tv = analyze(pairs, checks, _settings("position"), run_id="r").prompt_types[0]
        assert tv.verdict != "GO", seed
        assert tv.judge_check is not None and (tv.judge_check.pass_rate or 0) < 0.7, seed


def test_ties_and_judgments_without_logprobs_are_left_as_written() -> None:
    pairs = _pairs(10, bias=2.0, delta=0.5, noise=0.1)
    pairs[0].judgments[0] = Judgment(order="baseline_first", winner="tie", judge="j", logprobs=_lp(2.0, tie=5.0))
    pairs[1].judgments[1] = Judgment(order="candidate_first", winner="A", judge="j")  # no logprobs
    out, _, info = calibrate(pairs, None)
    assert out[0].judgments[0].winner == "tie" and out[1].judgments[1].winner == "A"
    assert info["t"].n == 18 and log_odds(pairs[0].judgments[0]) is None  # neither enters the threshold
    assert pairs[2].judgments[1].winner == "A" and out[2].judgments[1].winner == "B"  # inputs never mutated


def test_too_few_judgments_with_logprobs_leave_the_verdicts_and_say_so() -> None:
    pairs = _pairs(MIN_JUDGMENTS // 2 - 1, bias=3.0, delta=0.6, noise=0.1)
    tv = analyze(pairs, None, _settings("position"), run_id="r").prompt_types[0]
    assert tv.diagnostics is not None and tv.diagnostics.calibration is not None
    assert not tv.diagnostics.calibration.applied
    assert any("judge calibration not applied" in r for r in tv.reasons)
    assert tv.quality_diff is not None and tv.quality_diff.estimate == 0.0


def test_logprobs_are_an_optional_field_of_a_judgment() -> None:
    assert "logprobs" not in Judgment(order="baseline_first", winner="A").model_dump_json()
    j = Judgment.model_validate_json(_j("baseline_first", 1.0).model_dump_json())
    assert j.logprobs is not None and set(j.logprobs) == {"A", "B", "tie"}
