"""A simulated world with a KNOWN true quality difference, and a simulated judge with tunable quirks.

The judge is written at the level of verdict probabilities so that the truth is exact. For a pair
with per-prompt effect eta and true length covariate x*, in one order, the judge:
  - says "tie" with probability tie_rate;
  - otherwise its expected candidate score is m = true_diff + eta + verbosity * x*  +/- position_bias
    (+ when the candidate is shown as A):
    P(candidate) = (1 - tie_rate + m) / 2, P(baseline) = (1 - tie_rate - m) / 2.
Averaged over both orders the position bias cancels, so the order-averaged score has expectation
true_diff + eta + verbosity * x*. eta has mean zero over prompts, so at equal length (x* = 0) the
population quality difference is exactly ``true_diff``: the quantity the length-controlled estimate
targets. The raw estimate targets true_diff + verbosity * E[x*], which is what a length-favouring judge
inflates. x* = tanh(d / length_sd) is the judge's own view of the length gap; the analysis only sees
the texts and recomputes x from the sample sd, so a small model mismatch is part of the test.

Judge checks (SPEC "Judge check") are simulated with the same judge comparing the intact answer with
a truncated copy: expected preference ``check_gap`` for the intact one, with the same position bias.
A degenerate judge (``always="A"`` or ``"tie"``) answers that in every comparison, checks included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from equiv.analyze import analyze
from equiv.config import Settings
from equiv.schema import Check, Judgment, Pair, Side, TypeVerdict

ORDERS = ("baseline_first", "candidate_first")


@dataclass(frozen=True)
class SimJudge:
    position_bias: float = 0.05  # extra expected score for whichever answer is shown as A
    verbosity: float = 0.0  # expected score shift per unit of x* = tanh(d / length_sd)
    tie_rate: float = 0.15
    always: str | None = None  # "A" | "B" | "tie": a judge that ignores the answers
    check_gap: float = 0.95  # expected preference for the intact answer over its truncated copy
    check_tie_rate: float = 0.02


@dataclass(frozen=True)
class World:
    true_diff: float  # population quality difference at equal length (the estimand)
    heterogeneity: float = 0.3  # per-prompt effects uniform on [-h, h] (mean zero)
    length_shift: float = 0.0  # mean length gap (candidate - baseline) in units of length_sd
    length_sd: float = 300.0
    base_len: int = 2000
    samples_per_prompt: int = 1  # repeated candidate samples share the prompt's effect (a cluster)
    base_cost: float = 0.010
    cand_cost: float = 0.002
    prompt_type: str = "sim"

    def with_type(self, name: str) -> World:
        return replace(self, prompt_type=name)


def _validate(world: World, judge: SimJudge) -> None:
    worst = abs(world.true_diff) + world.heterogeneity + abs(judge.verbosity) + judge.position_bias
    if judge.always is None and worst > 1 - judge.tie_rate:
        raise ValueError(f"verdict probabilities would leave [0, 1] (|m| up to {worst:.2f}); shrink the quirks")


def _winners(m: np.ndarray, tie_rate: float, cand_is_a: bool, u: np.ndarray) -> list[str]:
    """Draw one verdict per row given the candidate's expected score m in this order."""
    p_cand = np.clip((1 - tie_rate + m) / 2, 0.0, 1.0)
    p_base = np.clip((1 - tie_rate - m) / 2, 0.0, 1.0 - p_cand)
    cand, base = ("A", "B") if cand_is_a else ("B", "A")
    return [cand if v < pc else (base if v < pc + pb else "tie") for v, pc, pb in zip(u, p_cand, p_base, strict=True)]


