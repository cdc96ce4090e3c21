"""Length control (SPEC "Length control"): the quality difference at equal answer length.

LLM judges reward longer answers (Dubois et al. 2024, Length-Controlled AlpacaEval). equiv regresses
the pair score on a bounded transform of the length difference and reads the intercept: the
difference the judge would report if both answers had the same length. The fit is closed-form from
sums, so the bootstrap can refit it in every resample from the cluster totals alone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

# Below this variance of x in a resample the slope is not identified: use the plain mean there.
_MIN_VAR_X = 1e-12


def length_covariate(baseline_chars: ArrayLike, candidate_chars: ArrayLike) -> FloatArray:
    """x = tanh(d / sd(d)), d = candidate chars - baseline chars, sd the population sd over the pairs.

    tanh bounds the influence of one very long answer; sd is computed once on the full sample (not
    per resample) as SPEC says. sd == 0 (all differences equal) gives x = 0: LC then equals raw.
    """
    d = np.asarray(candidate_chars, dtype=np.float64) - np.asarray(baseline_chars, dtype=np.float64)
    if d.size == 0:
        return np.zeros(0, dtype=np.float64)
    sd = float(np.std(d))
    if sd == 0.0 or not np.isfinite(sd):
        return np.zeros_like(d)
    return np.tanh(d / sd)


def ols_from_sums(
    n: ArrayLike, sum_x: ArrayLike, sum_s: ArrayLike, sum_xx: ArrayLike, sum_sx: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Least-squares (b0, b1) of s ~ b0 + b1*x from the five sums; vectorized over resamples.

    Where x has no spread (slope not identified) b1 = 0 and b0 is the mean of s, so LC never
    invents a correction the data cannot support.
    """
    n_ = np.asarray(n, dtype=np.float64)
    sx = np.asarray(sum_x, dtype=np.float64)
    ss = np.asarray(sum_s, dtype=np.float64)
    sxx = np.asarray(sum_xx, dtype=np.float64)
    ssx = np.asarray(sum_sx, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        den = n_ * sxx - sx * sx
        ok = den > _MIN_VAR_X * n_ * n_
        b1 = np.where(ok, (n_ * ssx - sx * ss) / np.where(ok, den, 1.0), 0.0)
        b0 = (ss - b1 * sx) / n_
    return np.asarray(b0, dtype=np.float64), np.asarray(b1, dtype=np.float64)
