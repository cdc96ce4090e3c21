"""`equiv calibrate`: strict labels (exit 2 naming file:line), the seeded subset, identical answers never
judged (in-package fake/ provider through litellm), and people's labels of a run (RUN_DIR --labels).

End to end against a real HTTP server, with a judge of known accuracy: tests/integration/test_calibrate.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from equiv.calibration import CALIBRATION, read_labelled_pairs, subset
from equiv.cli import _register, app
from equiv.labels import HUMAN_LABELS
from equiv.schema import Pair

FIGURES = ("agreement", "agreement_without_ties", "kappa", "position_consistency")
N_RUN = 60  # pairs per type of the hand-made run: 4 decisive, the rest ties, so both types GO without labels


def invoke(*args: str) -> Any:
    _register()
    return CliRunner().invoke(app, ["calibrate", *args])


def labelled(pid: str, gold: Any = "baseline", ptype: str = "qa", base: Any = "b", cand: Any = "c") -> dict[str, Any]:
    row: dict[str, Any] = {
        "pair_id": pid,
        "prompt_type": ptype,
        "messages": [{"role": "user", "content": f"question {pid}"}],
        "baseline": {"model": "m1", "output": base},
        "candidate": {"model": "m2", "output": cand},
        "judgments": [],
        "error": None,
    }
    if gold is not None:
        row["gold"] = gold
    return row


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def assert_user_error(r: Any, *fragments: str) -> None:
    out = r.output
    assert r.exit_code == 2, out
    assert "Traceback" not in out and 'File "' not in out, out
    for f in fragments:
        assert f in out, (f, out)


# ---------------------------------------------------------------------------------------------
# bad input: exit 2, naming file and line


def test_missing_labels_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert_user_error(invoke(str(missing), "--judge", "fake/judge", "--out", str(tmp_path / "r")), str(missing))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        (labelled("p2", gold=None), 'no "gold"'),
        (labelled("p2", gold="both"), '"gold" must be "baseline", "candidate" or "tie"'),
        (labelled("p2", gold="Baseline"), '"gold" must be'),
        (labelled("p2", cand=None), "no candidate answer"),
        ({**labelled("p2"), "baseline": None}, "no baseline answer"),
        ({k: v for k, v in labelled("p2").items() if k != "pair_id"}, "pair_id"),
        (labelled("p1"), "pair_id 'p1' is also on line 1"),
    ],
)
def test_a_bad_line_is_exit_2_naming_file_and_line(tmp_path: Path, line: Any, fragment: str) -> None:
    labels = write_lines(tmp_path / "labels.jsonl", [labelled("p1"), line, labelled("p3")])
    r = invoke(str(labels), "--judge", "fake/judge", "--out", str(tmp_path / "r"))
    assert_user_error(r, f"{labels}:2: ", fragment)
    assert not (tmp_path / "r").exists()  # refused before any run directory or call


def test_an_empty_labels_file_and_flag_mixups(tmp_path: Path) -> None:
    empty = write_lines(tmp_path / "empty.jsonl", ["", "  "])
    assert_user_error(invoke(str(empty), "--judge", "fake/judge"), "no labelled pairs")
    labels = write_lines(tmp_path / "labels.jsonl", [labelled("p1")])
    assert_user_error(invoke(str(labels), "--labels", str(labels)), "--labels goes with a run directory")
    run = tmp_path / "run"
    run.mkdir()
    assert_user_error(invoke(str(run)), "--labels")
    assert_user_error(invoke(str(run), "--labels", str(labels), "--judge", "fake/judge"), "--judge", "not used")
    assert_user_error(invoke(str(run), "--labels", str(labels)), "not a run directory")


def test_an_unpriced_judge_is_refused_before_any_call(tmp_path: Path) -> None:
    labels = write_lines(tmp_path / "labels.jsonl", [labelled("p1")])
    r = invoke(str(labels), "--judge", "openai/no-such-model-xyz", "--out", str(tmp_path / "r"))
    assert_user_error(r, "no price known")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# the subset


def test_subset_is_seeded_stratified_and_in_input_order(tmp_path: Path) -> None:
    rows = [labelled(f"a{i:03d}", ptype="a") for i in range(90)] + [labelled(f"b{i:03d}", ptype="b") for i in range(30)]
    pairs = read_labelled_pairs(write_lines(tmp_path / "l.jsonl", rows))
    one = subset(pairs, 40, seed=3)
    assert [p.pair_id for p in one] == [p.pair_id for p in subset(list(reversed(pairs)), 40, seed=3)][::-1]
    assert Counter(p.prompt_type for p in one) == {"a": 30, "b": 10}  # proportional
    assert [p.pair_id for p in one] == sorted(p.pair_id for p in one)  # input order kept
    assert {p.pair_id for p in subset(pairs, 40, seed=4)} != {p.pair_id for p in one}
    assert subset(pairs, None, seed=3) == pairs and subset(pairs, 500, seed=3) == pairs


# ---------------------------------------------------------------------------------------------
# judging through the in-package fake/ provider (litellm's real call path)


def _facts_pair(pid: str, gold: str, good: str, *, same: bool = False) -> dict[str, Any]:
    """A pair the coverage judge (fake/judge) decides: `good` mentions more of the question's words."""
    question = f"Question {pid}: billing refund invoice export mailbox calendar schedule"
    rich, poor = "billing refund invoice export mailbox", "billing something"
    row = labelled(pid, gold=gold)
    row["messages"] = [{"role": "user", "content": question}]
    if same:
        row["baseline"]["output"], row["candidate"]["output"] = rich, f"  {rich}\n"
    else:
        row["baseline"]["output"] = rich if good == "baseline" else poor
        row["candidate"]["output"] = rich if good == "candidate" else poor
    return row