def simulate(world: World, judge: SimJudge, n: int, rng: np.random.Generator) -> tuple[list[Pair], list[Check]]:
    """n pairs (n // samples_per_prompt prompts) judged in both orders, and SPEC's judge-check sample."""
    _validate(world, judge)
    k = world.samples_per_prompt
    n_prompts = max(1, n // k)
    n = n_prompts * k
    eta = np.repeat(rng.uniform(-world.heterogeneity, world.heterogeneity, n_prompts), k)
    d = rng.normal(world.length_shift * world.length_sd, world.length_sd, n)
    x_true = np.tanh(d / world.length_sd)
    base_len = np.maximum(1, np.rint(world.base_len + rng.normal(0, 200, n))).astype(int)
    cand_len = np.maximum(1, base_len + np.rint(d)).astype(int)
    mu = world.true_diff + eta + judge.verbosity * x_true
    verdicts: list[list[str]] = []
    for order in ORDERS:
        cand_is_a = order == "candidate_first"
        u = rng.random(n)
        if judge.always is not None:
            verdicts.append([judge.always] * n)
            continue
        shift = judge.position_bias if cand_is_a else -judge.position_bias
        verdicts.append(_winners(mu + shift, judge.tie_rate, cand_is_a, u))
    cost_noise = rng.uniform(0.8, 1.2, (2, n))
    pairs = []
    for i in range(n):
        prompt = f"{world.prompt_type}-p{i // k:05d}"
        pairs.append(
            Pair(
                pair_id=f"{prompt}-s{i % k}",
                prompt_type=world.prompt_type,
                prompt_id=prompt if k > 1 else None,
                baseline=Side(
                    model="sim-big",
                    source="logged",
                    output="b" * int(base_len[i]),
                    cost_usd=world.base_cost * float(cost_noise[0, i]),
                ),
                candidate=Side(
                    model="sim-small",
                    source="run",
                    output="c" * int(cand_len[i]),
                    cost_usd=world.cand_cost * float(cost_noise[1, i]),
                ),
                judgments=[
                    Judgment(order=ORDERS[0], winner=verdicts[0][i], judge="sim-judge"),  # type: ignore[arg-type]
                    Judgment(order=ORDERS[1], winner=verdicts[1][i], judge="sim-judge"),  # type: ignore[arg-type]
                ],
            )
        )
    return pairs, simulate_checks(world, judge, n_prompts, rng)


def simulate_checks(world: World, judge: SimJudge, n_prompts: int, rng: np.random.Generator) -> list[Check]:
    """SPEC's sample: 10% of the type's prompts, at least 10 (all if fewer), both orders."""
    n_checks = min(n_prompts, max(10, round(0.1 * n_prompts)))
    out = []
    for _order, intact_is_a in (("intact_first", True), ("degraded_first", False)):
        if judge.always is not None:
            out.append([judge.always] * n_checks)
            continue
        shift = judge.position_bias if intact_is_a else -judge.position_bias
        m = np.full(n_checks, judge.check_gap + shift)
        out.append(_winners(m, judge.check_tie_rate, intact_is_a, rng.random(n_checks)))
    return [
        Check(
            pair_id=f"{world.prompt_type}-check{i:04d}",
            prompt_type=world.prompt_type,
            judgments=[
                Judgment(order="intact_first", winner=out[0][i], judge="sim-judge"),  # type: ignore[arg-type]
                Judgment(order="degraded_first", winner=out[1][i], judge="sim-judge"),  # type: ignore[arg-type]
            ],
        )
        for i in range(n_checks)
    ]


def binomial_upper(rate: float, reps: int, z: float = 3.0) -> float:
    """rate + z standard errors of a binomial proportion over reps replications: the slack we allow."""
    return rate + z * float(np.sqrt(rate * (1 - rate) / reps))


_SWAP = {"A": "B", "B": "A", "tie": "tie"}


def mirrored(pairs: list[Pair]) -> list[Pair]:
    """The pairs plus a copy of each with every verdict reversed: the estimate is then exactly 0.

    Used as a pilot whose estimate equals the truth of an equivalent candidate, so that the
    samples_needed it yields is SPEC's formula at the true difference and the data's own spread.
    """
    out = list(pairs)
    for p in pairs:
        flipped = [j.model_copy(update={"winner": _SWAP[j.winner]}) for j in p.judgments]
        out.append(p.model_copy(update={"pair_id": p.pair_id + "-m", "judgments": flipped}))
    return out


def replicate(world: World, judge: SimJudge, n: int, reps: int, seed: int, settings: Settings) -> list[TypeVerdict]:
    """Run the real analyze() on ``reps`` independent simulated studies; one TypeVerdict each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        pairs, checks = simulate(world, judge, n, rng)
        out.append(analyze(pairs, checks, settings, run_id="sim").prompt_types[0])
    return out


def rate(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")
