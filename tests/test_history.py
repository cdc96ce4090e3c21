"""history.jsonl: append/read robustness, the references tonight is compared with, the regression rules
(pure), the two-run statistics, and the night state that lets a killed nightly resume."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from equiv.history import (
    DropTests,
    Reference,
    append_history,
    assess,
    find_references,
    history_entry,
    last_entry,
    night_to_resume,
    nightly_summary,
    read_history,
    read_night_state,
    record_findings,
    update_night_state,
    vanished_types,
)
from equiv.schema import CostSummary, Interval, TypeVerdict, Verdict
from equiv.stats.regression import (
    SELECTION_FACTOR,
    drop_levels,
    drop_p_value,
    drop_p_value_normal,
    drop_test,
    se_from_interval,
)


def t(
    verdict: str = "GO", est: float = 0.0, lo: float = -0.05, hi: float = 0.05, cost: float = 0.001, base: float = 0.01
) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "estimate": est,
        "ci_low": lo,
        "ci_high": hi,
        "candidate_usd_per_request": cost,
        "baseline_usd_per_request": base,
        "saving": 1 - cost / base,
    }


def entry(run_id: str = "r1", route: str = "support", **types: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "route": route, "prompt_types": types}


def ref(
    name: str = "a",
    verdict: str = "GO",
    run_id: str = "q-1",
    est: float = 0.05,
    cost: float = 0.001,
    base: float = 0.01,
    live: bool | None = None,
) -> Reference:
    return Reference(
        prompt_type=name,
        run_id=run_id,
        verdict=verdict,
        source="routing.json",
        live=verdict == "GO" if live is None else live,
        estimate=est,
        ci_low=est - 0.1,
        ci_high=est + 0.1,
        alpha=0.05,
        baseline_usd_per_request=base,
        candidate_usd_per_request=cost,
    )


RNG = np.random.default_rng(0)


def draws(center: float, sd: float = 0.04, n: int = 2000) -> np.ndarray:
    return center + sd * RNG.standard_normal(n)


def drops_for(**pairs: tuple[float, float]) -> DropTests:
    """DropTests from (tonight's estimate, the reference's estimate) per type, with normal draws around them."""
    out = DropTests()
    for name, (new, old) in pairs.items():
        x = drop_test(draws(new), draws(old), estimate=new, reference_estimate=old, selected=True)
        assert x is not None
        out.tests[name] = x
    return out


def kinds(
    cur: dict[str, Any],
    refs: dict[str, Reference],
    tests: DropTests | None = None,
    share: float = 0.2,
    correction: str = "none",
) -> list[str]:
    found, _ = assess("support", cur, refs, tests or DropTests(), alpha=0.05, correction=correction, cost_share=share)
    return [f"{f.prompt_type}:{f.kind}" for f in found]


# ---------------------------------------------------------------------------------------------- statistics


def test_drop_p_value_is_the_share_of_differences_at_or_above_zero() -> None:
    new, old = np.array([0.0, 0.1, -0.2, 0.3]), np.array([0.1, 0.1, 0.0, 0.0])
    assert drop_p_value(new, old) == 0.5  # differences -0.1, 0, -0.2, 0.3: two are >= 0
    assert drop_p_value(new, old[:2]) == 0.5  # unequal lengths: the shorter one
    assert np.isnan(drop_p_value(np.array([]), old))
    # well apart: tiny; identical: 1 (no drop); above: 1
    assert drop_p_value(draws(-0.3), draws(0.1)) < 0.001
    assert drop_p_value(np.zeros(100), np.zeros(100)) == 1.0
    assert drop_p_value(draws(0.3), draws(0.0)) > 0.99


def test_normal_fallback_agrees_with_the_draws() -> None:
    new, old = draws(-0.05, 0.04, 20000), draws(0.05, 0.03, 20000)
    assert drop_p_value_normal(new, 0.05, 0.03) == pytest.approx(drop_p_value(new, old), abs=0.01)
    assert se_from_interval(-0.1, 0.1, 0.05) == pytest.approx(0.1 / 1.6449, rel=1e-3)


def test_the_reference_selected_by_its_go_doubles_the_p_value() -> None:
    new, old = draws(-0.06), draws(0.04)
    sel = drop_test(new, old, estimate=-0.06, reference_estimate=0.04, selected=True)
    raw = drop_test(new, old, estimate=-0.06, reference_estimate=0.04, selected=False)
    assert sel is not None and raw is not None
    assert sel.p_value == pytest.approx(min(1.0, SELECTION_FACTOR * raw.p_value)) and sel.p_raw == raw.p_value
    assert sel.diff == pytest.approx(-0.10) and sel.method == "bootstrap"
    # the bound is at 1 - level / 2 when adjusted; a significant drop has it below zero
    assert sel.upper_bound(0.05) > raw.upper_bound(0.05)
    assert sel.significant(0.05) == (sel.upper_bound(0.05) < 0)
    # a rise is never a significant drop
    up = drop_test(draws(0.3), draws(0.0), estimate=0.3, reference_estimate=0.0, selected=True)
    assert up is not None and not up.significant(0.05)
    # without draws nor interval: not testable
    assert drop_test(new, None, estimate=-0.06, reference_estimate=0.04, selected=True) is None
    normal = drop_test(new, None, estimate=-0.06, reference_estimate=0.04, selected=True, reference_se=0.04)
    assert normal is not None and normal.method == "normal"


def test_levels_follow_the_correction() -> None:
    ps = {"a": 0.01, "b": 0.02, "c": 0.5}
    assert drop_levels(ps, 0.05, "none") == {"a": 0.05, "b": 0.05, "c": 0.05}
    assert drop_levels(ps, 0.06, "bonferroni") == pytest.approx({"a": 0.02, "b": 0.02, "c": 0.02})
    holm = drop_levels(ps, 0.06, "holm")  # 0.01 <= 0.02, 0.02 <= 0.03, 0.5 > 0.06
    assert holm == pytest.approx({"a": 0.02, "b": 0.03, "c": 0.06})
    stop = drop_levels({"a": 0.03, "b": 0.031}, 0.05, "holm")  # 0.03 > 0.025: both fail at 0.025
    assert stop == pytest.approx({"a": 0.025, "b": 0.025})
    assert drop_levels({}, 0.05, "holm") == {}


# ---------------------------------------------------------------------------------------------- rules


def test_no_reference_nothing_live_no_regression() -> None:
    assert kinds(entry(a=t("NO_GO")), {}) == []
    assert kinds(entry(a=t("NO_GO")), {"a": ref(verdict="INCONCLUSIVE")}) == []  # never GO: routes to baseline
    assert kinds(entry(a=t("NO_GO")), {"a": ref(live=False)}) == []  # already routed back


def test_no_go_is_a_regression_inconclusive_only_a_warning() -> None:
    refs = {"a": ref()}
    assert kinds(entry(a=t("NO_GO")), refs) == ["a:no_go"]
    assert kinds(entry(a=t("INCONCLUSIVE")), refs) == ["a:inconclusive"]
    assert kinds(entry(a=t("GO")), refs) == []
    found, records = assess(
        "support", entry("n2", a=t("INCONCLUSIVE")), refs, DropTests(), alpha=0.05, correction="none", cost_share=0.2
    )
    assert not found[0].is_regression and records["a"]["status"] == "warning"
    assert str(found[0]).startswith("support / a: was GO, now INCONCLUSIVE: a warning, not a regression")
    assert str(found[0]).endswith("(since run q-1)")


def test_a_significant_drop_is_a_regression_an_insignificant_one_is_not() -> None:
    refs = {"a": ref(est=0.1)}
    assert kinds(entry(a=t("GO", est=-0.2)), refs, drops_for(a=(-0.2, 0.1))) == ["a:quality_drop"]
    assert kinds(entry(a=t("GO", est=0.08)), refs, drops_for(a=(0.08, 0.1))) == []
    assert kinds(entry(a=t("GO", est=0.3)), refs, drops_for(a=(0.3, 0.1))) == []  # better is fine
    both = kinds(entry(a=t("NO_GO", est=-0.5)), refs, drops_for(a=(-0.5, 0.1)))
    assert both == ["a:no_go", "a:quality_drop"]
    _, records = assess(
        "support",
        entry("night-3", a=t("GO", est=-0.2)),
        refs,
        drops_for(a=(-0.2, 0.1)),
        alpha=0.05,
        correction="none",
        cost_share=0.2,
    )
    rec = records["a"]
    assert rec["status"] == "regression" and rec["kinds"] == ["quality_drop"]
    assert rec["run_id"] == "night-3" and rec["reference_run_id"] == "q-1"
    assert rec["estimate"] == -0.2 and rec["reference_estimate"] == 0.1 and rec["diff"] == pytest.approx(-0.3)
    assert rec["p_value"] <= rec["level"] == 0.05 and rec["upper_bound"] < 0 and rec["selection_adjusted"]


def test_an_untestable_drop_is_a_warning() -> None:
    tests = DropTests(untested={"a": "reference run q-1 not found"})
    assert kinds(entry(a=t("GO")), {"a": ref()}, tests) == ["a:not_tested"]
    assert kinds(entry(a=t("NO_GO")), {"a": ref()}, tests) == ["a:no_go", "a:not_tested"]


def test_cost_rise_is_measured_against_the_baseline_on_the_same_traffic() -> None:
    refs = {"a": ref(cost=0.001, base=0.01)}  # the candidate cost 10% of the baseline
    assert kinds(entry(a=t(cost=0.00121)), refs) == ["a:cost_rise"]
    assert kinds(entry(a=t(cost=0.00119)), refs) == []
    assert kinds(entry(a=t(cost=0.00119)), refs, share=0.1) == ["a:cost_rise"]
    assert kinds(entry(a=t(cost=0.0005)), refs) == []  # cheaper is fine
    # longer prompts tonight: both models cost more per request, the swap is as good as before
    assert kinds(entry(a=t(cost=0.002, base=0.02)), refs) == []
    # no baseline cost known: per request
    no_base = {**t(cost=0.00121), "baseline_usd_per_request": None}
    assert kinds(entry(a=no_base), refs) == ["a:cost_rise"]
    assert kinds(entry(a=t()), {"a": ref(cost=0.0, base=0.0)}) == []  # no meaningful base to compare
    assert kinds(entry(a={**t(), "candidate_usd_per_request": None}), refs) == []


def test_a_live_type_without_traffic_is_a_warning() -> None:
    refs = {"a": ref("a"), "gone": ref("gone"), "never": ref("never", verdict="NO_GO")}
    assert kinds(entry(a=t()), refs) == ["gone:not_rechecked"]
    prev = entry(a=t("GO"), gone=t("GO"), old_inc=t("INCONCLUSIVE"))
    assert vanished_types(prev, entry(a=t())) == ["gone"] and vanished_types(None, entry()) == []


def test_findings_are_recorded_in_the_history_entry() -> None:
    refs = {"a": ref(est=0.1), "b": ref("b"), "c": ref("c", verdict="INCONCLUSIVE")}
    cur = entry("night-3", a=t("NO_GO", est=-0.4), b=t("INCONCLUSIVE"), c=t("NO_GO"))
    found, records = assess(
        "support", cur, refs, drops_for(a=(-0.4, 0.1)), alpha=0.05, correction="none", cost_share=0.2
    )
    record_findings(cur, found, records)
    assert cur["regressions"] == [
        "support / a: was GO, now NO_GO (since run q-1)",
        next(str(f) for f in found if f.kind == "quality_drop"),
    ]
    assert cur["warnings"] == [str(f) for f in found if f.prompt_type == "b"]
    assert cur["prompt_types"]["a"]["nightly"]["status"] == "regression"
    assert cur["prompt_types"]["b"]["nightly"]["status"] == "warning"
    assert cur["prompt_types"]["c"]["nightly"] == {
        "run_id": "night-3",
        "status": "not_live",
        "reference_run_id": "q-1",
        "reference_verdict": "INCONCLUSIVE",
    }
    kinds_ = {(f["prompt_type"], f["kind"], f["severity"]) for f in cur["findings"]}
    assert kinds_ == {
        ("a", "no_go", "regression"),
        ("a", "quality_drop", "regression"),
        ("b", "inconclusive", "warning"),
    }
    json.dumps(cur)


# ---------------------------------------------------------------------------------------------- references


def write_run(folder: Path, run_id: str, est: float = 0.1) -> Path:
    run = folder / run_id
    run.mkdir(parents=True)
    (run / "pairs.jsonl").write_text("")
    v = verdict().model_copy(update={"run_id": run_id})
    v.prompt_types[0].quality_diff = Interval(estimate=est, ci_low=est - 0.1, ci_high=est + 0.1)
    (run / "verdict.json").write_text(v.model_dump_json())
    return run


def test_references_come_from_routing_json_and_its_runs(tmp_path: Path) -> None:
    run = write_run(tmp_path / "elsewhere", "20250301-000000-aaa", est=0.12)
    routing = {
        "baseline": "big",
        "candidate": "small",
        "run_id": run.name,
        "run_dir": str(run),
        "prompt_types": {
            "triage": {"model": "small", "verdict": "GO", "run_id": run.name},
            "reply": {"model": "big", "verdict": "INCONCLUSIVE", "run_id": run.name},
            "back": {"model": "big", "verdict": "GO", "run_id": "night-9"},
        },
    }
    refs = find_references("support", routing, [], tmp_path / "reports")
    assert refs["triage"].live and refs["triage"].run_dir == run and refs["triage"].estimate == 0.12
    assert refs["triage"].candidate_usd_per_request == 0.001 and refs["triage"].source == "routing.json"
    assert not refs["reply"].live and not refs["back"].live  # INCONCLUSIVE; routed back to the baseline
    # a run in OUT is found by its id; one nowhere is None (the figures then come from the history, if any)
    out = tmp_path / "reports"
    write_run(out, "q-2")
    hist = [{"route": "support", "run_id": "q-3", "prompt_types": {"x": t(est=0.2, lo=0.15, hi=0.25)}, "alpha": 0.05}]
    routing2 = {
        "candidate": "small",
        "prompt_types": {
            "triage": {"model": "small", "verdict": "GO", "run_id": "q-2"},
            "x": {"model": "small", "verdict": "GO", "run_id": "q-3"},
        },
    }
    refs = find_references("support", routing2, hist, out)
    assert refs["triage"].run_dir == out / "q-2"
    assert refs["x"].run_dir is None and refs["x"].estimate == 0.2 and refs["x"].ci_low == pytest.approx(0.15)


def test_without_routing_the_first_go_night_is_the_reference(tmp_path: Path) -> None:
    hist = [
        entry("n1", a=t("INCONCLUSIVE")),
        entry("n2", a=t("GO", est=0.3), b=t("NO_GO")),
        entry("n3", a=t("GO", est=0.1), b=t("GO")),
        entry("n1", route="other", a=t("GO")),
    ]
    refs = find_references("support", None, hist, tmp_path)
    assert refs["a"].run_id == "n2" and refs["a"].estimate == 0.3 and refs["a"].source == "history"
    assert refs["b"].run_id == "n3" and set(refs) == {"a", "b"}
    assert find_references("support", None, hist, tmp_path, exclude_run_id="n2")["a"].run_id == "n3"


# ---------------------------------------------------------------------------------------------- night state


def test_a_killed_night_is_resumed_with_its_window(tmp_path: Path) -> None:
    path = tmp_path / "nightly-state.json"
    assert read_night_state(path) == {"schema_version": 1, "routes": {}}
    now = datetime(2025, 3, 2, 3, 0, tzinfo=UTC)
    start = (now - timedelta(hours=24)).isoformat()
    update_night_state(
        path, "support", status="running", since_arg="24h", since=start, started_at="2025-03-02T03:00:00Z"
    )
    state = read_night_state(path)
    later = now + timedelta(minutes=40)
    # the same command 40 minutes later: the same window start (so the same run key and directory)
    assert night_to_resume(state, "support", "24h", later, timedelta(hours=24)) == now - timedelta(hours=24)
    assert night_to_resume(state, "other", "24h", later, timedelta(hours=24)) is None
    assert night_to_resume(state, "support", "12h", later, timedelta(hours=12)) is None  # another command
    assert night_to_resume(state, "support", "24h", now + timedelta(hours=25), timedelta(hours=24)) is None  # stale
    assert night_to_resume(state, "support", "2h", now + timedelta(hours=3), timedelta(hours=2)) is None
    update_night_state(path, "support", status="done", run_id="r1")
    assert night_to_resume(read_night_state(path), "support", "24h", later, timedelta(hours=24)) is None
    path.write_text("{not json")
    assert read_night_state(path)["routes"] == {}


# ---------------------------------------------------------------------------------------------- file


def verdict() -> Verdict:
    tv = TypeVerdict(
        prompt_type="triage",
        n=40,
        n_failed=1,
        verdict="GO",
        reasons=["ok"],
        quality_diff=Interval(estimate=0.1, ci_low=-0.02, ci_high=0.2),
        lc_quality_diff=Interval(estimate=0.08, ci_low=-0.04, ci_high=0.19),
        win_rate=0.55,
        tie_rate=0.1,
        position_consistency=0.9,
        judge_check=None,
        mean_chars=None,
        cost=CostSummary(
            baseline_usd_per_request=0.01,
            candidate_usd_per_request=0.001,
            saving=Interval(estimate=0.9, ci_low=0.89, ci_high=0.91),
        ),
        samples_needed=None,
    )
    return Verdict(
        run_id="20250301-020000-abc",
        baseline="gpt-4o",
        candidate="gpt-4o-mini",
        judge="j",
        margin=0.1,
        alpha=0.05,
        correction="none",
        bootstrap=1000,
        seed=0,
        eval_cost_usd=0.5,
        verdict="GO",
        prompt_types=[tv],
    )


def test_history_entry_shape() -> None:
    e = history_entry(
        "support",
        verdict(),
        run_dir=Path("reports/x"),
        since="2025-03-01T00:00:00+00:00",
        timestamp="2025-03-02T02:00:00Z",
    )
    assert e["route"] == "support" and e["run_id"] == "20250301-020000-abc" and e["decided_at"] == e["timestamp"]
    tt = e["prompt_types"]["triage"]
    assert tt == {
        "verdict": "GO",
        "n": 40,
        "n_failed": 1,
        "estimate": 0.1,
        "ci_low": -0.02,
        "ci_high": 0.2,
        "lc_estimate": 0.08,
        "lc_ci_low": -0.04,
        "lc_ci_high": 0.19,
        "baseline_usd_per_request": 0.01,
        "candidate_usd_per_request": 0.001,
        "saving": 0.9,
        "saving_ci_low": 0.89,
        "saving_ci_high": 0.91,
        "monthly_saving_usd": None,
    }
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
    path.write_bytes(
        b"\xff\xfe garbage\n" + good.encode() + b'\n[1, 2]\n{"route": 3}\n\n' + good.encode() + b'\n{"run_id": "x"}'
    )
    entries, warnings = read_history(path)
    assert [e["run_id"] for e in entries] == ["r1", "r1"]
    assert len(warnings) == 4
    assert ":1: corrupted line" in warnings[0] and ":7:" in warnings[-1]


def test_summary_lists_regressions_then_warnings() -> None:
    refs = {"a|b": ref("a|b"), "w": ref("w")}
    cur = entry("n3", **{"a|b": t("NO_GO", est=-0.5, lo=-0.6, hi=-0.4), "w": t("INCONCLUSIVE")})
    found, records = assess("support", cur, refs, DropTests(), alpha=0.05, correction="none", cost_share=0.2)
    record_findings(cur, found, records)
    text = nightly_summary(
        [("support", cur, Path("/nonexistent"))],
        found,
        ["route x: no traffic"],
        None,
        "2025-03-01",
        ["support / a|b: back to big"],
    )
    assert text.startswith("# equiv nightly: 1 regression(s)")
    assert "support / a\\|b: was GO, now NO\\_GO" in text  # data is escaped for markdown
    assert text.index("**Regressions**") < text.index("**Warnings** (not regressions)") < text.index("| route |")
    assert "**Routed back to the baseline**" in text and "**Routes not run**" in text
    assert "| support | a\\|b | **NO\\_GO** |" in text
