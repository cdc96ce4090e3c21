"""Anytime-valid sequential decisions (SPEC "Spending less": `--sequential`), pure and small.

Per prompt-type, pairs arrive in an order fixed (seeded) before any verdict is seen. Each pair's score
s in [-1, 1] is rescaled to u = (s + 1) / 2 in [0, 1]; the margin's boundary is u0 = (1 - margin) / 2.
Two betting martingales run side by side (Waudby-Smith & Ramdas, "Estimating means of bounded random
variables by betting", JRSS-B 2024; Shafer's testing by betting):

  GO test     H0: E[u] <= u0 (worse by at least the margin)  wealth  K+ = prod(1 + l+_t x_t (u_t - u0))
  NO_GO test  H0: E[u] >= u0 (not worse than the margin)     wealth  K- = prod(1 + l-_t x_t (u0 - u_t))

with x_t = w_t / max(w) the pair's traffic weight over the sample's largest (both known when the sample is
drawn, before any verdict: the
weighted mean is the estimand, E[x (u - u0)] <= 0 under H0) and bets l_t chosen from pairs 1..t-1 only
(predictable: aGRAPA, the growth-rate-adaptive bet, clipped to half of what keeps every factor positive).
Under its H0 each wealth is a nonnegative supermartingale, so by Ville's inequality it ever reaches 1/alpha
with probability at most alpha: stopping at the first time either wealth reaches 1/alpha, or at any other
time, keeps each error rate at or below alpha ("valid under optional stopping").

Prompts are drawn without replacement from a large population of distinct prompts; like the bootstrap,
the test treats them as independent draws (the population is much larger than the sample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_PROMPTS = 30  # SPEC's decision rule: no decision on fewer distinct prompts
CLIP = 0.5  # a bet is at most this share of the largest one that keeps the wealth positive


@dataclass(frozen=True)
class Step:
    """The state after pair t (1-based)."""

    t: int
    e_go: float  # the GO test's wealth (an e-value for H0 "worse by at least the margin")
    e_no_go: float


@dataclass(frozen=True)
class SequentialResult:
    stopped_at: int  # pairs used (the whole sequence when no test decided)
    decided_by: str | None  # "GO" / "NO_GO" when a test crossed 1/alpha, else None
    e_value: float  # the deciding test's wealth at the stop; else the larger of the two at the end
    n: int  # pairs in the sequence
    path: tuple[Step, ...] = ()


def _bet(mean: float, var: float, bound: float) -> float:
    """aGRAPA: mean / (var + mean^2) for centred observations, clipped to [0, CLIP * bound]."""
    if mean <= 0:
        return 0.0
    return min(CLIP * bound, mean / (var + mean * mean))


def run(
    scores: Sequence[float],
    margin: float,
    alpha: float,
    weights: Sequence[float] | None = None,
    min_prompts: int = MIN_PROMPTS,
    keep_path: bool = False,
    scale: float | None = None,
) -> SequentialResult:
    """Both tests over `scores` (pair scores in [-1, 1], in their fixed order): the first t >= min_prompts at
    which a wealth reaches 1/alpha decides (NO_GO, the cautious one, if both did at once)."""
    if not 0 < margin < 1 or not 0 < alpha < 0.5:
        raise ValueError("margin in (0, 1) and alpha in (0, 0.5)")
    n = len(scores)
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n:
        raise ValueError("one weight per score")
    # the weights' scale must be fixed before any verdict (the sample's largest cluster), not the largest seen
    top = float(scale) if scale is not None and scale > 0 else (max(w) if w else 1.0)
    u0 = (1.0 - margin) / 2.0
    up_bound, down_bound = 1.0 / u0, 1.0 / (1.0 - u0)  # the largest bets that keep every factor >= 0
    threshold = 1.0 / alpha
    log_go = log_no = 0.0
    # running estimates of the centred observations y+ = x (u - u0) and y- = -y+, with one prior pseudo-pair
    s_sum, s2_sum, k = 0.0, 0.0, 0
    path: list[Step] = []
    for t in range(1, n + 1):
        mean_prev = s_sum / (k + 1)  # prior mean 0 (the boundary), prior variance 1/4, both as one pseudo-pair
        var_prev = (0.25 + s2_sum) / (k + 1)
        lam_go = _bet(mean_prev, var_prev, up_bound)
        lam_no = _bet(-mean_prev, var_prev, down_bound)
        s = min(1.0, max(-1.0, float(scores[t - 1])))
        x = min(1.0, w[t - 1] / top) if top > 0 else 1.0
        y = x * ((s + 1.0) / 2.0 - u0)
        log_go += math.log1p(lam_go * y)
        log_no += math.log1p(-lam_no * y)
        s_sum += y
        s2_sum += (y - mean_prev) ** 2
        k += 1
        e_go, e_no = math.exp(min(log_go, 700.0)), math.exp(min(log_no, 700.0))
        if keep_path:
            path.append(Step(t, e_go, e_no))
        if t >= min_prompts:
            if e_no >= threshold:
                return SequentialResult(t, "NO_GO", e_no, n, tuple(path))
            if e_go >= threshold:
                return SequentialResult(t, "GO", e_go, n, tuple(path))
    e_go, e_no = math.exp(min(log_go, 700.0)), math.exp(min(log_no, 700.0))
    return SequentialResult(n, None, max(e_go, e_no), n, tuple(path))


def fixed_order(ids: Sequence[str], seed: int, prompt_type: str) -> list[str]:
    """The seeded order of a type's prompts (cluster ids), fixed before any verdict: the sampling's own rank
    (equiv.sampling.cluster_rank, bottom-k), so the prompts of a smaller per_type are exactly the first ones
    of a larger per_type's order, and a larger per_type continues the same sequence."""
    from equiv.sampling import cluster_rank

    return sorted(ids, key=lambda c: (cluster_rank(seed, prompt_type, c), c))
