"""The anytime-valid sequential test (equiv/stats/sequential.py): checked against a reference computation,
and by simulation (binomial slack) for its error rate under optional stopping and how early it stops."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from equiv.stats.sequential import MIN_PROMPTS, fixed_order, run


def _reference(scores, margin, alpha, weights=None):
    """The two wealth processes written out with numpy from the definitions (module docstring), bets from
    the previous pairs only: aGRAPA mean / (var + mean^2) of the centred weighted observations, with one
    pseudo-observation (mean 0, variance 1/4), clipped to [0, 0.5 / u0] and [0, 0.5 / (1 - u0)]."""
    s = np.clip(np.asarray(scores, dtype=float), -1, 1)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    x = w / w.max()
    u0 = (1 - margin) / 2
    y = x * ((s + 1) / 2 - u0)
    n = len(y)
    go, no = np.zeros(n), np.zeros(n)
    lg = ln = 0.0
    for t in range(n):
        prev = y[:t]
        means = np.array([prev[:i].sum() / (i + 1) for i in range(t + 1)])  # mean before each pair
        mean = means[t]
        var = (0.25 + np.sum((prev - means[:t]) ** 2)) / (t + 1)
        bet_go = 0.0 if mean <= 0 else min(0.5 / u0, mean / (var + mean**2))
        bet_no = 0.0 if -mean <= 0 else min(0.5 / (1 - u0), -mean / (var + mean**2))
        lg += math.log1p(bet_go * y[t])
        ln += math.log1p(-bet_no * y[t])
        go[t], no[t] = math.exp(lg), math.exp(ln)
    return go, no


def _draw(rng: random.Random, mean: float, n: int, tie: float = 0.3) -> list[float]:
    """Pair scores in {-1, 0, 1} (and halves from contradicting orders) with the given mean."""
    p_win = (1 - tie + mean) / 2
    out = []
    for _ in range(n):
        r = rng.random()
        out.append(1.0 if r < p_win else -1.0 if r < 1 - tie else rng.choice((0.0, 0.5, -0.5)) if tie else 0.0)
    return out


@pytest.mark.parametrize("weights", [None, "random"])
def test_matches_the_reference_computation(weights):
    rng = random.Random(3)
    for mean in (-0.4, -0.1, 0.0, 0.2):
        scores = _draw(rng, mean, 120)
        w = [rng.choice((1, 1, 1, 2, 5)) for _ in scores] if weights else None
        go, no = _reference(scores, 0.1, 0.05, w)
        path = run(scores, 0.1, 0.05, weights=w, min_prompts=10**9, keep_path=True).path
        assert np.allclose([p.e_go for p in path], go, rtol=1e-9)
        assert np.allclose([p.e_no_go for p in path], no, rtol=1e-9)


def test_stops_at_the_first_crossing_after_30_prompts():
    scores = [1.0] * 200
    r = run(scores, 0.1, 0.05, keep_path=True)
    assert r.decided_by == "GO" and r.stopped_at == MIN_PROMPTS  # clear from the start: the n >= 30 rule holds it
    first = next(p.t for p in r.path if p.e_go >= 20)
    assert first < MIN_PROMPTS
    r = run([-1.0] * 200, 0.1, 0.05)
    assert r.decided_by == "NO_GO" and r.stopped_at == MIN_PROMPTS
    undecided = run([0.0, -0.2] * 20, 0.1, 0.05)
    assert undecided.decided_by is None and undecided.stopped_at == 40


N, FIXED_N, ALPHA, MARGIN = 1500, 200, 0.05, 0.10


def _slack(p: float, n: int) -> float:
    return p + 3 * math.sqrt(p * (1 - p) / n)  # 3 binomial standard errors above the nominal rate


@pytest.mark.parametrize("tie", [0.0, 0.3, 0.7])
def test_false_go_at_the_margin_is_at_most_alpha(tie):
    rng = random.Random(11)
    res = [run(_draw(rng, -MARGIN, FIXED_N, tie), MARGIN, ALPHA) for _ in range(N)]
    false_go = sum(r.decided_by == "GO" for r in res) / N
    assert false_go <= _slack(ALPHA, N), false_go


def test_false_no_go_at_the_margin_is_at_most_alpha():
    rng = random.Random(12)
    res = [run(_draw(rng, -MARGIN, FIXED_N), MARGIN, ALPHA) for _ in range(N)]
    assert sum(r.decided_by == "NO_GO" for r in res) / N <= _slack(ALPHA, N)


def test_weighted_false_go_at_the_margin():
    """Heavy clusters (FAQ prompts) weigh more: the weighted mean is at the margin, the unweighted above it."""
    rng = random.Random(13)
    hits = 0
    for _ in range(N):
        heavy = [rng.random() < 0.2 for _ in range(FIXED_N)]
        # heavy prompts (weight 5, a fifth of them) are worse: (5 * 0.2 * -0.356 + 0.8 * 0.22) / 1.8 = -0.1,
        # while the unweighted mean is +0.105 (a test that ignored weights would say GO)
        scores = [-0.356 if h else 0.22 for h in heavy]
        noisy = [s + rng.choice((-0.6, 0.0, 0.6)) for s in scores]
        w = [5.0 if h else 1.0 for h in heavy]
        hits += run(noisy, MARGIN, ALPHA, weights=w).decided_by == "GO"
    assert hits / N <= _slack(ALPHA, N)


@pytest.mark.parametrize("truth", [0.15, -0.4])
def test_far_from_the_margin_it_stops_in_at_most_half_of_fixed_n(truth):
    rng = random.Random(21)
    res = [run(_draw(rng, truth, FIXED_N), MARGIN, ALPHA) for _ in range(400)]
    assert statistics.median(r.stopped_at for r in res) <= FIXED_N / 2
    right = "GO" if truth > -MARGIN else "NO_GO"
    assert sum(r.decided_by == right for r in res) / len(res) > 0.8


def test_fixed_order_is_seeded_and_independent_of_input_order():
    ids = [f"p{i}" for i in range(50)]
    a = fixed_order(ids, 0, "t")
    assert a == fixed_order(list(reversed(ids)), 0, "t") and sorted(a) == sorted(ids)
    assert a != fixed_order(ids, 1, "t") and a != fixed_order(ids, 0, "u")


def test_the_order_is_the_samplings_so_a_larger_per_type_continues_it():
    from equiv.sampling import cluster_rank

    clusters = [f"c{i}" for i in range(300)]
    full = fixed_order(clusters, 7, "t")
    bottom_100 = sorted(clusters, key=lambda c: cluster_rank(7, "t", c))[:100]  # what per_type = 100 samples
    assert fixed_order(bottom_100, 7, "t") == full[:100]


def test_a_fixed_weight_scale_makes_later_prompts_irrelevant_to_earlier_wealth():
    early = [1.0] * 30
    a = run(early, MARGIN, ALPHA, weights=[1.0] * 30, scale=5.0, keep_path=True)
    b = run(early + [0.0] * 10, MARGIN, ALPHA, weights=[1.0] * 30 + [5.0] * 10, scale=5.0, keep_path=True)
    assert [p.e_go for p in a.path] == [p.e_go for p in b.path[:30]]


def test_a_recorded_order_with_a_gap_decides_only_on_the_prompts_before_it():
    from equiv.analyze import _sequential_prefix, pair_results
    from equiv.schema import Judgment, Pair, Side

    def pair(i: int) -> Pair:
        base, cand = Side(model="b", output="short"), Side(model="c", output="a better answer")
        wins = [Judgment(order="baseline_first", winner="B"), Judgment(order="candidate_first", winner="A")]
        return Pair(pair_id=f"p{i}", prompt_id=f"c{i}", baseline=base, candidate=cand, judgments=wins)

    order = [f"c{i}" for i in range(60)]
    have = [pair(i) for i in range(60) if i != 20]  # prompt 20 never came back (a killed look)
    results, _ = pair_results(have)
    (_, kept), res = _sequential_prefix(have, results, MARGIN, ALPHA, 0, "t", order)
    assert res.decided_by is None and res.stopped_at == 20  # 20 prompts before the gap: below the 30 needed
    assert len(kept) == len(have)
    full = [pair(i) for i in range(60)]
    results, _ = pair_results(full)
    (_, kept), res = _sequential_prefix(full, results, MARGIN, ALPHA, 0, "t", order)
    assert res.decided_by == "GO" and res.stopped_at == 30 and len(kept) == 30
