"""`equiv qualify` end to end against the loopback server: exit code = the gate, routing.json, LiteLLM snippet."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from equiv.testing.loopback import LoopbackServer

from .route_config import write_route_config, write_traffic

ROUTES = [
    {
        "name": "good",
        "traffic": "traffic.jsonl",
        "baseline": "skill-95",
        "candidate": "skill-99-v2",
        "prompt_types": ["triage"],
    },
    {
        "name": "bad",
        "traffic": "traffic.jsonl",
        "baseline": "skill-95",
        "candidate": "skill-60",
        "prompt_types": ["triage"],
    },
    # too few pairs for any decision (n < 30): inconclusive, and per_type is a route override
    {
        "name": "thin",
        "traffic": "traffic.jsonl",
        "baseline": "skill-95",
        "candidate": "skill-99-v2",
        "prompt_types": ["reply"],
        "per_type": 20,
    },
]


def setup(tmp_path: Path, srv: LoopbackServer) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    write_traffic(conf / "traffic.jsonl", ["triage", "reply"], 40)
    return write_route_config(conf / "equiv.toml", srv, ROUTES)


def qualify(equiv_cli, tmp_path: Path, config: Path, *args: str):
    return equiv_cli(
        "qualify",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "reports"),
        "--routing",
        str(tmp_path / "routing.json"),
        "--quiet",
        *args,
    )


def test_qualifying_route_exits_0_and_routes_to_candidate(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    config = setup(tmp_path, server)
    r = qualify(equiv_cli, tmp_path, config, "--route", "good")
    assert r.exit_code == 0, r.stdout + r.stderr
    routing = json.loads((tmp_path / "routing.json").read_text())
    assert routing["schema_version"] == 1 and list(routing["routes"]) == ["good"]
    good = routing["routes"]["good"]
    assert good["baseline"] == "openai/skill-95" and good["candidate"] == "openai/skill-99-v2"
    assert good["decided_at"].endswith("Z")
    triage = good["prompt_types"]["triage"]
    assert triage["model"] == "openai/skill-99-v2" and triage["verdict"] == "GO"
    run_dir = tmp_path / "reports" / triage["run_id"]
    assert json.loads((run_dir / "verdict.json").read_text())["verdict"] == "GO"
    assert json.loads((run_dir / "routing.json").read_text()) == routing  # a copy in the run directory
    assert json.loads((run_dir / "run.json").read_text())["route"] == "good"
    # the LiteLLM snippet sends the GO prompt-type to the candidate
    snippet = yaml.safe_load((tmp_path / "routing.litellm.yaml").read_text())
    assert snippet["model_list"] == [
        {
            "model_name": "good/triage",
            "litellm_params": {"model": "openai/skill-99-v2", "api_base": server.base_url},
            "model_info": {"equiv_route": "good", "equiv_prompt_type": "triage", "equiv_verdict": "GO"},
        }
    ]
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert "PASS" in summary and "| good | triage | **GO** |" in summary


def test_failing_route_exits_1_and_stays_on_baseline(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    config = setup(tmp_path, server)
    r = qualify(equiv_cli, tmp_path, config, "--route", "bad")
    assert r.exit_code == 1, r.stdout + r.stderr
    decision = json.loads((tmp_path / "routing.json").read_text())["routes"]["bad"]["prompt_types"]["triage"]
    assert decision == {"model": "openai/skill-95", "verdict": "NO_GO", "run_id": decision["run_id"]}
    assert "FAIL" in (tmp_path / "reports" / "summary.md").read_text()


def test_inconclusive_route_exits_3_and_never_flips(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    config = setup(tmp_path, server)
    r = qualify(equiv_cli, tmp_path, config, "--route", "thin")
    assert r.exit_code == 3, r.stdout + r.stderr
    routing = json.loads((tmp_path / "routing.json").read_text())
    decision = routing["routes"]["thin"]["prompt_types"]["reply"]
    assert decision["verdict"] == "INCONCLUSIVE" and decision["model"] == "openai/skill-95"
    run = json.loads((tmp_path / "reports" / decision["run_id"] / "verdict.json").read_text())
    assert run["prompt_types"][0]["n"] == 20  # the route's per_type override
    snippet = yaml.safe_load((tmp_path / "routing.litellm.yaml").read_text())
    assert [m["litellm_params"]["model"] for m in snippet["model_list"]] == ["openai/skill-95"]


def test_all_routes_merge_and_worst_verdict_sets_the_code(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    config = setup(tmp_path, server)
    (tmp_path / "routing.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "routes": {
                    "other": {
                        "baseline": "a",
                        "candidate": "b",
                        "decided_at": "x",
                        "prompt_types": {"t": {"model": "b", "verdict": "GO", "run_id": "r"}},
                    }
                },
            }
        )
    )
    r = qualify(equiv_cli, tmp_path, config)
    assert r.exit_code == 1, r.stdout + r.stderr  # NO_GO beats INCONCLUSIVE beats GO
    routing = json.loads((tmp_path / "routing.json").read_text())
    assert set(routing["routes"]) == {"other", "good", "bad", "thin"}  # merged, not replaced
    models = {(n, t): d["model"] for n, e in routing["routes"].items() for t, d in e["prompt_types"].items()}
    assert models == {
        ("other", "t"): "b",
        ("good", "triage"): "openai/skill-99-v2",
        ("bad", "triage"): "openai/skill-95",
        ("thin", "reply"): "openai/skill-95",
    }
    # a second qualify of the same routes resumes its runs: nothing is bought twice
    bought = len(server.requests)
    r2 = qualify(equiv_cli, tmp_path, config, "--route", "good")
    assert r2.exit_code == 0 and len(server.requests) == bought


def test_bad_input_exits_2_before_any_call(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    config = setup(tmp_path, server)
    r = qualify(equiv_cli, tmp_path, config, "--route", "nope")
    assert r.exit_code == 2 and "no route named 'nope'" in r.stderr and "good, bad, thin" in r.stderr
    missing = write_route_config(
        tmp_path / "conf" / "missing.toml", server, [{**ROUTES[0], "traffic": "elsewhere.jsonl"}]
    )
    r = qualify(equiv_cli, tmp_path, missing)
    assert r.exit_code == 2 and "elsewhere.jsonl not found" in r.stderr
    none = write_route_config(tmp_path / "conf" / "none.toml", server, [])
    r = qualify(equiv_cli, tmp_path, none)
    assert r.exit_code == 2 and "no routes" in r.stderr
    (tmp_path / "routing.json").write_text("{not json")
    r = qualify(equiv_cli, tmp_path, config, "--route", "good")
    assert r.exit_code == 2 and "routing.json" in r.stderr
    assert server.requests == []  # every check happens before the first call


def test_spend_cap_aborts_with_exit_4_and_leaves_routing_alone(
    equiv_cli, tmp_path: Path, server: LoopbackServer
) -> None:
    config = setup(tmp_path, server)
    r = qualify(equiv_cli, tmp_path, config, "--route", "good", "--max-spend", "0.002")
    assert r.exit_code == 4, r.stdout + r.stderr
    assert "route good" in r.stderr and "partial results" in r.stderr
    assert not (tmp_path / "routing.json").exists()  # a partial run never decides a route
    assert "ABORTED" in (tmp_path / "reports" / "summary.md").read_text()
