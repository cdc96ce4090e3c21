"""Hand-built pairs for the statistics tests: every number in a test can be checked on paper."""

from __future__ import annotations

from collections.abc import Sequence

from equiv.config import Settings
from equiv.schema import Check, Judgment, Pair, Side

# candidate outcome -> (winner when baseline is A, winner when candidate is A)
OUTCOME = {"cand": ("B", "A"), "base": ("A", "B"), "tie": ("tie", "tie")}


def pair(
    pair_id: str,
    outcomes: Sequence[str] = ("cand", "cand"),
    *,
    prompt_type: str = "t",
    base_text: str | None = "x" * 100,
    cand_text: str | None = "y" * 100,  # not identical to the baseline: identical answers are never judged
    base_cost: float | None = None,
    cand_cost: float | None = None,
    prompt_id: str | None = None,
    error: str | None = None,
    judge: str = "j",
) -> Pair:
    """outcomes[0] is the baseline_first verdict, outcomes[1] (if any) the candidate_first one,
    each named by what it means for the candidate ("cand" wins, "base" wins, "tie")."""
    js = []
    orders = ("baseline_first", "candidate_first")
    for i, o in enumerate(outcomes):
        js.append(Judgment(order=orders[i % 2], winner=OUTCOME[o][i % 2], judge=judge))  # type: ignore[arg-type]
    return Pair(
        pair_id=pair_id,
        prompt_type=prompt_type,
        baseline=Side(model="big", source="logged", output=base_text, cost_usd=base_cost),
        candidate=Side(model="small", source="run", output=cand_text, cost_usd=cand_cost),
        judgments=js,
        error=error,
        prompt_id=prompt_id,
    )


def pairs_with_scores(scores: Sequence[float], prompt_type: str = "t", **kw: object) -> list[Pair]:
    """One pair per score in {-1, -0.5, 0, 0.5, 1}, judged in both orders."""
    table = {
        1.0: ("cand", "cand"),
        0.5: ("cand", "tie"),
        0.0: ("tie", "tie"),
        -0.5: ("base", "tie"),
        -1.0: ("base", "base"),
    }
    return [
        pair(f"{prompt_type}-{i:04d}", table[float(s)], prompt_type=prompt_type, **kw)  # type: ignore[arg-type]
        for i, s in enumerate(scores)
    ]


def check(pair_id: str, intact_first: str | None, degraded_first: str | None, prompt_type: str = "t") -> Check:
    js = []
    if intact_first is not None:
        js.append(Judgment(order="intact_first", winner=intact_first))  # type: ignore[arg-type]
    if degraded_first is not None:
        js.append(Judgment(order="degraded_first", winner=degraded_first))  # type: ignore[arg-type]
    return Check(pair_id=pair_id, prompt_type=prompt_type, judgments=js)


def passing_checks(n: int = 10, prompt_type: str = "t") -> list[Check]:
    return [check(f"c{i}", "A", "B", prompt_type) for i in range(n)]


def settings(**kw: object) -> Settings:
    base: dict[str, object] = {"bootstrap": 2000, "seed": 0}
    base.update(kw)
    return Settings.model_validate(base)
