"""analyze() end to end on hand-built pairs: judge check, multiplicity, clusters, reproducibility."""

from __future__ import annotations

import random

import numpy as np
import pytest

from equiv.analyze import analyze

from .helpers import check, pair, pairs_with_scores, passing_checks, settings


def _mixed(n: int, prompt_type: str = "t", seed: int = 0, p_win: float = 0.5) -> list:
    """n pairs whose scores are drawn from {-1, 0, 1} with a chosen tilt (deterministic)."""
    rng = random.Random(seed)
    scores = [1.0 if (u := rng.random()) < p_win * 0.8 else (-1.0 if u > 0.2 + p_win * 0.8 else 0.0) for _ in range(n)]
    return pairs_with_scores(scores, prompt_type=prompt_type)


def test_judge_check_counts_readable_pairs_and_passes() -> None:
    checks = [
        check("a", "A", "B"),  # pass
        check("b", "A", "A"),  # position-following: fail
        check("c", "tie", "tie"),  # fail
        check("d", "A", None),  # unreadable in one order: not counted
        check("e", "B", "A"),  # prefers the truncated copy: fail
    ]
    tv = analyze(pairs_with_scores([1.0] * 30), checks, settings(), run_id="r").prompt_types[0]
    assert tv.judge_check is not None
    assert (tv.judge_check.n, tv.judge_check.pass_rate, tv.judge_check.n_unreadable) == (4, 0.2, 1)
    assert tv.verdict == "INCONCLUSIVE"
    assert any("judge check failed" in r for r in tv.reasons)


def test_judge_check_pass_allows_go_and_null_when_not_run() -> None:
    ps = pairs_with_scores([1.0] * 30)
    tv = analyze(ps, passing_checks(10), settings(), run_id="r").prompt_types[0]
    assert tv.judge_check is not None and tv.judge_check.pass_rate == 1.0 and tv.verdict == "GO"
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.judge_check is None and tv.verdict == "GO"
    assert any("judge check did not run" in r for r in tv.reasons)


def test_checks_of_another_type_do_not_count() -> None:
    ps = pairs_with_scores([1.0] * 30)
    tv = analyze(ps, passing_checks(10, prompt_type="other"), settings(), run_id="r").prompt_types[0]
    assert tv.judge_check is None


def test_an_always_tie_judge_is_blocked_by_the_check() -> None:
    ps = pairs_with_scores([0.0] * 200)  # looks exactly like equivalence
    checks = [check(f"c{i}", "tie", "tie") for i in range(20)]
    tv = analyze(ps, checks, settings(), run_id="r").prompt_types[0]
    assert tv.quality_diff is not None and tv.quality_diff.ci_low == 0.0
    assert tv.verdict != "GO"


def test_fewer_than_30_is_inconclusive() -> None:
    tv = analyze(pairs_with_scores([1.0] * 29), None, settings(), run_id="r").prompt_types[0]
    assert tv.verdict == "INCONCLUSIVE" and "only 29 usable distinct prompts" in tv.reasons[0]


def test_reproducible_bit_for_bit_and_independent_of_input_order() -> None:
    ps = _mixed(150, "a", 1) + _mixed(120, "b", 2)
    s = settings(bootstrap=3000, seed=11)
    first = analyze(ps, None, s, run_id="r").model_dump_json()
    assert analyze(ps, None, s, run_id="r").model_dump_json() == first
    shuffled = list(ps)
    random.Random(0).shuffle(shuffled)
    assert analyze(shuffled, None, s, run_id="r").model_dump_json() == first
    # a type's result does not depend on which other types are in the run
    alone = analyze(_mixed(120, "b", 2), None, s, run_id="r").prompt_types[0]
    assert alone.model_dump() == analyze(ps, None, s, run_id="r").prompt_types[1].model_dump()
    other_seed = analyze(ps, None, settings(bootstrap=3000, seed=12), run_id="r")
    assert other_seed.model_dump_json() != first
    # BCa too, and a ties-only type whose BCa falls back to percentile
    mixed = ps + pairs_with_scores([0.0] * 40, prompt_type="ties")
    bca = settings(bootstrap=3000, seed=11, ci="bca", correction="holm")
    once = analyze(mixed, None, bca, run_id="r").model_dump_json()
    assert analyze(list(reversed(mixed)), None, bca, run_id="r").model_dump_json() == once


