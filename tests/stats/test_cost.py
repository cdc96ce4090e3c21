"""Cost arithmetic and the cost part of the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from equiv.analyze import analyze
from equiv.cost import monthly_projection, request_cost, saving

from .helpers import pair, settings


def test_request_cost() -> None:
    assert request_cost(1_000_000, 500_000, 2.5, 10.0) == pytest.approx(2.5 + 5.0)


def test_saving_arithmetic() -> None:
    assert float(saving(10.0, 2.0)) == pytest.approx(0.8)
    assert float(saving(10.0, 10.0)) == 0.0
    assert float(saving(10.0, 12.0)) == pytest.approx(-0.2)
    assert float(saving(0.0, 0.0)) == 0.0
    assert float(saving(0.0, 1.0)) == -1.0
    np.testing.assert_allclose(saving(np.array([4.0, 2.0]), np.array([1.0, 1.0])), [0.75, 0.5])


def test_monthly_projection() -> None:
    assert monthly_projection(1000, 0.01, 0.002) == pytest.approx(8.0)


def test_cost_summary_and_saving_interval_from_same_resamples() -> None:
    # baseline 0.01 or 0.03, candidate 0.002 or 0.004: saving = 1 - sum(c)/sum(b)
    ps = [pair(f"p{i}", base_cost=0.01 if i % 2 else 0.03, cand_cost=0.002 if i % 2 else 0.004) for i in range(40)]
    tv = analyze(ps, None, settings(), run_id="r", monthly_volume={"t": 1000.0}).prompt_types[0]
    assert tv.cost is not None
    assert tv.cost.baseline_usd_per_request == pytest.approx(0.02)
    assert tv.cost.candidate_usd_per_request == pytest.approx(0.003)
    assert tv.cost.saving.estimate == pytest.approx(1 - 0.12 / 0.8)
    assert tv.cost.saving.ci_low <= tv.cost.saving.estimate <= tv.cost.saving.ci_high
    assert tv.cost.saving.ci_low > 0.8
    assert tv.cost.monthly_requests == 1000.0
    assert tv.cost.monthly_saving_usd == pytest.approx(1000 * (0.02 - 0.003))


def test_constant_costs_give_a_point_interval() -> None:
    ps = [pair(f"p{i}", base_cost=0.01, cand_cost=0.002) for i in range(30)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.cost is not None
    assert tv.cost.saving.ci_low == pytest.approx(0.8) and tv.cost.saving.ci_high == pytest.approx(0.8)
    assert tv.cost.monthly_saving_usd is None


def test_no_costs_means_null_cost_and_a_reason() -> None:
    ps = [pair(f"p{i}") for i in range(30)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.cost is None
    assert any("quality alone" in r for r in tv.reasons)
    assert tv.verdict == "GO"  # unknown cost does not block a GO


def test_candidate_not_cheaper_is_no_go() -> None:
    ps = [pair(f"p{i}", base_cost=0.01, cand_cost=0.01) for i in range(30)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.verdict == "NO_GO"
    assert any("not cheaper" in r for r in tv.reasons)
