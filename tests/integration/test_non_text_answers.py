"""`equiv compare` end to end on answers and prompts that are not plain text (litellm, HTTP, the CLI).

A candidate that answers with a tool call is judged on the call; one the content filter blocks is judged
as blocked (a loss the user sees, never excluded); a prompt with an image, which the text judge cannot
see, is a failed pair with its reason, and nothing is bought for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from equiv.llm import answer, fake
from equiv.testing.loopback import LoopbackServer, messages_hash

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find a customer's order",
            "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}},
        },
    }
]
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def _compare(
    equiv_cli: Any,
    tmp_path: Path,
    srv: LoopbackServer,
    rows: list[dict[str, Any]],
    candidate: str,
) -> tuple[Any, Path, list[dict[str, Any]]]:
    traffic = write_jsonl(tmp_path / "traffic.jsonl", rows)
    config = write_config(tmp_path / "equiv.toml", srv, baseline="skill-95", candidate=candidate)
    out = tmp_path / "reports"
    r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(out), "--quiet")
    assert r.exit_code == 0, r.stderr
    run = only_run_dir(out)
    return r, run, [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]


def test_a_candidate_that_answers_with_a_tool_call_is_judged_on_the_call(
    equiv_cli: Any, tmp_path: Path, server: LoopbackServer
) -> None:
    """The candidate calls `lookup_order` with the baseline's own words as arguments: as good an answer.
    Before: its content was null, so it was judged as "" and lost every pair (NO_GO at -1)."""
    rows = make_records(["orders"], 40)
    for row in rows:
        row["params"]["tools"] = TOOLS
    _, run, pairs = _compare(equiv_cli, tmp_path, server, rows, "skill-95-tools")
    assert len(pairs) == 40 and all(p["error"] is None for p in pairs)
    for p in pairs:
        cand = p["candidate"]
        args = json.dumps({"answer": p["baseline"]["output"]})
        assert cand["output"] == f"[tool call] lookup_order\narguments: {args}", cand
        assert cand["tool_calls"][0]["function"] == {"name": "lookup_order", "arguments": args}
        assert {j["order"] for j in p["judgments"]} == {"baseline_first", "candidate_first"}
    t = load_verdict(run)["prompt_types"][0]
    assert t["n_failed"] == 0 and t["quality_diff"]["estimate"] > -0.1, t


def test_a_candidate_blocked_by_the_content_filter_loses_those_pairs_visibly(
    equiv_cli: Any, tmp_path: Path, server: LoopbackServer
) -> None:
    """Blocked answers are judged as what the user got (nothing), not dropped: dropping them would hide a
    candidate that fails on a large share of the traffic."""
    rows = make_records(["triage"], 40)
    _, run, pairs = _compare(equiv_cli, tmp_path, server, rows, "skill-95-filtered")
    blocked = [p for p in pairs if fake.hit("skill-95-filtered", p["messages"])]
    assert 10 <= len(blocked) <= 30 and all(p["error"] is None for p in pairs)
    for p in blocked:
        assert p["candidate"]["output"] == answer.BLOCKED and p["candidate"]["finish_reason"] == "content_filter"
        assert {j["order"]: j["winner"] for j in p["judgments"]} == {"baseline_first": "A", "candidate_first": "B"}
    for p in pairs:
        if p not in blocked:
            assert p["candidate"]["output"] == p["baseline"]["output"] and "finish_reason" not in p["candidate"]
    t = load_verdict(run)["prompt_types"][0]
    assert t["n_failed"] == 0 and t["verdict"] != "GO"
    assert t["quality_diff"]["estimate"] < -0.2


def test_a_prompt_with_an_image_is_a_failed_pair_with_its_reason_and_buys_nothing(
    equiv_cli: Any, tmp_path: Path, server: LoopbackServer
) -> None:
    """Before: the image part was dropped from the judge prompt and the pair judged blind."""
    rows = make_records(["screens"], 40)
    for row in rows[:8]:
        row["messages"] = [
            {"role": "user", "content": [{"type": "text", "text": row["messages"][0]["content"]}, IMAGE]}
        ]
    _, run, pairs = _compare(equiv_cli, tmp_path, server, rows, "skill-99-v2")
    reason = "not judged: the prompt has image parts (image_url) and the judge sees text only"
    failed = [p for p in pairs if p["error"]]
    assert sorted(p["pair_id"] for p in failed) == sorted(r["id"] for r in rows[:8])
    assert all(p["error"] == reason and p["judgments"] == [] for p in failed)
    sent = {r["messages_sha256"] for r in server.requests}
    assert not sent & {messages_hash(r["messages"]) for r in rows[:8]}  # the candidate was never called for them
    v = load_verdict(run)
    assert v["prompt_types"][0]["n_failed"] == 8
    assert any(reason in note and "8 pair(s)" in note for note in v["notes"]), v["notes"]