def test_clusters_move_together() -> None:
    # 40 prompts, each sampled 5 times with identical scores. Resampling prompts must give the same
    # interval as one pair per prompt; treating the 200 pairs as independent would be ~sqrt(5) narrower.
    base = _mixed(40, "t", 3)
    clustered = [pair(f"{p.pair_id}-{k}", prompt_id=p.pair_id, outcomes=_outcomes(p)) for p in base for k in range(5)]
    naive = [pair(f"{p.pair_id}-{k}", outcomes=_outcomes(p)) for p in base for k in range(5)]
    s = settings(bootstrap=4000)
    one = analyze(base, None, s, run_id="r").prompt_types[0]
    cl = analyze(clustered, None, s, run_id="r").prompt_types[0]
    nv = analyze(naive, None, s, run_id="r").prompt_types[0]
    assert (cl.n, cl.n_prompts, nv.n_prompts) == (200, 40, 200)
    assert one.quality_diff is not None and cl.quality_diff is not None and nv.quality_diff is not None
    assert cl.quality_diff.ci_low == pytest.approx(one.quality_diff.ci_low, abs=1e-12)
    assert cl.quality_diff.ci_high == pytest.approx(one.quality_diff.ci_high, abs=1e-12)
    w_cl = cl.quality_diff.ci_high - cl.quality_diff.ci_low
    w_nv = nv.quality_diff.ci_high - nv.quality_diff.ci_low
    assert w_cl / w_nv == pytest.approx(np.sqrt(5), rel=0.15)


def _outcomes(p) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    back = {
        ("B", "baseline_first"): "cand",
        ("A", "baseline_first"): "base",
        ("A", "candidate_first"): "cand",
        ("B", "candidate_first"): "base",
    }
    return tuple(back.get((j.winner, j.order), "tie") for j in p.judgments)


def test_bonferroni_levels_and_wider_intervals() -> None:
    ps = _mixed(200, "a", 1) + _mixed(200, "b", 2) + _mixed(200, "c", 3) + _mixed(200, "d", 4)
    none = analyze(ps, None, settings(), run_id="r")
    bonf = analyze(ps, None, settings(correction="bonferroni"), run_id="r")
    for tn, tb in zip(none.prompt_types, bonf.prompt_types, strict=True):
        assert tn.alpha_tested == 0.05 and tb.alpha_tested == pytest.approx(0.0125)
        assert tn.quality_diff is not None and tb.quality_diff is not None
        assert tb.quality_diff.ci_low < tn.quality_diff.ci_low
        assert any("bonferroni" in r for r in tb.reasons)


def test_holm_levels_in_analyze() -> None:
    # "good" clears the margin easily, "meh" is uncertain, "bad" clearly fails.
    ps = pairs_with_scores([1.0, 0.0, 1.0] * 40, prompt_type="good")
    ps += _mixed(60, "meh", 5, p_win=0.4)
    ps += pairs_with_scores([-1.0, -1.0, 0.0] * 20, prompt_type="bad")
    v = analyze(ps, None, settings(correction="holm"), run_id="r")
    by = {t.prompt_type: t for t in v.prompt_types}
    assert by["good"].alpha_tested == pytest.approx(0.05 / 3) and by["good"].verdict == "GO"
    assert by["meh"].alpha_tested == pytest.approx(0.05 / 2) and by["meh"].verdict == "INCONCLUSIVE"
    assert by["bad"].alpha_tested == pytest.approx(0.05 / 2)  # stopped at "meh": keeps its level
    assert by["bad"].verdict == "NO_GO"
    assert v.verdict == "NO_GO"


def test_holm_stop_prevents_a_later_go() -> None:
    # "blocked" has the smallest p-value but its judge check fails: Holm stops there, so "fine"
    # (which would pass at its level) may not be GO.
    ps = pairs_with_scores([1.0] * 60, prompt_type="blocked") + pairs_with_scores([1.0, 0.0] * 30, "fine")
    checks = [check(f"b{i}", "tie", "tie", "blocked") for i in range(10)] + passing_checks(10, "fine")
    v = analyze(ps, checks, settings(correction="holm"), run_id="r")
    by = {t.prompt_type: t for t in v.prompt_types}
    assert by["blocked"].verdict == "INCONCLUSIVE"
    assert by["fine"].verdict == "INCONCLUSIVE"
    assert any("Holm" in r for r in by["fine"].reasons)
    assert not any("Holm" in r for r in by["blocked"].reasons)
    assert analyze(ps, checks, settings(), run_id="r").prompt_types[1].verdict == "GO"


