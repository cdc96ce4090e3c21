"""--sequential against today's fixed-n design, by simulation (issue 16 point 1). Prints figures; asserts nothing.

    python benchmarks/bench_sequential.py [--reps 2000] [--per-type 200]

Pair scores are drawn in {-1, -0.5, 0, 0.5, 1} (30% ties or split orders) with a true mean difference
`truth`; margin 0.10, alpha 0.05. For each truth: the sequential test's GO and NO_GO rates, the median
and 90th percentile of the prompts it used (each prompt is one pair and two judge calls), against the
fixed-n design at `per_type` prompts, decided with the one-sided normal interval on the same draws
(the bootstrap's large-sample equivalent). The interesting rows: at the margin (-0.10) the false-GO
rate must be <= alpha for both; far from it (+0.15, -0.40) the sequential design stops early; near it
(0.00, -0.05) it can need all prompts and decides less often than the fixed design: the price of being
valid at every look.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equiv.stats.sequential import run

MARGIN, ALPHA = 0.10, 0.05


def draw(rng: random.Random, mean: float, n: int, tie: float = 0.3) -> list[float]:
    p_win = (1 - tie + mean) / 2
    return [
        1.0 if (r := rng.random()) < p_win else -1.0 if r < 1 - tie else rng.choice((0.0, 0.5, -0.5)) for _ in range(n)
    ]


def fixed_decision(scores: list[float]) -> str | None:
    n = len(scores)
    mean = statistics.fmean(scores)
    se = statistics.pstdev(scores) / math.sqrt(n)
    z = 1.6448536269514722
    if mean - z * se > -MARGIN:
        return "GO"
    if mean + z * se < -MARGIN:
        return "NO_GO"
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--per-type", type=int, default=200)
    a = ap.parse_args()
    n = a.per_type
    print(f"margin {MARGIN}, alpha {ALPHA}, fixed n = {n} prompts per type, {a.reps} simulated types per row")
    head = (
        f"{'truth':>6} | {'seq GO':>7} {'seq NO_GO':>9} {'median used':>11} {'p90 used':>8} {'judge calls':>11}"
        f" | {'fixed GO':>8} {'fixed NO_GO':>11} {'judge calls':>11}"
    )
    print(head)
    print("-" * len(head))
    for truth in (0.15, 0.05, 0.0, -0.05, -0.10, -0.20, -0.40):
        rng = random.Random(1000 + int(truth * 100))
        seq_go = seq_no = fix_go = fix_no = 0
        used = []
        for _ in range(a.reps):
            scores = draw(rng, truth, n)
            r = run(scores, MARGIN, ALPHA)
            seq_go += r.decided_by == "GO"
            seq_no += r.decided_by == "NO_GO"
            used.append(r.stopped_at)
            f = fixed_decision(scores)
            fix_go += f == "GO"
            fix_no += f == "NO_GO"
        used.sort()
        med, p90 = statistics.median(used), used[int(0.9 * len(used))]
        print(
            f"{truth:>+6.2f} | {seq_go / a.reps:>7.3f} {seq_no / a.reps:>9.3f} {med:>11.0f} {p90:>8d} {2 * med:>11.0f}"
            f" | {fix_go / a.reps:>8.3f} {fix_no / a.reps:>11.3f} {2 * n:>11d}"
        )
    print("truth -0.10 is the margin: its 'GO' columns are false-GO rates (target <= alpha).")


if __name__ == "__main__":
    main()
