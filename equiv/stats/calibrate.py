"""Position calibration of a judge's verdicts from its verdict-word log-probabilities.

`judge_calibration = "position"`. A small judge often writes "A" whatever it reads: judging both orders
cancels that preference in the estimate, but every pair then scores 0 and the judge says nothing. Yet
its probabilities still move with the content: it is less sure of "A" when A is the weaker answer.

Every pair is shown in both orders, so a judge with no position preference gives "A" exactly half of
its A-or-B verdicts on a prompt-type. For each judgment with logprobs, l = logprob(A) - logprob(B)
(its log-odds of A over B); theta = the median of l over the prompt-type's pair judgments. The
calibrated verdict is A when l > theta, B when l < theta, tie when l == theta; a judgment where the
judge wrote "tie" stays a tie (its ties are its own) and does not enter theta. Judge checks of the type
are re-decided with the same theta, so the check still tests the verdicts the estimate uses: a judge
whose probabilities follow position alone gets coin-flip verdicts and fails it (pass needs both orders
right: ~25% by chance, below 0.7), so calibration cannot turn a blind judge into a GO.

theta is estimated once from the pairs and kept fixed in the bootstrap (the median of 2n values moves
little; the interval does not include that variation). `winner` in pairs.jsonl stays what the judge
wrote; `equiv report` re-derives all of this from the stored logprobs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from statistics import median

from equiv.schema import Calibration, Check, Judgment, Pair

MIN_JUDGMENTS = 10  # fewer judgments with logprobs on a prompt-type: its median is too unsteady to use


def log_odds(j: Judgment) -> float | None:
    """logprob(A) - logprob(B) of a judgment that was not a tie and carries logprobs."""
    lp = j.logprobs
    if not lp or j.winner == "tie" or "A" not in lp or "B" not in lp:
        return None
    return float(lp["A"]) - float(lp["B"])


def _redecide(j: Judgment, theta: float) -> Judgment:
    lo = log_odds(j)
    if lo is None:
        return j
    winner = "A" if lo > theta else "B" if lo < theta else "tie"
    return j if winner == j.winner else j.model_copy(update={"winner": winner})


def calibrate(
    pairs: Sequence[Pair], checks: Sequence[Check] | None
) -> tuple[list[Pair], list[Check] | None, dict[str, Calibration]]:
    """(pairs, checks) with position-calibrated winners, and what was done per prompt-type."""
    values: dict[str, list[float]] = defaultdict(list)
    for p in pairs:
        if p.error is None:
            values[p.prompt_type].extend(v for v in map(log_odds, p.judgments) if v is not None)
    info: dict[str, Calibration] = {}
    thetas: dict[str, float] = {}
    for t in sorted({p.prompt_type for p in pairs}):
        vs = values.get(t, [])
        if len(vs) < MIN_JUDGMENTS:
            info[t] = Calibration(applied=False, n=len(vs), changed=0, threshold=None)
            continue
        thetas[t] = median(vs)
        info[t] = Calibration(applied=True, n=len(vs), changed=0, threshold=round(thetas[t], 6))

    def redo(prompt_type: str, judgments: list[Judgment]) -> tuple[list[Judgment], int]:
        theta = thetas.get(prompt_type)
        if theta is None:
            return judgments, 0
        new = [_redecide(j, theta) for j in judgments]
        return new, sum(a.winner != b.winner for a, b in zip(judgments, new, strict=True))

    out_pairs: list[Pair] = []
    for p in pairs:
        js, changed = redo(p.prompt_type, p.judgments)
        if changed:
            info[p.prompt_type].changed += changed
            p = p.model_copy(update={"judgments": js})
        out_pairs.append(p)
    out_checks: list[Check] | None = None
    if checks is not None:
        out_checks = []
        for c in checks:
            js, changed = redo(c.prompt_type, c.judgments)
            out_checks.append(c.model_copy(update={"judgments": js}) if changed else c)
    return out_pairs, out_checks, info