def test_aborted_run_is_never_go() -> None:
    v = analyze(pairs_with_scores([1.0] * 40), None, settings(), run_id="r", aborted="spend cap reached")
    assert v.verdict == "INCONCLUSIVE" and v.aborted == "spend cap reached"
    assert "aborted" in v.prompt_types[0].reasons[0]


def test_top_level_fields_pass_through() -> None:
    v = analyze(pairs_with_scores([1.0] * 30), None, settings(margin=0.2, alpha=0.1), run_id="rid", eval_cost_usd=1.5)
    assert (v.run_id, v.margin, v.alpha, v.bootstrap, v.seed, v.eval_cost_usd) == (
        "rid",
        0.2,
        0.1,
        2000,
        0,
        1.5,
    )
    assert v.verdict == "GO" and v.schema_version == 1


def test_types_filter_and_empty_type() -> None:
    ps = pairs_with_scores([1.0] * 30, "a") + pairs_with_scores([1.0] * 30, "b")
    v = analyze(ps, None, settings(types=["a", "zzz"]), run_id="r")
    assert [t.prompt_type for t in v.prompt_types] == ["a", "zzz"]
    empty = v.prompt_types[1]
    assert (empty.n, empty.verdict, empty.quality_diff, empty.win_rate) == (0, "INCONCLUSIVE", None, None)
    assert v.verdict == "INCONCLUSIVE"


def test_all_pairs_failed() -> None:
    ps = [pair(f"p{i}", error="boom") for i in range(5)]
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert (tv.n, tv.n_failed, tv.verdict) == (0, 5, "INCONCLUSIVE")


def test_bca_interval_and_its_fallback() -> None:
    ps = _mixed(200, "t", 9)
    pct = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    bca = analyze(ps, None, settings(ci="bca"), run_id="r")
    assert bca.ci_method == "bca"
    tb = bca.prompt_types[0]
    assert pct.quality_diff is not None and tb.quality_diff is not None
    assert tb.quality_diff.ci_low == pytest.approx(pct.quality_diff.ci_low, abs=0.03)
    assert not any("BCa" in r for r in tb.reasons)
    ties = analyze(pairs_with_scores([0.0] * 50), None, settings(ci="bca"), run_id="r").prompt_types[0]
    assert ties.quality_diff is not None and ties.quality_diff.ci_low == 0.0
    assert any("BCa interval degenerate" in r for r in ties.reasons)


def test_samples_needed_only_when_inconclusive() -> None:
    ps = _mixed(60, "t", 5, p_win=0.5)
    tv = analyze(ps, None, settings(), run_id="r").prompt_types[0]
    assert tv.verdict == "INCONCLUSIVE"
    assert tv.samples_needed is not None and tv.samples_needed > 60
    go = analyze(pairs_with_scores([1.0] * 30), None, settings(), run_id="r").prompt_types[0]
    assert go.samples_needed is None


def test_each_type_is_reported_at_the_level_it_was_tested_at() -> None:
    # SPEC: under a correction each type's interval (and samples_needed) is the one at its tested alpha,
    # i.e. exactly what an uncorrected analysis at that alpha reports for that type alone.
    ps = pairs_with_scores([1.0, 0.0, 1.0] * 40, prompt_type="good")
    ps += _mixed(60, "meh", 5, p_win=0.4)
    ps += pairs_with_scores([-1.0, -1.0, 0.0] * 20, prompt_type="bad")
    for correction in ("bonferroni", "holm"):
        v = analyze(ps, None, settings(correction=correction), run_id="r")
        for tv in v.prompt_types:
            assert tv.alpha_tested is not None and tv.alpha_tested < 0.05
            alone = analyze(
                [p for p in ps if p.prompt_type == tv.prompt_type],
                None,
                settings(alpha=tv.alpha_tested),
                run_id="r",
            ).prompt_types[0]
            assert tv.quality_diff == alone.quality_diff
            assert tv.lc_quality_diff == alone.lc_quality_diff
            if tv.verdict == "INCONCLUSIVE":
                assert tv.samples_needed == alone.samples_needed
    two = _mixed(60, "a", 5, p_win=0.5) + _mixed(60, "b", 6, p_win=0.5)
    plain = analyze(two, None, settings(), run_id="r").prompt_types[0]
    strict = analyze(two, None, settings(correction="bonferroni"), run_id="r").prompt_types[0]
    assert plain.verdict == strict.verdict == "INCONCLUSIVE"
    assert plain.samples_needed is not None and strict.samples_needed is not None
    assert strict.samples_needed > plain.samples_needed  # a stricter level needs more pairs
