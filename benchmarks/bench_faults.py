"""Provider faults at volume: the same 1,000 pairs against a clean and a faulty loopback provider.

The faulty provider answers 20% of requests with 429 (every other one with a retry-after header), 10%
with 500, lets 5% time out, resets 5% of connections and answers 10% of judge calls with unparseable
text. Both runs go through the real CLI code path (equiv.pipeline.compare via litellm over HTTP). Printed:
requests, faults injected by kind, pairs lost, calls bought twice, retries, the most attempts any call
needed, total backoff, wall time, and whether every pair, judgment and the verdict match the clean run.

    python benchmarks/bench_faults.py [--pairs 1000] [--concurrency 64] [--timeout 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("EQUIV_BACKOFF_BASE_S", "0.01")
os.environ.setdefault("EQUIV_BACKOFF_MAX_S", "0.2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equiv.config import load_settings
from equiv.pipeline import compare
from equiv.testing.loopback import LoopbackServer
from tests.integration.conftest import make_records, write_config, write_jsonl

FAULTS = dict(rate_429=0.20, rate_500=0.10, rate_timeout=0.05, rate_reset=0.05, rate_garbage=0.10)


def one_run(folder: Path, pairs: int, concurrency: int, timeout: float, faulty: bool) -> dict[str, Any]:
    folder.mkdir(parents=True)
    per_type = pairs // 2
    traffic = write_jsonl(folder / "traffic.jsonl", make_records(["triage", "reply"], per_type))
    kw: dict[str, Any] = dict(FAULTS, retry_after=0.02, timeout_sleep_s=timeout * 2) if faulty else {}
    with LoopbackServer(seed=5, **kw) as srv:
        cfg = write_config(
            folder / "equiv.toml",
            srv,
            baseline="skill-95",
            candidate="skill-60",
            per_type=per_type,
            concurrency=concurrency,
            timeout_s=timeout,
            max_retries=12,
            judge_retries=6,
            bootstrap=1000,
        )
        settings = load_settings(cfg)
        t0 = time.perf_counter()
        result = compare(traffic, settings, out=folder / "reports")
        wall = time.perf_counter() - t0
        requests = list(srv.requests)
        successes = srv.counts_by_key()
    run = result.run_dir
    lines = [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]
    return {
        "wall": wall,
        "requests": len(requests),
        "faults": Counter(q["fault"] for q in requests if q["fault"]),
        "pairs": {
            p["pair_id"]: (
                p["candidate"]["output"] if p["candidate"] else None,
                sorted((j["order"], j["winner"]) for j in p["judgments"]),
                p["error"],
            )
            for p in lines
        },
        "checks": {
            c["pair_id"]: sorted((j["order"], j["winner"]) for j in c["judgments"])
            for c in (json.loads(x) for x in (run / "checks.jsonl").read_text().splitlines())
        },
        "verdict": json.loads((run / "verdict.json").read_text()),
        "calls": json.loads((run / "run.json").read_text())["calls"],
        "bought_twice": sum(n - 1 for n in successes.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=2.0, help="client timeout per call, seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clean = one_run(Path(tmp) / "clean", args.pairs, args.concurrency, args.timeout, faulty=False)
        faulty = one_run(Path(tmp) / "faulty", args.pairs, args.concurrency, args.timeout, faulty=True)

    def strip(v: dict[str, Any]) -> dict[str, Any]:
        """What the verdict says; the eval cost differs by design (garbage judge replies are paid and retried)."""
        return {k: v[k] for k in v if k not in ("run_id", "eval_cost_usd")}

    lost = len(clean["pairs"]) - sum(1 for p in faulty["pairs"].values() if p[2] is None)
    same_pairs = clean["pairs"] == faulty["pairs"]
    same_checks = clean["checks"] == faulty["checks"]
    same_verdict = strip(clean["verdict"]) == strip(faulty["verdict"])
    c = faulty["calls"]
    print(
        f"pairs: {args.pairs}, concurrency {args.concurrency}, client timeout {args.timeout:g}s, "
        f"backoff base {os.environ['EQUIV_BACKOFF_BASE_S']}s max {os.environ['EQUIV_BACKOFF_MAX_S']}s"
    )
    print(f"clean : {clean['requests']} requests, wall {clean['wall']:.1f}s, verdict {clean['verdict']['verdict']}")
    print(f"faulty: {faulty['requests']} requests, wall {faulty['wall']:.1f}s, verdict {faulty['verdict']['verdict']}")
    print(f"faults injected: {dict(faulty['faults'])} (total {sum(faulty['faults'].values())})")
    print(
        f"client saw: {c['faults']}; retries {c['retries']}, max attempts for one call {c['max_attempts']}, "
        f"backoff slept {c['backoff_s']:.1f}s in total"
    )
    print(f"pairs lost: {lost}; calls bought twice: {faulty['bought_twice']}")
    print(
        f"identical to the clean run: pairs+judgments {same_pairs}, judge checks {same_checks}, "
        f"verdict.json (but run id and eval cost) {same_verdict}"
    )
    costs = clean["verdict"]["eval_cost_usd"], faulty["verdict"]["eval_cost_usd"]
    print(
        f"eval cost: clean ${costs[0]:.4f}, faulty ${costs[1]:.4f} (the faulty run also paid for the unparseable "
        "judge replies)"
    )


if __name__ == "__main__":
    main()
