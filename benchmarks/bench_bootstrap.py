"""Speed and memory of equiv's bootstrap next to scipy.stats.bootstrap, on the same data.

    python benchmarks/bench_bootstrap.py [--types 10] [--pairs 2000] [--resamples 10000]

Data: simulated pairs (tests/statistics/sim.py), one prompt-type per true difference. Prints:
  1. analyze() end to end (percentile, then BCa): wall time and peak memory (tracemalloc peak of
     what analyze allocates, and the process's max RSS);
  2. scipy.stats.bootstrap(paired=True, method="BCa" and "percentile") on each type's (s, x) for the
     raw mean and the length-controlled intercept at the same number of resamples: wall time, and the
     gaps between its interval ends and equiv's (BCa vs BCa, percentile vs percentile), next to the
     Monte Carlo spread of equiv's own ends across 5 seeds. Two independent bootstraps differ by about
     sqrt(2) x that spread, so gaps of 1-3 such units are Monte Carlo error.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equiv.analyze import analyze, pair_score
from equiv.config import Settings
from equiv.schema import Pair, Verdict
from equiv.stats.length import length_covariate
from tests.statistics.sim import SimJudge, World, simulate


def make_data(n_types: int, n_pairs: int) -> list[Pair]:
    rng = np.random.default_rng(2024)
    pairs: list[Pair] = []
    for i in range(n_types):
        world = World(true_diff=-0.15 + 0.03 * i, length_shift=0.3, prompt_type=f"type-{i:02d}")
        ps, _ = simulate(world, SimJudge(verbosity=0.2), n_pairs, rng)
        pairs.extend(ps)
    return pairs


def timed_analyze(pairs: list[Pair], settings: Settings) -> tuple[Verdict, float, float, float]:
    """Wall and CPU time of an untraced run (best of 3), then the tracemalloc peak of a traced one.

    CPU time is reported beside wall time because the benchmark often runs on a shared machine,
    where wall time measures the neighbours as much as the code.
    """
    walls, cpus = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        verdict = analyze(pairs, None, settings, run_id="bench")
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    tracemalloc.start()
    analyze(pairs, None, settings, run_id="bench")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return verdict, min(walls), min(cpus), peak / 2**20


def lc_intercept(s: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """OLS intercept of s ~ b0 + b1*x along axis (vectorized, for scipy)."""
    xm, sm = x.mean(axis=axis, keepdims=True), s.mean(axis=axis, keepdims=True)
    var = ((x - xm) ** 2).mean(axis=axis, keepdims=True)
    cov = ((x - xm) * (s - sm)).mean(axis=axis, keepdims=True)
    b1 = np.where(var > 1e-12, cov / np.where(var > 1e-12, var, 1.0), 0.0)
    return np.squeeze(sm - b1 * xm, axis=axis)


def mean_stat(s: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(s.mean(axis=axis))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--alpha", type=float, default=0.05)
    args = ap.parse_args()

    pairs = make_data(args.types, args.pairs)
    print(f"data: {args.types} prompt-types x {args.pairs} pairs, {args.resamples} resamples, raw + LC + cost")
    base = Settings(bootstrap=args.resamples, alpha=args.alpha, seed=0)
    results: dict[str, Verdict] = {}
    ours_time: dict[str, float] = {}
    ours_cpu: dict[str, float] = {}
    for ci in ("percentile", "bca"):
        s = base.model_copy(update={"ci": ci})
        verdict, wall, cpu, peak = timed_analyze(pairs, s)
        results[ci] = verdict
        ours_time[ci], ours_cpu[ci] = wall, cpu
        print(f"equiv analyze() ci={ci:<10} wall {wall:6.2f} s   cpu {cpu:6.2f} s   tracemalloc peak {peak:7.1f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"process max RSS so far (data + interpreter + analysis): {rss:.0f} MiB")

    # Monte Carlo spread of equiv's own interval ends (5 seeds per method), for scale: BCa's ends sit at
    # adjusted, often more extreme, quantile levels, so their spread is measured separately.
    mc_sd: dict[str, float] = {}
    for ci in ("percentile", "bca"):
        ends = []
        for seed in range(5):
            v = analyze(pairs, None, base.model_copy(update={"seed": seed + 100, "ci": ci}), run_id="mc")
            ends.append(
                [
                    (i.ci_low, i.ci_high)
                    for t in v.prompt_types
                    for i in (t.quality_diff, t.lc_quality_diff)
                    if i is not None
                ]
            )
        mc_sd[ci] = float(np.std(np.array(ends), axis=0, ddof=1).mean())
        print(
            f"equiv Monte Carlo sd of an interval end, ci={ci} (5 seeds, mean over types, raw/LC, ends): "
            f"{mc_sd[ci]:.4f}"
        )

    by_type: dict[str, list[Pair]] = {}
    for p in pairs:
        by_type.setdefault(p.prompt_type, []).append(p)
    level = 1 - 2 * args.alpha
    gaps: dict[str, list[float]] = {"bca": [], "percentile": []}
    scipy_time = {"bca": 0.0, "percentile": 0.0}
    scipy_cpu = {"bca": 0.0, "percentile": 0.0}
    for i, (name, ps) in enumerate(sorted(by_type.items())):
        s_arr = np.array([pair_score(p) for p in ps], dtype=np.float64)
        x_arr = length_covariate(
            [len(p.baseline.output or "") for p in ps],  # type: ignore[union-attr]
            [len(p.candidate.output or "") for p in ps],  # type: ignore[union-attr]
        )
        for method, key in (("BCa", "bca"), ("percentile", "percentile")):
            ours = {t.prompt_type: t for t in results[key].prompt_types}[name]
            for stat, mine in ((mean_stat, ours.quality_diff), (lc_intercept, ours.lc_quality_diff)):
                t0, c0 = time.perf_counter(), time.process_time()
                res = stats.bootstrap(
                    (s_arr, x_arr),
                    stat,
                    paired=True,
                    vectorized=True,
                    n_resamples=args.resamples,
                    confidence_level=level,
                    method=method,
                    random_state=1000 + i,
                )
                scipy_time[key] += time.perf_counter() - t0
                scipy_cpu[key] += time.process_time() - c0
                ci = res.confidence_interval
                assert mine is not None
                gaps[key].append(max(abs(ci.low - mine.ci_low), abs(ci.high - mine.ci_high)))
    print("scipy.stats.bootstrap(paired=True), raw + LC for every type, same resamples count:")
    for key in ("bca", "percentile"):
        print(
            f"  method={key:<10} wall {scipy_time[key]:6.2f} s   cpu {scipy_cpu[key]:6.2f} s   "
            "largest |scipy end - equiv end| "
            f"{max(gaps[key]):.4f} (median {float(np.median(gaps[key])):.4f}; in units of sqrt(2) x MC sd: "
            f"largest {max(gaps[key]) / (np.sqrt(2) * mc_sd[key]):.1f}, "
            f"median {float(np.median(gaps[key])) / (np.sqrt(2) * mc_sd[key]):.1f})"
        )
        print(
            f"  speed-up at equal resamples: scipy raw+LC / equiv raw+LC+cost = "
            f"{scipy_time[key] / ours_time[key]:.1f}x wall, {scipy_cpu[key] / ours_cpu[key]:.1f}x cpu"
        )


if __name__ == "__main__":
    main()
