"""`equiv nightly` over several "nights" against the loopback server: the candidate degrades on night 3."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from equiv.history import read_history
from equiv.testing.loopback import LoopbackServer

from .conftest import make_records, write_jsonl
from .route_config import write_route_config, write_traffic

ROUTE = {"name": "support", "traffic": "traffic.jsonl", "baseline": "skill-95", "candidate": "cand"}


def setup(tmp_path: Path, srv: LoopbackServer) -> Path:
    # two live prompt-types from the last hour, and an old one that the 24h window must leave out
    recent = write_traffic(tmp_path / "recent.jsonl", ["triage", "reply"], 40, age=timedelta(hours=1))
    old = write_traffic(tmp_path / "old.jsonl", ["legacy"], 40, age=timedelta(days=3), seed=8)
    (tmp_path / "traffic.jsonl").write_text(recent.read_text() + old.read_text())
    return write_route_config(tmp_path / "equiv.toml", srv, [ROUTE])


def nightly(equiv_cli, tmp_path: Path, config: Path, *args: str):
    return equiv_cli("nightly", "--config", str(config), "--since", "24h", "--out", str(tmp_path / "reports"),
                     "--routing", str(tmp_path / "routing.json"), "--quiet", *args)


def test_nightly_sequence_flags_the_night_the_candidate_degrades(
        equiv_cli, tmp_path: Path) -> None:
    history = tmp_path / "reports" / "history.jsonl"
    with LoopbackServer(seed=1, aliases={"cand": "skill-99-v2"}) as srv:
        config = setup(tmp_path, srv)

        r1 = nightly(equiv_cli, tmp_path, config)
        assert r1.exit_code == 0, r1.stdout + r1.stderr
        assert "no regression" in r1.stdout
        night1 = srv.requests[:]
        entries, _ = read_history(history)
        assert len(entries) == 1
        e1 = entries[0]
        assert e1["route"] == "support" and set(e1["prompt_types"]) == {"triage", "reply"}  # legacy is too old
        assert all(t["verdict"] == "GO" for t in e1["prompt_types"].values())
        t1 = e1["prompt_types"]["triage"]
        assert {"estimate", "ci_low", "ci_high", "saving", "candidate_usd_per_request",
                "baseline_usd_per_request"} <= set(t1)
        assert e1["since"] and e1["timestamp"].endswith("Z") and e1["regressions"] == []

        # a job killed mid-append leaves a torn line: it is skipped with a warning, the next line starts fresh
        with open(history, "a") as fh:
            fh.write('{"run_id": "torn", "route": "supp')

        r2 = nightly(equiv_cli, tmp_path, config)
        assert r2.exit_code == 0, r2.stdout + r2.stderr
        assert "truncated or corrupted last line" in r2.stderr
        night2 = srv.requests[len(night1):]
        # run fresh: a new run directory, the candidate and judge called again (nothing reused from last night)
        cand_calls = [q for q in night2 if q.get("resolved_model") == "skill-99-v2"]
        assert len(cand_calls) >= 80
        entries, warnings = read_history(history)
        assert len(entries) == 2 and len(warnings) == 1 and entries[0]["run_id"] != entries[1]["run_id"]

        srv.aliases["cand"] = "skill-60"  # night 3: the provider quietly serves a worse model
        r3 = nightly(equiv_cli, tmp_path, config)
    assert r3.exit_code == 1, r3.stdout + r3.stderr
    assert "REGRESSION support / triage: was GO, now NO_GO" in r3.stdout
    assert "REGRESSION support / reply" in r3.stdout
    entries, warnings = read_history(history)
    assert len(entries) == 3 and len(warnings) == 1
    e3 = entries[-1]
    assert e3["prompt_types"]["triage"]["verdict"] == "NO_GO"
    assert any(r.startswith("support / triage: was GO, now NO_GO") for r in e3["regressions"])
    assert any("quality estimate dropped" in r for r in e3["regressions"])
    # the regression is in summary.md, in the route's verdict notes and its report (with the trend)
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert "# equiv nightly: " in summary and "regression(s)" in summary and "support / triage" in summary
    run3 = Path(e3["run_dir"])
    verdict = json.loads((run3 / "verdict.json").read_text())
    assert any(n.startswith("REGRESSION support / triage") for n in verdict["notes"])
    html = (run3 / "report.html").read_text()
    assert 'id="history"' in html and entries[0]["run_id"] in html and "was GO, now NO_GO" in html
    assert "REGRESSION" in (run3 / "summary.md").read_text()
    assert len({e["run_dir"] for e in entries}) == 3

    # equiv report re-analyses a nightly run with its route's trend and the regressions found that night
    (run3 / "report.html").unlink()
    rep = equiv_cli("report", str(run3))
    assert rep.exit_code == 0, rep.stderr
    assert 'id="history"' in (run3 / "report.html").read_text()
    assert any(n.startswith("REGRESSION support / triage") for n in
               json.loads((run3 / "verdict.json").read_text())["notes"])

    # equiv history: the trend per prompt-type in the terminal
    h = equiv_cli("history", "--out", str(tmp_path / "reports"))
    assert h.exit_code == 0, h.stderr
    assert "support" in h.stdout and "triage" in h.stdout and "NO_GO" in h.stdout and "REGRESSION" in h.stdout
    assert "history.jsonl:2: corrupted line skipped" in h.stderr
    h2 = equiv_cli("history", "--out", str(tmp_path / "reports"), "--route", "nope")
    assert h2.exit_code == 2 and "no runs of route 'nope'" in h2.stderr


def test_first_night_compares_with_routing_json(equiv_cli, tmp_path: Path) -> None:
    """Before any history, the route's qualify decision is what a regression is measured against."""
    with LoopbackServer(seed=1, aliases={"cand": "skill-60"}) as srv:
        config = setup(tmp_path, srv)
        (tmp_path / "routing.json").write_text(json.dumps({"schema_version": 1, "routes": {"support": {
            "baseline": "openai/skill-95", "candidate": "openai/cand", "decided_at": "2025-01-01T00:00:00Z",
            "run_id": "q-1", "prompt_types": {"triage": {"model": "openai/cand", "verdict": "GO", "run_id": "q-1"},
                                              "reply": {"model": "openai/skill-95", "verdict": "INCONCLUSIVE",
                                                        "run_id": "q-1"}}}}}))
        r = nightly(equiv_cli, tmp_path, config)
    assert r.exit_code == 1, r.stdout + r.stderr
    assert "support / triage: was GO, now NO_GO (since run q-1)" in r.stdout
    assert "REGRESSION support / reply" not in r.stdout  # reply was never GO: not a regression


