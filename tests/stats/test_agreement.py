"""Agreement statistics: Fleiss' and Cohen's kappa against textbook examples and plain loops, the
judge-human agreement on synthetic judges of known accuracy, clusters, and the blocking rule."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from equiv.schema import HumanAgreement, Interval
from equiv.stats.agreement import (
    HUMAN_AGREEMENT_MIN,
    HUMAN_LABELS_MIN,
    Labelled,
    cohen_kappa,
    fleiss_kappa,
    human_agreement,
    human_agreement_blocks,
    panel_kappa,
)

BOOT: dict[str, Any] = {"seed": 7, "key": "t", "n_boot": 2000, "alpha": 0.025}

# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 items, 14 raters, 5 categories.
WIKIPEDIA_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def fleiss_loop(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa written out item by item, as in the 1971 paper."""
    n_items = len(table)
    raters = sum(table[0])
    k = len(table[0])
    p_i = [(sum(x * x for x in row) - raters) / (raters * (raters - 1)) for row in table]
    p_bar = sum(p_i) / n_items
    p_j = [sum(row[j] for row in table) / (n_items * raters) for j in range(k)]
    p_e = sum(p * p for p in p_j)
    return (p_bar - p_e) / (1 - p_e)


def cohen_loop(a: Sequence[int], b: Sequence[int], k: int) -> float:
    n = len(a)
    p_o = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    p_e = sum((sum(1 for x in a if x == c) / n) * (sum(1 for y in b if y == c) / n) for c in range(k))
    return (p_o - p_e) / (1 - p_e)


# --- Fleiss ----------------------------------------------------------------------------------------------


def test_fleiss_wikipedia_example() -> None:
    assert fleiss_kappa(WIKIPEDIA_TABLE) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(WIKIPEDIA_TABLE) == pytest.approx(fleiss_loop(WIKIPEDIA_TABLE.tolist()), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_matches_loop_on_random_tables(seed: int) -> None:
    rng = np.random.default_rng(seed)
    raters, k, n = int(rng.integers(2, 8)), int(rng.integers(2, 6)), int(rng.integers(3, 60))
    labels = rng.integers(0, k, size=(n, raters))
    table = np.stack([np.count_nonzero(labels == j, axis=1) for j in range(k)], axis=1)
    assert fleiss_kappa(table) == pytest.approx(fleiss_loop(table.tolist()), abs=1e-12)


def test_fleiss_perfect_agreement_and_undefined() -> None:
    assert fleiss_kappa(np.array([[3, 0, 0], [0, 3, 0], [0, 0, 3], [3, 0, 0]])) == pytest.approx(1.0)
    assert math.isnan(fleiss_kappa(np.array([[3, 0, 0], [3, 0, 0]])))  # one category only: P_e = 1
    assert math.isnan(fleiss_kappa(np.zeros((0, 3))))


def test_fleiss_rejects_bad_tables() -> None:
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))  # unequal raters
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[1, 0], [0, 1]]))  # one rater


# --- Cohen -----------------------------------------------------------------------------------------------


def _from_confusion(m: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    a, b = [], []
    for i, row in enumerate(m):
        for j, c in enumerate(row):
            a += [i] * c
            b += [j] * c
    return np.array(a), np.array(b)


def test_cohen_hand_examples() -> None:
    # Wikipedia's 2 x 2: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    a, b = _from_confusion([[20, 5], [10, 15]])
    assert cohen_kappa(a, b, k=2) == pytest.approx(0.4, abs=1e-12)
    # 3 x 3 by hand: N 40, trace 29 (p_o 0.725), rows 15/10/15, columns 13/12/15 -> p_e 540/1600; kappa 31/53.
    a, b = _from_confusion([[10, 2, 3], [1, 8, 1], [2, 2, 11]])
    assert cohen_kappa(a, b) == pytest.approx(31 / 53, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_cohen_matches_direct_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 3, 200))
    assert cohen_kappa(a, b) == pytest.approx(cohen_loop(a.tolist(), b.tolist(), 3), abs=1e-12)


def test_cohen_perfect_and_undefined() -> None:
    a = np.array([0, 1, 2, 2, 1])
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(np.array([1, 1, 1]), np.array([1, 1, 1])))
    assert math.isnan(cohen_kappa(np.array([], dtype=int), np.array([], dtype=int)))
    with pytest.raises(ValueError):
        cohen_kappa(np.array([0, 3]), np.array([0, 1]))


# --- panel -----------------------------------------------------------------------------------------------


