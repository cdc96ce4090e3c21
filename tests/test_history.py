"""history.jsonl: append/read robustness and the regression rules (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from equiv.history import (
    append_history,
    find_regressions,
    history_entry,
    last_entry,
    nightly_summary,
    read_history,
    vanished_types,
)
from equiv.schema import CostSummary, Interval, TypeVerdict, Verdict


def t(verdict: str = "GO", est: float = 0.0, lo: float = -0.05, hi: float = 0.05,
      cost: float = 0.001) -> dict[str, Any]:
    return {"verdict": verdict, "estimate": est, "ci_low": lo, "ci_high": hi, "candidate_usd_per_request": cost,
            "saving": 0.9}


def entry(run_id: str = "r1", route: str = "support", **types: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "route": route, "prompt_types": types}


def regs(prev: dict[str, Any] | None, cur: dict[str, Any], margin: float = 0.1, share: float = 0.2) -> list[str]:
    return [f"{r.prompt_type}:{r.kind}" for r in find_regressions(prev, cur, margin=margin, cost_share=share)]


# ---------------------------------------------------------------------------------------------- rules


def test_no_previous_run_no_regression() -> None:
    assert regs(None, entry(triage=t("NO_GO"))) == []


def test_go_to_not_go_is_a_regression() -> None:
    assert regs(entry(triage=t("GO")), entry(triage=t("INCONCLUSIVE"))) == ["triage:verdict"]
    assert regs(entry(triage=t("GO")), entry(triage=t("NO_GO"))) == ["triage:verdict"]
    assert regs(entry(triage=t("GO")), entry(triage=t("GO"))) == []


def test_never_go_types_do_not_regress_on_verdict() -> None:
    assert regs(entry(a=t("INCONCLUSIVE")), entry(a=t("NO_GO"))) == []
    assert regs(entry(a=t("NO_GO")), entry(a=t("INCONCLUSIVE"))) == []


def test_quality_drop_needs_more_than_margin_and_disjoint_intervals() -> None:
    prev = entry(a=t("NO_GO", est=0.3, lo=0.2, hi=0.4))
    # dropped 0.25 > margin, intervals disjoint (0.1 < 0.2)
    assert regs(prev, entry(a=t("NO_GO", est=0.05, lo=0.0, hi=0.1))) == ["a:quality"]
    # dropped 0.25 but the intervals overlap: could be noise
    assert regs(prev, entry(a=t("NO_GO", est=0.05, lo=-0.2, hi=0.25))) == []
    # disjoint but the drop is within the margin
    tight = entry(a=t("NO_GO", est=0.3, lo=0.28, hi=0.32))
    assert regs(tight, entry(a=t("NO_GO", est=0.22, lo=0.2, hi=0.24))) == []
    # exactly the margin is not more than the margin
    assert regs(entry(a=t(est=0.5, lo=0.4, hi=0.6)), entry(a=t(est=0.25, lo=0.2, hi=0.3)), margin=0.25) == []
    # an improvement is never a regression
    assert regs(prev, entry(a=t("NO_GO", est=0.9, lo=0.8, hi=1.0))) == []


def test_quality_rule_uses_the_routes_margin() -> None:
    prev, cur = entry(a=t("NO_GO", est=0.3, lo=0.2, hi=0.4)), entry(a=t("NO_GO", est=0.05, lo=0.0, hi=0.1))
    assert regs(prev, cur, margin=0.3) == []
    assert regs(prev, cur, margin=0.2) == ["a:quality"]


def test_cost_up_by_more_than_the_share() -> None:
    prev = entry(a=t(cost=0.0010))
    assert regs(prev, entry(a=t(cost=0.00121))) == ["a:cost"]
    assert regs(prev, entry(a=t(cost=0.00119))) == []
    assert regs(prev, entry(a=t(cost=0.00119)), share=0.1) == ["a:cost"]
    assert regs(prev, entry(a=t(cost=0.0005))) == []  # cheaper is fine
    assert regs(entry(a=t(cost=0.0)), entry(a=t(cost=1.0))) == []  # no meaningful base to compare
    assert regs(entry(a={**t(), "candidate_usd_per_request": None}), entry(a=t())) == []


def test_several_rules_at_once_and_messages_name_type_and_previous_run() -> None:
    prev = entry("night-2", a=t("GO", est=0.3, lo=0.2, hi=0.4, cost=0.001))
    cur = entry("night-3", a=t("NO_GO", est=-0.5, lo=-0.6, hi=-0.4, cost=0.002))
    found = find_regressions(prev, cur, margin=0.1, cost_share=0.2)
    assert [r.kind for r in found] == ["verdict", "quality", "cost"]
    assert str(found[0]) == "support / a: was GO, now NO_GO (since run night-2)"
    assert "+0.300 -> -0.500" in found[1].message and "up 100%" in found[2].message


def test_null_estimates_and_new_or_vanished_types() -> None:
    prev = entry(a=t("GO"), gone=t("GO"), old_inc=t("INCONCLUSIVE"))
    cur = entry(a={"verdict": "GO", "estimate": None, "ci_low": None, "ci_high": None}, new=t("NO_GO"))
    assert regs(prev, cur) == []  # a new type is not a regression; a missing one is reported separately
    assert vanished_types(prev, cur) == ["gone"]
    assert vanished_types(None, cur) == []


def test_routing_decision_works_as_previous_state() -> None:
    prev = {"route": "support", "run_id": "q-1",
            "prompt_types": {"a": {"model": "cand", "verdict": "GO", "run_id": "q-1"}}}
    assert regs(prev, entry(a=t("INCONCLUSIVE"))) == ["a:verdict"]


# ---------------------------------------------------------------------------------------------- file


def verdict() -> Verdict:
    tv = TypeVerdict(
        prompt_type="triage", n=40, n_failed=1, verdict="GO", reasons=["ok"],
        quality_diff=Interval(estimate=0.1, ci_low=-0.02, ci_high=0.2),
        lc_quality_diff=Interval(estimate=0.08, ci_low=-0.04, ci_high=0.19),
        win_rate=0.55, tie_rate=0.1, position_consistency=0.9, judge_check=None, mean_chars=None,
        cost=CostSummary(baseline_usd_per_request=0.01, candidate_usd_per_request=0.001,
                         saving=Interval(estimate=0.9, ci_low=0.89, ci_high=0.91)),
        samples_needed=None)
    return Verdict(run_id="20250301-020000-abc", baseline="gpt-4o", candidate="gpt-4o-mini", judge="j",
                   margin=0.1, alpha=0.05, correction="none", bootstrap=1000, seed=0, eval_cost_usd=0.5,
                   verdict="GO", prompt_types=[tv])


def test_history_entry_shape() -> None:
    e = history_entry("support", verdict(), run_dir=Path("reports/x"), since="2025-03-01T00:00:00+00:00",
                      timestamp="2025-03-02T02:00:00Z")
    assert e["route"] == "support" and e["run_id"] == "20250301-020000-abc" and e["decided_at"] == e["timestamp"]
    tt = e["prompt_types"]["triage"]
    assert tt == {"verdict": "GO", "n": 40, "n_failed": 1, "estimate": 0.1, "ci_low": -0.02, "ci_high": 0.2,
                  "lc_estimate": 0.08, "lc_ci_low": -0.04, "lc_ci_high": 0.19, "baseline_usd_per_request": 0.01,
                  "candidate_usd_per_request": 0.001, "saving": 0.9, "saving_ci_low": 0.89, "saving_ci_high": 0.91,
                  "monthly_saving_usd": None}
    json.dumps(e)  # serialisable as is


def test_append_and_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "history.jsonl"
    assert read_history(path) == ([], [])
    append_history(path, entry("r1"))
    append_history(path, entry("r2", route="other"))
    append_history(path, entry("r3"))
    entries, warnings = read_history(path)
    assert [e["run_id"] for e in entries] == ["r1", "r2", "r3"] and warnings == []
    assert [e["run_id"] for e in read_history(path, "support")[0]] == ["r1", "r3"]
    assert last_entry(entries, "support")["run_id"] == "r3"  # type: ignore[index]
    assert last_entry(entries, "nope") is None


def test_truncated_last_line_is_skipped_and_next_append_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_history(path, entry("r1"))
    with open(path, "a") as fh:
        fh.write('{"run_id": "r2", "route": "sup')  # killed mid-write
    entries, warnings = read_history(path)
    assert [e["run_id"] for e in entries] == ["r1"]
    assert len(warnings) == 1 and "history.jsonl:2: truncated or corrupted last line" in warnings[0]
    append_history(path, entry("r3"))
    lines = path.read_text().split("\n")
    assert lines[1] == '{"run_id": "r2", "route": "sup' and json.loads(lines[2])["run_id"] == "r3"
    entries, warnings = read_history(path)
    assert [e["run_id"] for e in entries] == ["r1", "r3"] and "corrupted line" in warnings[0]


def test_corrupted_lines_anywhere_are_skipped_with_warnings(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    good = json.dumps(entry("r1"))
    path.write_bytes(b"\xff\xfe garbage\n" + good.encode() + b"\n[1, 2]\n{\"route\": 3}\n\n" + good.encode()
                     + b"\n{\"run_id\": \"x\"}")
    entries, warnings = read_history(path)
    assert [e["run_id"] for e in entries] == ["r1", "r1"]
    assert len(warnings) == 4
    assert ":1: corrupted line" in warnings[0] and ":7:" in warnings[-1]


def test_summary_lists_regressions_first(tmp_path: Path) -> None:
    prev = entry("n2", a=t("GO"))
    cur = {**entry("n3", a=t("NO_GO", est=-0.5, lo=-0.6, hi=-0.4)), "prompt_types": {"a|b": t("NO_GO")}}
    found = find_regressions(entry("n2", **{"a|b": t("GO")}), cur, margin=0.1, cost_share=0.2)
    text = nightly_summary([("support", cur, tmp_path)], found, ["route x: no traffic"], None, "2025-03-01")
    assert text.startswith("# equiv nightly: 1 regression(s)")
    assert "support / a\\|b: was GO, now NO\\_GO" in text  # data is escaped for markdown
    assert "**Routes not run**" in text and "| support | a\\|b | **NO\\_GO** |" in text
    assert prev  # (unused otherwise)
