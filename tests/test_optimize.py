"""`equiv optimize` end to end on the simulated world (in-package fake provider through litellm): a prompt
search on train, selection on validation, qualification on a disjoint held-out split only.

`fake/skill-99-v2-instr` is only as good as its instructions (its skill needs "every detail" in its system
prompt); `fake/skill-99-v2-memo` is perfect on a prompt its system prompt quotes and at half skill otherwise,
and `fake/reflect-copy` proposes prompts that quote the judged training requests: a search that leaked
training prompts into the held-out verdict would show it there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app

pytest.importorskip("gepa")
TRAFFIC = Path(__file__).resolve().parents[1] / "fixtures" / "traffic.jsonl"


def _config(folder: Path, model: str) -> Path:
    lines = ['baseline = "fake/skill-99"', 'judge = "fake/judge"', "per_type = 120", "bootstrap = 2000"]
    lines += ["[[candidates]]", 'name = "mini"', f'model = "{model}"']
    for name, (pin, pout) in {
        "fake/skill-99": (2.5, 10.0),
        model: (0.15, 0.6),
        "fake/judge": (2.0, 8.0),
        "fake/reflect": (2.0, 8.0),
        "fake/reflect-copy": (2.0, 8.0),
    }.items():
        lines += [f'[models."{name}"]', f"input_cost_per_mtok = {pin}", f"output_cost_per_mtok = {pout}"]
    path = folder / "equiv.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _optimize(folder: Path, model: str, *args: str):
    _register()
    config = _config(folder, model)
    return CliRunner().invoke(
        app,
        [
            "optimize",
            str(TRAFFIC),
            "--config",
            str(config),
            "--types",
            "ticket-triage",
            "--out",
            str(folder / "reports"),
            "--prompts",
            str(folder / "prompts"),
            "-q",
            *args,
        ],
        catch_exceptions=False,
    )


def _ids(path: Path) -> set[str]:
    return {json.loads(line)["id"].split("~")[0] for line in path.read_text().splitlines()}


def test_search_selects_on_validation_and_qualifies_held_out(tmp_path):
    r = _optimize(tmp_path, "fake/skill-99-v2-instr", "--budget-usd", "2", "--reflection-model", "fake/reflect")
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "prompts" / "ticket-triage.json").read_text())
    assert "every detail" in data["system_prompt"].lower() and "every detail" not in data["seed_prompt"].lower()
    s = data["search"]
    assert s["best"]["val"] > s["seed"]["val"] + 0.3  # found on train, confirmed on validation
    assert data["heldout"]["verdict"] == "GO"
    assert data["eval_cost_usd"] <= 2.0 and data["cautions"] == []  # reflection from another family
    sp = data["splits"]
    assert sp["train"] + sp["val"] + sp["heldout"] == 120
    # the held-out run saw only held-out prompts: no prompt of the search is among them
    work = next((tmp_path / "reports").glob("optimize-ticket-triage-*"))
    log = json.loads((work / "search.json").read_text())["log"]
    searched = {i for entry in log for i in entry["ids"]}
    held = _ids(work / "heldout.jsonl")
    assert searched and held and not searched & held
    run = Path(data["heldout"]["run_dir"])
    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == sp["heldout"] and {p["pair_id"] for p in pairs} <= held
    info = json.loads((run / "run.json").read_text())
    assert "+" in info["optimize"]["diff"] and "every detail" in info["optimize"]["diff"]
    assert info["candidates"][0]["name"] == "mini+optimized"

    # a second run resumes: everything is served from the call cache, the same prompt comes out
    calls_before = (work / "calls.jsonl").read_text()
    again = _optimize(tmp_path, "fake/skill-99-v2-instr", "--budget-usd", "2", "--reflection-model", "fake/reflect")
    assert again.exit_code == 0, again.output
    assert (work / "calls.jsonl").read_text() == calls_before
    data2 = json.loads((tmp_path / "prompts" / "ticket-triage.json").read_text())
    assert data2["system_prompt"] == data["system_prompt"]
    assert data2["search"]["spend_this_session_usd"] == 0


def test_memorizing_training_prompts_does_not_leak_into_the_held_out_verdict(tmp_path):
    r = _optimize(tmp_path, "fake/skill-99-v2-memo", "--budget-usd", "3", "--reflection-model", "fake/reflect-copy")
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "prompts" / "ticket-triage.json").read_text())
    work = next((tmp_path / "reports").glob("optimize-ticket-triage-*"))
    log = json.loads((work / "search.json").read_text())["log"]
    # a copied prompt does win on the training requests it quotes ...
    train_best = max((sum(e["scores"]) / len(e["scores"]) for e in log if len(e["ids"]) <= 3), default=0)
    assert train_best > 0.5
    # ... and not on validation or held-out prompts, which it never saw
    assert data["search"]["best"]["val"] < 0.3
    assert data["heldout"]["verdict"] == "NO_GO"


def test_budget_that_cannot_pay_for_qualification_is_exit_2(tmp_path):
    r = _optimize(tmp_path, "fake/skill-99-v2-instr", "--budget-usd", "0.001")
    assert r.exit_code == 2
    assert "does not cover qualifying on the held-out split" in r.output
    assert not list((tmp_path / "reports").glob("*/calls.jsonl"))


def test_default_reflection_model_is_the_judge_with_a_caution(tmp_path):
    r = _optimize(tmp_path, "fake/skill-99-v2-instr", "--budget-usd", "2", "--max-metric-calls", "10")
    # fake/judge is no reflection model (its reply is no prompt): the search keeps what validates best
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "prompts" / "ticket-triage.json").read_text())
    assert data["reflection_model"] == "fake/judge"
    assert any("judge's family" in c for c in data["cautions"])
    assert "caution" in r.output


def test_the_proposal_is_the_last_fenced_block_unwrapped_from_json():
    from equiv.optimize import proposal_from

    assert proposal_from("ideas\n```\nfirst\n```\nthen\n```text\nsecond\n```\n") == "second"
    assert proposal_from("no fence at all") == "no fence at all"
    assert proposal_from('```json\n{"system_prompt": "Be brief."}\n```') == "Be brief."
    assert proposal_from('```\n{"a": 1, "b": 2}\n```') == '{"a": 1, "b": 2}'  # not a prompt: kept as written
