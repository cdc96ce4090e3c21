"""Local judge speed: real judge prompts of the demo against a local llama.cpp server, straight over HTTP.

Prints wall time, prompt and generated tokens, and llama.cpp's own prompt/generation rates, with the
local judge's reply schema (winner only, or --reason N: plus a reason of at most N characters) and a slot count.
Needs equiv[local] and fixtures/demo/traffic.jsonl.
Run: python benchmarks/bench_local.py --model local/qwen2.5-coder-1.5b --parallel 2 --n 16 --reply json
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import copy
import json
import time
import urllib.request
from pathlib import Path

from equiv.judging.pairwise import LOCAL_JUDGE_PARAMS, degrade
from equiv.judging.prompt import render
from equiv.local.server import LocalServer, ServerOptions
from equiv.local.weights import BUNDLED, ensure_bundled

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="local/qwen2.5-coder-1.5b")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--reason", type=int, default=None, help="maxLength of the reason (default: as equiv sends it)")
    args = ap.parse_args()
    recs = [json.loads(line) for line in (ROOT / "fixtures/demo/traffic.jsonl").read_text().splitlines()]
    recs = recs[:: max(1, len(recs) // args.n)][: args.n]
    template = (ROOT / "judges/pairwise.md").read_text()
    params = copy.deepcopy(LOCAL_JUDGE_PARAMS)
    schema = params["response_format"]["json_schema"]["schema"]
    if args.reason is not None:
        schema["properties"]["reason"] = {"type": "string", "maxLength": args.reason}
        schema["required"] = ["winner", "reason"]
    gguf = ensure_bundled(BUNDLED[args.model.removeprefix("local/")])
    srv = LocalServer(args.model, gguf, ServerOptions(parallel=args.parallel, threads=args.threads))
    srv.start()

    def one(rec: dict) -> dict:
        msgs = render(template, rec["messages"], rec["response"], degrade(rec["response"]))
        body = {"model": "x", "messages": msgs, "temperature": 0, **params}
        req = urllib.request.Request(srv.api_base + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:  # noqa: S310 - loopback
            return json.load(r)

    t0 = time.perf_counter()
    try:
        with cf.ThreadPoolExecutor(args.parallel) as ex:
            out = list(ex.map(one, recs))
    finally:
        srv.stop()
    wall = time.perf_counter() - t0
    pt = sum(o["usage"]["prompt_tokens"] for o in out)
    ct = sum(o["usage"]["completion_tokens"] for o in out)
    new = sum(o.get("timings", {}).get("prompt_n", 0) for o in out)
    pp = [o["timings"]["prompt_per_second"] for o in out if "timings" in o]
    tg = [o["timings"]["predicted_per_second"] for o in out if "timings" in o]
    print(f"{args.model} parallel={args.parallel} threads={args.threads} reason<={args.reason}: {len(out)} calls "
          f"in {wall:.1f} s ({wall / len(out):.2f} s/call); prompt {pt} tok ({new} evaluated, rest cached), "
          f"generated {ct} tok; per request pp {sum(pp) / len(pp):.0f} tok/s, tg {sum(tg) / len(tg):.1f} tok/s")
    print("sample reply:", json.dumps(out[0]["choices"][0]["message"]["content"]))


if __name__ == "__main__":
    main()
