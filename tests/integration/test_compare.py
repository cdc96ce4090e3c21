"""`equiv compare` end to end: a real HTTP server on 127.0.0.1, litellm, the CLI, the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from equiv.testing.loopback import LoopbackServer

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl


def run_compare(
    equiv_cli,
    tmp_path: Path,
    srv: LoopbackServer,
    *,
    baseline: str,
    candidate: str,
    judge: str = "judge",
    per_type: int = 60,
    types: tuple[str, ...] = ("triage",),
    extra: tuple[str, ...] = (),
    **cfg,
):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(list(types), per_type))
    config = write_config(tmp_path / "equiv.toml", srv, baseline=baseline, candidate=candidate, judge=judge, **cfg)
    out = tmp_path / "reports"
    r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(out), "--quiet", *extra)
    return r, out


def test_equivalent_candidate_is_go(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(
        equiv_cli, tmp_path, server, baseline="skill-95", candidate="skill-99-v2", types=("triage", "reply")
    )
    assert r.exit_code == 0, r.stderr
    run = only_run_dir(out)
    v = load_verdict(run)
    assert v["verdict"] == "GO", json.dumps(v, indent=1)
    for t in v["prompt_types"]:
        assert t["n"] == 60 and t["n_failed"] == 0
        assert t["quality_diff"]["ci_low"] > -0.1 and t["lc_quality_diff"]["ci_low"] > -0.1
        assert t["judge_check"]["n"] == 10 and t["judge_check"]["pass_rate"] >= 0.7
    assert {p.name for p in run.iterdir()} >= {
        "run.json",
        "pairs.jsonl",
        "checks.jsonl",
        "verdict.json",
        "summary.md",
        "report.html",
    }
    assert "GO" in r.stdout  # the verdict table


def test_worse_candidate_is_no_go(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(equiv_cli, tmp_path, server, baseline="skill-95", candidate="skill-60")
    assert r.exit_code == 0, r.stderr
    v = load_verdict(only_run_dir(out))
    assert v["verdict"] == "NO_GO"
    t = v["prompt_types"][0]
    assert t["quality_diff"]["ci_high"] < -0.1


def test_verbosity_biased_judge_cannot_make_a_worse_longer_candidate_go(
    equiv_cli, tmp_path: Path, server: LoopbackServer
) -> None:
    r, out = run_compare(
        equiv_cli,
        tmp_path,
        server,
        baseline="skill-95",
        candidate="skill-80-verbose",
        judge="judge-verbose",
        per_type=120,
    )
    assert r.exit_code == 0, r.stderr
    t = load_verdict(only_run_dir(out))["prompt_types"][0]
    assert t["verdict"] != "GO"
    # the raw preference flatters the padded candidate; the length-controlled one does not
    assert t["lc_quality_diff"]["estimate"] < t["quality_diff"]["estimate"] - 0.2
    assert t["lc_quality_diff"]["ci_low"] < -0.1


def test_position_only_judge_never_go(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(equiv_cli, tmp_path, server, baseline="skill-95", candidate="skill-60", judge="judge-always-a")
    assert r.exit_code == 0, r.stderr
    t = load_verdict(only_run_dir(out))["prompt_types"][0]
    # every pair is a 0 (A then A): looks like equivalence; the judge check must block it
    assert t["quality_diff"]["estimate"] == 0 and t["position_consistency"] == 0
    assert t["judge_check"]["pass_rate"] == 0 and t["verdict"] != "GO"
    assert any("judge check" in reason for reason in t["reasons"])


def test_cost_saving_equals_token_arithmetic(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(equiv_cli, tmp_path, server, baseline="skill-95", candidate="skill-99-v2", per_type=40)
    assert r.exit_code == 0, r.stderr
    run = only_run_dir(out)
    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    base = sum(p["baseline"]["prompt_tokens"] * 2.5e-6 + p["baseline"]["completion_tokens"] * 10e-6 for p in pairs)
    cand = sum(p["candidate"]["prompt_tokens"] * 0.15e-6 + p["candidate"]["completion_tokens"] * 0.6e-6 for p in pairs)
    cost = load_verdict(run)["prompt_types"][0]["cost"]
    assert cost["saving"]["estimate"] == pytest.approx(1 - cand / base, rel=1e-9)
    assert cost["baseline_usd_per_request"] == pytest.approx(base / len(pairs), rel=1e-9)
    assert cost["candidate_usd_per_request"] == pytest.approx(cand / len(pairs), rel=1e-9)
    # tokens come from the server's usage, which is the simulated tokenizer's count
    assert all(p["candidate"]["source"] == "run" and p["baseline"]["source"] == "logged" for p in pairs)
    # the evaluation's own spend is the sum of what was bought
    calls = [json.loads(line) for line in (run / "calls.jsonl").read_text().splitlines()]
    assert load_verdict(run)["eval_cost_usd"] == pytest.approx(
        sum(c["completion"]["cost_usd"] for c in calls), abs=1e-6
    )


def test_rerun_baseline_source(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(
        equiv_cli,
        tmp_path,
        server,
        baseline="skill-95",
        candidate="skill-99-v2",
        per_type=30,
        extra=("--baseline-source", "rerun"),
    )
    assert r.exit_code == 0, r.stderr
    pairs = [json.loads(x) for x in (only_run_dir(out) / "pairs.jsonl").read_text().splitlines()]
    assert all(p["baseline"]["source"] == "run" for p in pairs)


def test_same_command_resumes_and_buys_nothing_twice(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(equiv_cli, tmp_path, server, baseline="skill-95", candidate="skill-60", per_type=40)
    assert r.exit_code == 0
    bought = len(server.requests)
    r2 = equiv_cli(
        "compare",
        str(tmp_path / "traffic.jsonl"),
        "--config",
        str(tmp_path / "equiv.toml"),
        "--out",
        str(out),
        "--quiet",
    )
    assert r2.exit_code == 0
    assert len(server.requests) == bought  # a finished run is re-reported, not re-bought
    assert len([p for p in out.iterdir() if p.is_dir()]) == 1
    assert max(server.counts_by_key().values()) == 1


def test_fresh_starts_a_new_run(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(equiv_cli, tmp_path, server, baseline="skill-95", candidate="skill-60", per_type=30)
    assert r.exit_code == 0
    bought = len(server.requests)
    # at once, in the same second: the new run takes the next free id instead of waiting for the clock
    r2 = equiv_cli(
        "compare",
        str(tmp_path / "traffic.jsonl"),
        "--config",
        str(tmp_path / "equiv.toml"),
        "--out",
        str(out),
        "--quiet",
        "--fresh",
    )
    assert r2.exit_code == 0 and len([p for p in out.iterdir() if p.is_dir()]) == 2
    assert len(server.requests) == bought  # a new run directory, but the folder's finished calls are reused


def test_faults_and_garbage_judge_replies_lose_no_pair(equiv_cli, tmp_path: Path) -> None:
    (tmp_path / "clean").mkdir()
    (tmp_path / "faulty").mkdir()
    with LoopbackServer(seed=3) as clean:
        r0, out0 = run_compare(
            equiv_cli, tmp_path / "clean", clean, baseline="skill-95", candidate="skill-60", per_type=40
        )
    with LoopbackServer(seed=3, rate_429=0.15, rate_500=0.1, rate_garbage=0.1, retry_after=0.01) as faulty:
        r, out = run_compare(
            equiv_cli,
            tmp_path / "faulty",
            faulty,
            baseline="skill-95",
            candidate="skill-60",
            per_type=40,
            max_retries=8,
        )
        statuses = [q["status"] for q in faulty.requests]
    assert r0.exit_code == 0 and r.exit_code == 0, r.stderr
    assert statuses.count(429) > 0 and statuses.count(500) > 0
    v0, v = load_verdict(only_run_dir(out0)), load_verdict(only_run_dir(out))
    t0, t = v0["prompt_types"][0], v["prompt_types"][0]
    assert t["n"] == t0["n"] == 40 and t["n_failed"] == 0
    assert t["quality_diff"] == t0["quality_diff"] and t["verdict"] == t0["verdict"]
    info = json.loads((only_run_dir(out) / "run.json").read_text())
    assert info["calls"]["retries"] > 0


def test_auth_failure_fails_fast_with_exit_4(equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQUIV_IT_KEY", "sk-wrong-key-123456")
    with LoopbackServer(api_key="sk-right-key") as srv:
        r, out = run_compare(
            equiv_cli, tmp_path, srv, baseline="skill-95", candidate="skill-60", per_type=40, key_env="EQUIV_IT_KEY"
        )
        n_requests = len(srv.requests)
    assert r.exit_code == 4
    assert "authentication" in r.stderr.lower()
    assert n_requests <= 8  # at most the calls already in flight (concurrency 8), not 1,000 retries
    for f in only_run_dir(out).iterdir():
        assert "sk-wrong-key-123456" not in f.read_text(errors="replace")


def test_key_is_sent_but_never_written(equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-live-SECRET-abcdef0123456789"
    monkeypatch.setenv("EQUIV_IT_KEY2", key)
    with LoopbackServer(api_key=key) as srv:
        r, out = run_compare(
            equiv_cli, tmp_path, srv, baseline="skill-95", candidate="skill-60", per_type=30, key_env="EQUIV_IT_KEY2"
        )
        assert all(q["headers"].get("authorization") == f"Bearer {key}" for q in srv.requests)
    assert r.exit_code == 0, r.stderr
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert key not in f.read_text(errors="replace"), f
    assert key not in r.stdout + r.stderr


def test_spend_cap_stops_with_exit_4_and_resumes(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    r, out = run_compare(
        equiv_cli, tmp_path, server, baseline="skill-95", candidate="skill-60", per_type=60, max_spend_usd=0.02
    )
    assert r.exit_code == 4 and "spend cap" in r.stderr
    run = only_run_dir(out)
    v = load_verdict(run)
    assert v["aborted"] and v["verdict"] != "GO" and v["eval_cost_usd"] <= 0.02
    done_before = len((run / "pairs.jsonl").read_text().splitlines())
    assert 0 < done_before < 60
    bought = server.counts_by_key()
    r2 = equiv_cli(
        "compare",
        str(tmp_path / "traffic.jsonl"),
        "--config",
        str(tmp_path / "equiv.toml"),
        "--out",
        str(out),
        "--quiet",
        "--max-spend",
        "5",
    )
    assert r2.exit_code == 0, r2.stderr
    assert load_verdict(run)["prompt_types"][0]["n"] == 60
    assert max(server.counts_by_key().values()) == 1 and set(bought) <= set(server.counts_by_key())
