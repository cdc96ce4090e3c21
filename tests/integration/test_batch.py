"""`equiv compare --batch` through litellm's batch helpers against the loopback server's /v1/files and
/v1/batches: the same answers and verdict as real time at the batch price, failed and expired requests sent
again in a later batch, and a run killed mid-batch that re-polls its batch instead of buying it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from equiv.testing.loopback import LoopbackServer

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    import equiv.pipeline

    monkeypatch.setattr(equiv.pipeline, "BATCH_POLL_S", 0.1)


def _setup(tmp_path: Path, srv: LoopbackServer, n: int = 40) -> tuple[Path, Path]:
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], n))
    config = write_config(tmp_path / "equiv.toml", srv, baseline="skill-95", candidate="skill-99-v2", per_type=n)
    return traffic, config


def _compare(equiv_cli, traffic: Path, config: Path, out: Path, *args: str):
    return equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(out), "--quiet", *args)


def _start_batch_run(traffic: Path, config: Path, out: Path) -> tuple[list[str], dict[str, str], subprocess.Popen]:
    """`equiv compare --batch` started in its own process (to be killed): its command, env and process."""
    cmd = [sys.executable, "-m", "equiv", "compare", str(traffic), "--config", str(config), "--out", str(out)]
    env = {**os.environ, "EQUIV_BATCH_POLL_S": "0.2"}
    proc = subprocess.Popen([*cmd, "--batch", "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return cmd, env, proc


def test_batch_gives_the_real_time_answers_at_the_batch_price(equiv_cli, tmp_path):
    with LoopbackServer(seed=1, batch_delay_s=0.2) as srv:
        traffic, config = _setup(tmp_path, srv)
        r = _compare(equiv_cli, traffic, config, tmp_path / "batch", "--batch")
        assert r.exit_code == 0, r.stderr
        via = {q.get("via") for q in srv.requests}
        n_batches = len(srv.batches)
        rt = _compare(equiv_cli, traffic, config, tmp_path / "realtime")
        assert rt.exit_code == 0, rt.stderr
    assert via == {"batch"}  # every candidate and judge call went through a batch
    assert 2 <= n_batches <= 4  # the candidates' wave, the judges' (with the checks), few stragglers
    b_run, r_run = only_run_dir(tmp_path / "batch"), only_run_dir(tmp_path / "realtime")
    b, rtv = load_verdict(b_run), load_verdict(r_run)
    assert b["prompt_types"][0]["quality_diff"] == rtv["prompt_types"][0]["quality_diff"]
    assert b["prompt_types"][0]["cost"] == rtv["prompt_types"][0]["cost"]  # savings use real-time prices
    assert b["eval_cost_usd"] == pytest.approx(0.5 * rtv["eval_cost_usd"], rel=1e-6)  # batch_discount 0.5
    assert b["eval_cost"]["fixed_n_realtime_usd"] == pytest.approx(rtv["eval_cost_usd"], rel=1e-6)
    pairs_b = sorted((p["pair_id"], p["candidate"]["output"]) for p in map(json.loads, open(b_run / "pairs.jsonl")))
    pairs_r = sorted((p["pair_id"], p["candidate"]["output"]) for p in map(json.loads, open(r_run / "pairs.jsonl")))
    assert pairs_b == pairs_r
    journal = [json.loads(line) for line in (b_run / "batches.jsonl").read_text().splitlines()]
    events = [e["event"] for e in journal]
    assert events.index("prepared") < events.index("uploaded") < events.index("submitted")
    info = json.loads((b_run / "run.json").read_text())
    assert info["batch"]["submitted"] == n_batches and info["batch"]["realtime_models"] == []


def test_failed_and_expired_requests_go_in_a_later_batch(equiv_cli, tmp_path):
    import threading

    with LoopbackServer(seed=1, batch_delay_s=0.2, batch_fail_share=0.2, batch_expire=0.3) as srv:
        traffic, config = _setup(tmp_path, srv)

        def calm_down() -> None:  # the provider's first batches expire; later ones complete
            deadline = time.time() + 60
            while time.time() < deadline and not any(b["status"] == "expired" for b in list(srv.batches.values())):
                time.sleep(0.02)
            srv.batch_expire = False

        watcher = threading.Thread(target=calm_down, daemon=True)
        watcher.start()
        r = _compare(equiv_cli, traffic, config, tmp_path / "reports", "--batch")
        watcher.join(timeout=5)
        assert r.exit_code == 0, r.stderr
        n_batches = len(srv.batches)
        statuses = {b["status"] for b in srv.batches.values()}
    run = only_run_dir(tmp_path / "reports")
    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 40 and all(p["error"] is None for p in pairs)
    assert "expired" in statuses and n_batches > 2  # the unanswered and failed ones went out again
    info = json.loads((run / "run.json").read_text())
    assert info["calls"]["retries"] > 0


def test_a_run_killed_mid_batch_re_polls_it_and_buys_nothing_twice(tmp_path):
    with LoopbackServer(seed=1, batch_delay_s=6.0) as srv:
        traffic, config = _setup(tmp_path, srv, n=30)
        out = tmp_path / "reports"
        cmd, env, proc = _start_batch_run(traffic, config, out)
        deadline = time.time() + 120
        journal = None
        while time.time() < deadline:
            found = list(out.glob("*/batches.jsonl"))
            text = found[0].read_text() if found else ""
            # every prepared batch journaled as submitted: the kill lands mid-batch, not in the documented
            # milliseconds between creating a batch and journaling its id
            if '"submitted"' in text and text.count('"prepared"') == text.count('"submitted"'):
                journal = found[0]
                break
            time.sleep(0.1)
        assert journal is not None, proc.communicate(timeout=5)
        os.kill(proc.pid, signal.SIGKILL)  # mid-batch: the provider is still working on it
        proc.wait(timeout=30)
        first_batches = set(srv.batches)  # the candidates' batch (and the judge checks', on logged baselines)
        assert 1 <= len(first_batches) <= 2
        again = subprocess.run([*cmd, "--batch", "--quiet"], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        counts = srv.counts_by_key()
    assert max(counts.values()) == 1  # every request answered once: the killed run's batch was collected
    run = only_run_dir(out)
    journal_events = [json.loads(line) for line in (run / "batches.jsonl").read_text().splitlines()]
    for batch_id in first_batches:  # each batch the killed run submitted was collected by the next one
        collected = [e for e in journal_events if e["event"] == "collected" and e.get("batch_id") == batch_id]
        assert collected and collected[0]["status"] == "completed"
    info = json.loads((run / "run.json").read_text())
    assert info["batch"]["resumed_batches"] == len(first_batches)
    assert len(load_verdict(run)["prompt_types"][0]["reasons"]) > 0


def test_a_run_killed_before_it_learns_its_batch_id_adopts_the_batch(tmp_path):
    """The window the journal cannot close: the provider created the batch, the run died before its reply.
    The next run finds the batch in the provider's list (by its equiv_ref) and polls it: nothing is re-bought."""
    with LoopbackServer(seed=1, batch_delay_s=1.0, batch_create_reply_delay_s=30.0) as srv:
        traffic, config = _setup(tmp_path, srv, n=30)
        out = tmp_path / "reports"
        cmd, env, proc = _start_batch_run(traffic, config, out)
        deadline = time.time() + 120
        text = ""
        while time.time() < deadline:  # every uploaded batch created on the provider, its reply held back
            found = list(out.glob("*/batches.jsonl"))
            text = found[0].read_text() if found else ""
            if srv.batches and text.count('"uploaded"') == len(srv.batches):
                break
            time.sleep(0.05)
        assert srv.batches and '"submitted"' not in text, proc.communicate(timeout=5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        created = set(srv.batches)
        srv.batch_create_reply_delay_s = 0.0
        again = subprocess.run([*cmd, "--batch", "--quiet"], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        counts = srv.counts_by_key()
    assert max(counts.values()) == 1  # the batch the killed run never heard of answered its requests once
    run = only_run_dir(out)
    events = [json.loads(line) for line in (run / "batches.jsonl").read_text().splitlines()]
    adopted = [e for e in events if e["event"] == "submitted" and e.get("adopted")]
    assert {e["batch_id"] for e in adopted} == created and len(adopted) == len(created)
    for batch_id in created:
        collected = [e for e in events if e["event"] == "collected" and e.get("batch_id") == batch_id]
        assert collected and collected[0]["status"] == "completed"
    info = json.loads((run / "run.json").read_text())["batch"]
    assert info["resumed_batches"] == len(created) and info["adopted"] == len(created) and info["unknown"] == []
