"""What equiv's harness costs on top of litellm: a full `compare` against a slow loopback provider.

The provider answers every call after a fixed latency (default 200 ms, a fast real API). A pair costs
one candidate call then two judge calls (both orders), and the judge check adds two calls per checked
pair. With `concurrency` calls in flight the ideal wall time is calls x latency / concurrency.

The bare loop sends the very requests equiv made (recorded from a warm-up run: same messages, params and
models, so the provider and litellm do the same work), all at once behind a semaphore of `concurrency`:
what a hand-written asyncio + litellm script would take. Measured twice, `--reps` times each (medians):
in one process after a warm-up (`compare()` against `replay_loop`), and as whole processes (`python -m
equiv compare ...` against `bench_litellm_bare.py --replay`, imports and the report included), the way a
user runs it. Issue 16's target is 1.05x.

Equiv's CLI imports litellm with the garbage collector paused and then freezes what the import left
(equiv/llm/client.py): a plain script pays about 0.7 s for the collector's passes during the import, and
more at exit. So the whole-process bare loop is also timed importing litellm that way (`--freeze`): the
ratio to that one is what equiv adds on top of litellm, import treatment aside.

    python benchmarks/bench_harness.py [--pairs 200] [--concurrency 32] [--latency 0.2] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).parent))

from bench_litellm_bare import _server_process, load_requests, replay_loop

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


def _recording(path: Path) -> Any:
    """Wrap litellm.acompletion so that every request equiv makes is written to ``path`` (its keyword
    arguments without the key), for the bare loop to send the very same requests."""
    import litellm

    original = litellm.acompletion
    fh = path.open("w", encoding="utf-8")

    async def recorded(**kwargs: Any) -> Any:
        fh.write(json.dumps({k: v for k, v in kwargs.items() if k != "api_key"}) + "\n")
        return await original(**kwargs)

    litellm.acompletion = recorded

    def stop() -> None:
        litellm.acompletion = original
        fh.close()

    return stop


def _timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--reps", type=int, default=3, help="measurements of each kind (medians are shown)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp, _server_process(args.latency) as url:
        d = Path(tmp)
        traffic(d / "traffic.jsonl", args.pairs)
        config(d / "equiv.toml", url, args.pairs, args.concurrency)
        settings = load_settings(d / "equiv.toml", {})
        calls = {"n": 0}

        def on_event(kind: str, data: dict) -> None:
            calls["n"] += kind == "call"

        stop = _recording(d / "requests.jsonl")  # the warm-up run's requests: what the bare loops send
        try:
            compare(d / "traffic.jsonl", settings, out=d / "warm", fresh=True)  # imports, litellm clients
        finally:
            stop()
        requests = load_requests(str(d / "requests.jsonl"))
        walls, cpus, bares, bare_cpus, procs, bare_procs, frozen_procs = [], [], [], [], [], [], []
        res = None
        for rep in range(args.reps):
            calls["n"] = 0
            cpu0, t0 = time.process_time(), time.perf_counter()
            res = compare(d / "traffic.jsonl", settings, out=d / f"r{rep}", fresh=True, on_event=on_event)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - cpu0)
            bare = replay_loop(requests, args.concurrency)
            bares.append(bare["wall_s"])
            bare_cpus.append(bare["cpu_per_call_s"] * len(requests))
        for rep in range(args.reps):  # whole processes: the CLI, imports and report included, as a user runs it
            cli = [sys.executable, "-m", "equiv", "compare", str(d / "traffic.jsonl")]
            cli += ["--config", str(d / "equiv.toml"), "--out", str(d / f"cli{rep}"), "--fresh", "--quiet"]
            procs.append(_timed(cli)[0])
            bare_cmd = [sys.executable, str(Path(__file__).parent / "bench_litellm_bare.py")]
            bare_cmd += ["--replay", str(d / "requests.jsonl"), "--concurrency", str(args.concurrency)]
            bare_procs.append(_timed(bare_cmd)[0])
            frozen_procs.append(_timed([*bare_cmd, "--freeze"])[0])
        n = calls["n"]

    assert res is not None
    med = statistics.median
    ideal = n * args.latency / args.concurrency
    print(f"equiv compare: {args.pairs} pairs, {n} calls, concurrency {args.concurrency}, latency {args.latency}s")
    print(f"  the bare loop sends the {len(requests)} requests equiv made (recorded), all independent")
    print(f"  verdict:         {res.verdict.verdict}")
    print(f"  medians of {args.reps}:")
    print("  in-process, warm (compare() against litellm.acompletion in a semaphore loop):")
    print(f"    equiv:         {med(walls):.2f} s  (ideal {ideal:.2f} s, {med(walls) / ideal:.2f}x ideal)")
    print(f"    bare litellm:  {med(bares):.2f} s  ({med(bares) / ideal:.2f}x ideal)")
    print(
        f"    equiv / bare:  {med(walls) / med(bares):.2f}x   (each run: "
        + ", ".join(f"{w / b:.2f}" for w, b in zip(walls, bares, strict=True))
        + ")"
    )
    print(
        f"    CPU per call:  {med(cpus) / n * 1000:.2f} ms  (bare litellm {med(bare_cpus) / n * 1000:.2f} ms; "
        "equiv's includes sampling, judging, the cache, fsync, the analysis and the report)"
    )
    print("  whole process (`python -m equiv compare ...` against `bench_litellm_bare.py --replay`):")
    print(f"    equiv:         {med(procs):.2f} s")
    print(f"    bare litellm:  {med(bare_procs):.2f} s")
    print(
        f"    equiv / bare:  {med(procs) / med(bare_procs):.2f}x   (target <= 1.05x; each run: "
        + ", ".join(f"{w / b:.2f}" for w, b in zip(procs, bare_procs, strict=True))
        + ")"
    )
    print(f"    bare litellm imported as equiv imports it (--freeze): {med(frozen_procs):.2f} s")
    print(
        f"    equiv / that:  {med(procs) / med(frozen_procs):.2f}x   (what equiv adds, the import's collector "
        "passes left out of both; each run: "
        + ", ".join(f"{w / b:.2f}" for w, b in zip(procs, frozen_procs, strict=True))
        + ")"
    )


if __name__ == "__main__":
    main()
