"""Is tonight's quality lower than the run that qualified the route? The two-run test of `equiv nightly`.

Pure statistics, no I/O. The inputs are each run's cluster-bootstrap draws of the raw quality difference
(`equiv.analyze.quality_draws`, drawn with independent seeds): the two runs are independent samples, so
the draws of `new - old` are the elementwise differences of the two sets of draws, and the one-sided
bootstrap p-value of a drop is the share of those differences at or above zero (SPEC "Statistics":
the same percentile logic as the Holm p-value).

Selection. The reference run is not a random run: it is the run that came out GO. Conditional on that,
its estimate is biased upwards (at 80% power by about 0.35 standard errors), and a test of "tonight is
lower than the reference" at level a alarms on up to a / P(GO) of the nights of an unchanged route
(measured: 7% at a = 5% and 80% power). Since P(alarm | GO) <= P(alarm) / P(GO), doubling the p-value
(testing at a / 2) keeps the false-alarm rate of an unchanged route at or below a for every route that
had at least an even chance of its GO. A selection-conditional (truncated normal, given the
reference's GO) test was tried too: exact, but it loses most of its power when the reference barely
cleared the bar; in simulation it caught a drop of 0.15 on 54% of nights against 70% for the doubled
test, at about the same false-alarm rate (benchmarks/bench_nightly.py prints the doubled test's figures).
Where the reference was not selected (it was not GO), the p-value is not doubled.

Several prompt-types in one route are tested as SPEC's `correction` says: "none" each at alpha,
"bonferroni" at alpha / K, "holm" step-down over the (adjusted) p-values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

FloatArray = NDArray[np.float64]

SELECTION_FACTOR = 2.0  # the reference run was selected by its GO: see the module docstring


@dataclass(frozen=True)
class DropTest:
    """One prompt-type's two-run comparison (quality difference scale, candidate minus baseline)."""

    estimate: float  # tonight's quality_diff estimate
    reference_estimate: float  # the reference run's
    diff: float  # estimate - reference_estimate (negative: quality dropped)
    p_raw: float  # one-sided bootstrap p-value of H0 "no drop": share of draws of the difference >= 0
    p_value: float  # p_raw adjusted for the reference's selection (x2 when it was GO), at most 1
    selected: bool  # the reference was GO (its estimate is biased upwards; hence the adjustment)
    method: str  # "bootstrap" (both runs' draws) | "normal" (the reference known only by its interval)
    n_draws: int
    se_diff: float  # standard deviation of the draws of the difference
    diffs: FloatArray | None = field(default=None, repr=False, compare=False)  # the draws of new - old

    def upper_bound(self, level: float) -> float:
        """One-sided upper confidence bound on the difference, at the confidence the test used at `level`
        (1 - level / 2 when the p-value is selection-adjusted): a significant drop has it below zero."""
        q = 1.0 - (level / SELECTION_FACTOR if self.selected else level)
        if self.diffs is not None and self.diffs.size:
            return float(np.quantile(self.diffs, q))
        return self.diff + float(ndtri(q)) * self.se_diff

    def significant(self, level: float) -> bool:
        return self.diff < 0 and self.p_value <= level

    def as_dict(self) -> dict[str, float | str | bool | int]:
        return {
            "estimate": _round(self.estimate),
            "reference_estimate": _round(self.reference_estimate),
            "diff": _round(self.diff),
            "p_raw": _round(self.p_raw),
            "p_value": _round(self.p_value),
            "selection_adjusted": self.selected,
            "method": self.method,
            "n_draws": self.n_draws,
        }


def _round(x: float) -> float:
    return round(float(x), 6) if math.isfinite(x) else x


