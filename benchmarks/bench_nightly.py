"""Nightly false alarms and power, measured through the real decision path (tests/statistics/test_nightly_alarms.py).

    python benchmarks/bench_nightly.py [--trials 600] [--nights 5] [--bootstrap 1000] [--seed 1]

Prints, for a route qualified at ~80% power (only GO runs qualify) and nights from the same truth:
the share of nights with a regression (false alarms), of GO -> INCONCLUSIVE warnings, what the
undoubled two-run test would have alarmed on, and what the old rule (GO -> not GO) did; then the power
against drops of the truth by 0.15 and 0.3. Rates with a 95% Wilson interval (nights sharing a
qualifying run are correlated: read the interval as a little optimistic).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equiv.config import Settings
from tests.statistics.test_nightly_alarms import ALPHA, MARGIN, TRUE_DIFF, dropped_nights, unchanged_nights


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def line(label: str, flags: list[bool]) -> str:
    k, n = sum(flags), len(flags)
    lo, hi = wilson(k, n)
    return f"  {label:<58} {k / n:6.1%}  [{lo:5.1%}, {hi:5.1%}]  ({k}/{n})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=600, help="qualifying attempts (about 80% are GO)")
    ap.add_argument("--nights", type=int, default=5, help="nights per qualified route")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    settings = Settings(bootstrap=args.bootstrap, alpha=ALPHA, margin=MARGIN, seed=0)

    t0 = time.perf_counter()
    nights, power_go = unchanged_nights(args.trials, args.nights, args.seed, settings)
    print(
        f"unchanged route (true diff {TRUE_DIFF:+.2f}, margin {MARGIN}, alpha {ALPHA}, 200 pairs, "
        f"B={args.bootstrap}): qualifying GO rate {power_go:.1%}, {len(nights)} nights"
    )
    print(line("false alarms (a regression: exit 1)", [x.regression for x in nights]))
    print(line("  of which NO_GO", [x.verdict == "NO_GO" for x in nights]))
    print(line("  of which a significant two-run drop", ["quality_drop" in x.kinds for x in nights]))
    print(line("GO -> INCONCLUSIVE (a warning)", [x.verdict == "INCONCLUSIVE" for x in nights]))
    print(
        line(
            "the undoubled two-run test at alpha would alarm",
            [x.p_raw is not None and x.p_raw <= ALPHA for x in nights],
        )
    )
    print(line("the old rule (GO -> not GO is a regression) alarmed", [x.verdict != "GO" for x in nights]))
    for drop in (0.15, 0.3):
        worse = dropped_nights(max(50, args.trials // 3), drop, args.seed + 1, settings)
        print(f"truth down by {drop}: {len(worse)} nights")
        print(line("caught (a regression)", [x.regression for x in worse]))
        print(line("  by the two-run drop test", ["quality_drop" in x.kinds for x in worse]))
        print(line("  by NO_GO", [x.verdict == "NO_GO" for x in worse]))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
