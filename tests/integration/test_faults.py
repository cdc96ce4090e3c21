"""Provider faults at volume: 1,000 pairs through litellm against a loopback server that fails a lot.

The server answers from the simulated world of equiv.llm.fake, so what a clean provider would have
answered is known exactly: the oracle below computes it with the same pure functions (no HTTP), and
the faulty run must match it pair by pair and order by order — zero pairs lost, nothing guessed.
(A clean HTTP run of the same 1,000 pairs gives the same verdict: benchmarks/bench_faults.py runs both.)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from equiv.judging.pairwise import degrade
from equiv.judging.parse import parse_reply
from equiv.judging.prompt import find_template, render
from equiv.llm import fake
from equiv.testing.loopback import LoopbackServer

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl

TEMPLATE = find_template("judges/pairwise.md").read_text(encoding="utf-8")
FAULTS = dict(rate_429=0.20, rate_500=0.10, rate_timeout=0.05, rate_reset=0.05, rate_garbage=0.10)


def oracle_winner(judge: str, messages: list[dict[str, Any]], a: str, b: str) -> str:
    """What the judge answers on a clean line (the loopback judge is deterministic)."""
    reply, _pt, _ct = fake.reply(judge, render(TEMPLATE, messages, a, b), 0)
    winner, _reason = parse_reply(reply)
    assert winner is not None
    return winner


def oracle_pair(rec: dict[str, Any], candidate: str, judge: str) -> dict[str, Any]:
    out, _pt, _ct = fake.reply(candidate, rec["messages"], 0)
    base = rec["response"]
    return {
        "candidate": out,
        "judgments": {
            "baseline_first": oracle_winner(judge, rec["messages"], base, out),
            "candidate_first": oracle_winner(judge, rec["messages"], out, base),
        },
    }


def oracle_check(rec: dict[str, Any], judge: str) -> dict[str, str]:
    intact = rec["response"]
    return {
        "intact_first": oracle_winner(judge, rec["messages"], intact, degrade(intact)),
        "degraded_first": oracle_winner(judge, rec["messages"], degrade(intact), intact),
    }


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_1000_pairs_under_heavy_faults_lose_nothing_and_match_a_clean_run(
    equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EQUIV_BACKOFF_BASE_S", "0.01")
    monkeypatch.setenv("EQUIV_BACKOFF_MAX_S", "0.2")
    records = make_records(["triage", "reply"], 500)
    traffic = write_jsonl(tmp_path / "traffic.jsonl", records)
    with LoopbackServer(seed=5, retry_after=0.02, timeout_sleep_s=3.0, **FAULTS) as srv:
        config = write_config(
            tmp_path / "equiv.toml",
            srv,
            baseline="skill-95",
            candidate="skill-60",
            per_type=500,
            concurrency=64,
            timeout_s=1.0,
            max_retries=12,
            judge_retries=6,
            bootstrap=1000,
        )
        t0 = time.perf_counter()
        r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"))
        wall = time.perf_counter() - t0
        requests = list(srv.requests)
        successes = srv.counts_by_key()
    assert r.exit_code == 0, r.stderr[-3000:]
    run = only_run_dir(tmp_path / "reports")

    # every fault kind was injected, 429s both with and without retry-after
    faults = Counter(q["fault"] for q in requests)
    assert all(
        faults[k] > 0.5 * rate * len(requests)
        for k, rate in {"429": 0.20, "500": 0.10, "timeout": 0.05, "reset": 0.05}.items()
    ), faults
    assert faults["garbage"] > 0
    # (the server sends retry-after on every other 429; litellm exposes the header to the runner)

    # zero pairs lost, none failed, and each is what a clean provider would have produced
    pairs = {p["pair_id"]: p for p in read_lines(run / "pairs.jsonl")}
    assert len(pairs) == 1000 and all(p["error"] is None for p in pairs.values())
    by_id = {rec["id"]: rec for rec in records}
    for pid, p in pairs.items():
        want = oracle_pair(by_id[pid], "skill-60", "judge")
        assert p["candidate"]["output"] == want["candidate"], pid
        assert {j["order"]: j["winner"] for j in p["judgments"]} == want["judgments"], pid
    checks = read_lines(run / "checks.jsonl")
    assert len(checks) == 100 and all(c["error"] is None for c in checks)
    for c in checks:
        assert {j["order"]: j["winner"] for j in c["judgments"]} == oracle_check(by_id[c["pair_id"]], "judge")

    v = load_verdict(run)
    assert v["verdict"] == "NO_GO" and v["aborted"] is None
    assert [(t["n"], t["n_failed"]) for t in v["prompt_types"]] == [(500, 0), (500, 0)]

    # retries are bounded and accounted for: every transient fault injected was retried once, and nothing
    # else was, except requests the client gave up on under load before the server answered (timeouts)
    info = json.loads((run / "run.json").read_text())
    calls = info["calls"]
    assert calls["max_attempts"] <= 13
    transient = faults["429"] + faults["500"] + faults["timeout"] + faults["reset"]
    assert calls["retries"] == sum(calls["faults"].values())
    late = calls["retries"] - transient  # client timeouts on requests the server did not fault
    assert 0 <= late <= calls["faults"].get("Timeout", 0)
    # nothing bought twice: every distinct request got at most one good answer from the server, except
    # those the client had already given up on
    assert sum(n - 1 for n in successes.values()) <= late
    # backoff is visible in the progress line (the live bar on a terminal, the plain line elsewhere)
    assert "retries (backing off" in r.stderr or "retries (last: " in r.stderr

    print(
        f"\n1,000 pairs under faults: {len(requests)} requests, faults {dict(faults)}, "
        f"retries {calls['retries']}, max attempts {calls['max_attempts']}, backoff {calls['backoff_s']:.1f}s, "
        f"late client timeouts {late}, wall {wall:.1f}s"
    )


def test_a_provider_that_keeps_failing_stops_the_run_with_exit_4_and_it_resumes_later(
    equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EQUIV_BACKOFF_BASE_S", "0.02")
    monkeypatch.setenv("EQUIV_BACKOFF_MAX_S", "0.1")
    monkeypatch.setenv("EQUIV_BREAKER_WINDOW_S", "1.0")  # "> 50% of calls for a minute", scaled down
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 150))
    with LoopbackServer(seed=2, rate_500=0.65, latency_s=0.005) as srv:
        config = write_config(
            tmp_path / "equiv.toml",
            srv,
            baseline="skill-95",
            candidate="skill-60",
            per_type=150,
            concurrency=8,
            max_retries=20,
        )
        args = ("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"))
        r = equiv_cli(*args)
        assert r.exit_code == 4, r.stderr[-2000:]
        assert "keeps failing" in r.stderr and "of the last" in r.stderr and "run the same command" in r.stderr
        assert "Traceback" not in r.stderr
        run = only_run_dir(tmp_path / "reports")
        v = load_verdict(run)
        assert v["aborted"] and "keeps failing" in v["aborted"] and v["verdict"] != "GO"
        done_before = len(read_lines(run / "pairs.jsonl"))
        assert done_before < 150

        srv.rate_500 = 0.0  # the provider recovers
        r2 = equiv_cli(*args)
        assert r2.exit_code == 0, r2.stderr[-2000:]
        assert only_run_dir(tmp_path / "reports") == run  # resumed, not restarted
        assert load_verdict(run)["prompt_types"][0]["n"] == 150
        assert max(srv.counts_by_key().values()) == 1  # nothing bought twice across the two runs


def test_a_call_in_flight_when_a_bad_key_stops_the_run_is_kept_and_never_bought_again(
    equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The baseline's key is refused at once while the pair's candidate call is still on its way (1.5 s):
    that answer is paid for, so the stopped run keeps it and the fixed run does not buy it again. (A pair's
    other call used to be left running when its sibling stopped the run: answered after the run had closed
    its cache, or cut off as it exited; the server counted it, the resumed run bought it again.)"""
    monkeypatch.setenv("EQUIV_TEST_BASELINE_KEY", "sk-wrong")
    monkeypatch.setenv("EQUIV_TEST_GOOD_KEY", "sk-good")
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 4))
    with LoopbackServer(seed=3, api_key="sk-good", latency_s=1.5) as srv:
        config = write_config(
            tmp_path / "equiv.toml",
            srv,
            baseline="skill-95",
            candidate="skill-60",
            per_type=4,
            concurrency=2,  # one pair's two calls: no other call in flight
            baseline_source="rerun",
            judge_check=False,
        )
        text = config.read_text()
        for name, env in (("skill-95", "BASELINE"), ("skill-60", "GOOD"), ("judge", "GOOD")):
            head = f'[models."openai/{name}"]\n'
            text = text.replace(head, f'{head}api_key_env = "EQUIV_TEST_{env}_KEY"\n')
        config.write_text(text)
        args = ("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"))
        r = equiv_cli(*args)
        assert r.exit_code == 4 and "Check the API key" in r.stderr, r.stderr[-2000:]
        time.sleep(2.0)  # a request the run left behind would finish on the server now
        bought = srv.counts_by_key()
        assert [model for model, _h, _s in bought] == ["skill-60"]  # the candidate call was out, and answered
        run = only_run_dir(tmp_path / "reports")
        assert len(read_lines(run / "calls.jsonl")) == 1  # the answer paid for is kept

        monkeypatch.setenv("EQUIV_TEST_BASELINE_KEY", "sk-good")  # the key is fixed
        srv.latency_s = 0.01
        r2 = equiv_cli(*args)
        assert r2.exit_code == 0, r2.stderr[-2000:]
        assert load_verdict(run)["prompt_types"][0]["n"] == 4
        assert max(srv.counts_by_key().values()) == 1  # nothing bought twice across the two runs


