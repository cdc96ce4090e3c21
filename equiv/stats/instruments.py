"""Per-type instrument statistics (SPEC "Per-type instruments"): gate pass rates and their paired
difference, agreement rates and the per-field table, from the pairs' instrument outcomes.

The same weighted cluster bootstrap as the quality difference: each pair's row is scaled by its
weight (the records it stands for) and clusters are resampled whole, so a gate's interval is as
paired as the quality interval (one pair's baseline and candidate move together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from equiv.instruments import PairInstruments
from equiv.schema import CheckSummary, FieldAgreement, Interval
from equiv.stats import bootstrap as bs

FloatArray = bs.FloatArray


@dataclass(frozen=True)
class Row:
    """One usable pair of a type: its cluster index, weight and instrument outcomes."""

    code: int
    weight: float
    instruments: PairInstruments


@dataclass
class GateDraws:
    """One gate: traffic-weighted pass rates, the estimate and the bootstrap draws of cand - base."""

    name: str
    check: str
    n: int
    baseline_rate: float
    candidate_rate: float
    estimate: float
    draws: FloatArray

    def interval(self, alpha: float) -> Interval:
        lo, hi = bs.percentile_interval(self.draws, alpha)
        return Interval(estimate=self.estimate, ci_low=lo, ci_high=hi)


@dataclass
class TypeInstruments:
    gates: list[GateDraws] = field(default_factory=list)
    agreements: list[CheckSummary] = field(default_factory=list)
    agreement_rate: float | None = None  # share of pairs decided without the judge (weighted)
    n_judged: int = 0


def summarize(rows: Sequence[Row], n_clusters: int, *, seed: int, key: str, n_boot: int) -> TypeInstruments:
    """Gates (with draws) and agreement summaries of one prompt-type's usable pairs."""
    out = TypeInstruments()
    if not rows:
        return out
    w = np.array([r.weight for r in rows], dtype=np.float64)
    codes = np.array([r.code for r in rows], dtype=np.intp)
    total = float(w.sum())
    agreed = np.array([r.instruments.agreed for r in rows], dtype=np.float64)
    out.agreement_rate = float(np.sum(w * agreed) / total)
    out.n_judged = int(len(rows) - agreed.sum())

    first = rows[0].instruments
    for gi, gate in enumerate(first.gates):
        base = np.array([r.instruments.gates[gi].baseline for r in rows], dtype=np.float64)
        cand = np.array([r.instruments.gates[gi].candidate for r in rows], dtype=np.float64)
        cols = np.stack([w, w * (cand - base)], axis=1)
        sums = bs.cluster_sums(codes, cols, n_clusters)
        rng = bs.stream_rng(seed, f"{key}\x00gate\x00{gate.name}")
        totals = bs.resample_totals(sums, n_boot, rng)
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = totals[:, 1] / totals[:, 0]
        b_rate, c_rate = float(np.sum(w * base) / total), float(np.sum(w * cand) / total)
        out.gates.append(
            GateDraws(
                name=gate.name,
                check=gate.kind,
                n=len(rows),
                baseline_rate=b_rate,
                candidate_rate=c_rate,
                estimate=c_rate - b_rate,
                draws=draws,
            )
        )
    for ai, agreement in enumerate(first.agreements):
        agree = np.array([r.instruments.agreements[ai].agree for r in rows], dtype=np.float64)
        fields: dict[str, FieldAgreement] | None = None
        if agreement.kind == "fields":
            fields = _field_table(rows, ai)
        out.agreements.append(
            CheckSummary(
                name=agreement.name,
                kind="agreement",
                check=agreement.kind,
                n=len(rows),
                agreement_rate=float(np.sum(w * agree) / total),
                fields=fields,
            )
        )
    return out


def _field_table(rows: Sequence[Row], index: int) -> dict[str, FieldAgreement]:
    """Per JSON field: the (weighted) share of pairs that agree on it, among pairs where either answer has it."""
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    count: dict[str, int] = {}
    for r in rows:
        outcome = r.instruments.agreements[index]
        if outcome.why:  # one side is not a JSON object: no field was compared
            continue
        for name, ok in (outcome.fields or {}).items():
            den[name] = den.get(name, 0.0) + r.weight
            num[name] = num.get(name, 0.0) + r.weight * ok
            count[name] = count.get(name, 0) + 1
    return {
        name: FieldAgreement(n=count[name], agreement_rate=num[name] / den[name] if den[name] else None)
        for name in sorted(den)
    }


def gate_summary(g: GateDraws, alpha: float, check_margin: float) -> CheckSummary:
    iv = g.interval(alpha)
    return CheckSummary(
        name=g.name,
        kind="gate",
        check=g.check,
        n=g.n,
        baseline_pass_rate=g.baseline_rate,
        candidate_pass_rate=g.candidate_rate,
        diff=iv,
        passed=iv.ci_low > -check_margin,
        failed=iv.ci_high < -check_margin,
    )
