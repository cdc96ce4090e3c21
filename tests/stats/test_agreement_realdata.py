"""human_agreement on real human labels (PandaLM test set, majority of three annotators). Simulated
judges of known accuracy on those labels must be recovered, and a trivial "longer answer wins" judge
gives the baseline figure a calibration report should be compared against. Skipped when the data is
absent; the data is read in place and never copied into the project."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from equiv.stats.agreement import HUMAN_AGREEMENT_MIN, Labelled, human_agreement, human_agreement_blocks

DATA = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "pandalm_human.labels.jsonl"
BOOT: dict[str, Any] = {"key": "pandalm", "n_boot": 4000, "alpha": 0.005}  # 99% intervals: a seeded miss is rare


def _cluster(row: dict[str, Any]) -> str:
    """Identical messages are one cluster (SPEC "Clusters"); PandaLM asks each prompt several times."""
    blob = json.dumps(row["messages"], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    if not DATA.is_file():
        pytest.skip(f"real data not present at {DATA}")
    with DATA.open(encoding="utf-8") as f:
        out = [json.loads(line) for line in f if line.strip()]
    assert out and all(r["gold"] in ("baseline", "candidate") and r["judgments"] == [] for r in out)
    return out


@pytest.mark.parametrize("p", [0.9, 0.7, 0.5])
def test_simulated_judge_of_known_accuracy(rows: list[dict[str, Any]], p: float) -> None:
    rng = np.random.default_rng(int(p * 100))
    agree = rng.random(len(rows)) < p
    items = []
    for r, ok in zip(rows, agree, strict=True):
        side = 1.0 if r["gold"] == "candidate" else -1.0
        items.append(Labelled(_cluster(r), side if ok else -side, r["gold"], True))  # consistent in both orders
    h = human_agreement(items, seed=11, **BOOT)
    assert h.n == h.n_without_ties == len(rows)
    wt = h.agreement_without_ties
    assert wt is not None and h.agreement is not None and h.position_consistency is not None
    assert wt.ci_low <= p <= wt.ci_high
    assert h.agreement.ci_low <= p <= h.agreement.ci_high
    assert h.position_consistency.estimate == 1.0
    assert human_agreement_blocks(h) is (p < HUMAN_AGREEMENT_MIN)  # 0.5 blocks; 0.7 and 0.9 do not


def test_longer_answer_wins_baseline_figure(rows: list[dict[str, Any]]) -> None:
    items = [
        Labelled(
            _cluster(r),
            float(np.sign(len(r["candidate"]["output"]) - len(r["baseline"]["output"]))),
            r["gold"],
            True,  # a length rule does not depend on the order it reads the answers in
        )
        for r in rows
    ]
    h = human_agreement(items, seed=11, **BOOT)
    assert h.agreement is not None and h.kappa is not None
    assert math.isfinite(h.agreement.estimate) and 0.0 <= h.agreement.estimate <= 1.0
    wt = h.agreement_without_ties
    print(
        f"\nPandaLM human labels, 'longer answer wins' judge: n={h.n} clusters={len({i.cluster for i in items})}"
        f" agreement={h.agreement.estimate:.4f} [{h.agreement.ci_low:.4f}, {h.agreement.ci_high:.4f}]"
        f" without_ties={wt.estimate if wt else None} (n={h.n_without_ties})"
        f" [{wt.ci_low if wt else None}, {wt.ci_high if wt else None}]"
        f" kappa={h.kappa.estimate:.4f} [{h.kappa.ci_low:.4f}, {h.kappa.ci_high:.4f}]"
    )
