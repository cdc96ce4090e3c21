"""Throughput and peak memory of reading + sampling a large generated traffic file.

    python benchmarks/bench_sampling.py                 # 1,000,000 lines
    python benchmarks/bench_sampling.py --lines 200000 --per-type 200 --types 8

Each measurement runs in a fresh child process, so its peak RSS (ru_maxrss) is its own. The same
sampling is also run on a tenth of the file: if memory is bounded, both peaks are about equal.
Prints figures; asserts nothing (benchmarks are not timed tests).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def generate(path: Path, lines: int, types: int, seed: int = 0) -> None:
    """Native records of ~300 bytes: several types, a system prompt on some, 10% without a response."""
    rng = random.Random(seed)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    words = ["invoice", "refund", "parcel", "login", "password", "delay", "upgrade", "cancel", "thanks"]
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            text = " ".join(rng.choices(words, k=12))
            rec: dict[str, object] = {
                "prompt_type": f"type-{rng.randrange(types)}",
                "timestamp": (t0 + timedelta(seconds=i * 2.6)).isoformat(),
                "usage": {"prompt_tokens": 40 + i % 50, "completion_tokens": 10 + i % 30},
                "metadata": {"tenant": f"t{i % 17}"},
            }
            if i % 3:
                rec["messages"] = [
                    {"role": "system", "content": "You triage."},
                    {"role": "user", "content": text},
                ]
            else:
                rec["prompt"] = text
                rec["id"] = f"r{i}"
            if i % 10:
                rec["response"] = f"answer {i}"
            f.write(json.dumps(rec) + "\n")


def measure(phase: str, path: str, per_type: int) -> dict[str, float]:
    """One phase in this (child) process; returns seconds, records and peak RSS."""
    from equiv.sampling import stratified_sample
    from equiv.traffic import ReadStats, file_digest, read_traffic

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    n = 0.0
    if phase == "digest":
        file_digest(path)
    elif phase == "read":
        for _ in read_traffic(path):
            n += 1
    elif phase == "sample":
        stats = ReadStats()
        sample = stratified_sample(read_traffic(path, stats=stats), per_type=per_type, seed=0, require_response=True)
        n = stats.read
        assert sample.n_records <= per_type * len(sample.volume)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "records": n, "peak_rss_mb": peak, "import_rss_mb": base_rss}


def run_child(phase: str, path: Path, per_type: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", phase, str(path), "--per-type", str(per_type)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--types", type=int, default=8)
    ap.add_argument("--per-type", type=int, default=200)
    ap.add_argument("--child", nargs=2, metavar=("PHASE", "PATH"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], args.per_type)))
        return

    with tempfile.TemporaryDirectory() as d:
        big, small = Path(d) / "big.jsonl", Path(d) / "small.jsonl"
        t = time.perf_counter()
        generate(big, args.lines, args.types)
        generate(small, args.lines // 10, args.types)
        size_mb = big.stat().st_size / 2**20
        print(f"generated {args.lines:,} lines ({size_mb:,.0f} MiB) in {time.perf_counter() - t:.1f}s")
        print(f"python {sys.version.split()[0]}, per_type={args.per_type}, types={args.types}")
        dig = run_child("digest", big, args.per_type)
        print(
            f"file_digest             : {size_mb / dig['seconds']:8,.0f} MiB/s"
            f"     peak RSS {dig['peak_rss_mb']:6.0f} MiB"
        )
        for phase, label in (("read", "read_traffic            "), ("sample", "read + stratified_sample")):
            r = run_child(phase, big, args.per_type)
            print(
                f"{label}: {r['records'] / r['seconds']:8,.0f} records/s ({r['seconds']:.1f}s)"
                f"   peak RSS {r['peak_rss_mb']:6.0f} MiB (after imports {r['import_rss_mb']:.0f} MiB)"
            )
        s = run_child("sample", small, args.per_type)
        print(
            f"same sampling on {args.lines // 10:,} lines: peak RSS {s['peak_rss_mb']:.0f} MiB "
            "(bounded memory: about the same as on the full file)"
        )


if __name__ == "__main__":
    main()
