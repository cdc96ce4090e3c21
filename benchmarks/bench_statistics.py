"""The simulation suite of tests/statistics at full length: measured error rates of equiv's GO.

    python benchmarks/bench_statistics.py [--reps 2000] [--bootstrap 2000] [--workers 2]

Every scenario runs the real analyze() on independent simulated studies with a known truth
(tests/statistics/sim.py) and prints the measured rate with a 95% binomial interval (Wilson) next
to its nominal value. Defaults: margin 0.10, alpha 0.05, 200 pairs per study, judge with position
bias 0.05-0.10 and 15% ties.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from equiv.analyze import analyze, pair_score
from equiv.config import Settings
from equiv.schema import Pair, TypeVerdict
from equiv.stats.decide import samples_needed
from tests.statistics.sim import SimJudge, World, mirrored, simulate

MARGIN, ALPHA = 0.10, 0.05
CHUNK = 50


def _run_chunk(
    worlds: list[World], judge: SimJudge, n: int, reps: int, seed: int, settings: dict[str, Any], strip: bool
) -> list[list[dict[str, Any]]]:
    """reps studies; each analyzes all the worlds (prompt-types) together. strip: drop cluster ids."""
    s = Settings.model_validate(settings)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        pairs: list[Pair] = []
        checks = []
        for w in worlds:
            ps, cs = simulate(w, judge, n, rng)
            if strip:
                ps = [p.model_copy(update={"prompt_id": None}) for p in ps]
            pairs += ps
            checks += cs
        v = analyze(pairs, checks, s, run_id="sim")
        out.append([t.model_dump() for t in v.prompt_types])
    return out


class Runner:
    def __init__(self, reps: int, bootstrap: int, workers: int) -> None:
        self.reps, self.workers = reps, workers
        self.settings = {"bootstrap": bootstrap, "alpha": ALPHA, "margin": MARGIN, "seed": 0}
        self.pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
        self.seed = 0

    def studies(
        self,
        worlds: list[World],
        judge: SimJudge,
        n: int = 200,
        reps: int | None = None,
        strip: bool = False,
        **settings: Any,
    ) -> list[list[TypeVerdict]]:
        reps = reps or self.reps
        cfg = {**self.settings, **settings}
        jobs = []
        for start in range(0, reps, CHUNK):
            self.seed += 1
            args = (worlds, judge, n, min(CHUNK, reps - start), 1000 + self.seed, cfg, strip)
            jobs.append(self.pool.submit(_run_chunk, *args) if self.pool else args)
        chunks = [j.result() if self.pool else _run_chunk(*j) for j in jobs]  # type: ignore[union-attr,misc]
        return [[TypeVerdict.model_validate(t) for t in study] for chunk in chunks for study in chunk]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def report(label: str, flags: list[bool], nominal: str) -> None:
    k, n = sum(flags), len(flags)
    lo, hi = wilson(k, n)
    print(f"  {label:<62} {k / n:6.3f}  [{lo:.3f}, {hi:.3f}]  n={n:<5} nominal {nominal}")


def first(studies: list[list[TypeVerdict]]) -> list[TypeVerdict]:
    return [s[0] for s in studies]


def covers(pick: Callable[[TypeVerdict], Any], truth: float) -> Callable[[TypeVerdict], bool]:
    return lambda t: pick(t) is not None and pick(t).ci_low <= truth <= pick(t).ci_high


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    run = Runner(args.reps, args.bootstrap, args.workers)
    t0 = time.perf_counter()
    print(f"margin {MARGIN}, alpha {ALPHA}, {args.bootstrap} resamples per study, 200 pairs per study unless said")
    go = lambda t: t.verdict == "GO"  # noqa: E731
    raw_go = lambda t: t.quality_diff is not None and t.quality_diff.ci_low > -MARGIN  # noqa: E731

    print("False GO (truth in H0: candidate worse by at least the margin at equal length)")
    res = first(run.studies([World(true_diff=-MARGIN)], SimJudge(position_bias=0.1)))
    report("truth = -margin, position bias 0.10, 15% ties", [go(t) for t in res], "<= 0.05")
    res = first(run.studies([World(true_diff=-MARGIN)], SimJudge(position_bias=0.1), ci="bca"))
    report("  same, BCa intervals", [go(t) for t in res], "<= 0.05")
    res = first(run.studies([World(true_diff=-0.12)], SimJudge(position_bias=0.1)))
    report("truth = -0.12 (just below -margin)", [go(t) for t in res], "< 0.05")
    res = first(run.studies([World(true_diff=-MARGIN, length_shift=1.0)], SimJudge(verbosity=0.3)))
    report("truth = -margin, candidate ~1 sd longer, judge verbosity 0.3", [go(t) for t in res], "<= 0.05")
    report("  same, if the raw interval alone decided", [raw_go(t) for t in res], "(no guarantee)")
    res = first(run.studies([World(true_diff=-MARGIN, samples_per_prompt=4, heterogeneity=0.5)], SimJudge()))
    report("truth = -margin, 4 samples per prompt (50 clusters)", [go(t) for t in res], "<= 0.05")

    print("Coverage of the reported (1 - 2 alpha) = 90% interval")
    res = first(run.studies([World(true_diff=0.0)], SimJudge()))
    report("raw interval, truth 0", [covers(lambda t: t.quality_diff, 0.0)(t) for t in res], "0.90")
    res = first(run.studies([World(true_diff=-0.05, length_shift=0.5)], SimJudge(verbosity=0.3)))
    report(
        "LC interval, truth -0.05, verbosity 0.3",
        [covers(lambda t: t.lc_quality_diff, -0.05)(t) for t in res],
        "0.90",
    )
    report(
        "  raw interval vs the same truth",
        [covers(lambda t: t.quality_diff, -0.05)(t) for t in res],
        "(biased)",
    )
    clustered = [World(true_diff=0.0, samples_per_prompt=4, heterogeneity=0.5)]
    res = first(run.studies(clustered, SimJudge(tie_rate=0.1)))
    report(
        "raw, 4 samples/prompt, cluster bootstrap",
        [covers(lambda t: t.quality_diff, 0.0)(t) for t in res],
        "0.90",
    )
    res = first(run.studies(clustered, SimJudge(tie_rate=0.1), strip=True))
    report(
        "  same data, clusters ignored",
        [covers(lambda t: t.quality_diff, 0.0)(t) for t in res],
        "(too narrow)",
    )

    print("Power (truly equivalent candidate, truth 0)")
    world, judge = World(true_diff=0.0), SimJudge()
    s = Settings.model_validate(run.settings)
    big, _ = simulate(world, judge, 20000, np.random.default_rng(5))
    true_sd = float(np.std([pair_score(p) or 0.0 for p in big]))
    n_star = samples_needed(0.0, true_sd / math.sqrt(20000), 20000, MARGIN, ALPHA)
    assert n_star is not None
    pilots = []
    prng = np.random.default_rng(6)
    for _ in range(20):
        pp, pc = simulate(world, judge, 40, prng)
        tv = analyze(mirrored(pp), pc, s, run_id="p").prompt_types[0]
        if tv.samples_needed is not None:
            pilots.append(tv.samples_needed)
    print(
        f"  SPEC's samples_needed at the true sd ({true_sd:.3f}): {n_star}; analyze() on 20 mirrored 80-pair "
        f"pilots (estimate = truth): median {int(np.median(pilots))}, range {min(pilots)}-{max(pilots)}"
    )
    res = first(run.studies([world], judge, n=n_star))
    report(f"GO rate at samples_needed = {n_star}", [go(t) for t in res], "0.80")
    # realised: a noisy pilot of 60 pairs, then a fresh study of the size it asks for
    rng = np.random.default_rng(99)
    realised: list[bool] = []
    sizes = []
    while len(realised) < min(300, args.reps):
        ps, cs = simulate(world, judge, 60, rng)
        tv = analyze(ps, cs, s, run_id="p").prompt_types[0]
        if tv.verdict != "INCONCLUSIVE" or tv.samples_needed is None or tv.samples_needed > 5000:
            continue
        sizes.append(tv.samples_needed)
        ps, cs = simulate(world, judge, tv.samples_needed, rng)
        realised.append(analyze(ps, cs, s, run_id="m").prompt_types[0].verdict == "GO")
    report(
        f"following a 60-pair pilot's advice (median N {int(np.median(sizes))})",
        realised,
        "(pilot noise: not 0.80)",
    )

    print("Multiplicity: 3 prompt-types all at truth = -margin; family-wise false GO (any type GO)")
    three = [World(true_diff=-MARGIN).with_type(f"t{i}") for i in range(3)]
    for corr in ("none", "bonferroni", "holm"):
        fam = run.studies(three, SimJudge(), correction=corr)
        report(
            f"correction = {corr}",
            [any(go(t) for t in st) for st in fam],
            "<= 0.05" if corr != "none" else "",
        )
    mixed = [
        replace(World(true_diff=0.1), prompt_type="good"),
        World(true_diff=-MARGIN).with_type("bad1"),
        World(true_diff=-MARGIN).with_type("bad2"),
    ]
    fam = run.studies(mixed, SimJudge(), correction="holm")
    report(
        "holm, one clearly good type + two at -margin: a bad one GO",
        [any(go(t) for t in st if t.prompt_type != "good") for st in fam],
        "<= 0.05",
    )
    report(
        "  same: the good type GO (power kept)",
        [any(go(t) for t in st if t.prompt_type == "good") for st in fam],
        "high",
    )

    print("Judges that ignore the answers (candidate truly worse by 0.3)")
    for always in ("A", "B", "tie"):
        res = first(run.studies([World(true_diff=-0.3)], SimJudge(always=always), reps=200))
        report(f"always '{always}': GO rate", [go(t) for t in res], "0")
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    if run.pool:
        run.pool.shutdown()


if __name__ == "__main__":
    main()
