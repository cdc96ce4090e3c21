"""Length control: the covariate, the closed-form fit, and its two defining behaviours."""

from __future__ import annotations

import numpy as np
import pytest

from equiv.analyze import analyze
from equiv.stats.length import length_covariate, ols_from_sums

from .helpers import pair, settings


def test_covariate_uses_population_sd_and_tanh() -> None:
    x = length_covariate([0, 0, 0, 0], [1, -1, 1, -1])  # d = +-1, population sd = 1
    np.testing.assert_allclose(x, np.tanh([1, -1, 1, -1]))


def test_covariate_is_zero_when_all_differences_are_equal() -> None:
    assert not np.any(length_covariate([5, 7, 9], [15, 17, 19]))


def test_ols_from_sums_matches_numpy_lstsq() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 50)
    s = 0.2 + 0.5 * x + rng.normal(0, 0.1, 50)
    b0, b1 = ols_from_sums(50, x.sum(), s.sum(), (x * x).sum(), (s * x).sum())
    ref = np.linalg.lstsq(np.column_stack([np.ones(50), x]), s, rcond=None)[0]
    np.testing.assert_allclose([float(b0), float(b1)], ref, rtol=1e-10)


def test_ols_without_spread_in_x_is_the_mean() -> None:
    b0, b1 = ols_from_sums(4, 0.0, 2.0, 0.0, 0.0)
    assert (float(b0), float(b1)) == (0.5, 0.0)


def test_lc_equals_raw_when_lengths_are_equal() -> None:
    ps = [pair(f"p{i}", ("cand", "tie") if i % 3 else ("base", "base")) for i in range(40)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.quality_diff is not None and tv.lc_quality_diff is not None
    assert tv.lc_quality_diff == tv.quality_diff  # bit for bit: estimate and both bounds
    assert tv.diagnostics is not None and tv.diagnostics.length_slope is None


def test_lc_removes_a_pure_length_effect() -> None:
    # 30 pairs where the candidate is 100 chars longer and wins, 10 where it is 100 shorter and loses.
    # Raw: (30 - 10) / 40 = 0.5. x is +-tanh(100/sd) symmetric, so the line through (x+, 1), (x-, -1)
    # crosses x = 0 at 0: at equal length there is no difference.
    ps = [pair(f"w{i}", ("cand", "cand"), base_text="a" * 200, cand_text="a" * 300) for i in range(30)]
    ps += [pair(f"l{i}", ("base", "base"), base_text="a" * 200, cand_text="a" * 100) for i in range(10)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.quality_diff is not None and tv.lc_quality_diff is not None
    assert tv.quality_diff.estimate == pytest.approx(0.5)
    assert tv.lc_quality_diff.estimate == pytest.approx(0.0, abs=1e-12)
    d = np.array([100.0] * 30 + [-100.0] * 10)
    xplus = np.tanh(100 / d.std())
    assert tv.diagnostics is not None
    assert tv.diagnostics.length_slope == pytest.approx(1 / xplus)


def test_lc_blocks_a_go_that_raw_would_give() -> None:
    # The candidate wins only when it is longer; at equal length it loses. Raw = (60 - 40) / 100 = 0.2
    # clears the margin, the equal-length intercept does not.
    ps = [pair(f"w{i}", ("cand", "cand"), base_text="a" * 200, cand_text="a" * 300) for i in range(60)]
    ps += [pair(f"l{i}", ("base", "base"), base_text="a" * 200, cand_text="a" * 100) for i in range(20)]
    ps += [pair(f"e{i}", ("base", "base"), base_text="a" * 200, cand_text="b" * 200) for i in range(20)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.quality_diff is not None and tv.quality_diff.estimate == pytest.approx(0.2)
    assert tv.quality_diff.ci_low > -0.1
    assert tv.lc_quality_diff is not None and tv.lc_quality_diff.ci_low <= -0.1
    assert tv.verdict == "INCONCLUSIVE"
    assert any("length control blocked the GO" in r for r in tv.reasons)


def test_missing_outputs_mean_no_length_control() -> None:
    ps = [pair(f"p{i}", base_text=None, cand_text=None) for i in range(30)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.mean_chars is None
    assert tv.lc_quality_diff == tv.quality_diff
    assert any("length control could not be applied" in r for r in tv.reasons)
