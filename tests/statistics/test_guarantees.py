"""The promise behind a GO, checked by simulation with the real analyze() (issue 3).

Each test runs a few hundred simulated studies with a KNOWN truth (see sim.py) and 1,000 bootstrap
resamples each; the simulations are seeded, so the outcome is deterministic. Error rates are
compared with their nominal value plus a slack of 3 binomial standard errors over the replications
used here (e.g. alpha = 0.05 over 300 studies: allowed up to 0.088). That slack is wide: these tests
catch a broken method (a false-GO rate of 0.15, an interval covering 70%), not a 1-point drift.
benchmarks/bench_statistics.py runs the same scenarios with more replications and prints the rates.
"""

from __future__ import annotations

import math

import pytest

from equiv.analyze import analyze
from equiv.config import Settings

from .sim import SimJudge, World, binomial_upper, mirrored, rate, replicate, simulate

ALPHA = 0.05
MARGIN = 0.10
SETTINGS = Settings(bootstrap=1000, alpha=ALPHA, margin=MARGIN, seed=0)
REPS = 300


def test_false_go_rate_at_the_margin_is_at_most_alpha() -> None:
    # truth exactly at -margin: the least favourable point of H0 "diff <= -margin"
    res = replicate(World(true_diff=-MARGIN), SimJudge(position_bias=0.1, tie_rate=0.15), 200, REPS, 1, SETTINGS)
    false_go = rate([t.verdict == "GO" for t in res])
    assert false_go <= binomial_upper(ALPHA, REPS), false_go


def test_false_go_when_worse_and_longer_with_a_length_favouring_judge() -> None:
    # At equal length the candidate is at -margin; it is ~1 sd longer and the judge rewards length,
    # which lifts the raw estimate to about +0.06. Length control must keep the false GOs at alpha.
    world = World(true_diff=-MARGIN, length_shift=1.0)
    res = replicate(world, SimJudge(verbosity=0.3), 200, REPS, 2, SETTINGS)
    false_go = rate([t.verdict == "GO" for t in res])
    raw_alone = rate([t.quality_diff is not None and t.quality_diff.ci_low > -MARGIN for t in res])
    assert raw_alone > 0.5  # the trap is real: the raw interval alone would say GO most of the time
    assert false_go <= binomial_upper(ALPHA, REPS), false_go


def _covers(lo: float, hi: float, truth: float) -> bool:
    return lo <= truth <= hi


def test_coverage_of_the_raw_interval() -> None:
    res = replicate(World(true_diff=0.0), SimJudge(), 200, REPS, 3, SETTINGS)
    cov = rate([_covers(t.quality_diff.ci_low, t.quality_diff.ci_high, 0.0) for t in res if t.quality_diff])
    nominal = 1 - 2 * ALPHA
    slack = 3 * math.sqrt(nominal * (1 - nominal) / REPS)
    assert abs(cov - nominal) <= slack, cov


def test_coverage_of_the_length_controlled_interval_under_verbosity_bias() -> None:
    reps = 200
    res = replicate(World(true_diff=-0.05, length_shift=0.5), SimJudge(verbosity=0.3), 200, reps, 4, SETTINGS)
    lc = [t.lc_quality_diff for t in res if t.lc_quality_diff]
    cov = rate([_covers(i.ci_low, i.ci_high, -0.05) for i in lc])
    raw_cov = rate([_covers(t.quality_diff.ci_low, t.quality_diff.ci_high, -0.05) for t in res if t.quality_diff])
    nominal = 1 - 2 * ALPHA
    assert abs(cov - nominal) <= 3 * math.sqrt(nominal * (1 - nominal) / reps), cov
    assert raw_cov < 0.6  # the raw interval targets the length-inflated difference, not the truth


