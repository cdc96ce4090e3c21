"""Vectorized paired (cluster) bootstrap over per-cluster sums.

Why sums: every statistic equiv reports (mean score, the length-controlled intercept, the cost
saving) is a function of a handful of totals (count, sum s, sum x, sum s*x, sum x*x, costs). A
resample is then fully described by how many times each cluster was drawn, and its totals are one
matrix product ``counts @ cluster_sums``. No per-pair index matrix is ever built, memory is bounded
by the chunk size, and the same draws serve the raw, length-controlled and cost statistics, so their
intervals come from the SAME resamples (SPEC "Statistics").
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

FloatArray = NDArray[np.float64]

# Columns of the per-cluster sums matrix, in this order.
COUNT, S, X, SX, XX, COST_N, COST_B, COST_C = range(8)
N_COLUMNS = 8

# Upper bound on one chunk's index matrix (int64): memory stays bounded whatever B and n are. Small
# chunks are also faster: the per-chunk count array then stays in cache (measured: 1-4 MB best).
DEFAULT_CHUNK_BYTES = 2 * 2**20


_BLAS: list[Any] = []  # the threadpoolctl controller, found once (scanning the loaded libraries costs ms)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the per-chunk products on one BLAS thread.

    Each chunk's ``counts @ sums`` is a skinny product (rows x C times C x 8) that one core does in
    microseconds; OpenBLAS nonetheless spreads it over all cores, and on a busy machine the waiting
    threads cost far more than the arithmetic (measured: 10 types x 2,000 pairs x 10,000 resamples
    took 7 s instead of 1.5 s on two cores shared with other jobs). threadpoolctl is optional: without
    it the products run as numpy configures them. The limit is process-wide while it lasts, so do not
    run two analyses in threads of one process.
    """
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a dependency, but stay usable without it
            _BLAS.append(None)
        else:
            _BLAS.append(ThreadpoolController())
    if _BLAS[0] is None:  # pragma: no cover
        yield
        return
    with _BLAS[0].limit(limits=1, user_api="blas"):
        yield


def stream_rng(seed: int, key: str) -> np.random.Generator:
    """One generator per (seed, prompt-type).

    Derived from the type's name with a stable hash (crc32, not Python's salted ``hash``), so a
    type's resamples are reproducible bit for bit and do not depend on which other types are in the
    run or in what order they come.
    """
    entropy = [seed % 2**64, zlib.crc32(key.encode("utf-8"))]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def cluster_sums(codes: NDArray[np.intp], columns: FloatArray, n_clusters: int) -> FloatArray:
    """Sum per-pair rows (n, m) into per-cluster rows (C, m); ``codes`` maps each pair to its cluster."""
    out = np.zeros((n_clusters, columns.shape[1]), dtype=np.float64)
    np.add.at(out, codes, columns)
    return out


def chunk_rows(n_clusters: int, max_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """How many resamples to draw at once so the (rows, C) int64 index matrix stays under max_bytes."""
    return max(1, max_bytes // (8 * max(1, n_clusters)))


def resample_totals(
    sums: FloatArray, n_resamples: int, rng: np.random.Generator, *, max_bytes: int = DEFAULT_CHUNK_BYTES
) -> FloatArray:
    """Totals (B, m) of B cluster-bootstrap resamples, each drawing C clusters with replacement.

    Chunked: at most ``chunk_rows`` resamples are materialised at a time. The chunking depends only
    on C and B, so the draws (and the result) are the same on every run with the same seed.
    """
    n_clusters, m = sums.shape
    out = np.empty((n_resamples, m), dtype=np.float64)
    if n_clusters == 0:
        out.fill(np.nan)
        return out
    rows = chunk_rows(n_clusters, max_bytes)
    # 16-bit draws need fewer random bits than 64-bit ones: about 30% faster for the usual C.
    draw_type = np.uint16 if n_clusters <= np.iinfo(np.uint16).max + 1 else np.int64
    offsets = (np.arange(rows, dtype=np.intp) * n_clusters)[:, None]
    with single_threaded_blas():
        for start in range(0, n_resamples, rows):
            b = min(rows, n_resamples - start)
            idx = rng.integers(0, n_clusters, size=(b, n_clusters), dtype=draw_type).astype(np.intp)
            idx += offsets[:b]
            counts = np.bincount(idx.ravel(), minlength=b * n_clusters).reshape(b, n_clusters)
            del idx
            out[start : start + b] = counts.astype(np.float64) @ sums
    return out


def jackknife_totals(sums: FloatArray) -> FloatArray:
    """Leave-one-cluster-out totals (C, m), for the BCa acceleration."""
    return sums.sum(axis=0)[None, :] - sums


def percentile_interval(samples: FloatArray, alpha: float) -> tuple[float, float]:
    """Two-sided (1 - 2*alpha) percentile interval: its low end is the one-sided (1 - alpha) bound."""
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bca_interval(
    samples: FloatArray, estimate: float, jackknife: FloatArray, alpha: float
) -> tuple[float, float] | None:
    """Bias-corrected and accelerated interval (Efron 1987), or None when it degenerates.

    Degenerate cases (all resamples equal, e.g. a ties-only judge; all jackknife values equal; a
    bias correction at 0 or 1) return None so the caller falls back to the percentile interval and
    says so. The bias correction counts resamples equal to the estimate as half below, which keeps
    z0 finite and unbiased for the discrete scores a pairwise judge produces.
    """
    if samples.size == 0 or not np.all(np.isfinite(samples)) or np.ptp(samples) == 0:
        return None
    jack = jackknife[np.isfinite(jackknife)]
    if jack.size < 2 or jack.size != jackknife.size:
        return None
    below = np.count_nonzero(samples < estimate) + 0.5 * np.count_nonzero(samples == estimate)
    p0 = below / samples.size
    if not 0.0 < p0 < 1.0:
        return None
    z0 = float(ndtri(p0))
    d = jack.mean() - jack
    ss = float(np.sum(d * d))
    if ss <= 0.0:
        return None
    accel = float(np.sum(d**3)) / (6.0 * ss**1.5)
    z = ndtri(np.array([alpha, 1.0 - alpha]))
    shifted = z0 + z
    denom = 1.0 - accel * shifted
    if np.any(denom <= 0):
        return None
    levels = ndtr(z0 + shifted / denom)
    if not np.all(np.isfinite(levels)):
        return None
    lo, hi = np.quantile(samples, levels)
    return float(lo), float(hi)


def share_at_or_below(samples: FloatArray, threshold: float) -> float:
    """One-sided bootstrap p-value for H0 "diff <= threshold": the share of resamples at or below it."""
    if samples.size == 0:
        return 1.0
    return float(np.count_nonzero(samples <= threshold)) / samples.size
