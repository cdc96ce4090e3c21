"""`--samples-per-prompt k`: the candidate is generated k times per prompt, and the k pairs of one
prompt are one cluster for the bootstrap (SPEC "Paired bootstrap": repeated samples of one prompt are
one cluster). The statistics side of this (a wider interval than independent samples) is tested in
tests/stats/test_analyze.py and tests/statistics/test_guarantees.py; this file checks the pipeline."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from equiv.testing.loopback import LoopbackServer

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl


def test_samples_per_prompt_generates_k_candidates_and_clusters_them(
    equiv_cli, tmp_path: Path, server: LoopbackServer
) -> None:
    k, per_type = 3, 20
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], per_type))
    config = write_config(tmp_path / "equiv.toml", server, baseline="skill-95", candidate="skill-99-v2")
    out = tmp_path / "reports"
    r = equiv_cli(
        "compare", str(traffic), "--config", str(config), "--out", str(out), "--quiet", "--samples-per-prompt", str(k)
    )
    assert r.exit_code == 0, r.stderr
    run = only_run_dir(out)

    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == k * per_type
    by_prompt = Counter(p["prompt_id"] for p in pairs)
    assert len(by_prompt) == per_type and set(by_prompt.values()) == {k}
    # the k pairs of one prompt: ids <record id>#s<k>, one cluster, each standing for 1/k of its records
    prefix = {p["prompt_id"]: set() for p in pairs}
    for p in pairs:
        prefix[p["prompt_id"]].add(p["pair_id"].rsplit("#s", 1)[0])
    assert all(len(v) == 1 for v in prefix.values())
    assert all(p["weight"] == pytest.approx(1 / k) for p in pairs)
    # the candidate was asked k times per prompt (the baseline is the logged response, never re-run)
    cand_calls = sum(n for (model, _h, _s), n in server.counts_by_key().items() if model.endswith("skill-99-v2"))
    assert cand_calls == k * per_type

    v = load_verdict(run)
    (t,) = v["prompt_types"]
    assert (t["n"], t["n_prompts"]) == (k * per_type, per_type)
    # the judge check samples prompts, not repeated samples of one prompt (their baselines are identical)
    checks = [json.loads(line) for line in (run / "checks.jsonl").read_text().splitlines()]
    checked = Counter(next(p["prompt_id"] for p in pairs if p["pair_id"] == c["pair_id"]) for c in checks)
    assert set(checked.values()) == {1}
    assert t["judge_check"]["n"] == len(checks) == 10
