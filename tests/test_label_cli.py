"""`equiv label`: the sample it draws (stratified, seeded, blind sides) and the command's messages.

The page itself is tested in a real browser in tests/report/test_label_page.py.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app
from equiv.label import MIN_PER_TYPE, allocate, json_for_script, labelable, left_side, page_data, sample
from equiv.schema import Pair

BASE_MODEL, CAND_MODEL = "gpt-4o-secret-base", "mini-secret-cand"


def pair(
    pid: str,
    ptype: str = "qa",
    base: str | None = "base answer",
    cand: str | None = "cand answer",
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "pair_id": pid,
        "prompt_type": ptype,
        "messages": [{"role": "user", "content": f"question {pid}"}],
        "baseline": None if base is None else {"model": BASE_MODEL, "output": base},
        "candidate": None if cand is None else {"model": CAND_MODEL, "output": cand},
        "judgments": [{"order": "baseline_first", "winner": "A", "judge": "judge-x", "reason": "A is better"}],
        "error": error,
    }


def pairs_of(counts: dict[str, int]) -> list[Pair]:
    return [
        Pair.model_validate(pair(f"{t}-{i:04d}", t, f"b {t} {i}", f"c {t} {i}"))
        for t, k in counts.items()
        for i in range(k)
    ]


def write_run(run: Path, rows: list[dict[str, Any]]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return run


def invoke(*args: str) -> Any:
    _register()
    return CliRunner().invoke(app, ["label", *args])


# ---------------------------------------------------------------------------------------------
# allocation and sampling


def test_allocation_is_proportional_with_a_floor_per_type() -> None:
    counts = {"big": 300, "mid": 90, "small": 10, "tiny": 2}
    alloc = allocate(counts, 60)
    assert sum(alloc.values()) == 60
    assert alloc["tiny"] == 2  # all it has
    assert alloc["small"] >= MIN_PER_TYPE
    total = sum(counts.values())
    for t in ("big", "mid"):
        assert abs(alloc[t] - 60 * counts[t] / total) <= 2.5, alloc
    assert alloc["big"] > alloc["mid"] > alloc["small"]


def test_allocation_takes_everything_when_there_are_fewer_pairs() -> None:
    assert allocate({"a": 10, "b": 4}, 60) == {"a": 10, "b": 4}
    assert allocate({"a": 10, "b": 4}, 14) == {"a": 10, "b": 4}


def test_allocation_with_more_types_than_n_still_totals_n() -> None:
    counts = {f"t{i}": 10 for i in range(12)}
    for n in (1, 5, 12, 30):
        alloc = allocate(counts, n)
        assert sum(alloc.values()) == n
        assert max(alloc.values()) - min(alloc.values()) <= 1  # equal types: spread evenly


def test_sample_counts_per_type_follow_the_allocation() -> None:
    counts = {"triage": 120, "reply": 60, "summarize": 5}
    items = sample(pairs_of(counts), 40, seed=3)
    got = Counter(i.pair.prompt_type for i in items)
    assert got == Counter(allocate(counts, 40))
    assert sum(got.values()) == 40 and got["summarize"] >= MIN_PER_TYPE
    assert len({i.pair.pair_id for i in items}) == 40


def test_sample_is_reproducible_and_independent_of_file_order() -> None:
    pairs = pairs_of({"a": 50, "b": 30, "c": 8})
    first = sample(pairs, 30, seed=7)
    shuffled = pairs[:]
    random.Random(1).shuffle(shuffled)
    again = sample(shuffled, 30, seed=7)
    assert [(i.pair.pair_id, i.left) for i in first] == [(i.pair.pair_id, i.left) for i in again]
    other = sample(pairs, 30, seed=8)
    assert [i.pair.pair_id for i in other] != [i.pair.pair_id for i in first]


def test_sample_takes_all_when_fewer_than_n() -> None:
    pairs = pairs_of({"a": 5, "b": 3})
    assert {i.pair.pair_id for i in sample(pairs, 60)} == {p.pair_id for p in pairs}


def test_unlabelable_pairs_are_left_out() -> None:
    rows = [
        pair("ok1", base="yes", cand="no"),
        pair("same", base="  same answer\n", cand="same answer"),  # identical after strip
        pair("err", error="candidate call failed"),
        pair("nocand", cand=None),
        pair("nullout", base=None),
        pair("ok2", base="a", cand="b"),
        pair("ok2", base="a", cand="a"),  # a later line of the same pair wins: now identical
    ]
    pairs = [Pair.model_validate(r) for r in rows]
    pool, skipped = labelable(pairs)
    assert [p.pair_id for p in pool] == ["ok1"]
    assert (skipped.failed, skipped.missing, skipped.identical, skipped.duplicate) == (1, 2, 2, 1)
    assert [i.pair.pair_id for i in sample(pairs, 10)] == ["ok1"]


def test_sides_are_about_balanced_and_seeded() -> None:
    items = sample(pairs_of({"a": 300, "b": 200}), 500, seed=0)
    share = sum(i.left == "baseline" for i in items) / len(items)
    assert 0.42 < share < 0.58
    assert all(i.left == left_side(i.pair.pair_id, 0) for i in items)
    flipped = sum(left_side(i.pair.pair_id, 0) != left_side(i.pair.pair_id, 1) for i in items)
    assert 150 < flipped < 350  # another seed draws the sides again


def test_sides_do_not_depend_on_pythons_hash_seed() -> None:
    code = "from equiv.label import left_side; print([left_side(f'p{i}', 0) for i in range(40)])"
    outs = set()
    for hash_seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        outs.add(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
        )
    assert len(outs) == 1


def test_page_data_carries_no_model_name_and_maps_sides() -> None:
    items = sample(pairs_of({"a": 20}), 20)
    data = page_data("run-1", items)
    text = json.dumps(data)
    assert BASE_MODEL not in text and CAND_MODEL not in text
    assert "judge-x" not in text and "A is better" not in text  # no judge verdicts or reasons
    for item, d in zip(items, data["items"], strict=True):
        assert item.pair.baseline is not None and item.pair.candidate is not None
        first = item.pair.baseline.output if d["left"] == "baseline" else item.pair.candidate.output
        assert d["answers"][0] == first


def test_json_for_script_cannot_close_the_block() -> None:
    data = {"t": "</script><script>window.pwned=1</script> & <!-- \u2028", "u": "<img src=x onerror=alert(1)>"}
    text = json_for_script(data)
    assert not any(c in text for c in "<>&\u2028")
    assert json.loads(text) == data


# ---------------------------------------------------------------------------------------------
# the command


def test_label_writes_the_page_and_says_how_to_use_it(tmp_path: Path) -> None:
    rows = [pair(f"p{i}", ["x", "y"][i % 2], f"b{i}", f"c{i}") for i in range(30)]
    rows.append(pair("same", base="same", cand="same"))
    run = write_run(tmp_path / "20250301-101500-abc", rows)
    r = invoke(str(run), "--n", "10", "--seed", "4")
    assert r.exit_code == 0, r.output
    page = run / "label.html"
    assert page.is_file()
    assert str(page) in r.output
    assert "10 pairs to label" in r.output and "1 with identical answers" in r.output
    assert "1 = answer 1 is better" in r.output and "0 = tie" in r.output and "labels.jsonl" in r.output
    assert f"equiv calibrate {run} --labels labels.jsonl" in r.output
    html = page.read_text(encoding="utf-8")
    assert BASE_MODEL not in html and CAND_MODEL not in html and "judge-x" not in html
    assert "Content-Security-Policy" in html and "default-src &#39;none&#39;" in html
    assert html.count("<script") == 2  # the data block and the page's own script


def test_label_is_reproducible_and_out_moves_the_page(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [pair(f"p{i}", "t", f"b{i}", f"c{i}") for i in range(40)])
    assert invoke(str(run), "--n", "12").exit_code == 0
    other = tmp_path / "elsewhere" / "page.html"
    r = invoke(str(run), "--n", "12", "--out", str(other))
    assert r.exit_code == 0, r.output
    assert other.read_text(encoding="utf-8") == (run / "label.html").read_text(encoding="utf-8")


def test_label_refuses_a_folder_without_pairs(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = invoke(str(tmp_path / "empty"))
    assert r.exit_code == 2
    assert "no pairs.jsonl here" in r.output and "Traceback" not in r.output
    r = invoke(str(tmp_path / "missing"))
    assert r.exit_code == 2 and "not a run directory" in r.output


def test_label_refuses_a_run_with_nothing_to_label(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "run",
        [pair("a", base="same", cand="same"), pair("b", error="judge failed"), pair("c", cand=None)],
    )
    r = invoke(str(run))
    assert r.exit_code == 2
    assert "no pair to label among 3" in r.output
    assert "1 failed, 1 missing an answer, 1 with identical answers" in r.output
    assert not (run / "label.html").exists()


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_label_refuses_a_bad_n(tmp_path: Path, bad: str) -> None:
    run = write_run(tmp_path / "run", [pair("a")])
    r = invoke(str(run), "--n", bad)
    assert r.exit_code == 2
