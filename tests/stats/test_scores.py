"""Pair scores and the judge-behaviour rates, on hand-computable cases."""

from __future__ import annotations

import pytest

from equiv.analyze import analyze, judgment_score, pair_score
from equiv.schema import Judgment

from .helpers import pair, pairs_with_scores, settings


@pytest.mark.parametrize(
    ("order", "winner", "score"),
    [
        ("baseline_first", "A", -1.0),
        ("baseline_first", "B", 1.0),
        ("baseline_first", "tie", 0.0),
        ("candidate_first", "A", 1.0),
        ("candidate_first", "B", -1.0),
        ("candidate_first", "tie", 0.0),
        ("intact_first", "A", None),
    ],
)
def test_judgment_score_maps_positions_to_models(order: str, winner: str, score: float | None) -> None:
    assert judgment_score(Judgment(order=order, winner=winner)) == score  # type: ignore[arg-type]


def test_pair_score_is_mean_over_judgments() -> None:
    assert pair_score(pair("p", ("cand", "cand"))) == 1.0
    assert pair_score(pair("p", ("cand", "base"))) == 0.0  # contradicts itself across orders
    assert pair_score(pair("p", ("cand", "tie"))) == 0.5
    assert pair_score(pair("p", ("base",))) == -1.0  # one order only
    assert pair_score(pair("p", ("cand", "cand", "base"))) == pytest.approx(1 / 3)  # a panel of three
    assert pair_score(pair("p", ())) is None


def test_quality_win_tie_rates_by_hand() -> None:
    # scores 1, 0.5, 0, -1 repeated 10x: mean = 0.5/4 = 0.125; judgments: 80, ties: 10*(0+1+2+0) = 30
    ps = pairs_with_scores([1.0, 0.5, 0.0, -1.0] * 10)
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.n == 40 and tv.n_failed == 0
    assert tv.quality_diff is not None
    assert tv.quality_diff.estimate == pytest.approx(0.125)
    assert tv.win_rate == pytest.approx((1 + 0.125) / 2)
    assert tv.tie_rate == pytest.approx(30 / 80)
    # consistent: score 1 (both cand), 0 (both tie), -1 (both base); inconsistent: 0.5 (cand vs tie)
    assert tv.position_consistency == pytest.approx(30 / 40)
    assert tv.diagnostics is not None
    assert tv.diagnostics.n_judgments == 80


def test_position_a_share_counts_decisive_verdicts_only() -> None:
    # ("cand","cand") -> B then A; ("base","base") -> A then B; ("cand","tie") -> B, tie.
    ps = [pair(f"p{i}", ("cand", "tie")) for i in range(30)] + [pair("q", ("base", "base"))]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.diagnostics is not None
    # decisive: 30 B (baseline_first cand win) + A + B = 32 decisive, 1 of them A
    assert tv.diagnostics.position_a_share == pytest.approx(1 / 32)


def test_failed_and_unjudged_pairs_are_excluded_and_counted() -> None:
    ps = pairs_with_scores([1.0] * 30)
    ps.append(pair("err", ("base", "base"), error="timeout"))
    ps.append(pair("none", ()))
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert (tv.n, tv.n_failed) == (30, 2)
    assert tv.quality_diff is not None and tv.quality_diff.estimate == 1.0
    assert any("2 pair(s) failed" in r for r in tv.reasons)


def test_single_order_pairs_have_no_consistency() -> None:
    ps = [pair(f"p{i}", ("cand",)) for i in range(30)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.position_consistency is None
    assert tv.quality_diff is not None and tv.quality_diff.estimate == 1.0


def test_mean_chars() -> None:
    ps = [pair(f"p{i}", base_text="a" * 10, cand_text="b" * (20 + i)) for i in range(3)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.mean_chars == {"baseline": 10.0, "candidate": 21.0}


def test_model_names_default_to_the_most_common_in_pairs() -> None:
    v = analyze(pairs_with_scores([1.0] * 3), None, settings(), run_id="r")
    assert (v.baseline, v.candidate, v.judge) == ("big", "small", "j")
    v = analyze(pairs_with_scores([1.0] * 3), None, settings(), run_id="r", baseline="B", judge="J")
    assert (v.baseline, v.candidate, v.judge) == ("B", "small", "J")