def test_no_traffic_in_window_is_bad_input(equiv_cli, tmp_path: Path) -> None:
    with LoopbackServer(seed=1, aliases={"cand": "skill-99-v2"}) as srv:
        config = setup(tmp_path, srv)
        r = equiv_cli("nightly", "--config", str(config), "--since", "10m", "--out", str(tmp_path / "reports"),
                      "--quiet")
        assert r.exit_code == 2 and "route support" in r.stderr and "no usable records" in r.stderr
        assert srv.requests == []
        r = equiv_cli("nightly", "--config", str(config), "--since", "yesterday-ish", "--quiet")
        assert r.exit_code == 2 and "--since" in r.stderr
    assert not (tmp_path / "reports" / "history.jsonl").exists()
    h = equiv_cli("history", "--out", str(tmp_path / "reports"))
    assert h.exit_code == 2 and "no history yet" in h.stderr


def test_since_accepts_an_iso_time(equiv_cli, tmp_path: Path) -> None:
    rows = make_records(["triage"], 35)
    for i, row in enumerate(rows):
        row["timestamp"] = f"2025-03-0{1 + i % 2}T12:00:00Z"  # half on March 1st, half on March 2nd
    write_jsonl(tmp_path / "traffic.jsonl", rows)
    with LoopbackServer(seed=1, aliases={"cand": "skill-99-v2"}) as srv:
        config = write_route_config(tmp_path / "equiv.toml", srv, [ROUTE])
        r = equiv_cli("nightly", "--config", str(config), "--since", "2025-03-02T00:00:00Z",
                      "--out", str(tmp_path / "reports"), "--quiet")
    assert r.exit_code == 0, r.stdout + r.stderr
    entries, _ = read_history(tmp_path / "reports" / "history.jsonl")
    assert entries[0]["prompt_types"]["triage"]["n"] == 17  # only March 2nd
    assert entries[0]["prompt_types"]["triage"]["verdict"] == "INCONCLUSIVE"  # n < 30


def test_aborted_night_exits_4_and_adds_nothing_to_history(equiv_cli, tmp_path: Path) -> None:
    with LoopbackServer(seed=1, aliases={"cand": "skill-99-v2"}) as srv:
        config = setup(tmp_path, srv)
        r = nightly(equiv_cli, tmp_path, config, "--max-spend", "0.002")
    assert r.exit_code == 4, r.stdout + r.stderr
    assert "not added to history" in r.stderr
    assert not (tmp_path / "reports" / "history.jsonl").exists()
