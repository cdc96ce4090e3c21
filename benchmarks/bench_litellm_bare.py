"""Baseline cost of litellm itself: N calls through a bare acompletion loop against the loopback server.

Why: equiv's runner adds retries, a cache and a spend cap on top of litellm. To know what that layer
costs, we first need litellm's own floor: how close a semaphore-bounded loop of bare calls gets to the
ideal wall time (calls x latency / concurrency), and how much client CPU each call burns.

By default the server runs in a child process (``python -m equiv.testing.loopback``) so that
``time.process_time`` counts the client only; ``--in-process`` runs it in this process instead.

    python benchmarks/bench_litellm_bare.py [--n 400] [--concurrency 32] [--latency 0.2]
    python benchmarks/bench_litellm_bare.py --replay requests.jsonl [--concurrency 32]   # recorded calls
    ... --freeze: import litellm the way equiv's CLI does (the collector paused, then gc.freeze())

Other benchmarks import ``bare_loop`` to compare against it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


FREEZE = False  # --freeze: import litellm the way equiv's CLI does


def _litellm() -> Any:
    if FREEZE:  # the collector paused while importing, then what the import left frozen (equiv/llm/client.py)
        gc.disable()
        import litellm

        gc.freeze()
        gc.enable()
    import litellm

    litellm.suppress_debug_info = True
    litellm.disable_hf_tokenizer_download = True
    return litellm


def bare_loop(base_url: str, n: int, concurrency: int, model: str = "skill-80") -> dict[str, float]:
    """Run ``n`` distinct calls with at most ``concurrency`` in flight; return wall_s and cpu_per_call_s.

    The messages differ per call so no cache anywhere can short-circuit them. One warm-up call runs
    first (outside the measurement) so litellm's lazy imports and client construction are not counted.
    """
    litellm = _litellm()

    async def one(i: int, sem: asyncio.Semaphore) -> None:
        async with sem:
            r = await litellm.acompletion(
                model=f"openai/{model}",
                api_base=base_url,
                api_key="sk-bench",
                messages=[{"role": "user", "content": f"Question {i}: describe rivers and lakes."}],
                num_retries=0,
                timeout=60,
            )
            assert r.choices[0].message.content

    async def run() -> tuple[float, float]:
        sem = asyncio.Semaphore(concurrency)
        await one(-1, sem)  # warm-up
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(i, sem) for i in range(n)))
        return time.perf_counter() - t0, time.process_time() - cpu0

    wall, cpu = asyncio.run(run())
    return {"wall_s": wall, "cpu_per_call_s": cpu / n}


def replay_loop(requests: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """Send exactly ``requests`` (``litellm.acompletion`` keyword arguments, as another program made them),
    all independent, with at most ``concurrency`` in flight; return wall_s and cpu_per_call_s.

    One warm-up call (the first request again, outside the measurement) as in ``bare_loop``.
    """
    litellm = _litellm()

    async def one(kwargs: dict[str, Any], sem: asyncio.Semaphore) -> None:
        async with sem:
            r = await litellm.acompletion(**kwargs)
            assert r.choices[0].message is not None

    async def run() -> tuple[float, float]:
        sem = asyncio.Semaphore(concurrency)
        await one(requests[0], sem)  # warm-up
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(kw, sem) for kw in requests))
        return time.perf_counter() - t0, time.process_time() - cpu0

    wall, cpu = asyncio.run(run())
    return {"wall_s": wall, "cpu_per_call_s": cpu / len(requests)}


def load_requests(path: str) -> list[dict[str, Any]]:
    """Requests recorded by bench_harness.py (JSON lines of acompletion keyword arguments, without the key)."""
    with open(path, encoding="utf-8") as f:
        return [{**json.loads(line), "api_key": "sk-bench"} for line in f if line.strip()]


@contextmanager
def _server_process(latency: float) -> Iterator[str]:
    """The loopback server in a child process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "equiv.testing.loopback", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--in-process", action="store_true", help="run the server in this process")
    p.add_argument(
        "--replay",
        metavar="FILE",
        help="send these recorded requests (JSON lines) to --api-base and exit: the whole-process bare loop",
    )
    p.add_argument("--api-base", help="with --replay: the server to send them to (default: as recorded)")
    p.add_argument(
        "--freeze", action="store_true", help="import litellm as equiv's CLI does (collector paused, then frozen)"
    )
    args = p.parse_args()
    global FREEZE
    FREEZE = args.freeze

    if args.replay:
        reqs = load_requests(args.replay)
        if args.api_base:
            reqs = [{**r, "api_base": args.api_base} for r in reqs]
        res = replay_loop(reqs, args.concurrency)
        print(json.dumps(res))
        return

    if args.in_process:
        from equiv.testing import LoopbackServer

        with LoopbackServer(latency_s=args.latency) as srv:
            res = bare_loop(srv.base_url, args.n, args.concurrency)
    else:
        with _server_process(args.latency) as url:
            res = bare_loop(url, args.n, args.concurrency)

    ideal = args.n * args.latency / args.concurrency
    print(f"bare litellm.acompletion: n={args.n} concurrency={args.concurrency} latency={args.latency}s")
    print(f"  server:         {'in-process' if args.in_process else 'child process'}")
    ratio = res["wall_s"] / ideal
    print(f"  wall:           {res['wall_s']:.2f} s   (ideal {ideal:.2f} s, ratio {ratio:.2f}x)")
    print(f"  CPU per call:   {res['cpu_per_call_s'] * 1000:.2f} ms (client process)")


if __name__ == "__main__":
    main()
