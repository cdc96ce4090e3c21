"""Position calibration of a judge's verdicts from its verdict-word log-probabilities.

`judge_calibration = "position"`. A small judge often writes "A" whatever it reads. Judging both orders
cancels that in the estimate, but such a pair scores 0 (the two verdicts contradict each other), which
looks exactly like equivalence, while the judge's probabilities still lean to one answer.

Rule, per pair judged in both orders by one judge with logprobs: l1 = logprob(A) - logprob(B) when the
baseline is A, l2 = the same when the candidate is A. The judge's pull to position A is in both; its
preference for the baseline is c = l1 - l2 (the baseline's log-odds advantage, summed over the two
positions it was shown in). c > 0: the baseline wins both orders (A, then B); c < 0: the candidate
does; c = 0 (within 1e-6), or identical answers: a tie in both. An order where the judge wrote "tie" stays a tie
(its ties are its own). Pairs without logprobs in both orders, and judge checks, keep the judge's own
words: the judge check still tests the judge as it writes, so a judge that cannot tell an intact answer
from its truncated copy in its own words still blocks every GO, whatever calibration reads into it.

Calibrated verdicts are consistent across orders by construction: position_consistency then measures
nothing (the report says the verdicts are calibrated). `winner` in pairs.jsonl stays what the judge
wrote; `equiv report` re-derives all of this from the stored logprobs.
"""

from __future__ import annotations

from collections.abc import Sequence

from equiv.schema import Calibration, Judgment, Pair

FIRST, SECOND = "baseline_first", "candidate_first"
TIE_TOLERANCE = 1e-6  # |c| at or below this: a tie (logprobs are stored to 6 decimals)


def log_odds(j: Judgment) -> float | None:
    """logprob(A) - logprob(B), when the judgment carries both."""
    lp = j.logprobs
    if not lp or "A" not in lp or "B" not in lp:
        return None
    return float(lp["A"]) - float(lp["B"])


def _calibrated(j: Judgment, winner: str) -> Judgment:
    if j.winner == "tie" or j.winner == winner:
        return j
    # `written` keeps the judge's own word beside the calibrated one (reports show both; never saved)
    return j.model_copy(update={"winner": winner, "written": j.winner})


def calibrate_pair(p: Pair) -> tuple[Pair, bool, int]:
    """(the pair with calibrated verdicts, whether it could be calibrated, judgments changed)."""
    if p.error is not None:
        return p, False, 0
    by_judge: dict[str, dict[str, int]] = {}
    for i, j in enumerate(p.judgments):
        by_judge.setdefault(j.judge, {}).setdefault(j.order, i)
    new = list(p.judgments)
    done = False
    # identical answers: no judge can prefer one (the same prompt in both orders gives c = 0, up to the
    # server's float noise from run to run), so they tie
    same = (
        p.baseline is not None
        and p.candidate is not None
        and p.baseline.output is not None
        and ((p.baseline.output or "").strip() == (p.candidate.output or "").strip())
    )
    for orders in by_judge.values():
        if FIRST not in orders or SECOND not in orders:
            continue
        l1, l2 = log_odds(new[orders[FIRST]]), log_odds(new[orders[SECOND]])
        if l1 is None or l2 is None:
            continue
        c = l1 - l2
        if same or abs(c) <= TIE_TOLERANCE:
            w1 = w2 = "tie"
        else:
            w1, w2 = ("A", "B") if c > 0 else ("B", "A")
        new[orders[FIRST]] = _calibrated(new[orders[FIRST]], w1)
        new[orders[SECOND]] = _calibrated(new[orders[SECOND]], w2)
        done = True
    changed = sum(a is not b for a, b in zip(p.judgments, new, strict=True))
    return (p.model_copy(update={"judgments": new}) if changed else p), done, changed


def calibrate(pairs: Sequence[Pair]) -> tuple[list[Pair], dict[str, Calibration]]:
    """Pairs with position-calibrated verdicts, and per prompt-type how many were calibrated and changed."""
    out: list[Pair] = []
    info: dict[str, Calibration] = {}
    for p in pairs:
        q, done, changed = calibrate_pair(p)
        c = info.setdefault(p.prompt_type, Calibration(n_pairs=0, changed=0))
        c.n_pairs += done
        c.changed += changed
        out.append(q)
    return out, info