def test_coverage_with_repeated_samples_per_prompt() -> None:
    # 4 candidate samples per prompt share the prompt's effect: only a cluster bootstrap covers.
    reps = 200
    world = World(true_diff=0.0, samples_per_prompt=4, heterogeneity=0.5)
    res = replicate(world, SimJudge(tie_rate=0.1), 200, reps, 5, SETTINGS)
    assert all(t.n_prompts == 50 for t in res)
    cov = rate([_covers(t.quality_diff.ci_low, t.quality_diff.ci_high, 0.0) for t in res if t.quality_diff])
    nominal = 1 - 2 * ALPHA
    assert cov >= nominal - 3 * math.sqrt(nominal * (1 - nominal) / reps), cov


def test_repeated_samples_widen_the_interval_against_treating_them_as_independent() -> None:
    # Issue 3, item 3: with k = 4 correlated samples per prompt (they share the prompt's effect but
    # each is judged on its own), resampling prompts must give a wider interval than resampling the
    # 200 samples as if they were 200 prompts. Design effect here: 1 + (k - 1) * rho, rho ~ 0.2.
    import numpy as np

    world = World(true_diff=0.0, samples_per_prompt=4, heterogeneity=0.5)
    rng = np.random.default_rng(11)
    ratios = []
    for _ in range(40):
        pairs, checks = simulate(world, SimJudge(tie_rate=0.1), 200, rng)
        assert len({p.prompt_id for p in pairs}) == 50
        independent = [p.model_copy(update={"prompt_id": None}) for p in pairs]
        cl = analyze(pairs, checks, SETTINGS, run_id="c").prompt_types[0]
        nv = analyze(independent, checks, SETTINGS, run_id="n").prompt_types[0]
        assert (cl.n_prompts, nv.n_prompts) == (50, 200)
        assert cl.quality_diff is not None and nv.quality_diff is not None
        assert cl.quality_diff.estimate == nv.quality_diff.estimate  # same data, same point estimate
        ratios.append(
            (cl.quality_diff.ci_high - cl.quality_diff.ci_low) / (nv.quality_diff.ci_high - nv.quality_diff.ci_low)
        )
    assert float(np.mean(ratios)) > 1.15, np.mean(ratios)
    assert rate([r > 1 for r in ratios]) >= 0.9


def test_power_at_samples_needed() -> None:
    # A pilot whose estimate equals the truth (0: truly equivalent) predicts N; at N a GO should come
    # about 80% of the time. The pilot is mirrored (each pair plus its reverse) so its estimate is exact.
    import numpy as np

    world, judge = World(true_diff=0.0), SimJudge()
    pilot_pairs, pilot_checks = simulate(world, judge, 40, np.random.default_rng(6))
    pilot = analyze(mirrored(pilot_pairs), pilot_checks, SETTINGS, run_id="pilot").prompt_types[0]
    assert pilot.quality_diff is not None and pilot.quality_diff.estimate == pytest.approx(0.0, abs=1e-12)
    assert pilot.verdict == "INCONCLUSIVE" and pilot.samples_needed is not None
    n_needed = pilot.samples_needed
    assert 150 < n_needed < 450  # SPEC's formula with this world's true sd (0.66) gives 269
    reps = 200
    res = replicate(world, judge, n_needed, reps, 7, SETTINGS)
    power = rate([t.verdict == "GO" for t in res])
    slack = 3 * math.sqrt(0.8 * 0.2 / reps)
    assert 0.8 - slack <= power <= 0.8 + slack + 0.05, (n_needed, power)


@pytest.mark.parametrize("always", ["A", "B", "tie"])
@pytest.mark.parametrize("true_diff", [-0.3, 0.0])
def test_a_judge_that_ignores_the_answers_never_gives_go(always: str, true_diff: float) -> None:
    res = replicate(World(true_diff=true_diff), SimJudge(always=always), 200, 10, 8, SETTINGS)
    assert all(t.quality_diff is not None and t.quality_diff.estimate == 0.0 for t in res)  # looks equivalent
    assert all(t.verdict != "GO" for t in res)
    assert all(t.judge_check is not None and t.judge_check.pass_rate == 0.0 for t in res)
    assert all(any("judge check failed" in r for r in t.reasons) for t in res)