def test_a_short_burst_of_errors_does_not_trip_the_breaker(
    equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EQUIV_BACKOFF_BASE_S", "0.01")
    monkeypatch.setenv("EQUIV_BACKOFF_MAX_S", "0.05")
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 40))
    with LoopbackServer(seed=2, fail_first_n=20) as srv:  # the first 20 requests all fail, then it is fine
        config = write_config(
            tmp_path / "equiv.toml",
            srv,
            baseline="skill-95",
            candidate="skill-60",
            per_type=40,
            concurrency=8,
            max_retries=10,
        )
        r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"), "--quiet")
    assert r.exit_code == 0, r.stderr
    assert load_verdict(only_run_dir(tmp_path / "reports"))["prompt_types"][0]["n_failed"] == 0


def test_spend_cap_holds_under_concurrency_and_every_report_says_it_was_hit(equiv_cli, tmp_path: Path) -> None:
    cap = 0.05
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage", "reply"], 100))
    with LoopbackServer(seed=6, latency_s=0.05) as srv:
        config = write_config(
            tmp_path / "equiv.toml",
            srv,
            baseline="skill-95",
            candidate="skill-60",
            per_type=100,
            concurrency=32,
            max_spend_usd=cap,
        )
        r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"))
        answered = sum(1 for q in srv.requests if q["status"] == 200)
        peak = srv.max_in_flight
    assert r.exit_code == 4, r.stderr[-2000:]
    assert "spend cap reached" in r.stderr and "--max-spend" in r.stderr
    run = only_run_dir(tmp_path / "reports")
    calls = read_lines(run / "calls.jsonl")
    spent = sum(c["completion"]["cost_usd"] for c in calls)
    # every call the server answered was recorded (in-flight ones were waited for), and the total is within
    # the cap: spend is reserved at its worst case (prompt + max_tokens) before a call is sent
    assert len(calls) == answered and peak > 8
    assert spent <= cap
    v = load_verdict(run)
    assert v["eval_cost_usd"] == pytest.approx(spent, abs=1e-6) and v["verdict"] != "GO"
    assert "spend cap reached" in v["aborted"]
    assert "spend cap reached" in (run / "summary.md").read_text()
    assert "spend cap reached" in (run / "report.html").read_text()
    assert json.loads((run / "run.json").read_text())["aborted"].startswith("spend cap reached")
    print(f"\nspend cap ${cap}: spent ${spent:.4f} in {len(calls)} calls, peak {peak} in flight")


