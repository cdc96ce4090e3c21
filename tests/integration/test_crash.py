"""Crash and interruption: the real CLI in a subprocess against the loopback server, killed at random points.

What must hold: the next run resumes and finishes; no call is bought twice beyond the calls in flight when
the process died (counted at the server); pairs.jsonl and calls.jsonl are never corrupt (at most a torn
last line, dropped on resume); Ctrl-C exits cleanly (exit 4, a message, no traceback) keeping the
partial results; a second process on the same run directory is refused.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from equiv.store import RunDir
from equiv.testing.loopback import LoopbackServer

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl

CONCURRENCY = 8
PER_TYPE = 40


@pytest.fixture
def slow_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(seed=4, latency_s=0.03) as srv:
        yield srv


def setup_run(tmp_path: Path, srv: LoopbackServer, per_type: int = PER_TYPE) -> list[str]:
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage", "reply"], per_type))
    config = write_config(
        tmp_path / "equiv.toml",
        srv,
        baseline="skill-95",
        candidate="skill-60",
        per_type=per_type,
        concurrency=CONCURRENCY,
        bootstrap=500,
    )
    return [
        sys.executable,
        "-m",
        "equiv",
        "compare",
        str(traffic),
        "--config",
        str(config),
        "--out",
        str(tmp_path / "reports"),
        "--quiet",
    ]


def _default_sigint() -> None:
    # as in a terminal: a test session started in the background (`cmd &`) inherits SIGINT ignored,
    # and Python then never turns Ctrl-C into KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def wait_for_requests(srv: LoopbackServer, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while len(srv.requests) < n and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.005)


def check_jsonl(path: Path) -> tuple[int, bool]:
    """(complete lines, torn last line?) — every complete line must be valid JSON: never corrupt."""
    if not path.exists():
        return 0, False
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    torn = lines[-1] != b""
    complete = lines[:-1]
    for line in complete:
        json.loads(line)  # raises on a corrupt line
    if torn:
        with pytest.raises(ValueError):
            json.loads(lines[-1])
    return len(complete), torn


def duplicates(srv: LoopbackServer) -> int:
    """Calls answered by the server more than once (bought twice)."""
    return sum(n - 1 for n in srv.counts_by_key().values())


def in_flight_at(srv: LoopbackServer, t: float, window: float = 0.3) -> int:
    """Requests the server was working on at `t`, plus those answered just before (the client may not have
    stored them yet): an upper estimate of the calls in flight when the process died."""
    with srv._lock:
        busy = srv._in_flight
        recent = sum(1 for q in srv.requests if q["status"] == 200 and t - window <= q["t"] <= t)
    return busy + recent


def test_kill_9_at_random_points_ten_times_then_resume(tmp_path: Path, slow_server: LoopbackServer) -> None:
    srv = slow_server
    cmd = setup_run(tmp_path, srv)
    rng = random.Random(20240611)
    n_calls = PER_TYPE * 2 * 3 + 2 * 10 * 2  # candidate + two judge orders per pair, two orders per check
    kills, finished_early, in_flight, torn_seen = 0, 0, 0, 0
    for trial in range(10):
        before = len(srv.requests)
        proc = start(cmd)
        if trial % 2 == 0:  # a random moment, from start-up (imports, sampling) to the end of the run
            time.sleep(rng.uniform(0.2, 4.0))
        else:  # a random point of the buying: after some more requests reached the server
            wait_for_requests(srv, before + rng.randint(1, n_calls // 6), proc)
        if proc.poll() is None:
            t_kill = time.time()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
            in_flight += in_flight_at(srv, t_kill)
        else:
            proc.communicate()
            finished_early += 1
            assert proc.returncode == 0
        for root, _dirs, files in os.walk(tmp_path / "reports"):
            for name in files:
                if name.endswith(".jsonl"):
                    _n, torn = check_jsonl(Path(root) / name)
                    torn_seen += torn

    final = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "Traceback" not in final.stderr
    run = only_run_dir(tmp_path / "reports")  # every attempt resumed the same run directory
    n_pairs, torn = check_jsonl(run / "pairs.jsonl")
    assert n_pairs == 2 * PER_TYPE and not torn
    ids = [json.loads(line)["pair_id"] for line in (run / "pairs.jsonl").read_text().splitlines()]
    assert len(set(ids)) == len(ids)  # no pair written twice
    v = load_verdict(run)
    assert [(t["n"], t["n_failed"]) for t in v["prompt_types"]] == [(PER_TYPE, 0), (PER_TYPE, 0)]
    assert all(t["judge_check"]["n"] == 10 for t in v["prompt_types"])
    dup = duplicates(srv)
    # bought twice only among the calls in flight at a kill: never more than `concurrency` of them
    # (an answer is appended to calls.jsonl as soon as it arrives, before another call can start)
    assert dup <= kills * CONCURRENCY, (dup, kills)
    print(
        f"\nkill -9: {kills} kills ({finished_early} runs finished first), {len(srv.requests)} requests, "
        f"{dup} bought twice, {in_flight} in flight at the kills, {torn_seen} torn last lines seen"
    )


def test_ctrl_c_exits_4_cleanly_keeps_partial_results_and_resumes(tmp_path: Path, slow_server: LoopbackServer) -> None:
    srv = slow_server
    cmd = setup_run(tmp_path, srv)
    proc = start(cmd)
    wait_for_requests(srv, 60, proc)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert "interrupted" in err and "run the same command again to resume" in err
    assert "Traceback" not in err and "Task was destroyed" not in err and "never awaited" not in err
    run = only_run_dir(tmp_path / "reports")
    n_pairs, torn = check_jsonl(run / "pairs.jsonl")
    assert 0 < n_pairs < 2 * PER_TYPE and not torn  # a clean exit leaves whole lines only
    check_jsonl(run / "calls.jsonl")
    # the partial results are reported as such, like any other stop
    assert load_verdict(run)["aborted"].startswith("interrupted (Ctrl-C)")
    assert "interrupted (Ctrl-C)" in (run / "summary.md").read_text()
    assert "partial results in" in err and not (run / ".lock").exists()
    bought = len(srv.counts_by_key())

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{n_pairs} of {2 * PER_TYPE} pairs already done" in again.stderr
    assert load_verdict(run)["prompt_types"][0]["n"] == PER_TYPE
    # calls in flight at Ctrl-C were waited for and kept, so nothing at all is bought twice
    assert duplicates(srv) == 0 and len(srv.counts_by_key()) > bought


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path: Path) -> None:
    with LoopbackServer(seed=4, latency_s=0.2) as srv:
        cmd = setup_run(tmp_path, srv, per_type=30)
        first = start(cmd)
        try:
            wait_for_requests(srv, 1, first)
            assert first.poll() is None
            run = only_run_dir(tmp_path / "reports")
            second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert second.returncode == 2, second.stderr
            assert f"another equiv process (pid {first.pid})" in second.stderr and str(run) in second.stderr
            assert "Traceback" not in second.stderr
            # --resume names the directory explicitly: refused the same way
            third = subprocess.run([*cmd, "--resume", str(run)], capture_output=True, text=True, timeout=120)
            assert third.returncode == 2 and "another equiv process" in third.stderr
        finally:
            first.kill()
            first.communicate()
    # once the holder is gone (here by kill -9, leaving its .lock file behind), the directory is free again
    assert (run / ".lock").exists()
    rd = RunDir(run)
    rd.lock()
    rd.unlock()


def test_a_torn_last_line_is_dropped_on_resume_and_a_corrupt_middle_line_is_named(
    equiv_cli, tmp_path: Path, server: LoopbackServer
) -> None:
    cmd = setup_run(tmp_path, server, per_type=15)[3:]  # the CLI arguments after "-m equiv"
    assert equiv_cli(*cmd).exit_code == 0
    run = only_run_dir(tmp_path / "reports")
    lines = (run / "pairs.jsonl").read_text().splitlines(keepends=True)
    bought = len(server.requests)
    # as if killed while writing the last pair and the last call: a line cut short, no newline
    (run / "pairs.jsonl").write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    with open(run / "calls.jsonl", "a") as fh:
        fh.write('{"key": "abc", "completion": {"model": "m", "outp')
    r = equiv_cli(*cmd)
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())  # the console wraps lines
    assert "29 of 30 pairs already done; 1 pairs to run + ~0 judge checks" in err
    n, torn = check_jsonl(run / "pairs.jsonl")
    assert n == 30 and not torn and load_verdict(run)["prompt_types"][0]["n"] == 15
    assert len(server.requests) == bought  # the torn pair is redone from the cached calls: nothing bought
    check_jsonl(run / "calls.jsonl")
    # a damaged line that is not the last is not a crash artefact: refused, naming the line
    lines = (run / "pairs.jsonl").read_text().splitlines(keepends=True)
    (run / "pairs.jsonl").write_text(lines[0] + "{garbage\n" + "".join(lines[1:]))
    r = equiv_cli(*cmd)
    assert r.exit_code == 2 and f"{run / 'pairs.jsonl'}:2: invalid JSON" in r.stderr
