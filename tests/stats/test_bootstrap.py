"""The resampling engine: correctness against a naive bootstrap, chunking, seeding, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from equiv.stats import bootstrap as bs


def _sums(n: int = 37, m: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, m))


def test_resample_totals_equals_naive_gather_for_the_same_draws() -> None:
    sums = _sums()
    got = bs.resample_totals(sums, 500, np.random.default_rng(7))
    idx = np.random.default_rng(7).integers(0, 37, size=(500, 37), dtype=np.uint16)  # one chunk: same draws
    np.testing.assert_allclose(got, sums[idx].sum(axis=1), rtol=1e-12, atol=1e-12)


def test_chunking_bounds_rows_and_keeps_results_deterministic() -> None:
    assert bs.chunk_rows(2000, 32 * 2**20) == 32 * 2**20 // (8 * 2000)
    assert bs.chunk_rows(10**9, 1024) == 1
    sums = _sums()
    a = bs.resample_totals(sums, 1000, np.random.default_rng(1), max_bytes=8 * 37 * 10)
    b = bs.resample_totals(sums, 1000, np.random.default_rng(1), max_bytes=8 * 37 * 10)
    assert a.shape == (1000, 3)
    assert np.array_equal(a, b)
    # every resample draws 37 clusters: the count column sums to 37 exactly
    counts = bs.resample_totals(np.ones((37, 1)), 1000, np.random.default_rng(1), max_bytes=8 * 37 * 10)
    assert np.all(counts == 37.0)


def test_stream_rng_depends_on_seed_and_key_only() -> None:
    a = bs.stream_rng(0, "alpha").integers(0, 10**9, 5)
    assert np.array_equal(a, bs.stream_rng(0, "alpha").integers(0, 10**9, 5))
    assert not np.array_equal(a, bs.stream_rng(0, "beta").integers(0, 10**9, 5))
    assert not np.array_equal(a, bs.stream_rng(1, "alpha").integers(0, 10**9, 5))
    bs.stream_rng(-5, "x")  # negative seeds are accepted


def test_jackknife_totals_leave_one_cluster_out() -> None:
    sums = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_array_equal(bs.jackknife_totals(sums), [[8.0, 10.0], [6.0, 8.0], [4.0, 6.0]])


def test_percentile_interval_is_two_sided_at_1_minus_2_alpha() -> None:
    samples = np.arange(101, dtype=np.float64)  # quantiles are exact: q-th percentile = q
    assert bs.percentile_interval(samples, 0.05) == (5.0, 95.0)
    assert bs.percentile_interval(samples, 0.025) == pytest.approx((2.5, 97.5))


def test_share_at_or_below_counts_ties() -> None:
    assert bs.share_at_or_below(np.array([-0.2, -0.1, 0.0, 0.1]), -0.1) == 0.5


def test_bca_degenerates_cleanly_on_constant_samples() -> None:
    assert bs.bca_interval(np.zeros(100), 0.0, np.zeros(10), 0.05) is None
    assert bs.bca_interval(np.arange(10.0), 0.0, np.ones(10), 0.05) is None  # no jackknife spread


def test_bca_close_to_percentile_for_a_symmetric_statistic() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=400)
    sums = np.column_stack([np.ones(400), data])
    totals = bs.resample_totals(sums, 4000, np.random.default_rng(1))
    means = totals[:, 1] / totals[:, 0]
    jack = bs.jackknife_totals(sums)
    est = data.mean()
    bca = bs.bca_interval(means, est, jack[:, 1] / jack[:, 0], 0.05)
    assert bca is not None
    pct = bs.percentile_interval(means, 0.05)
    assert bca == pytest.approx(pct, abs=0.01)


def test_bca_matches_scipy_on_a_skewed_statistic() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    data = rng.exponential(size=200)
    sums = np.column_stack([np.ones(200), data])
    totals = bs.resample_totals(sums, 20000, np.random.default_rng(2))
    means = totals[:, 1] / totals[:, 0]
    jack = bs.jackknife_totals(sums)
    ours = bs.bca_interval(means, float(data.mean()), jack[:, 1] / jack[:, 0], 0.05)
    ref = scipy_stats.bootstrap(
        (data,), np.mean, n_resamples=20000, confidence_level=0.9, method="BCa", random_state=3
    ).confidence_interval
    assert ours is not None
    assert ours == pytest.approx((ref.low, ref.high), abs=0.02)


def test_products_run_on_one_blas_thread_and_the_setting_is_restored() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with bs.single_threaded_blas():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
