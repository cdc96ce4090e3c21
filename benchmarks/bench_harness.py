"""What equiv's harness costs on top of litellm: a full `compare` against a slow loopback provider.

The provider answers every call after a fixed latency (default 200 ms, a fast real API). A pair costs
one candidate call then two judge calls (both orders), and the judge check adds two calls per checked
pair. With `concurrency` calls in flight the ideal wall time is calls x latency / concurrency; the
harness should stay within 1.2x of a bare litellm loop making the same number of calls (bare_loop in
bench_litellm_bare.py), and its CPU per call should be close to litellm's own.

    python benchmarks/bench_harness.py [--pairs 200] [--concurrency 32] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).parent))

from bench_litellm_bare import _server_process, bare_loop

from equiv.config import load_settings
from equiv.llm import fake
from equiv.pipeline import compare

WORDS = (
    "customer account subscription payment duplicate charge support ticket priority urgent device mobile "
    "desktop browser network firewall certificate renewal export import archive storage quota folder"
).split()


def traffic(path: Path, pairs: int) -> None:
    rng = random.Random(0)
    with path.open("w") as f:
        for i in range(pairs):
            msgs = [{"role": "user", "content": f"Ticket {i}: " + " ".join(rng.sample(WORDS, 10))}]
            text, pt, ct = fake.reply("skill-95", msgs)
            f.write(
                json.dumps(
                    {
                        "id": f"r{i}",
                        "prompt_type": "triage",
                        "messages": msgs,
                        "response": text,
                        "usage": {"prompt_tokens": pt, "completion_tokens": ct},
                    }
                )
                + "\n"
            )


def config(path: Path, url: str, pairs: int, concurrency: int) -> None:
    lines = [
        'baseline = "openai/skill-95"',
        'candidate = "openai/skill-93"',
        'judge = "openai/judge"',
        f"per_type = {pairs}",
        f"concurrency = {concurrency}",
        "max_spend_usd = 100",
        "bootstrap = 2000",
    ]
    for name in ("skill-95", "skill-93", "judge"):
        lines += [
            f'[models."openai/{name}"]',
            f'api_base = "{url}"',
            "input_cost_per_mtok = 1",
            "output_cost_per_mtok = 1",
        ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--latency", type=float, default=0.2)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp, _server_process(args.latency) as url:
        d = Path(tmp)
        traffic(d / "traffic.jsonl", args.pairs)
        config(d / "equiv.toml", url, args.pairs, args.concurrency)
        settings = load_settings(d / "equiv.toml", {})
        calls = {"n": 0}

        def on_event(kind: str, data: dict) -> None:
            calls["n"] += kind == "call"

        compare(d / "traffic.jsonl", settings, out=d / "warm", fresh=True)  # imports, litellm clients
        cpu0, t0 = time.process_time(), time.perf_counter()
        res = compare(d / "traffic.jsonl", settings, out=d / "reports", fresh=True, on_event=on_event)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        n = calls["n"]
        bare = bare_loop(url, n, args.concurrency)

    ideal = n * args.latency / args.concurrency
    print(f"equiv compare: {args.pairs} pairs, {n} calls, concurrency {args.concurrency}, latency {args.latency}s")
    print(f"  verdict:         {res.verdict.verdict}")
    print(f"  wall:            {wall:.2f} s  (ideal {ideal:.2f} s, {wall / ideal:.2f}x ideal)")
    print(f"  bare litellm:    {bare['wall_s']:.2f} s for the same {n} calls ({bare['wall_s'] / ideal:.2f}x ideal)")
    print(f"  harness / bare:  {wall / bare['wall_s']:.2f}x   (target <= 1.05x)")
    print(
        f"  CPU per call:    {cpu / n * 1000:.2f} ms  (bare litellm {bare['cpu_per_call_s'] * 1000:.2f} ms; "
        "includes judging, the cache, fsync and the analysis)"
    )


if __name__ == "__main__":
    main()
