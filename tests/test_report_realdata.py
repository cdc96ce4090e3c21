"""`equiv report` (the real CLI) on real judged pairs, checked against an independent computation.

Data: Arena-Hard-Auto v0.1, gpt-4-0613 (candidate) vs gpt-4-0314 (baseline), judged by
gpt-4-1106-preview in both orders (see ../shared/realdata/README.md). It is read in place, never
copied into the project; the test is skipped when it is absent. The expected figures are computed here
from the raw JSON verdicts with plain Python and no equiv code, so a slip in equiv's pair score,
position mapping or consistency rule shows up as a mismatch in the written verdict.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app

REALDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"
PAIRS = REALDATA / "arena_hard_v0.1_gpt-4-0613.pairs.jsonl"


def _prefers(order: str, winner: str) -> str:
    """The model a verdict prefers: in "baseline_first" the baseline is shown as A."""
    if winner == "tie":
        return "tie"
    shown_first = "baseline" if order == "baseline_first" else "candidate"
    shown_second = "candidate" if order == "baseline_first" else "baseline"
    return shown_first if winner == "A" else shown_second


def _by_hand(rows: list[dict[str, Any]]) -> dict[str, float]:
    points = {"candidate": 1.0, "baseline": -1.0, "tie": 0.0}
    scores: list[float] = []
    judged_both = agree = judgments = ties = 0
    for row in rows:
        if row.get("error") or not row.get("judgments"):
            continue
        if row["baseline"]["output"].strip() == row["candidate"]["output"].strip():
            scores.append(0.0)  # identical answers score 0 whatever a judge wrote (SPEC "Per-type instruments")
            continue
        prefs = [(j["order"], _prefers(j["order"], j["winner"])) for j in row["judgments"]]
        scores.append(sum(points[p] for _, p in prefs) / len(prefs))
        judgments += len(prefs)
        ties += sum(p == "tie" for _, p in prefs)
        first = {}
        for order, p in prefs:
            first.setdefault(order, p)
        if {"baseline_first", "candidate_first"} <= first.keys():
            judged_both += 1
            agree += first["baseline_first"] == first["candidate_first"]
    mean = sum(scores) / len(scores)
    return {
        "n": len(scores),
        "quality_diff": mean,
        "win_rate": (1 + mean) / 2,
        "tie_rate": ties / judgments,
        "position_consistency": agree / judged_both,
    }


@pytest.fixture(scope="module")
def raw_rows() -> list[dict[str, Any]]:
    if not PAIRS.is_file():
        pytest.skip(f"real data not present at {PAIRS.resolve()}")
    with PAIRS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_equiv_report_cli_on_real_pairs_matches_a_hand_computation(
    raw_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    expected = _by_hand(raw_rows)
    out = tmp_path / "report"
    before = sorted(p.name for p in REALDATA.iterdir())
    _register()
    result = CliRunner().invoke(
        app, ["report", str(PAIRS), "--out", str(out), "--bootstrap", "2000"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in REALDATA.iterdir()) == before  # nothing written next to the data
    assert {p.name for p in out.iterdir()} >= {"verdict.json", "summary.md", "report.html"}

    verdict = json.loads((out / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["schema_version"] == 1
    assert (verdict["baseline"], verdict["candidate"], verdict["judge"]) == (
        "gpt-4-0314",
        "gpt-4-0613",
        "gpt-4-1106-preview",
    )
    (tv,) = verdict["prompt_types"]
    assert tv["prompt_type"] == "arena-hard"
    assert tv["n"] == expected["n"] == 500
    assert tv["win_rate"] == pytest.approx(expected["win_rate"], abs=1e-12)
    assert tv["position_consistency"] == pytest.approx(expected["position_consistency"], abs=1e-12)
    assert tv["tie_rate"] == pytest.approx(expected["tie_rate"], abs=1e-12)
    qd = tv["quality_diff"]
    assert qd["estimate"] == pytest.approx(expected["quality_diff"], abs=1e-12)
    assert qd["ci_low"] < qd["estimate"] < qd["ci_high"]
    # no costs and no judge checks in an imported file: both null, and the reasons say so
    assert tv["cost"] is None and tv["judge_check"] is None
    assert any("quality alone" in r for r in tv["reasons"])
    assert any("judge check did not run" in r for r in tv["reasons"])
    # the published figures this file reproduces (README): gpt-4-0613 loses to gpt-4-0314 more often
    assert 0.35 < tv["win_rate"] < 0.42
    assert tv["verdict"] != "GO"


def test_equiv_report_flags_reach_the_verdict_and_rerun_is_bit_for_bit(
    raw_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    _register()
    args = [
        "--ci",
        "bca",
        "--correction",
        "holm",
        "--margin",
        "0.3",
        "--alpha",
        "0.1",
        "--bootstrap",
        "1000",
        "--seed",
        "7",
    ]
    texts = []
    for name in ("one", "two"):
        result = CliRunner().invoke(
            app, ["report", str(PAIRS), "--out", str(tmp_path / name), *args], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        texts.append((tmp_path / name / "verdict.json").read_text(encoding="utf-8"))
    assert texts[0] == texts[1]  # seeded: the same command gives the same verdict, bit for bit
    v = json.loads(texts[0])
    assert (v["ci_method"], v["correction"], v["margin"], v["alpha"], v["bootstrap"], v["seed"]) == (
        "bca",
        "holm",
        0.3,
        0.1,
        1000,
        7,
    )
    (tv,) = v["prompt_types"]
    assert tv["alpha_tested"] == 0.1  # one prompt-type: Holm tests it at alpha itself
    # at margin 0.3 the raw lower bound (about -0.29) clears -0.3; the estimate is unchanged by the flags
    assert tv["quality_diff"]["estimate"] == pytest.approx(_by_hand(raw_rows)["quality_diff"], abs=1e-12)
    assert tv["quality_diff"]["ci_low"] > -0.3
