"""`equiv nightly` over several "nights" against the loopback server: the candidate degrades on night 3;
GO -> INCONCLUSIVE is only a warning; `--fallback` routes a regressed type back; a killed night resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from equiv.history import NIGHT_STATE_FILE, read_history
from equiv.testing.loopback import LoopbackServer

from .conftest import make_records, write_jsonl
from .route_config import write_route_config, write_traffic

ROUTE = {"name": "support", "traffic": "traffic.jsonl", "baseline": "skill-95", "candidate": "cand"}


def new_traffic(tmp_path: Path, night: int = 0, per_type: int = 40) -> None:
    """Tonight's traffic: two live prompt-types from the last hour (new prompts every night, as in real
    traffic), and an old one that the 24h window must leave out."""
    recent = write_traffic(
        tmp_path / "recent.jsonl", ["triage", "reply"], per_type, age=timedelta(hours=1), seed=7 + 100 * night
    )
    old = write_traffic(tmp_path / "old.jsonl", ["legacy"], 40, age=timedelta(days=3), seed=8)
    (tmp_path / "traffic.jsonl").write_text(recent.read_text() + old.read_text())


def setup(tmp_path: Path, srv: LoopbackServer, **top: object) -> Path:
    new_traffic(tmp_path)
    return write_route_config(tmp_path / "equiv.toml", srv, [ROUTE], **top)


def nightly(equiv_cli, tmp_path: Path, config: Path, *args: str):
    return equiv_cli(
        "nightly",
        "--config",
        str(config),
        "--since",
        "24h",
        "--out",
        str(tmp_path / "reports"),
        "--routing",
        str(tmp_path / "routing.json"),
        "--quiet",
        *args,
    )


def test_nightly_sequence_flags_the_night_the_candidate_degrades(equiv_cli, tmp_path: Path) -> None:
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
        assert {
            "estimate",
            "ci_low",
            "ci_high",
            "saving",
            "candidate_usd_per_request",
            "baseline_usd_per_request",
        } <= set(t1)
        assert e1["since"] and e1["timestamp"].endswith("Z") and e1["regressions"] == []

        # a job killed mid-append leaves a torn line: it is skipped with a warning, the next line starts fresh
        with open(history, "a") as fh:
            fh.write('{"run_id": "torn", "route": "supp')

        new_traffic(tmp_path, night=2)
        r2 = nightly(equiv_cli, tmp_path, config)
        assert r2.exit_code == 0, r2.stdout + r2.stderr
        assert "truncated or corrupted last line" in r2.stderr
        night2 = srv.requests[len(night1) :]
        # a finished night is not resumed: the next command is a new night with its own run directory
        assert len([q for q in night2 if q.get("resolved_model") == "skill-99-v2"]) >= 80
        entries, warnings = read_history(history)
        assert len(entries) == 2 and len(warnings) == 1 and entries[0]["run_id"] != entries[1]["run_id"]
        # night 2 is compared with night 1, the run in which the types first were GO (no routing.json here)
        n2 = entries[1]["prompt_types"]["triage"]["nightly"]
        assert n2["reference_run_id"] == e1["run_id"] and n2["run_id"] == entries[1]["run_id"]
        assert n2["status"] == "ok" and n2["method"] == "bootstrap" and n2["p_value"] > n2["level"] == 0.05

        new_traffic(tmp_path, night=3)
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
    # what was found is recorded per type: kinds, both estimates, the difference, p-value, both run ids
    n3 = e3["prompt_types"]["triage"]["nightly"]
    assert n3["status"] == "regression" and n3["kinds"] == ["no_go", "quality_drop"]
    assert n3["reference_run_id"] == e1["run_id"] and n3["run_id"] == e3["run_id"]
    assert n3["diff"] == round(n3["estimate"] - n3["reference_estimate"], 6) and n3["diff"] < -0.3
    assert n3["p_value"] <= n3["level"] and n3["upper_bound"] < 0
    assert {f["kind"] for f in e3["findings"] if f["prompt_type"] == "triage"} == {"no_go", "quality_drop"}
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
    assert any(
        n.startswith("REGRESSION support / triage") for n in json.loads((run3 / "verdict.json").read_text())["notes"]
    )

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
        (tmp_path / "routing.json").write_text(
            json.dumps(
                {
                    "schema_version": 1,
                    "routes": {
                        "support": {
                            "baseline": "openai/skill-95",
                            "candidate": "openai/cand",
                            "decided_at": "2025-01-01T00:00:00Z",
                            "run_id": "q-1",
                            "prompt_types": {
                                "triage": {"model": "openai/cand", "verdict": "GO", "run_id": "q-1"},
                                "reply": {"model": "openai/skill-95", "verdict": "INCONCLUSIVE", "run_id": "q-1"},
                            },
                        }
                    },
                }
            )
        )
        r = nightly(equiv_cli, tmp_path, config)
    assert r.exit_code == 1, r.stdout + r.stderr
    assert "support / triage: was GO, now NO_GO (since run q-1)" in r.stdout
    assert "REGRESSION support / reply" not in r.stdout  # reply was never GO: not a regression
    # q-1's run directory is not under --out: the two-run test could not run, and says so
    assert "WARNING support / triage: reference run q-1 not found" in r.stdout


def test_no_traffic_in_window_is_bad_input(equiv_cli, tmp_path: Path) -> None:
    with LoopbackServer(seed=1, aliases={"cand": "skill-99-v2"}) as srv:
        config = setup(tmp_path, srv)
        r = equiv_cli(
            "nightly", "--config", str(config), "--since", "10m", "--out", str(tmp_path / "reports"), "--quiet"
        )
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
        r = equiv_cli(
            "nightly",
            "--config",
            str(config),
            "--since",
            "2025-03-02T00:00:00Z",
            "--out",
            str(tmp_path / "reports"),
            "--quiet",
        )
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


def test_go_to_inconclusive_is_a_warning_not_a_regression(equiv_cli, tmp_path: Path) -> None:
    """SPEC: a GO that becomes INCONCLUSIVE is a warning (exit 0), recorded; the old rule failed the night."""
    history = tmp_path / "reports" / "history.jsonl"
    with LoopbackServer(seed=1, aliases={"cand": "skill-99-v2"}) as srv:
        config = setup(tmp_path, srv)
        r1 = nightly(equiv_cli, tmp_path, config)
        assert r1.exit_code == 0, r1.stdout + r1.stderr
        new_traffic(tmp_path, night=2, per_type=20)  # a quiet night: 20 prompts per type, n < 30
        r2 = nightly(equiv_cli, tmp_path, config)
    assert r2.exit_code == 0, r2.stdout + r2.stderr
    assert "WARNING support / triage: was GO, now INCONCLUSIVE: a warning, not a regression" in r2.stdout
    assert "REGRESSION" not in r2.stdout and "no regression (2 warning(s))" in r2.stdout
    entries, _ = read_history(history)
    e2 = entries[-1]
    assert e2["regressions"] == [] and len(e2["warnings"]) == 2
    assert e2["prompt_types"]["triage"]["nightly"]["status"] == "warning"
    assert e2["prompt_types"]["triage"]["nightly"]["kinds"] == ["inconclusive"]
    assert "**Warnings** (not regressions)" in (tmp_path / "reports" / "summary.md").read_text()


def test_fallback_routes_a_regressed_type_back_to_the_baseline(equiv_cli, tmp_path: Path) -> None:
    """qualify -> routing.json names the qualifying run; the night compares with that run's own pairs and,
    with --fallback, routes the regressed types back to the baseline (routing.json and the LiteLLM snippet)."""
    routing = tmp_path / "routing.json"
    with LoopbackServer(seed=1, aliases={"cand": "skill-99-v2"}) as srv:
        config = setup(tmp_path, srv)
        q = equiv_cli(
            "qualify", "--config", str(config), "--out", str(tmp_path / "reports"), "--routing", str(routing), "--quiet"
        )
        assert q.exit_code == 0, q.stdout + q.stderr
        qualified = json.loads(routing.read_text())["routes"]["support"]
        q_run = qualified["prompt_types"]["triage"]["run_id"]
        assert qualified["prompt_types"]["triage"]["model"] == "openai/cand"

        new_traffic(tmp_path, night=1)
        srv.aliases["cand"] = "skill-60"
        r = nightly(equiv_cli, tmp_path, config, "--fallback")
        assert r.exit_code == 1, r.stdout + r.stderr
        entries, _ = read_history(tmp_path / "reports" / "history.jsonl")
        night = entries[-1]
        rec = night["prompt_types"]["triage"]["nightly"]
        assert rec["reference_run_id"] == q_run and rec["reference_source"] == "routing.json"
        assert rec["method"] == "bootstrap"  # the qualifying run's own pairs, found under --out
        # legacy was GO at qualify time and has no traffic in tonight's window: a warning
        assert "WARNING support / legacy: was GO and had no traffic in this window" in r.stdout

        routed = json.loads(routing.read_text())["routes"]["support"]
        for t in ("triage", "reply"):
            d = routed["prompt_types"][t]
            assert d["model"] == "openai/skill-95" and d["run_id"] == night["run_id"]
            assert d["reason"].startswith("nightly regression: was GO, now NO_GO")
            assert d["fallback"]["from_model"] == "openai/cand" and d["fallback"]["qualified_by"] == q_run
        assert routed["prompt_types"]["legacy"]["model"] == "openai/cand"  # not regressed: untouched
        snippet = (tmp_path / "routing.litellm.yaml").read_text()
        assert "support / triage: NO_GO in run " + night["run_id"] + " (nightly regression: was GO" in snippet
        assert len(night["fallbacks"]) == 2 and "FALLBACK support / triage: back to openai/skill-95" in r.stdout
        assert "**Routed back to the baseline**" in (tmp_path / "reports" / "summary.md").read_text()

        # the next night: the routed-back types are no longer live, so they cannot regress again
        new_traffic(tmp_path, night=2)
        r2 = nightly(equiv_cli, tmp_path, config, "--fallback")
    assert r2.exit_code == 0, r2.stdout + r2.stderr
    last = read_history(tmp_path / "reports" / "history.jsonl")[0][-1]
    assert last["prompt_types"]["triage"]["verdict"] == "NO_GO"
    assert last["prompt_types"]["triage"]["nightly"]["status"] == "not_live" and last["regressions"] == []


CONCURRENCY = 4


def test_a_killed_night_resumes_instead_of_buying_again(tmp_path: Path) -> None:
    """kill -9 in the middle of a night, then the same command: the same run directory is resumed and only
    what was not finished is bought (counted at the provider)."""
    with LoopbackServer(seed=4, latency_s=0.05, aliases={"cand": "skill-99-v2"}) as srv:
        config = setup(tmp_path, srv, concurrency=CONCURRENCY, bootstrap=500)
        cmd = [
            sys.executable,
            "-m",
            "equiv",
            "nightly",
            "--config",
            str(config),
            "--since",
            "24h",
            "--out",
            str(tmp_path / "reports"),
            "--routing",
            str(tmp_path / "routing.json"),
            "--quiet",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 120
        while len(srv.requests) < 60 and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.005)
        assert proc.poll() is None, "the night finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        time.sleep(0.3)  # calls in flight at the kill reach the server
        bought_before = len(srv.counts_by_key())
        n_before = len(srv.requests)
        state = json.loads((tmp_path / "reports" / NIGHT_STATE_FILE).read_text())
        assert state["routes"]["support"]["status"] == "running"

        again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr[-3000:]
        assert "resuming the night started" in again.stderr
        second = srv.requests[n_before:]
        dup = sum(n - 1 for n in srv.counts_by_key().values())
    runs = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs  # the killed night's run directory, resumed
    entries, _ = read_history(tmp_path / "reports" / "history.jsonl")
    assert len(entries) == 1 and entries[0]["run_dir"] == str(runs[0])
    assert json.loads((tmp_path / "reports" / NIGHT_STATE_FILE).read_text())["routes"]["support"]["status"] == "done"
    # bought twice only among the calls in flight at the kill (at most `concurrency`); the second run bought
    # what was missing, not the night again
    assert dup <= CONCURRENCY, dup
    assert len(second) <= len(srv.counts_by_key()) - bought_before + CONCURRENCY
    assert bought_before >= 50
