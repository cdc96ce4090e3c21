"""Several candidate configurations in one run (SPEC "Candidates"), end to end through litellm against the
loopback server: the same cheap model with and without its own system prompt, verdicts per candidate, the
cheapest GO recommended, its cost counted with its own (longer) prompt, routing that carries the
configuration, and the cost gate.

The loopback's `skill-99-v2-instr` is only as good as its instructions: at its skill when its system prompt
asks for "every detail", at half of it otherwise (equiv/llm/fake.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from equiv.testing.loopback import LoopbackServer

from .conftest import PRICES, load_verdict, make_records, only_run_dir, write_jsonl

TUNED = "You answer support tickets. Mention every detail of the customer's message, in their order."
CHEAP = "skill-99-v2-instr"


def _config(
    path: Path, srv: LoopbackServer, *, candidates: list[dict[str, Any]], cheap: str = CHEAP, **top: Any
) -> Path:
    lines = ['baseline = "openai/skill-95"', 'judge = "openai/judge"']
    defaults = {"concurrency": 8, "bootstrap": 2000, "max_spend_usd": 5.0, "timeout_s": 5.0, "per_type": 40}
    for k, v in {**defaults, **top}.items():
        lines.append(f"{k} = {json.dumps(v)}")
    for c in candidates:
        lines.append("[[candidates]]")
        for k, v in c.items():
            if k == "params":
                lines.append("params = {" + ", ".join(f"{pk} = {json.dumps(pv)}" for pk, pv in v.items()) + "}")
            else:
                lines.append(f"{k} = {json.dumps(v)}")
    for name in ("skill-95", cheap, "judge"):
        pin, pout = PRICES.get(name, (0.15, 0.6))
        lines += [
            f'[models."openai/{name}"]',
            f'api_base = "{srv.base_url}"',
            f"input_cost_per_mtok = {pin}",
            f"output_cost_per_mtok = {pout}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


PLAIN = {"name": "mini", "model": f"openai/{CHEAP}"}
WITH_PROMPT = {"name": "mini-tuned", "model": f"openai/{CHEAP}", "system_prompt": TUNED}


def _compare(equiv_cli, tmp_path: Path, config: Path, *args: str):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage", "reply"], 40))
    return equiv_cli(
        "compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"), "--quiet", *args
    )


def _types(cand: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["prompt_type"]: t for t in cand["prompt_types"]}


def test_same_model_with_and_without_its_prompt(equiv_cli, server, tmp_path):
    config = _config(tmp_path / "equiv.toml", server, candidates=[PLAIN, WITH_PROMPT], correction="holm")
    r = _compare(equiv_cli, tmp_path, config)
    assert r.exit_code == 0, r.stderr
    run = only_run_dir(tmp_path / "reports")
    v = load_verdict(run)
    names = [c["name"] for c in v["candidates"]]
    assert names == ["mini", "mini-tuned"]
    plain, tuned = (_types(c) for c in v["candidates"])
    for t in ("triage", "reply"):
        assert plain[t]["verdict"] == "NO_GO", plain[t]["reasons"]
        assert tuned[t]["verdict"] == "GO", tuned[t]["reasons"]
        # its own, longer prompt is what it costs on every call
        assert tuned[t]["cost"]["candidate_usd_per_request"] > plain[t]["cost"]["candidate_usd_per_request"]
        assert tuned[t]["cost"]["baseline_usd_per_request"] == plain[t]["cost"]["baseline_usd_per_request"]
        # Holm over 2 candidates x 2 types
        assert "over 4 candidate x prompt-type tests" in " ".join(tuned[t]["reasons"])
    assert v["recommended"] == {"reply": "mini-tuned", "triage": "mini-tuned"}
    # the single-candidate fields describe the first candidate
    assert v["candidate"] == f"openai/{CHEAP}"
    assert v["verdict"] == "NO_GO"
    assert [t["verdict"] for t in v["prompt_types"]] == [plain["reply"]["verdict"], plain["triage"]["verdict"]]
    assert v["candidates"][1]["system_prompt_sha256"] == hashlib.sha256(TUNED.encode()).hexdigest()

    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 2 * 80
    by_cand: dict[str, int] = {}
    for p in pairs:
        by_cand[p["candidate_name"]] = by_cand.get(p["candidate_name"], 0) + 1
    assert by_cand == {"mini": 80, "mini-tuned": 80}
    assert all(p["pair_id"].endswith("@mini-tuned") for p in pairs if p["candidate_name"] == "mini-tuned")
    # the judge reads the traffic's conversation, not the candidate's rewritten prompt
    assert all(p["messages"][0]["role"] == "user" for p in pairs)
    info = json.loads((run / "run.json").read_text())
    assert [c["name"] for c in info["candidates"]] == ["mini", "mini-tuned"]
    assert TUNED not in json.dumps(info["candidates"])  # run.json's candidates record the prompt's hash

    # equiv report re-decides from pairs.jsonl alone: the same verdicts and recommendation
    again = equiv_cli("report", str(run))
    assert again.exit_code == 0, again.stderr
    v2 = load_verdict(run)
    assert v2["recommended"] == v["recommended"]
    assert [c["verdict"] for c in v2["candidates"]] == [c["verdict"] for c in v["candidates"]]


def test_candidate_flag_picks_candidates_and_a_cap_in_params(equiv_cli, server, tmp_path):
    capped = {**WITH_PROMPT, "name": "mini-capped", "params": {"max_tokens": 150}}
    config = _config(tmp_path / "equiv.toml", server, candidates=[PLAIN, WITH_PROMPT, capped])
    r = _compare(equiv_cli, tmp_path, config, "--candidate", "mini-capped", "--candidate", "mini")
    assert r.exit_code == 0, r.stderr
    v = load_verdict(only_run_dir(tmp_path / "reports"))
    assert [c["name"] for c in v["candidates"]] == ["mini-capped", "mini"]
    assert v["candidates"][0]["params"] == {"max_tokens": 150}
    sent = [r["max_tokens"] for r in server.requests if r["model"] == CHEAP]
    assert (
        sent.count(150) == 80 and sent.count(200) == 80
    )  # the cap on one candidate's calls, the traffic's on the other
    assert any("correction = none" in n for n in v["notes"])  # several candidates, no correction: said


def test_cost_gate_fails_an_over_budget_candidate(equiv_cli, server, tmp_path):
    config = _config(
        tmp_path / "equiv.toml", server, candidates=[WITH_PROMPT], max_usd_per_request=1e-9, calls_per_task=3
    )
    r = _compare(equiv_cli, tmp_path, config)
    assert r.exit_code == 0, r.stderr
    v = load_verdict(only_run_dir(tmp_path / "reports"))
    for t in v["candidates"][0]["prompt_types"]:
        assert t["verdict"] == "NO_GO"
        assert t["reasons"][0].startswith("over budget")
        cost = t["cost"]
        assert cost["over_budget"] is True and cost["max_usd_per_request"] == 1e-9
        assert cost["candidate_usd_per_task"] == cost["candidate_usd_per_request"] * 3
        adjusted = cost["candidate_quality_adjusted_usd_per_task"]
        assert adjusted == cost["candidate_usd_per_task"] / t["win_or_tie_rate"]
    assert v["recommended"] == {"reply": None, "triage": None}


def test_bad_candidate_config_is_exit_2(equiv_cli, server, tmp_path):
    cases = [
        ([PLAIN, {**PLAIN}], "named 'mini'"),
        ([{**WITH_PROMPT, "system_prompt": "prompts/missing.md"}], "candidates[0].system_prompt"),
        ([{**PLAIN, "params": {"api_base": "http://evil"}}], "not a sampling parameter"),
        ([PLAIN, {**PLAIN, "name": "same"}], "same configuration"),
        ([{"name": "b", "model": "openai/skill-95"}], "same model"),
    ]
    for i, (cands, words) in enumerate(cases):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        config = _config(folder / "equiv.toml", server, candidates=cands)
        r = _compare(equiv_cli, folder, config)
        assert r.exit_code == 2, (words, r.stdout, r.stderr)
        assert words in r.stderr, (words, r.stderr)
        assert "Traceback" not in r.stderr
    assert server.requests == []  # refused before any call


def test_qualify_routes_each_type_to_its_recommended_configuration(equiv_cli, server, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    write_jsonl(conf / "traffic.jsonl", make_records(["triage", "reply"], 40))
    (conf / "prompts").mkdir()
    (conf / "prompts" / "tuned.md").write_text(TUNED)
    capped = {**WITH_PROMPT, "system_prompt": "prompts/tuned.md", "params": {"max_tokens": 150}}
    config = _config(conf / "equiv.toml", server, candidates=[PLAIN, capped], correction="holm")
    with config.open("a") as f:
        f.write(
            '[[routes]]\nname = "support"\ntraffic = "traffic.jsonl"\nbaseline = "openai/skill-95"\n'
            'candidate = ["mini", "mini-tuned"]\n'
        )
    routing = tmp_path / "routing.json"
    r = equiv_cli(
        "qualify", "--config", str(config), "--out", str(tmp_path / "reports"), "--routing", str(routing), "--quiet"
    )
    assert r.exit_code == 0, (r.stdout, r.stderr)  # every type has a GO candidate
    data = json.loads(routing.read_text())
    types = data["routes"]["support"]["prompt_types"]
    for t in ("triage", "reply"):
        d = types[t]
        assert d["verdict"] == "GO" and d["candidate"] == "mini-tuned" and d["model"] == f"openai/{CHEAP}"
        assert d["params"] == {"max_tokens": 150}
        assert d["system_prompt_sha256"] == hashlib.sha256(TUNED.encode()).hexdigest()
        assert (routing.parent / d["system_prompt_file"]).read_text() == TUNED
    snippet = yaml.safe_load((tmp_path / "routing.litellm.yaml").read_text())
    entries = {m["model_info"]["equiv_prompt_type"]: m for m in snippet["model_list"]}
    assert entries["triage"]["litellm_params"]["max_tokens"] == 150
    assert entries["triage"]["model_info"]["equiv_candidate"] == "mini-tuned"
    assert entries["triage"]["model_info"]["equiv_system_prompt_file"] == types["triage"]["system_prompt_file"]


def test_nightly_fallback_on_a_multi_candidate_route(equiv_cli, tmp_path):
    """A route qualified with two configurations is watched, per type, on the one routing.json routes it
    to; a regression of that one falls back to the baseline, naming the configuration."""
    from datetime import timedelta

    from .route_config import write_traffic

    routing = tmp_path / "routing.json"
    with LoopbackServer(seed=1, aliases={"cand": CHEAP}) as srv:
        write_traffic(tmp_path / "traffic.jsonl", ["triage"], 40, age=timedelta(hours=1))
        plain, tuned = {**PLAIN, "model": "openai/cand"}, {**WITH_PROMPT, "model": "openai/cand"}
        config = _config(tmp_path / "equiv.toml", srv, candidates=[plain, tuned], cheap="cand", correction="holm")
        with config.open("a") as f:
            f.write(
                '[[routes]]\nname = "support"\ntraffic = "traffic.jsonl"\nbaseline = "openai/skill-95"\n'
                'candidate = ["mini", "mini-tuned"]\n'
            )
        common = ["--config", str(config), "--out", str(tmp_path / "reports"), "--routing", str(routing), "--quiet"]
        q = equiv_cli("qualify", *common)
        assert q.exit_code == 0, q.stdout + q.stderr
        decided = json.loads(routing.read_text())["routes"]["support"]["prompt_types"]["triage"]
        assert decided["candidate"] == "mini-tuned" and decided["verdict"] == "GO"

        write_traffic(tmp_path / "traffic.jsonl", ["triage"], 40, age=timedelta(hours=1), seed=107)
        srv.aliases["cand"] = "skill-60"  # the cheap model got worse, whatever its prompt
        r = equiv_cli("nightly", "--since", "24h", "--fallback", *common)
    assert r.exit_code == 1, r.stdout + r.stderr
    routed = json.loads(routing.read_text())["routes"]["support"]["prompt_types"]["triage"]
    assert routed["model"] == "openai/skill-95" and "candidate" not in routed
    assert routed["fallback"]["from_candidate"] == "mini-tuned"
    assert routed["reason"].startswith("nightly regression")
    assert "FALLBACK support / triage: back to openai/skill-95" in r.stdout
    history = [json.loads(line) for line in (tmp_path / "reports" / "history.jsonl").read_text().splitlines()]
    night = history[-1]["prompt_types"]["triage"]
    assert night["verdict"] == "NO_GO" and night["nightly"]["reference_run_id"] == decided["run_id"]
