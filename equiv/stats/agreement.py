"""Agreement statistics: judges with each other (panel) and a judge with people (calibration).

Pure functions, no I/O. Every statistic here is a function of a few per-item counts, so, as in
``equiv.stats.bootstrap``, a cluster-bootstrap resample is fully described by how many times each
cluster was drawn and its totals are one product ``counts @ cluster_sums``. All figures of one call
come from the SAME resamples, and each resample's kappa is computed exactly from its resampled
counts (no per-resample Python loop).

Formulas (closed forms written with counts only, so an undefined kappa is an exact 0 denominator):

* Fleiss (1971), N items each rated by n raters into k categories, n_ij raters put item i in j:
  P_i = (sum_j n_ij^2 - n) / (n (n - 1)),  P = mean_i P_i,  p_j = sum_i n_ij / (N n),
  P_e = sum_j p_j^2,  kappa = (P - P_e) / (1 - P_e).
* Cohen (1960), an N-item k x k confusion matrix m with row sums r and column sums c:
  p_o = trace(m) / N,  p_e = sum_j r_j c_j / N^2,  kappa = (p_o - p_e) / (1 - p_e).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from equiv.schema import HumanAgreement, Interval
from equiv.stats.bootstrap import cluster_sums, resample_totals, stream_rng

FloatArray = NDArray[np.float64]

HUMAN_AGREEMENT_MIN = 0.6  # SPEC "Calibration against people": below this (ties excluded) a type cannot GO
HUMAN_LABELS_MIN = 30  # ... when it has at least this many labels
TIE_EPS = 1e-9  # |score| at or below this is a tie (a pair score of 0)
PANEL_CATEGORIES = 3  # a panel judge's verdict per pair: 0 / 1 / 2 (e.g. baseline / tie / candidate)

Gold = Literal["baseline", "candidate", "tie"]
# Category indices of the 3 x 3 judge-by-gold confusion matrix (HumanAgreement.kappa's order).
BASELINE, TIE, CANDIDATE = 0, 1, 2
_GOLD_INDEX: dict[str, int] = {"baseline": BASELINE, "tie": TIE, "candidate": CANDIDATE}
_CLIP_GUARD = 1e-12  # float-rounding guard for the blocking threshold (e.g. 18/30 must count as 0.6)


@dataclass(frozen=True)
class Labelled:
    """One labelled pair: the judge's pair score and the human (or gold) verdict."""

    cluster: str  # the pair's cluster (resampling unit)
    score: float  # the judge's pair score in [-1, 1] (candidate's view: > 0 candidate preferred)
    gold: Gold
    consistent: bool | None = None  # the judge preferred the same answer in both orders; None: not judged in both


# --- kappas from counts (vectorized over leading axes) -------------------------------------------------


def _fleiss_from_totals(n_items: FloatArray, sum_sq: FloatArray, totals: FloatArray, raters: int) -> FloatArray:
    """Fleiss' kappa from N, sum_ij n_ij^2 and the category totals T_j (last axis), any leading shape.

    Multiplying P - P_e and 1 - P_e by (N n)^2 gives integer-valued float arithmetic:
    num = (S - N n) N n / (n - 1) - sum_j T_j^2, den = (N n)^2 - sum_j T_j^2 (0 iff one category only).
    """
    nn = n_items * raters
    t2 = np.sum(totals * totals, axis=-1)
    num = (sum_sq - nn) * nn / (raters - 1) - t2
    den = nn * nn - t2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def fleiss_kappa(counts: NDArray[np.integer] | FloatArray) -> float:
    """Fleiss' (1971) kappa of an (items, categories) count table, every row summing to n >= 2 raters.

    nan when undefined: no items, or every rating in one category (expected agreement P_e = 1).
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError("counts must be a 2-d (items, categories) table")
    if c.shape[0] == 0:
        return math.nan
    if np.any(c < 0) or np.any(c != np.round(c)):
        raise ValueError("counts must be non-negative integers")
    per_item = c.sum(axis=1)
    raters = int(per_item[0])
    if raters < 2 or np.any(per_item != raters):
        raise ValueError("every item needs the same number of raters, at least 2")
    k = _fleiss_from_totals(np.array(float(c.shape[0])), np.array(float(np.sum(c * c))), c.sum(axis=0), raters)
    return float(k)


def _cohen_from_confusion(conf: FloatArray, k: int) -> FloatArray:
    """Cohen's kappa from flattened k x k confusion counts (last axis, row-major: a * k + b)."""
    m = conf.reshape(*conf.shape[:-1], k, k)
    n = m.sum(axis=(-2, -1))
    trace = np.trace(m, axis1=-2, axis2=-1)
    rc = np.sum(m.sum(axis=-1) * m.sum(axis=-2), axis=-1)
    # (p_o - p_e) / (1 - p_e) times N^2 / N^2: integer-valued, 0 denominator iff undefined.
    num = n * trace - rc
    den = n * n - rc
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def cohen_kappa(a: NDArray[np.integer], b: NDArray[np.integer], k: int = 3) -> float:
    """Cohen's (1960) kappa between two label arrays of ints in [0, k).

    nan when undefined: no items, or both raters put every item in the same one category (p_e = 1).
    """
    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("a and b must be 1-d arrays of the same length")
    if x.size and (x.min() < 0 or y.min() < 0 or x.max() >= k or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k})")
    conf = np.bincount(x.astype(np.intp) * k + y.astype(np.intp), minlength=k * k).astype(np.float64)
    return float(_cohen_from_confusion(conf, k))


