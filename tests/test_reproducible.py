"""Reproducibility: the same traffic, seed and cached calls give a byte-identical verdict.json, apart from
the run id (and any timestamp), whether the verdict comes from the run, a resumed run, a run interrupted and
resumed, a fresh run, or `equiv report` on its pairs.jsonl.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app

MODELS = ("--baseline", "fake/skill-90", "--candidate", "fake/skill-80", "--judge", "fake/judge")
TOPICS = ["refund", "password", "invoice", "export", "calendar", "storage", "sync", "billing"]


def traffic(tmp_path: Path) -> Path:
    rows = []
    for t in ("triage", "reply"):
        for i in range(40):
            words = " ".join(TOPICS[(i + k) % len(TOPICS)] for k in range(5))
            msgs = [{"role": "user", "content": f"[{t}] customer {i} asks about {words} account{i % 7}"}]
            rows.append(
                {
                    "id": f"{t}-{i}",
                    "prompt_type": t,
                    "messages": msgs,
                    "response": f"About {words}: handled.",
                    "params": {"max_tokens": 200},
                }
            )
    rows.append({"id": "no-response", "prompt_type": "triage", "prompt": "logged without its answer"})  # a note
    p = tmp_path / "traffic.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def cli(*args: str) -> int:
    _register()
    r = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return r.exit_code


def normalized(path: Path) -> bytes:
    """verdict.json with the run id and any ISO timestamp masked: everything else must match byte for byte."""
    data = path.read_bytes()
    run_id = json.loads(data)["run_id"]
    data = data.replace(run_id.encode(), b"<run_id>")
    return re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?", b"<time>", data)


def only_dir(out: Path) -> Path:
    (d,) = [p for p in out.iterdir() if p.is_dir()]
    return d


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    tmp = tmp_path_factory.mktemp("repro")
    t = traffic(tmp)
    assert cli("compare", str(t), *MODELS, "--seed", "3", "--bootstrap", "500", "--out", str(tmp / "a"), "--quiet") == 0
    run = only_dir(tmp / "a")
    return t, run, normalized(run / "verdict.json")


def test_the_same_command_again_rereports_the_identical_verdict(first_run: tuple[Path, Path, bytes]) -> None:
    t, run, want = first_run
    assert (
        cli("compare", str(t), *MODELS, "--seed", "3", "--bootstrap", "500", "--out", str(run.parent), "--quiet") == 0
    )
    assert normalized(run / "verdict.json") == want


def test_equiv_report_twice_is_byte_identical_and_matches_the_run(
    first_run: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    _t, run, want = first_run
    outs = []
    for name in ("r1", "r2"):
        assert cli("report", str(run), "--out", str(tmp_path / name)) == 0
        outs.append((tmp_path / name / "verdict.json").read_bytes())
    assert outs[0] == outs[1]
    assert normalized(tmp_path / "r1" / "verdict.json") == want  # the run's notes included
    assert "1 record(s) skipped: no logged response" in json.loads(outs[0])["notes"]


def test_a_fresh_run_of_the_same_traffic_and_seed_gives_the_same_verdict(
    first_run: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    t, _run, want = first_run
    assert cli("compare", str(t), *MODELS, "--seed", "3", "--bootstrap", "500", "--out", str(tmp_path), "--quiet") == 0
    assert normalized(only_dir(tmp_path) / "verdict.json") == want


def test_a_run_stopped_by_the_spend_cap_and_resumed_gives_the_same_verdict(
    first_run: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    t, _run, want = first_run
    args = ("compare", str(t), *MODELS, "--seed", "3", "--bootstrap", "500", "--out", str(tmp_path), "--quiet")
    assert cli(*args, "--max-spend", "0.01") == 4  # stopped part-way
    run = only_dir(tmp_path)
    assert json.loads((run / "verdict.json").read_text())["aborted"]
    assert cli(*args) == 0
    assert normalized(run / "verdict.json") == want