def test_panel_kappa_estimate_is_fleiss_and_drops_partial_items() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 300)
    ratings = [
        (f"c{i // 3}", [int(t) if rng.random() < 0.7 else int(rng.integers(0, 3)) for _ in range(3)])
        for i, t in enumerate(truth)
    ]
    full = panel_kappa(ratings, **BOOT)
    assert full is not None
    table = np.array([[r.count(j) for j in range(3)] for _, r in ratings])
    assert full.estimate == pytest.approx(fleiss_kappa(table), abs=1e-12)
    assert full.ci_low <= full.estimate <= full.ci_high
    partial = panel_kappa([*ratings, ("extra", [0, 1])], **BOOT)  # rated by 2 of 3 judges: left out
    assert partial == full


def test_panel_kappa_edge_cases() -> None:
    assert panel_kappa([("a", [0, 0])], **BOOT) is None  # one item
    assert panel_kappa([("a", [0]), ("b", [1])], **BOOT) is None  # one rater
    perfect = panel_kappa([(str(i), [i % 3] * 3) for i in range(30)], **BOOT)
    assert perfect == Interval(estimate=1.0, ci_low=1.0, ci_high=1.0)
    assert panel_kappa([(str(i), [1, 1]) for i in range(10)], **BOOT) is None  # undefined: one category


# --- human agreement -------------------------------------------------------------------------------------


def simulated(n: int, p: float, seed: int, *, clusters: Sequence[str] | None = None) -> list[Labelled]:
    """A judge that names the gold side with probability p, the other side otherwise; never a tie."""
    rng = np.random.default_rng(seed)
    gold = rng.choice(["baseline", "candidate"], n)
    agree = rng.random(n) < p
    out = []
    for i in range(n):
        side = 1.0 if gold[i] == "candidate" else -1.0
        out.append(
            Labelled(clusters[i] if clusters else f"c{i}", side if agree[i] else -side, str(gold[i]), True)  # type: ignore[arg-type]
        )
    return out


def test_known_accuracy_is_recovered() -> None:
    h = human_agreement(simulated(2000, 0.8, seed=1), **BOOT)
    assert h.n == h.n_without_ties == 2000
    assert h.agreement is not None and h.agreement_without_ties is not None and h.kappa is not None
    assert h.agreement.estimate == pytest.approx(0.8, abs=0.03)
    assert h.agreement.ci_low <= h.agreement.estimate <= h.agreement.ci_high
    assert h.agreement.ci_low <= 0.8 <= h.agreement.ci_high
    assert h.agreement_without_ties == h.agreement  # no ties anywhere: the same figure, same resamples
    # Two balanced sides, accuracy p: kappa = 2p - 1 = 0.6 (ties in the 3 x 3 table stay empty).
    assert h.kappa.ci_low <= 0.6 <= h.kappa.ci_high
    assert h.position_consistency == Interval(estimate=1.0, ci_low=1.0, ci_high=1.0)


def test_coin_flip_judge_has_kappa_near_zero() -> None:
    h = human_agreement(simulated(2000, 0.5, seed=2), **BOOT)
    assert h.kappa is not None and h.agreement is not None
    assert abs(h.kappa.estimate) < 0.06
    assert h.kappa.ci_low <= 0.0 <= h.kappa.ci_high
    assert h.agreement.ci_low <= 0.5 <= h.agreement.ci_high


def test_ties() -> None:
    items = [
        Labelled("a", 0.0, "tie"),  # tie agrees with tie
        Labelled("b", 1e-12, "tie"),  # |score| <= 1e-9 is a tie
        Labelled("c", 0.5, "candidate"),  # agrees
        Labelled("d", -1.0, "candidate"),  # disagrees
        Labelled("e", 0.0, "baseline"),  # judge tie vs a side: disagrees, not in "without ties"
        Labelled("f", -0.5, "tie"),  # gold tie vs a side: disagrees, not in "without ties"
    ]
    h = human_agreement(items, **BOOT)
    assert h.n == 6 and h.n_without_ties == 2
    assert h.agreement is not None and h.agreement.estimate == pytest.approx(3 / 6)
    assert h.agreement_without_ties is not None and h.agreement_without_ties.estimate == pytest.approx(1 / 2)
    judge = np.array([1, 1, 2, 0, 1, 0])  # baseline 0, tie 1, candidate 2
    gold = np.array([1, 1, 2, 2, 0, 1])
    assert h.kappa is not None and h.kappa.estimate == pytest.approx(cohen_loop(judge.tolist(), gold.tolist(), 3))
    assert h.position_consistency is None  # none judged in both orders


