"""Local judge speed: the demo's judge work against a real llama.cpp server, as equiv sends it and as it used to.

Judges N demo prompts in both orders (the logged baseline answer against its truncated copy, so no second
model is needed) three ways and prints wall time, prompt tokens the server actually read (not reused from
its cache), tokens decoded, and llama.cpp's prompt rate:
  before      judges/pairwise.md (format request after the answers), whole verdict object decoded,
              2 pairs in flight (their orders interleave on the server)
  prefix      judges/pairwise-local.md (everything fixed before the data), whole verdict object decoded,
              2 pairs in flight
  equiv       judges/pairwise-local.md, the reply's opening prefilled (one verdict word decoded, with its
              logprobs), each pair's two orders back to back (what equiv does for a local judge)
Needs equiv[local] and fixtures/demo/traffic.jsonl.
Run: python benchmarks/bench_local.py --n 24
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from equiv.judging.pairwise import LOCAL_JUDGE_PARAMS, LOCAL_JUDGE_PREFILL, degrade
from equiv.judging.prompt import render
from equiv.local.server import LocalServer, ServerOptions
from equiv.local.weights import BUNDLED, ensure_bundled

ROOT = Path(__file__).resolve().parents[1]
OLD_GRAMMAR = 'root ::= "{\\"winner\\": \\"" ("A" | "B" | "tie") "\\"}"'


def _post(base: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        base + "/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=900) as r:
        return dict(json.load(r))


def run(base: str, recs: list[dict[str, Any]], mode: str) -> dict[str, float]:
    template = (ROOT / ("judges/pairwise.md" if mode == "before" else "judges/pairwise-local.md")).read_text()
    if mode == "equiv":
        params: dict[str, Any] = {k: v for k, v in LOCAL_JUDGE_PARAMS.items() if k != "extra_body"}
        params["grammar"] = LOCAL_JUDGE_PARAMS["extra_body"]["grammar"]
    else:
        params = {"max_tokens": 12, "grammar": OLD_GRAMMAR}
    totals = {"prompt_read": 0.0, "decoded": 0.0, "prompt_ms": 0.0}
    lock = threading.Lock()

    def one(messages: list[dict[str, str]]) -> None:
        if mode == "equiv":
            messages = [*messages, {"role": "assistant", "content": LOCAL_JUDGE_PREFILL}]
        t = _post(base, {"model": "x", "messages": messages, "temperature": 0, **params}).get("timings", {})
        with lock:
            totals["prompt_read"] += t.get("prompt_n", 0)
            totals["decoded"] += t.get("predicted_n", 0)
            totals["prompt_ms"] += t.get("prompt_ms", 0.0)

    def pair(rec: dict[str, Any]) -> None:
        a, b = rec["response"], degrade(rec["response"]) or "(empty)"
        one(render(template, rec["messages"], a, b))
        one(render(template, rec["messages"], b, a))

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(1 if mode == "equiv" else 2) as ex:
        list(ex.map(pair, recs))
    totals["wall_s"] = time.perf_counter() - t0
    return totals


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    ap.add_argument("--n", type=int, default=24, help="prompts (each judged in both orders)")
    ap.add_argument("--modes", default="before,prefix,equiv")
    args = ap.parse_args()
    recs = [json.loads(line) for line in (ROOT / "fixtures/demo/traffic.jsonl").read_text().splitlines()]
    recs = recs[:: max(1, len(recs) // args.n)][: args.n]
    gguf = ensure_bundled(BUNDLED[args.model.removeprefix("local/")])
    print(f"{args.model}: {len(recs)} prompts x 2 orders per mode")
    print(f"{'mode':8} {'wall s':>7} {'prompt tok read':>16} {'decoded':>8} {'read tok/s':>10}")
    for mode in args.modes.split(","):
        srv = LocalServer(args.model, gguf, ServerOptions(parallel=2))  # a fresh server: nothing cached
        base = srv.start()
        try:
            r = run(base, recs, mode)
        finally:
            srv.stop()
        rate = r["prompt_read"] / (r["prompt_ms"] / 1000) if r["prompt_ms"] else 0.0
        print(f"{mode:8} {r['wall_s']:7.1f} {r['prompt_read']:16.0f} {r['decoded']:8.0f} {rate:10.1f}")


if __name__ == "__main__":
    main()