# --- bootstrap plumbing ----------------------------------------------------------------------------------


def _codes(clusters: Sequence[str]) -> tuple[NDArray[np.intp], int]:
    """Cluster index per item; clusters sorted by id, so the draws do not depend on the items' order."""
    uniq, inv = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    return inv.astype(np.intp).ravel(), int(uniq.size)


def _interval(estimate: float, samples: FloatArray, alpha: float) -> Interval | None:
    """Estimate with the two-sided (1 - 2*alpha) percentile interval of the finite resamples.

    None when the estimate is undefined or no resample is defined (a resample that drew no item of the
    statistic's kind, or whose kappa is undefined, is dropped).
    """
    if not math.isfinite(estimate):
        return None
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(estimate=float(estimate), ci_low=float(lo), ci_high=float(hi))


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _check_boot(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if not 0.0 < alpha < 0.5:
        raise ValueError("alpha must lie in (0, 0.5)")


# --- panel agreement -------------------------------------------------------------------------------------


def panel_kappa(
    ratings: Sequence[tuple[str, Sequence[int]]], *, seed: int, key: str, n_boot: int, alpha: float
) -> Interval | None:
    """Fleiss' kappa of a judge panel (SPEC "Judges": ``panel_agreement``) with a cluster-bootstrap interval.

    ``ratings``: per item, (cluster id, the category 0 / 1 / 2 each judge gave it). The panel's size is
    the longest rating list; items rated by fewer judges are left out (Fleiss needs every item rated by
    all). The interval is the two-sided (1 - 2*alpha) percentile interval of ``n_boot`` resamples of
    clusters (all items of a cluster together, rng ``stream_rng(seed, key)``); resamples whose kappa is
    undefined (every rating in one category) are dropped. None with fewer than 2 items or 2 raters, or
    when kappa is undefined on the data itself.
    """
    _check_boot(n_boot, alpha)
    raters = max((len(r) for _, r in ratings), default=0)
    full = [(c, r) for c, r in ratings if len(r) == raters]
    if raters < 2 or len(full) < 2:
        return None
    cats = np.asarray([list(r) for _, r in full], dtype=np.intp)
    if cats.min() < 0 or cats.max() >= PANEL_CATEGORIES:
        raise ValueError(f"panel categories must lie in [0, {PANEL_CATEGORIES})")
    table = np.stack([np.count_nonzero(cats == j, axis=1) for j in range(PANEL_CATEGORIES)], axis=1)
    table_f = table.astype(np.float64)
    # per item: 1, sum_j n_ij^2, n_i0, n_i1, n_i2
    columns = np.column_stack([np.ones(len(full)), np.sum(table_f * table_f, axis=1), table_f])
    codes, n_clusters = _codes([c for c, _ in full])
    sums = cluster_sums(codes, columns, n_clusters)
    estimate = fleiss_kappa(table)
    totals = resample_totals(sums, n_boot, stream_rng(seed, key))
    samples = _fleiss_from_totals(totals[:, 0], totals[:, 1], totals[:, 2:], raters)
    return _interval(estimate, samples, alpha)


# --- calibration against people --------------------------------------------------------------------------


def judge_category(score: float) -> int:
    """The judge's side of a pair score: candidate when > 0, baseline when < 0, tie when |score| <= 1e-9."""
    if score > TIE_EPS:
        return CANDIDATE
    if score < -TIE_EPS:
        return BASELINE
    return TIE


def human_agreement(items: Sequence[Labelled], *, seed: int, key: str, n_boot: int, alpha: float) -> HumanAgreement:
    """The judge against human or gold labels (SPEC "Calibration against people").

    A pair agrees when its score's sign is the gold side's (``judge_category``; 0 is a tie).

    * ``agreement``: share of pairs that agree, ties a third category (a tie agrees only with a tie).
    * ``agreement_without_ties``: the same over the pairs where neither the label nor the judge is a tie
      (MT-Bench's "without tie" setup, Zheng et al. 2023); ``n_without_ties`` counts them.
    * ``kappa``: Cohen's kappa between judge and gold over baseline / tie / candidate.
    * ``position_consistency``: share of the pairs judged in both orders (``consistent`` not None)
      whose two verdicts preferred the same answer.

    Each is an Interval with the two-sided (1 - 2*alpha) percentile interval of ``n_boot`` cluster
    resamples (rng ``stream_rng(seed, key)``), all from the same resamples, or None when it has no items
    (or kappa is undefined on the data). A resample where a figure is undefined (it drew no item of that
    figure's kind, or kappa's expected agreement is 1) is dropped for that figure. Each item adds one row
    of per-cluster sums: its 3 x 3 judge-by-gold confusion cell (9 columns, row-major judge * 3 + gold),
    judged-in-both-orders, consistent; every figure, kappa included, is exact per resample.
    """
    _check_boot(n_boot, alpha)
    n = len(items)
    if n == 0:
        return HumanAgreement(
            n=0, n_without_ties=0, agreement=None, agreement_without_ties=None, kappa=None, position_consistency=None
        )
    judge = np.empty(n, dtype=np.intp)
    gold = np.empty(n, dtype=np.intp)
    both = np.zeros(n, dtype=np.float64)
    same = np.zeros(n, dtype=np.float64)
    for i, it in enumerate(items):
        if not math.isfinite(it.score):
            raise ValueError(f"item {i}: score must be finite, got {it.score!r}")
        if it.gold not in _GOLD_INDEX:
            raise ValueError(f"item {i}: gold must be baseline, candidate or tie, got {it.gold!r}")
        judge[i] = judge_category(it.score)
        gold[i] = _GOLD_INDEX[it.gold]
        if it.consistent is not None:
            both[i] = 1.0
            same[i] = 1.0 if it.consistent else 0.0
    columns = np.zeros((n, 11), dtype=np.float64)
    columns[np.arange(n), judge * 3 + gold] = 1.0
    columns[:, 9] = both
    columns[:, 10] = same
    codes, n_clusters = _codes([it.cluster for it in items])
    sums = cluster_sums(codes, columns, n_clusters)

    decisive = [BASELINE * 3 + BASELINE, BASELINE * 3 + CANDIDATE, CANDIDATE * 3 + BASELINE, CANDIDATE * 3 + CANDIDATE]
    agree_decisive = [BASELINE * 3 + BASELINE, CANDIDATE * 3 + CANDIDATE]
    diagonal = [0, 4, 8]

    def figures(t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        conf = t[..., :9]
        return (
            _ratio(conf[..., diagonal].sum(axis=-1), conf.sum(axis=-1)),
            _ratio(conf[..., agree_decisive].sum(axis=-1), conf[..., decisive].sum(axis=-1)),
            _cohen_from_confusion(conf, 3),
            _ratio(t[..., 10], t[..., 9]),
        )

    point = figures(sums.sum(axis=0))
    boot = figures(resample_totals(sums, n_boot, stream_rng(seed, key)))
    agreement, without_ties, kappa, consistency = (
        _interval(float(est), samples, alpha) for est, samples in zip(point, boot, strict=True)
    )
    n_without_ties = int(np.count_nonzero((judge != TIE) & (gold != TIE)))
    return HumanAgreement(
        n=n,
        n_without_ties=n_without_ties,
        agreement=agreement,
        agreement_without_ties=without_ties,
        kappa=kappa,
        position_consistency=consistency,
    )


def human_agreement_blocks(h: HumanAgreement | None) -> bool:
    """SPEC: a type with >= 30 labels whose judge-human agreement (ties excluded) is below 0.6 cannot GO.

    Decided on the point estimate of ``agreement_without_ties`` (with a 1e-12 guard so a share such as
    18/30 counts as 0.6, not below it). With >= 30 labels but no pair outside the ties
    (``agreement_without_ties`` None: every label or every verdict a tie), the judge showed no agreement
    at all, so that blocks too. No labels (None) or fewer than 30: never blocks.
    """
    if h is None or h.n < HUMAN_LABELS_MIN:
        return False
    if h.agreement_without_ties is None:
        return True
    return h.agreement_without_ties.estimate < HUMAN_AGREEMENT_MIN - _CLIP_GUARD
