"""Routes: config -> settings, routing.json (merge, atomic, damaged file), the LiteLLM snippet, --since."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from equiv.cli.options import parse_since
from equiv.config import load_settings
from equiv.errors import InputError
from equiv.routes import (
    litellm_snippet,
    merge_routing,
    model_group,
    qualify_summary,
    read_routing,
    route_decision,
    route_settings,
    route_traffic,
    select_routes,
    snippet_path,
    write_routing,
)
from equiv.schema import Interval, TypeVerdict, Verdict

CONFIG = """
margin = 0.1
per_type = 200
judge = "gpt-4.1"
cost_regression_share = 0.3

[[routes]]
name = "support-mini"
traffic = "logs/support.jsonl"
baseline = "gpt-4o"
candidate = "gpt-4o-mini"
prompt_types = ["ticket-triage", "reply-draft"]

[[routes]]
name = "search"
traffic = "/abs/search.jsonl"
baseline = "gpt-4o"
candidate = "local-qwen"
margin = 0.05
per_type = 50
judge = "claude"

[models."local-qwen"]
api_base = "http://127.0.0.1:8000/v1"
api_key_env = "QWEN_KEY"
litellm_model = "openai/qwen"
input_cost_per_mtok = 0
output_cost_per_mtok = 0
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "conf" / "logs").mkdir(parents=True)
    (tmp_path / "conf" / "logs" / "support.jsonl").write_text("{}\n")
    path = tmp_path / "conf" / "equiv.toml"
    path.write_text(CONFIG)
    return path


def test_route_settings_take_top_level_defaults_and_route_overrides(config: Path) -> None:
    s = load_settings(config)
    assert s.cost_regression_share == 0.3
    support, search = select_routes(s)
    rs = route_settings(s, support)
    assert (rs.baseline, rs.candidate, rs.types) == ("gpt-4o", "gpt-4o-mini", ["ticket-triage", "reply-draft"])
    assert (rs.margin, rs.per_type, rs.judge) == (0.1, 200, "gpt-4.1")
    rs2 = route_settings(s, search)
    assert (rs2.margin, rs2.per_type, rs2.judge, rs2.types) == (0.05, 50, "claude", None)
    assert rs2.models["local-qwen"].litellm_model == "openai/qwen"
    assert s.baseline is None and s.margin == 0.1  # the top level is untouched


def test_route_traffic_is_relative_to_the_config_file(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # not the config's folder
    s = load_settings(config)
    assert route_traffic(s, s.routes[0]) == config.parent / "logs" / "support.jsonl"
    with pytest.raises(InputError, match="route 'search': traffic file /abs/search.jsonl not found"):
        route_traffic(s, s.routes[1])


def test_select_routes_by_name_and_errors(config: Path, tmp_path: Path) -> None:
    s = load_settings(config)
    assert [r.name for r in select_routes(s, ["search"])] == ["search"]
    assert [r.name for r in select_routes(s, ["search", "support-mini"])] == ["support-mini", "search"]
    with pytest.raises(InputError, match="no route named 'x' in the config \\(routes: support-mini, search\\)"):
        select_routes(s, ["x"])
    with pytest.raises(InputError, match="defines no routes"):
        select_routes(load_settings(None))
    dup = tmp_path / "dup.toml"
    dup.write_text('[[routes]]\nname="a"\ntraffic="t"\nbaseline="b"\ncandidate="c"\n' * 2)
    with pytest.raises(InputError, match="two \\[\\[routes\\]\\] are named 'a'"):
        select_routes(load_settings(dup))


def test_route_keys_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[routes]]\nname="a"\ntraffic="t"\nbaseline="b"\ncandidate="c"\nfoo=1\n')
    with pytest.raises(InputError, match="unknown key 'routes.0.foo'"):
        load_settings(bad)
    bad.write_text('[[routes]]\nname="a"\ntraffic="t"\nbaseline="b"\n')
    with pytest.raises(InputError, match="routes.0.candidate"):
        load_settings(bad)
    bad.write_text("cost_regression_share = -1\n")
    with pytest.raises(InputError, match="cost_regression_share"):
        load_settings(bad)
    bad.write_text('[[routes]]\nname="a"\ntraffic="t"\nbaseline="b"\ncandidate="c"\nprompt_types=[""]\n')
    s = load_settings(bad)
    with pytest.raises(InputError, match="at least one prompt-type"):
        route_settings(s, s.routes[0])


def tv(name: str, verdict: str) -> TypeVerdict:
    iv = Interval(estimate=0.0, ci_low=-0.05, ci_high=0.05)
    return TypeVerdict(
        prompt_type=name,
        n=40,
        n_failed=0,
        verdict=verdict,
        reasons=[],
        quality_diff=iv,  # type: ignore[arg-type]
        lc_quality_diff=iv,
        win_rate=0.5,
        tie_rate=0.1,
        position_consistency=0.9,
        judge_check=None,
        mean_chars=None,
        cost=None,
        samples_needed=None,
    )