def test_identical_answers_are_not_judged_and_score_a_tie(tmp_path: Path) -> None:
    rows = [_facts_pair(f"p{i}", "candidate", "candidate") for i in range(4)]
    rows += [_facts_pair(f"q{i}", "baseline", "candidate") for i in range(2)]  # the judge disagrees with gold
    rows += [_facts_pair(f"s{i}", "tie", "baseline", same=True) for i in range(3)]
    labels = write_lines(tmp_path / "labels.jsonl", rows)
    out = tmp_path / "reports"
    r = invoke(str(labels), "--judge", "fake/judge", "--out", str(out), "--seed", "1", "-q")
    assert r.exit_code == 0, r.output
    (run,) = list(out.iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["command"] == "calibrate" and info["judge"] == "fake/judge"
    assert info["calls"]["bought_this_session"] == 2 * 6  # both orders of the 6 differing pairs, none for identical
    assert set(info["template_hashes"]) == {"pairwise.md"}
    judged = [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]
    assert [p["pair_id"] for p in judged] == [x["pair_id"] for x in rows]  # input order
    assert all(p["gold"] == x["gold"] for p, x in zip(judged, rows, strict=True))  # gold kept
    for p in judged:
        if p["pair_id"].startswith("s"):
            assert p["judgments"] == [] and p["decided_by"] == "identical"
        else:
            assert sorted(j["order"] for j in p["judgments"]) == ["baseline_first", "candidate_first"]
    cal = json.loads((run / CALIBRATION).read_text())
    assert cal["n"] == 9 and cal["n_identical"] == 3 and cal["n_failed"] == 0 and cal["n_without_ties"] == 6
    assert cal["agreement_without_ties"]["estimate"] == pytest.approx(4 / 6)
    assert cal["agreement"]["estimate"] == pytest.approx(7 / 9)  # the 3 identical pairs agree as ties
    assert cal["position_consistency"]["estimate"] == 1.0
    assert cal["confusion"]["tie"]["tie"] == 3 and cal["confusion"]["candidate"]["baseline"] == 2
    # the good answer is also the longer one here: the length judge scores the same
    assert cal["baselines"]["longer_answer_wins"]["agreement_without_ties"]["estimate"] == pytest.approx(4 / 6)
    assert cal["eval_cost_usd"] == info["eval_cost_usd"] > 0
    (row,) = cal["prompt_types"]
    assert row["prompt_type"] == "qa" and row["n"] == 9
    assert "qa" in r.stdout and "67%" in r.stdout  # the table


# ---------------------------------------------------------------------------------------------
# mode 2: people's labels of a run


def _judged(pid: str, ptype: str, verdict: str) -> dict[str, Any]:
    """A judged pair of a run: `verdict` (candidate / baseline / tie) in both orders; answers of equal length."""
    first = {"candidate": "B", "baseline": "A", "tie": "tie"}[verdict]
    second = {"candidate": "A", "baseline": "B", "tie": "tie"}[verdict]
    row = labelled(pid, gold=None, ptype=ptype, base=f"base answer {pid}", cand=f"cand answer {pid}")
    row["judgments"] = [
        {"order": "baseline_first", "winner": first, "judge": "j", "reason": ""},
        {"order": "candidate_first", "winner": second, "judge": "j", "reason": ""},
    ]
    return row


def _verdicts(i: int) -> str:
    return "candidate" if i in (0, 1) else "baseline" if i in (2, 3) else "tie"


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "20250101-000000-abc"
    rows = [_judged(f"{t}-{i:02d}", t, _verdicts(i)) for t in ("agrees", "disagrees") for i in range(N_RUN)]
    run.mkdir(parents=True)
    write_lines(run / "pairs.jsonl", rows)
    (run / "run.json").write_text(json.dumps({"run_id": run.name, "settings": {"bootstrap": 1000}}))
    return run


def _type(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in verdict["prompt_types"] if t["prompt_type"] == name)


def test_labels_of_a_run_are_recorded_merged_and_reach_the_verdict(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    _register()
    r = CliRunner().invoke(app, ["report", str(run)])
    assert r.exit_code == 0, r.output
    before = json.loads((run / "verdict.json").read_text())
    assert _type(before, "agrees")["verdict"] == _type(before, "disagrees")["verdict"] == "GO"

    # people agree with the judge on "agrees"; on "disagrees" they prefer the other side of every decisive pair
    flip = {"candidate": "baseline", "baseline": "candidate", "tie": "tie"}
    rows = [{"pair_id": f"agrees-{i:02d}", "gold": _verdicts(i), "labeller": "x"} for i in range(N_RUN)]
    rows += [{"pair_id": f"disagrees-{i:02d}", "gold": flip[_verdicts(i)]} for i in range(N_RUN)]
    rows += [{"pair_id": "elsewhere-1", "gold": "tie"}]
    labels = write_lines(tmp_path / "labels.jsonl", rows)
    r = invoke(str(run), "--labels", str(labels))
    assert r.exit_code == 0, r.output
    assert f"{2 * N_RUN} label(s) recorded" in r.output and "1 skipped" in r.output
    lines = [json.loads(x) for x in (run / HUMAN_LABELS).read_text().splitlines()]
    assert len(lines) == 2 * N_RUN and set(lines[0]) == {"pair_id", "prompt_type", "gold"}
    assert lines[0] == {"pair_id": "agrees-00", "prompt_type": "agrees", "gold": "candidate"}

    after = json.loads((run / "verdict.json").read_text())
    good, bad = _type(after, "agrees"), _type(after, "disagrees")
    assert good["human_agreement"]["n"] == bad["human_agreement"]["n"] == N_RUN
    assert good["human_agreement"]["agreement_without_ties"]["estimate"] == 1.0
    assert bad["human_agreement"]["agreement_without_ties"]["estimate"] == 0.0
    assert good["verdict"] == "GO" and bad["verdict"] != "GO"  # SPEC: >= 30 labels, agreement < 0.6: no GO
    assert (run / "summary.md").is_file() and (run / "report.html").is_file()
    cal = json.loads((run / CALIBRATION).read_text())
    assert _type(cal, "disagrees")["agreement_without_ties"] == bad["human_agreement"]["agreement_without_ties"]

    # a re-label replaces the older one, in place; other labels stay
    again = write_lines(tmp_path / "again.jsonl", [{"pair_id": "agrees-00", "gold": "tie"}])
    r = invoke(str(run), "--labels", str(again))
    assert r.exit_code == 0, r.output
    merged = [json.loads(x) for x in (run / HUMAN_LABELS).read_text().splitlines()]
    assert len(merged) == 2 * N_RUN and merged[0] == {"pair_id": "agrees-00", "prompt_type": "agrees", "gold": "tie"}


def test_labels_of_a_run_bad_input(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    none_match = write_lines(tmp_path / "other.jsonl", [{"pair_id": "zz-1", "gold": "tie"}])
    assert_user_error(invoke(str(run), "--labels", str(none_match)), "none of its 1 pair_id(s)", "zz-1")
    bad = write_lines(tmp_path / "bad.jsonl", [{"pair_id": "agrees-00", "gold": "tie"}, {"pair_id": "agrees-01"}])
    assert_user_error(invoke(str(run), "--labels", str(bad)), f"{bad}:2: ", 'no "gold"')
    no_id = write_lines(tmp_path / "noid.jsonl", [{"gold": "tie"}])
    assert_user_error(invoke(str(run), "--labels", str(no_id)), f"{no_id}:1: ", "pair_id")
    assert_user_error(invoke(str(run), "--labels", str(tmp_path / "missing.jsonl")), "missing.jsonl")
    assert not (run / HUMAN_LABELS).exists()  # nothing written by a refused command


def test_read_labelled_pairs_keeps_gold_and_extras(tmp_path: Path) -> None:
    row = {**labelled("p1", gold="tie"), "metadata": {"source": "x"}}
    (pair,) = read_labelled_pairs(write_lines(tmp_path / "l.jsonl", [row]))
    assert isinstance(pair, Pair) and (pair.model_extra or {})["gold"] == "tie"
    assert (pair.model_extra or {})["metadata"] == {"source": "x"}


def test_a_missing_template_or_a_panel_is_refused(tmp_path: Path) -> None:
    labels = write_lines(tmp_path / "labels.jsonl", [labelled("p1")])
    out = tmp_path / "r"
    r = invoke(str(labels), "--judge", "fake/judge", "--template", str(tmp_path / "nope.md"), "--out", str(out))
    assert_user_error(r, "nope.md", "not found")
    cfg = tmp_path / "equiv.toml"
    cfg.write_text('judge = ["fake/judge", "fake/judge-verbose"]\n')
    assert_user_error(invoke(str(labels), "--config", str(cfg), "--out", str(out)), "one judge at a time")
    assert not out.exists()
