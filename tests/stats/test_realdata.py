"""analyze() on real judged pairs (Arena-Hard v0.1, gpt-4-0613 vs gpt-4-0314), checked against an
independent computation from the raw verdict dicts in plain Python. Skipped when the data is absent;
the data is read in place and never copied into the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from equiv.analyze import analyze
from equiv.config import Settings
from equiv.schema import Pair

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "arena_hard_v0.1_gpt-4-0613.pairs.jsonl"


def _preferred(order: str, winner: str) -> str:
    """Which model a verdict prefers, written out by hand (no equiv code)."""
    if winner == "tie":
        return "tie"
    first_is_baseline = order == "baseline_first"
    if winner == "A":
        return "baseline" if first_is_baseline else "candidate"
    return "candidate" if first_is_baseline else "baseline"


@pytest.fixture(scope="module")
def raw() -> list[dict]:  # type: ignore[type-arg]
    if not DATA.is_file():
        pytest.skip(f"real data not present at {DATA}")
    with DATA.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_analyze_matches_hand_computation(raw: list[dict]) -> None:  # type: ignore[type-arg]
    value = {"candidate": 1.0, "baseline": -1.0, "tie": 0.0}
    pair_scores, n_judgments, n_ties, both, consistent, decisive, pos_a = [], 0, 0, 0, 0, 0, 0
    has_cost = False
    n_identical = 0
    for rec in raw:
        if rec.get("error") is not None or not rec["judgments"]:
            continue
        if rec["baseline"]["output"].strip() == rec["candidate"]["output"].strip():
            n_identical += 1  # identical answers score 0 whatever a judge wrote (SPEC "Per-type instruments")
            pair_scores.append(0.0)
            continue
        prefs: dict[str, str] = {}
        for j in rec["judgments"]:
            p = _preferred(j["order"], j["winner"])
            prefs.setdefault(j["order"], p)
            n_judgments += 1
            n_ties += j["winner"] == "tie"
            if j["winner"] != "tie":
                decisive += 1
                pos_a += j["winner"] == "A"
        pair_scores.append(
            sum(value[_preferred(j["order"], j["winner"])] for j in rec["judgments"]) / len(rec["judgments"])
        )
        if len(prefs) == 2:
            both += 1
            consistent += prefs["baseline_first"] == prefs["candidate_first"]
        has_cost |= any((rec.get(side) or {}).get("cost_usd") is not None for side in ("baseline", "candidate"))
    mean = sum(pair_scores) / len(pair_scores)

    pairs = [Pair.model_validate(r) for r in raw]
    v = analyze(pairs, None, Settings(bootstrap=2000), run_id="realdata")
    assert [t.prompt_type for t in v.prompt_types] == ["arena-hard"]
    tv = v.prompt_types[0]
    assert (v.baseline, v.candidate, v.judge) == ("gpt-4-0314", "gpt-4-0613", "gpt-4-1106-preview")
    assert tv.n == len(pair_scores) == 500
    assert tv.n_judged == 500 - n_identical and n_identical >= 1
    assert tv.quality_diff is not None
    assert tv.quality_diff.estimate == pytest.approx(mean, abs=1e-12)
    assert tv.win_rate == pytest.approx((1 + mean) / 2, abs=1e-12)
    assert tv.tie_rate == pytest.approx(n_ties / n_judgments, abs=1e-12)
    assert tv.position_consistency == pytest.approx(consistent / both, abs=1e-12)
    assert tv.diagnostics is not None
    assert tv.diagnostics.position_a_share == pytest.approx(pos_a / decisive, abs=1e-12)
    assert tv.diagnostics.n_judgments == n_judgments
    assert tv.quality_diff.ci_low < mean < tv.quality_diff.ci_high
    # the files carry no costs: cost is null and the verdict says it is on quality alone
    assert not has_cost
    assert tv.cost is None
    assert any("quality alone" in r for r in tv.reasons)
    assert tv.judge_check is None and any("judge check did not run" in r for r in tv.reasons)