def test_retry_after_from_the_provider_is_honoured() -> None:
    """litellm hides the real headers in `litellm_response_headers`; the runner must still see retry-after."""
    import asyncio

    from equiv.llm import client
    from equiv.llm.client import CallError, ModelSpec

    with LoopbackServer(rate_429=1.0, retry_after=0.3) as srv:  # every other 429 carries the header
        spec = ModelSpec(
            name="m",
            call_model="openai/skill-60",
            api_base=srv.base_url,
            api_key_env=None,
            input_per_token=0.0,
            output_per_token=0.0,
            timeout_s=5,
        )
        seen = []
        for _ in range(2):
            with pytest.raises(CallError) as info:
                asyncio.run(client.acomplete(spec, [{"role": "user", "content": "hi"}], {}, None))
            seen.append((info.value.kind, info.value.retry_after))
    assert seen == [("transient", 0.3), ("transient", None)]


# -- the spend cap is hard: a call with no output limit is sent with the one it was reserved at -----------

RAMBLE_PRICES = {"skill-95": (2.5, 10.0), "skill-60": (1.0, 10.0), "judge": (2.0, 8.0)}  # USD per M tokens


def ramble_config(path: Path, srv: LoopbackServer, **top: Any) -> Path:
    lines = ['baseline = "openai/skill-95"', 'candidate = "openai/skill-60"', 'judge = "openai/judge"']
    for k, v in {"concurrency": 8, "bootstrap": 500, "timeout_s": 5.0, "per_type": 30, **top}.items():
        lines.append(f"{k} = {json.dumps(v)}")
    for name, (pin, pout) in RAMBLE_PRICES.items():
        lines += [
            f'[models."openai/{name}"]',
            f'api_base = "{srv.base_url}"',
            f"input_cost_per_mtok = {pin}",
            f"output_cost_per_mtok = {pout}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def provider_bill(requests: list[dict[str, Any]]) -> float:
    """What the provider billed: every answered request's usage at its model's price."""
    total = 0.0
    for q in requests:
        if q["status"] == 200 and q["usage"]:
            pin, pout = RAMBLE_PRICES[q["model"]]
            total += (q["usage"]["prompt_tokens"] * pin + q["usage"]["completion_tokens"] * pout) / 1e6
    return total


def unlimited_traffic(tmp_path: Path, n: int) -> Path:
    """Traffic whose params set no output limit (temperature only)."""
    rows = make_records(["triage"], n)
    for row in rows:
        row["params"] = {"temperature": 0}
    return write_jsonl(tmp_path / "traffic.jsonl", rows)


def test_a_candidate_that_rambles_without_max_tokens_cannot_pass_the_cap(equiv_cli, tmp_path: Path) -> None:
    """200,000 tokens whenever no max_tokens is sent ($2 a call against a $1 cap): every call must carry the
    limit it was reserved at (max_tokens_default, recorded in run.json), and the bill stays under the cap."""
    cap = 1.0
    traffic = unlimited_traffic(tmp_path, 30)
    with LoopbackServer(seed=3, ramble_tokens=200_000, ramble_models={"skill-60"}) as srv:
        config = ramble_config(tmp_path / "equiv.toml", srv, max_spend_usd=cap)
        r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"), "--quiet")
        requests = list(srv.requests)
    run = only_run_dir(tmp_path / "reports")
    info = json.loads((run / "run.json").read_text())
    limit = info["settings"]["max_tokens_default"]
    cand = [q for q in requests if q["model"] == "skill-60"]
    assert cand and all(q["max_tokens"] == limit and q["max_completion_tokens"] is None for q in cand)
    assert all(q["max_tokens"] == 400 for q in requests if q["model"] == "judge")  # the judge's own limit
    spent = sum(c["completion"]["cost_usd"] for c in read_lines(run / "calls.jsonl"))
    assert spent <= cap and info["eval_cost_usd"] <= cap and provider_bill(requests) <= cap
    assert r.exit_code == 0, r.stderr[-2000:]  # a bounded run fits the cap: nothing stopped it
    assert info["eval_cost_usd"] == pytest.approx(provider_bill(requests), abs=1e-6)


def test_a_provider_that_ignores_the_limit_gets_no_further_call(equiv_cli, tmp_path: Path) -> None:
    """A provider that bills past the limit it was sent overruns that call's reservation; nothing more is
    bought once the cap is passed (one call at a time, so the first overrun is the last request)."""
    traffic = unlimited_traffic(tmp_path, 30)
    with LoopbackServer(seed=3, ramble_tokens=200_000, ramble_models={"skill-60"}, ignore_limits=True) as srv:
        config = ramble_config(tmp_path / "equiv.toml", srv, max_spend_usd=1.0, concurrency=1)
        r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"), "--quiet")
        requests = list(srv.requests)
    assert r.exit_code == 4 and "spend cap reached" in r.stderr, r.stderr[-2000:]
    assert len(requests) == 1 and requests[0]["max_tokens"] is not None