def test_empty_parts_are_none() -> None:
    h = human_agreement([], **BOOT)
    assert h == HumanAgreement(
        n=0, n_without_ties=0, agreement=None, agreement_without_ties=None, kappa=None, position_consistency=None
    )
    only_ties = human_agreement([Labelled(str(i), 0.0, "candidate", False) for i in range(5)], **BOOT)
    assert only_ties.n == 5 and only_ties.n_without_ties == 0
    assert only_ties.agreement == Interval(estimate=0.0, ci_low=0.0, ci_high=0.0)
    assert only_ties.agreement_without_ties is None
    assert only_ties.kappa is not None and only_ties.kappa.estimate == pytest.approx(0.0)
    assert only_ties.position_consistency == Interval(estimate=0.0, ci_low=0.0, ci_high=0.0)


def test_position_consistency_over_pairs_judged_in_both_orders() -> None:
    items = [Labelled(str(i), 1.0, "candidate", c) for i, c in enumerate([True, True, False, None, None])]
    h = human_agreement(items, **BOOT)
    assert h.position_consistency is not None and h.position_consistency.estimate == pytest.approx(2 / 3)


def test_duplicates_in_one_cluster_do_not_narrow_the_interval() -> None:
    base = simulated(300, 0.7, seed=4)
    dup_clustered = [it for it in base for _ in range(5)]  # same cluster id 5 times
    dup_separate = [Labelled(f"{it.cluster}-{j}", it.score, it.gold, it.consistent) for it in base for j in range(5)]
    h0, h1, h5 = (human_agreement(x, **BOOT) for x in (base, dup_clustered, dup_separate))
    for name in ("agreement", "agreement_without_ties", "kappa", "position_consistency"):
        i0, i1, i5 = getattr(h0, name), getattr(h1, name), getattr(h5, name)
        assert i1.estimate == pytest.approx(i0.estimate) == pytest.approx(i5.estimate)
        # 5 copies of each cluster scale its sums: every resample's share (and kappa) is the original's.
        assert i1.ci_low == pytest.approx(i0.ci_low) and i1.ci_high == pytest.approx(i0.ci_high)
        assert i1.ci_high - i1.ci_low >= i5.ci_high - i5.ci_low
    a1, a5 = h1.agreement, h5.agreement
    assert a1 is not None and a5 is not None
    assert a1.ci_high - a1.ci_low > 1.8 * (a5.ci_high - a5.ci_low)  # about sqrt(5) wider


def test_reproducible_and_independent_of_item_order() -> None:
    items = simulated(500, 0.75, seed=5, clusters=[f"c{i % 97}" for i in range(500)])
    h = human_agreement(items, **BOOT)
    assert human_agreement(items, **BOOT) == h
    assert human_agreement(list(reversed(items)), **BOOT) == h
    assert human_agreement(items, **{**BOOT, "seed": 8}) != h


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        human_agreement([Labelled("a", math.nan, "tie")], **BOOT)
    with pytest.raises(ValueError):
        human_agreement([Labelled("a", 1.0, "tie")], seed=1, key="t", n_boot=0, alpha=0.05)


def test_fast_at_full_size() -> None:
    items = simulated(5000, 0.8, seed=6)
    start = time.perf_counter()
    human_agreement(items, seed=1, key="t", n_boot=10_000, alpha=0.05)
    assert time.perf_counter() - start < 5.0  # ~0.3 s measured; generous against a busy machine


# --- blocking rule ---------------------------------------------------------------------------------------


def _ha(n: int, without_ties: float | None) -> HumanAgreement:
    iv = None if without_ties is None else Interval(estimate=without_ties, ci_low=0.0, ci_high=1.0)
    return HumanAgreement(
        n=n,
        n_without_ties=0 if iv is None else n,
        agreement=iv,
        agreement_without_ties=iv,
        kappa=None,
        position_consistency=None,
    )


def test_blocks_rule() -> None:
    assert HUMAN_LABELS_MIN == 30 and HUMAN_AGREEMENT_MIN == 0.6
    assert not human_agreement_blocks(None)
    assert not human_agreement_blocks(_ha(29, 0.0))  # 29 labels never block
    assert not human_agreement_blocks(_ha(29, None))
    assert human_agreement_blocks(_ha(30, 0.59))
    assert not human_agreement_blocks(_ha(30, 0.6))
    assert human_agreement_blocks(_ha(30, None))  # every pair a tie: no agreement shown


def test_blocks_at_exactly_the_threshold_from_real_counts() -> None:
    # 18 of 30 agree: 0.6 exactly, which does not block; 17 of 30 does.
    def items(k: int) -> list[Labelled]:
        return [Labelled(str(i), 1.0 if i < k else -1.0, "candidate") for i in range(30)]

    assert not human_agreement_blocks(human_agreement(items(18), **BOOT))
    assert human_agreement_blocks(human_agreement(items(17), **BOOT))