def verdict(*types: TypeVerdict, run_id: str = "20250301-020000-abc") -> Verdict:
    return Verdict(
        run_id=run_id,
        baseline="gpt-4o",
        candidate="gpt-4o-mini",
        judge="j",
        margin=0.1,
        alpha=0.05,
        correction="none",
        bootstrap=1000,
        seed=0,
        eval_cost_usd=0.1,
        verdict="INCONCLUSIVE",
        prompt_types=list(types),
    )


def test_only_go_moves_to_the_candidate(config: Path) -> None:
    route = load_settings(config).routes[0]
    d = route_decision(
        route, verdict(tv("a", "GO"), tv("b", "INCONCLUSIVE"), tv("c", "NO_GO")), decided_at="2025-03-01T02:00:00Z"
    )
    assert d["prompt_types"] == {
        "a": {"model": "gpt-4o-mini", "verdict": "GO", "run_id": "20250301-020000-abc"},
        "b": {"model": "gpt-4o", "verdict": "INCONCLUSIVE", "run_id": "20250301-020000-abc"},
        "c": {"model": "gpt-4o", "verdict": "NO_GO", "run_id": "20250301-020000-abc"},
    }
    assert (d["baseline"], d["candidate"], d["decided_at"]) == ("gpt-4o", "gpt-4o-mini", "2025-03-01T02:00:00Z")


def test_routing_merges_atomically_and_refuses_a_damaged_file(config: Path, tmp_path: Path) -> None:
    s = load_settings(config)
    path = tmp_path / "out" / "routing.json"
    assert read_routing(path) == {"schema_version": 1, "routes": {}}
    write_routing(path, {"support-mini": route_decision(s.routes[0], verdict(tv("a", "GO")))})
    write_routing(path, {"search": route_decision(s.routes[1], verdict(tv("q", "NO_GO"), run_id="r2"))})
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and list(data["routes"]) == ["search", "support-mini"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["routing.json"]  # no temp file left
    # a route decided again replaces its own entry only
    write_routing(path, {"search": route_decision(s.routes[1], verdict(tv("q", "GO"), run_id="r3"))})
    data = json.loads(path.read_text())
    assert data["routes"]["search"]["prompt_types"]["q"]["model"] == "local-qwen"
    assert data["routes"]["support-mini"]["prompt_types"]["a"]["model"] == "gpt-4o-mini"
    assert merge_routing({}, {})["routes"] == {}
    path.write_text('{"routes": ')
    with pytest.raises(InputError, match="routing.json: not valid JSON"):
        read_routing(path)
    path.write_text("[]")
    with pytest.raises(InputError, match="not a routing file"):
        read_routing(path)
    path.write_text('{"schema_version": 9, "routes": {}}')
    with pytest.raises(InputError, match="newer"):
        read_routing(path)


def test_litellm_snippet_is_valid_yaml_with_one_group_per_prompt_type(config: Path) -> None:
    s = load_settings(config)
    routing = merge_routing(
        {},
        {
            "support-mini": route_decision(s.routes[0], verdict(tv("ticket-triage", "GO"), tv("reply draft", "NO_GO"))),
            "search": route_decision(s.routes[1], verdict(tv('q: "x"\n#', "GO"))),
        },
    )
    text = litellm_snippet(routing, s)
    doc = yaml.safe_load(text)
    groups = {m["model_name"]: m for m in doc["model_list"]}
    assert set(groups) == {"support-mini/ticket-triage", "support-mini/reply-draft", "search/q-x"}
    assert groups["support-mini/ticket-triage"]["litellm_params"] == {"model": "gpt-4o-mini"}
    assert groups["support-mini/reply-draft"]["litellm_params"] == {"model": "gpt-4o"}
    # a local model: its litellm name, base URL and the key's env var NAME (never a key)
    assert groups["search/q-x"]["litellm_params"] == {
        "model": "openai/qwen",
        "api_base": "http://127.0.0.1:8000/v1",
        "api_key": "os.environ/QWEN_KEY",
    }
    assert groups["search/q-x"]["model_info"]["equiv_prompt_type"] == 'q: "x"\n#'
    assert yaml.safe_load(litellm_snippet({"routes": {}}, s)) == {"model_list": []}
    assert snippet_path(Path("a/routing.json")) == Path("a/routing.litellm.yaml")
    assert model_group("a b", "") == "a-b/default"


def test_qualify_summary_escapes_and_says_the_gate(config: Path, tmp_path: Path) -> None:
    s = load_settings(config)
    text = qualify_summary([(s.routes[0], verdict(tv("a|b", "GO")), tmp_path)], Path("routing.json"), 0)
    assert text.startswith("# equiv qualify: PASS")
    assert "| support-mini | a\\|b | **GO** | gpt-4o-mini |" in text
    assert qualify_summary([], Path("routing.json"), 4, aborted="spend cap").startswith("# equiv qualify: ABORTED")


def test_parse_since() -> None:
    now = datetime(2025, 3, 2, 12, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("1w", now) == now - timedelta(weeks=1)
    assert parse_since("1.5h", now) == now - timedelta(hours=1.5)
    assert parse_since("2025-03-01T00:00:00Z") == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_since("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)
    for bad in ("yesterday", "0h", "-3h", ""):
        with pytest.raises(InputError, match="--since"):
            parse_since(bad, now)