def _clean(draws: FloatArray) -> FloatArray:
    a = np.asarray(draws, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def _differences(draws_new: FloatArray, draws_old: FloatArray) -> FloatArray:
    """Draws of new - old. The two sets come from independent runs and independent seeds, so draw i of
    one minus draw i of the other is a draw of the difference; unequal lengths are cut to the shorter."""
    new, old = _clean(draws_new), _clean(draws_old)
    m = min(new.size, old.size)
    return new[:m] - old[:m]


def drop_p_value(draws_new: FloatArray, draws_old: FloatArray) -> float:
    """Share of the bootstrap differences new - old at or above zero (small: tonight is lower)."""
    diffs = _differences(draws_new, draws_old)
    return float(np.count_nonzero(diffs >= 0.0)) / diffs.size if diffs.size else float("nan")


def drop_p_value_normal(draws_new: FloatArray, reference_estimate: float, reference_se: float) -> float:
    """As drop_p_value, with the reference known only by its estimate and standard error (normal):
    P(new - old >= 0) = mean over tonight's draws of Phi((draw - estimate_old) / se_old)."""
    new = _clean(draws_new)
    if new.size == 0 or not math.isfinite(reference_estimate):
        return float("nan")
    if not math.isfinite(reference_se) or reference_se <= 0:
        return float(np.count_nonzero(new >= reference_estimate)) / new.size
    return float(np.mean(ndtr((new - reference_estimate) / reference_se)))


def se_from_interval(ci_low: float, ci_high: float, alpha: float) -> float:
    """The standard error a (1 - 2 alpha) normal interval implies (for a reference without its pairs)."""
    z = float(ndtri(1.0 - alpha))
    return (ci_high - ci_low) / (2.0 * z) if z > 0 else float("nan")


def drop_test(
    draws_new: FloatArray,
    draws_old: FloatArray | None,
    *,
    estimate: float,
    reference_estimate: float,
    selected: bool,
    reference_se: float | None = None,
) -> DropTest | None:
    """The comparison of one prompt-type, from both runs' draws, or from tonight's draws and the
    reference's estimate and standard error when its pairs are gone. None when it cannot be computed."""
    if not (math.isfinite(estimate) and math.isfinite(reference_estimate)):
        return None
    new = _clean(draws_new)
    diffs: FloatArray | None = None
    if draws_old is not None and _clean(draws_old).size and new.size:
        diffs = _differences(new, draws_old)
        p, method, n = drop_p_value(new, draws_old), "bootstrap", diffs.size
        se = float(np.std(diffs, ddof=1)) if diffs.size > 1 else 0.0
    elif reference_se is not None and math.isfinite(reference_se) and new.size:
        p, method, n = drop_p_value_normal(new, reference_estimate, reference_se), "normal", new.size
        se = math.sqrt((float(np.var(new, ddof=1)) if new.size > 1 else 0.0) + max(reference_se, 0.0) ** 2)
    else:
        return None
    if not math.isfinite(p):
        return None
    adjusted = min(1.0, p * SELECTION_FACTOR) if selected else p
    return DropTest(
        estimate=estimate,
        reference_estimate=reference_estimate,
        diff=estimate - reference_estimate,
        p_raw=p,
        p_value=adjusted,
        selected=selected,
        method=method,
        n_draws=n,
        se_diff=se,
        diffs=diffs,
    )


def drop_levels(p_values: Mapping[str, float], alpha: float, correction: str) -> dict[str, float]:
    """The level each prompt-type's drop is tested at (compare its adjusted p-value with it).

    "none": alpha; "bonferroni": alpha / K; "holm": the i-th smallest p-value at alpha / (K - i + 1)
    until the first that fails, the rest at the level that failed (so they fail too)."""
    names = list(p_values)
    k = len(names)
    if k == 0:
        return {}
    if correction == "bonferroni":
        return {n: alpha / k for n in names}
    if correction == "holm":
        levels: dict[str, float] = {}
        failed_at: float | None = None
        for i, name in enumerate(sorted(names, key=lambda n: (p_values[n], n))):
            level = alpha / (k - i)
            if failed_at is None and not p_values[name] <= level:
                failed_at = level
            levels[name] = failed_at if failed_at is not None else level
        return levels
    return {n: alpha for n in names}
