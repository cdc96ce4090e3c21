"""`equiv report` on pairs.jsonl files that did not come from `equiv compare`: one judgment per pair, none."""

from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

from equiv.cli import _register, app


def write_pairs(path: Path, n: int, n_errors: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    scores, rows = [], []
    for i in range(n):
        winner = rng.choices(["A", "B", "tie"], weights=[0.3, 0.45, 0.25])[0]
        # one order only: the candidate is shown first, so "A" is the candidate
        scores.append({"A": 1.0, "B": -1.0, "tie": 0.0}[winner])
        rows.append(
            {
                "pair_id": f"p{i}",
                "prompt_type": "qa",
                "messages": [{"role": "user", "content": f"q{i}"}],
                "baseline": {"model": "base", "output": "b" * 10},
                "candidate": {"model": "cand", "output": "c"},
                "judgments": [{"order": "candidate_first", "winner": winner, "judge": "j"}],
                "error": None,
            }
        )
    for i in range(n_errors):
        rows.append(
            {
                "pair_id": f"e{i}",
                "prompt_type": "qa",
                "messages": [{"role": "user", "content": "x"}],
                "baseline": {"model": "base", "output": "b"},
                "candidate": None,
                "judgments": [],
                "error": "generation failed: 500",
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return scores


def test_report_on_single_judgment_pairs_and_failed_pairs(tmp_path: Path) -> None:
    scores = write_pairs(tmp_path / "pairs.jsonl", n=80, n_errors=5)
    _register()
    r = CliRunner().invoke(
        app, ["report", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "out"), "--bootstrap", "2000"]
    )
    assert r.exit_code == 0, r.output
    v = json.loads((tmp_path / "out" / "verdict.json").read_text())
    (t,) = v["prompt_types"]
    assert t["n"] == 80 and t["n_failed"] == 5
    assert abs(t["quality_diff"]["estimate"] - sum(scores) / len(scores)) < 1e-9
    assert abs(t["win_rate"] - (1 + sum(scores) / len(scores)) / 2) < 1e-9
    assert t["position_consistency"] is None  # no pair was judged in both orders
    assert t["judge_check"] is None
    assert t["cost"] is None  # no token counts or costs in these pairs
    text = " ".join(t["reasons"])
    assert "judge check" in text and "cost" in text
    assert (tmp_path / "out" / "summary.md").exists() and (tmp_path / "out" / "report.html").exists()


def test_report_on_pairs_that_all_failed(tmp_path: Path) -> None:
    write_pairs(tmp_path / "pairs.jsonl", n=0, n_errors=4)
    _register()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    v = json.loads((tmp_path / "out" / "verdict.json").read_text())
    (t,) = v["prompt_types"]
    assert t["n"] == 0 and t["n_failed"] == 4 and t["verdict"] == "INCONCLUSIVE"
    assert v["verdict"] == "INCONCLUSIVE"


def test_report_on_a_bad_pairs_line_names_the_line(tmp_path: Path) -> None:
    write_pairs(tmp_path / "pairs.jsonl", n=3, n_errors=0)
    with (tmp_path / "pairs.jsonl").open("a") as f:
        f.write('{"pair_id": 5, "prompt_type": ["x"]}\n{"pair_id": "ok", "prompt_type": "qa"}\n')
    _register()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    assert "pairs.jsonl" in r.output and ":4" in r.output
