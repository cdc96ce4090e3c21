"""Nightly alarms mean something (issue 12, point 9): simulated nights through the real decision path.

A route is qualified by a run whose truth sits where a fixed-n design (200 pairs, margin 0.10, alpha
0.05) has about 80% power to GO; only GO runs qualify (that selection is part of the test: a qualified
route's estimate is biased upwards). Then nights are simulated from the same truth (an unchanged route)
or from a worse one. Every night goes through what `equiv nightly` runs: `analyze` -> `history_entry`
-> `drop_tests` (both runs' `quality_draws`) -> `assess` (NO_GO, significant drop, cost rise are
regressions; GO -> INCONCLUSIVE is a warning).

Seeded, 1,000 bootstrap resamples per run: deterministic, about 35 s of CPU.
benchmarks/bench_nightly.py runs it longer and prints the figures (2,425 nights: false alarms 3.6%
[2.9%, 4.4%], GO -> INCONCLUSIVE 18.6%; a drop of the truth by 0.3 caught on 100% of 161 nights, by 0.15
on 70%; the same two-run test without the selection adjustment would alarm on 6.9% [5.9%, 8.0%]).

Slack. The false-alarm rate is compared with 5% plus 2 binomial standard errors over the nights
simulated here (about 1,075 nights: up to 6.3%; measured here 2.2%). That catches the old rule
(GO -> not GO is a regression: 17% of these nights) and any gross breakage; it is too wide to tell the
undoubled test (7% in the long run) from 5% on this many nights, which the benchmark does. Nights that
share a qualifying run are correlated, so the real uncertainty is somewhat wider than the binomial one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from equiv.analyze import analyze
from equiv.config import Settings
from equiv.history import assess, drop_tests, history_entry, reference_of
from equiv.schema import Pair

from .sim import SimJudge, World, binomial_upper, simulate

ALPHA, MARGIN, N_PAIRS = 0.05, 0.10, 200
SETTINGS = Settings(bootstrap=1000, alpha=ALPHA, margin=MARGIN, seed=0)
TRUE_DIFF = 0.02  # ~80% chance of GO for 200 pairs with this judge (measured: 81-83%)
JUDGE = SimJudge()
ROUTE = "sim-route"


@dataclass
class Night:
    verdict: str  # tonight's GO / NO_GO / INCONCLUSIVE
    regression: bool  # any regression finding (what makes `nightly` exit 1)
    kinds: list[str]  # every finding's kind, regressions and warnings
    p_raw: float | None  # the undoubled one-sided p-value of the drop (for the benchmark's comparison)


def night(
    qual: tuple[list[Pair], object], world: World, rng: np.random.Generator, name: str, settings: Settings = SETTINGS
) -> Night:
    """One simulated night against a qualifying run, through the decision code of `equiv nightly`."""
    qual_pairs, qual_verdict = qual
    pairs, checks = simulate(world, JUDGE, N_PAIRS, rng)
    verdict = analyze(pairs, checks, settings, run_id=name)
    ref = reference_of(qual_verdict, world.prompt_type)  # type: ignore[arg-type]
    refs = {world.prompt_type: ref}
    tests = drop_tests(verdict, pairs, refs, settings, reference_pairs=lambda _r: qual_pairs)
    entry = history_entry(ROUTE, verdict)
    findings, records = assess(
        ROUTE,
        entry,
        refs,
        tests,
        alpha=settings.alpha,
        correction=settings.correction,
        cost_share=settings.cost_regression_share,
    )
    rec = records[world.prompt_type]
    return Night(
        verdict=verdict.prompt_types[0].verdict,
        regression=any(f.is_regression for f in findings),
        kinds=[f.kind for f in findings],
        p_raw=rec.get("p_raw"),
    )


def qualifying_runs(
    world: World, trials: int, rng: np.random.Generator, settings: Settings = SETTINGS
) -> tuple[list[tuple[list[Pair], object]], int]:
    """The GO runs among `trials` qualifying attempts (only those qualify a route), and the attempts."""
    out = []
    for i in range(trials):
        pairs, checks = simulate(world, JUDGE, N_PAIRS, rng)
        v = analyze(pairs, checks, settings, run_id=f"qualify-{i:04d}")
        if v.prompt_types[0].verdict == "GO":
            out.append((pairs, v))
    return out, trials


def unchanged_nights(
    trials: int, nights_per_route: int, seed: int, settings: Settings = SETTINGS
) -> tuple[list[Night], float]:
    rng = np.random.default_rng(seed)
    world = World(true_diff=TRUE_DIFF)
    quals, attempts = qualifying_runs(world, trials, rng, settings)
    nights = [
        night(q, world, rng, f"night-{i:04d}-{k}", settings)
        for i, q in enumerate(quals)
        for k in range(nights_per_route)
    ]
    return nights, len(quals) / attempts


def dropped_nights(trials: int, drop: float, seed: int, settings: Settings = SETTINGS) -> list[Night]:
    rng = np.random.default_rng(seed)
    quals, _ = qualifying_runs(World(true_diff=TRUE_DIFF), trials, rng, settings)
    worse = World(true_diff=TRUE_DIFF - drop)
    return [night(q, worse, rng, f"worse-{i:04d}", settings) for i, q in enumerate(quals)]


def share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


def test_an_unchanged_route_alarms_on_at_most_5_percent_of_nights() -> None:
    nights, power = unchanged_nights(trials=250, nights_per_route=5, seed=12)
    assert 0.7 <= power <= 0.9, power  # the scenario is the one SPEC describes: about 80% power
    n = len(nights)
    assert n >= 900
    false_alarm = share([x.regression for x in nights])
    inconclusive = share([x.verdict == "INCONCLUSIVE" for x in nights])
    # the warning is real and frequent (about one night in five) ...
    assert inconclusive >= 0.10, inconclusive
    assert all("inconclusive" in x.kinds for x in nights if x.verdict == "INCONCLUSIVE")
    # ... and it is never an alarm by itself; the alarms stay at alpha
    assert false_alarm <= binomial_upper(ALPHA, n, z=2.0), (false_alarm, n)
    # the old rule (GO -> not GO is a regression) would have alarmed on every INCONCLUSIVE night
    assert share([x.verdict != "GO" for x in nights]) > binomial_upper(ALPHA, n, z=2.0)


def test_a_real_drop_is_caught_with_high_power() -> None:
    nights = dropped_nights(trials=120, drop=0.3, seed=13)
    assert len(nights) >= 80
    power = share([x.regression for x in nights])
    assert power >= 0.95, power
    # caught also by the two-run test itself, not only by tonight's NO_GO
    assert share(["quality_drop" in x.kinds for x in nights]) >= 0.9
