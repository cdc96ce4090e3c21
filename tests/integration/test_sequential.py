"""`equiv compare --sequential` through litellm against the loopback server, and its replay by
`equiv report --sequential`: the order is fixed and recorded before any verdict, a clear type stops early
(fewer pairs and judge calls bought), and the replay stops where the live run did."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl


def _run(equiv_cli, tmp_path: Path, server, candidate: str, *args: str):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 200))
    config = write_config(tmp_path / "equiv.toml", server, baseline="skill-95", candidate=candidate, per_type=200)
    return equiv_cli(
        "compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"), "--quiet", *args
    )


def test_a_clearly_worse_candidate_stops_early_and_the_replay_agrees(equiv_cli, server, tmp_path):
    r = _run(equiv_cli, tmp_path, server, "skill-60", "--sequential")
    assert r.exit_code == 0, r.stderr
    run = only_run_dir(tmp_path / "reports")
    v = load_verdict(run)
    tv = v["prompt_types"][0]
    seq = tv["sequential"]
    assert tv["verdict"] == "NO_GO" and seq["decided_by"] == "NO_GO"
    assert 30 <= seq["stopped_at"] <= 60 and seq["n_available"] == 200 and seq["e_value"] >= 20
    assert tv["n"] == seq["stopped_at"]  # the analysis uses the prompts up to the stop
    bought = len((run / "pairs.jsonl").read_text().splitlines())
    assert bought <= seq["stopped_at"] + 10  # at most the rest of the look it stopped in
    candidate_calls = [q for q in server.requests if q["model"] == "skill-60"]
    assert len(candidate_calls) == bought
    info = json.loads((run / "run.json").read_text())
    # the judge check comes from the first look (at least judge_check_min = 10), not 10% of all 200 prompts
    checked = {json.loads(line)["pair_id"] for line in (run / "checks.jsonl").read_text().splitlines()}
    assert info["judge_checks_planned"] == {"triage": 10} and len(checked) == 10
    order = info["sequential"]["order"]["triage"]
    cluster_of = {p["pair_id"]: p["prompt_id"] for p in map(json.loads, (run / "pairs.jsonl").read_text().splitlines())}
    assert {cluster_of[c] for c in checked} <= set(order[:30])
    assert len(order) == 200 and len(set(order)) == 200
    # the replay: the same test on the recorded order, the same stop, the same verdict
    again = equiv_cli("report", str(run), "--sequential")
    assert again.exit_code == 0, again.stderr
    assert load_verdict(run)["prompt_types"][0]["sequential"] == seq


def test_report_sequential_replays_a_fixed_n_run(equiv_cli, server, tmp_path):
    r = _run(equiv_cli, tmp_path, server, "skill-60")
    assert r.exit_code == 0, r.stderr
    run = only_run_dir(tmp_path / "reports")
    fixed = load_verdict(run)["prompt_types"][0]
    assert fixed["n"] == 200 and "sequential" not in fixed or fixed["sequential"] is None
    out = tmp_path / "replay"
    again = equiv_cli("report", str(run), "--sequential", "--out", str(out))
    assert again.exit_code == 0, again.stderr
    replay = load_verdict(out)["prompt_types"][0]
    assert replay["sequential"]["decided_by"] == "NO_GO" and replay["sequential"]["stopped_at"] < 100
    assert replay["verdict"] == "NO_GO" and replay["n"] == replay["sequential"]["stopped_at"]
    assert "would have stopped" in again.stdout or "sequential test" in again.stdout
